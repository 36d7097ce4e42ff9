//! `aio mount BACKING_DIR MOUNTPOINT`: a FUSE filesystem mirroring BACKING_DIR whose reads,
//! writes and fsyncs are served by the `aio` driver layer — the driver side behind the kernel,
//! so any program's I/O on the mount (`io_submit`, io_uring, POSIX AIO, `pread`) lands in a Rust
//! driver — with fault rules, held unsynced writes and simulated crashes.
//!
//! - `fs.rs`: the mirror (every FUSE request as the same operation on the backing directory);
//! - `nodes.rs`: the inode table (an `O_PATH` descriptor per inode);
//! - `data.rs`: the data path through the driver, replies sent as completions arrive;
//! - `cache.rs`: unsynced writes held until fsync, dropped by a crash;
//! - `control.rs`: the control socket; `client.rs`: `aio fault`;
//! - `sys.rs`: the system calls on the backing directory.

mod cache;
mod client;
mod control;
mod data;
mod fs;
mod nodes;
mod sys;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;

use aio::driver::{select_shared, Engine, SelectOptions, UringOptions};
use aio::faults::{Action, FaultLog, Faults, Rule};
use clap::Args;
use fuser::{Config, MountOption, SessionACL};

pub use client::{run as run_fault, FaultArgs};

use crate::util::{cause, path_error, Failure};

/// `aio mount`: mirror a directory through FUSE, every read, write and fsync served by the
/// driver layer, with fault rules and crash simulation.
#[derive(Debug, Args)]
#[command(after_long_help = SPEC_HELP)]
pub struct MountArgs {
    /// The directory whose files the mount shows.
    backing_dir: PathBuf,
    /// Where to mount it: an empty directory.
    mountpoint: PathBuf,
    /// A fault rule (repeatable): comma-separated key=value pairs, e.g.
    /// op=read,path=*.bad,errno=EIO (keys below).
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<String>,
    /// Seeds every random choice of the fault rules: the same seed and the same sequence of
    /// operations give the same faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Append each injected fault to FILE as a JSON line.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Hold written data in memory until the program fsyncs the file; `aio fault MOUNTPOINT
    /// crash` (or a rule with action=crash) drops what was not synced, as a power loss would.
    #[arg(long)]
    lose_unsynced: bool,
    /// The driver serving the backing files: uring, kernel or pool [default: the best this
    /// kernel allows, or AIO_ENGINE].
    #[arg(long, value_parser = parse_engine)]
    engine: Option<Engine>,
    /// FUSE worker threads reading requests from the kernel.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

const SPEC_HELP: &str = "\
Fault rule keys (SPEC = key=value,key=value,...):
  op=read|write|fsync|fdatasync|open|create|mkdir|unlink|rmdir|rename|truncate|fallocate|
     getattr|setattr|readdir|xattr|link|any   operations matched (several joined with |)
  path=GLOB          file path glob (*.db matches the name; /dir/* the path from the root)
  offset=START-END   reads/writes touching bytes [START, END) (START-: to the end; N: one byte)
  prob=P             fire with probability P (0..1), drawn from --seed
  nth=N              fire on the Nth match only
  count=N            fire at most N times
  errno=NAME|NUMBER  fail with this errno (EIO, ENOSPC, EDQUOT, EROFS, EAGAIN, EINTR, ...)
  short=BYTES|random transfer only this many bytes
  torn=BYTES|random  a write keeps only its first BYTES bytes, reports all written
  delay=DUR|LO-HI    add latency (200ms, 1s, 10ms-50ms)
  action=error|short|torn|delay|crash   what to do (implied by errno/short/torn/delay)
Examples: op=read,path=*.bad,errno=EIO   op=write,prob=0.01,errno=ENOSPC
          op=fsync,nth=3,delay=200ms     op=write,nth=1000,action=crash
Control at run time: aio fault MOUNTPOINT add SPEC | list | clear | crash | status
After a daemon crash the mount answers ENOTCONN: clear it with umount -l MOUNTPOINT
(or fusermount3 -u MOUNTPOINT).";

fn parse_engine(s: &str) -> Result<Engine, String> {
    s.parse().map_err(|e: std::io::Error| e.to_string())
}

/// FUSE requests the kernel may have in the background (async reads, async direct I/O) at once.
const MAX_BACKGROUND: u16 = 128;

/// The checks made before anything is mounted: each failure is a usage error.
fn check(args: &MountArgs) -> Result<(PathBuf, PathBuf, Vec<Rule>), Failure> {
    let backing = std::fs::canonicalize(&args.backing_dir)
        .map_err(|e| Failure::usage(path_error("cannot open", &args.backing_dir, &e)))?;
    if !backing.is_dir() {
        return Err(Failure::usage(format!("{} is not a directory", args.backing_dir.display())));
    }
    let mp = &args.mountpoint;
    let md =
        std::fs::metadata(mp).map_err(|e| Failure::usage(path_error("cannot open", mp, &e)))?;
    if !md.is_dir() {
        return Err(Failure::usage(format!("{}: not a directory", mp.display())));
    }
    let mut entries =
        std::fs::read_dir(mp).map_err(|e| Failure::usage(path_error("cannot list", mp, &e)))?;
    if entries.next().is_some() {
        return Err(Failure::usage(format!(
            "{} is not empty: mount on an empty directory",
            mp.display()
        )));
    }
    let mount = std::fs::canonicalize(mp)
        .map_err(|e| Failure::usage(path_error("cannot resolve", mp, &e)))?;
    if backing.starts_with(&mount) {
        return Err(Failure::usage(format!(
            "BACKING_DIR {} is inside MOUNTPOINT {}: the mount would hide it",
            backing.display(),
            mount.display()
        )));
    }
    if mount.starts_with(&backing) {
        return Err(Failure::usage(format!(
            "MOUNTPOINT {} is inside BACKING_DIR {}: the mirror would contain itself",
            mount.display(),
            backing.display()
        )));
    }
    let mut rules = Vec::new();
    for spec in &args.faults {
        let rule: Rule =
            spec.parse().map_err(|e| Failure::usage(format!("--fault {spec:?}: {e}")))?;
        if rule.action == Action::Crash && !args.lose_unsynced {
            return Err(Failure::usage(format!(
                "--fault {spec:?}: action=crash needs --lose-unsynced (without it nothing is \
                 held to lose)"
            )));
        }
        rules.push(rule);
    }
    // FUSE itself: the device, and the right to mount.
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::usage(
                "/dev/fuse does not exist: this system has no FUSE (modprobe fuse, or give the \
                 container the device)",
            ))
        }
        Err(e) => {
            return Err(Failure::usage(format!(
                "cannot open /dev/fuse: {} (mounting needs access to it)",
                cause(&e)
            )))
        }
    }
    if !sys::is_root() && !have_fusermount3() {
        return Err(Failure::usage(
            "not root, and no fusermount3 to mount with: run as root or install fuse3",
        ));
    }
    Ok((backing, mount, rules))
}

fn have_fusermount3() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("fusermount3").exists()))
}

/// Runs `aio mount` until the mount is unmounted or a signal asks it to end.
pub fn run(args: MountArgs) -> Result<(), Failure> {
    let (backing, mount, rules) = check(&args)?;
    let log = match &args.log {
        Some(p) => Some(
            FaultLog::create(p).map_err(|e| Failure::usage(path_error("cannot open", p, &e)))?,
        ),
        None => None,
    };
    let mut control = control::Control::bind(&args.mountpoint).map_err(Failure::usage)?;

    // Signals are waited for by one thread: blocked here, before any thread starts.
    let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    sys::block_signals(&signals).map_err(|e| Failure::run(format!("sigprocmask: {e}")))?;
    sys::set_umask(0);
    sys::raise_nofile();

    let opts = SelectOptions {
        engine: args.engine,
        uring: UringOptions { entries: 512, ..UringOptions::default() },
        ..SelectOptions::default()
    };
    let (driver, selection) =
        select_shared(&opts).map_err(|e| Failure::run(format!("no driver: {}", cause(&e))))?;
    let data = data::DataPath::start(driver)
        .map_err(|e| Failure::run(format!("cannot start the completion thread: {e}")))?;
    let faults = Arc::new(Faults::new(args.seed, log));
    for r in rules {
        faults.add(r);
    }
    let root = std::fs::File::open(&backing)
        .map_err(|e| Failure::run(path_error("cannot open", &backing, &e)))?;
    let root_path = sys::reopen(root.as_fd(), libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Failure::run(path_error("cannot open", &backing, &e)))?;
    let shared = Arc::new(
        fs::Shared::new(
            backing.clone(),
            root_path,
            Arc::clone(&faults),
            Arc::clone(&data),
            args.lose_unsynced,
        )
        .map_err(|e| Failure::run(path_error("cannot read", &backing, &e)))?,
    );

    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(format!("aio:{}", backing.display())),
        MountOption::Subtype("aio".into()),
        MountOption::DefaultPermissions,
    ];
    // Root serves every user (the kernel checks permissions: default_permissions).
    config.acl = if sys::is_root() { SessionACL::All } else { SessionACL::Owner };
    config.n_threads = Some(usize::from(args.threads));
    config.clone_fd = true;
    let mirror = fs::Mirror { s: Arc::clone(&shared), max_background: MAX_BACKGROUND };
    let mut session = fuser::Session::new(mirror, &mount, &config).map_err(|e| {
        Failure::run(format!(
            "cannot mount {} on {}: {}",
            backing.display(),
            mount.display(),
            cause(&e)
        ))
    })?;

    // After a crash the kernel's cached pages and attributes go: from a thread of its own, as
    // a notification sent from inside a request could wait on that very request.
    let notifier = session.notifier();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u64>>();
    shared.set_invalidator(tx);
    std::thread::Builder::new()
        .name("aio-mount-inval".into())
        .spawn(move || {
            for inos in rx {
                for ino in inos {
                    let _ = notifier.inval_inode(fuser::INodeNo(ino), 0, 0);
                }
            }
        })
        .map_err(|e| Failure::run(format!("cannot start a thread: {e}")))?;

    control
        .serve(Arc::clone(&shared))
        .map_err(|e| Failure::run(format!("cannot start the control thread: {e}")))?;

    let mut unmounter = session.unmount_callable();
    let mount_for_signal = mount.clone();
    let shared_for_signal = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("aio-mount-signal".into())
        .spawn(move || {
            let sig = sys::wait_signal(&signals);
            eprintln!(
                "aio mount: {}: unmounting {}",
                sys::signal_name(sig),
                mount_for_signal.display()
            );
            if let Err(e) = unmounter.unmount() {
                eprintln!("aio mount: unmount {}: {}", mount_for_signal.display(), cause(&e));
            }
            // Programs with files still open keep a lazily unmounted file system alive: give
            // them a moment, then end the process (closing /dev/fuse ends the connection) —
            // after writing back what is held, as an unmount does: a clean stop loses nothing.
            std::thread::sleep(std::time::Duration::from_secs(10));
            eprintln!("aio mount: files are still open on the unmounted file system: exiting");
            if let Err(e) = shared_for_signal.write_back_all() {
                eprintln!("aio mount: writing back held data at exit: {}", cause(&e));
            }
            std::process::exit(0);
        })
        .map_err(|e| Failure::run(format!("cannot start a thread: {e}")))?;

    eprintln!(
        "aio mount: {} on {} (driver {selection}, {} FUSE threads{}; control socket {})",
        backing.display(),
        mount.display(),
        args.threads,
        if args.lose_unsynced { ", unsynced writes held until fsync" } else { "" },
        control.path().display()
    );
    let result = session.run();
    data.shutdown();
    drop(control);
    result.map_err(|e| Failure::run(format!("serving {}: {}", mount.display(), cause(&e))))?;
    eprintln!("aio mount: {} unmounted", mount.display());
    Ok(())
}
