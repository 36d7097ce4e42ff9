//! `aio mount` on real mounts: the mirror, programs that do asynchronous I/O on it (fio with
//! libaio and io_uring, the seed programs on our libraries and the system's), each fault kind
//! where its rule says and nowhere else, crash simulation, SQLite surviving crashes, and clean
//! unmounting. Tests that cannot mount here print `SKIP <name>: <reason>`.

mod common;

use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aio_testkit::{fio_job, have, note, run, which};
use common::*;

/// Why mounting cannot be tested here, if it cannot.
fn cannot_mount() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse does not exist".into());
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        return Some(format!("cannot open /dev/fuse: {e}"));
    }
    if !is_root() && which("fusermount3").is_none() {
        return Some("not root and no fusermount3".into());
    }
    None
}

/// Whether `path` is a mountpoint now.
fn mounted(path: &Path) -> bool {
    let want = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A running `aio mount`: stopped with SIGTERM and, whatever happened, unmounted on drop.
struct Daemon {
    child: Option<Child>,
    mnt: PathBuf,
    stderr: PathBuf,
}

impl Daemon {
    /// Mounts `back` on `mnt` with extra options and waits until the mount is there.
    fn start(back: &Path, mnt: &Path, extra: &[&str]) -> Daemon {
        std::fs::create_dir_all(mnt).expect("create the mountpoint");
        let stderr = mnt.with_extension("stderr");
        let err_file = std::fs::File::create(&stderr).expect("create the daemon's stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_aio"))
            .arg("mount")
            .arg(back)
            .arg(mnt)
            .args(extra)
            .env_remove("AIO_ENGINE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .spawn()
            .expect("spawn aio mount");
        let mut d = Daemon { child: Some(child), mnt: mnt.to_path_buf(), stderr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !mounted(mnt) {
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("aio mount exited with {status} before mounting:\n{}", d.log());
            }
            assert!(Instant::now() < deadline, "no mount within 20 s:\n{}", d.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `aio fault MOUNTPOINT ARGS`.
    fn fault(&self, args: &[&str]) -> Run {
        let mut all = vec!["fault", self.mnt.to_str().expect("a UTF-8 path")];
        all.extend_from_slice(args);
        aio(self.mnt.parent().expect("a parent"), &all)
    }

    /// SIGTERM, then waits for the daemon to exit: its exit status.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill with a child's pid we have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("aio mount did not exit within 30 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill with a child's pid we have not reaped yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if mounted(&self.mnt) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

/// A test's directories: BACKING_DIR and MOUNTPOINT side by side on a real disk.
struct Dirs {
    _root: tempfile::TempDir,
    back: PathBuf,
    mnt: PathBuf,
}

fn dirs() -> Dirs {
    let root = test_dir();
    let back = root.path().join("back");
    let mnt = root.path().join("mnt");
    std::fs::create_dir(&back).expect("create BACKING_DIR");
    std::fs::create_dir(&mnt).expect("create MOUNTPOINT");
    Dirs { back, mnt, _root: root }
}

macro_rules! need_mount {
    ($name:expr) => {
        if let Some(why) = cannot_mount() {
            return skip($name, &why);
        }
    };
}

/// The C probe, built once per test run.
fn probe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mount_probe");
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/mount_probe.c");
            let part = out.with_extension(format!("{}", std::process::id()));
            aio_testkit::gcc(&src, &part, None, &["-O1", "-Wall", "-Werror"]);
            std::fs::rename(&part, &out).expect("put the probe in place");
            out
        })
        .clone()
}

/// Runs the probe on `file` with `flags` and `ops`: one `(what, result, ms)` per operation,
/// after the `open` line (whose result is the first element).
fn probe_run(file: &Path, flags: &str, ops: &[&str]) -> Vec<(String, String, f64)> {
    let ran = run(Command::new(probe()).arg(file).arg(flags).args(ops), Duration::from_secs(60));
    assert!(ran.status.success(), "probe failed: {}{}", ran.stdout, ran.stderr);
    ran.stdout
        .lines()
        .map(|l| {
            let (what, rest) = l.split_once(" = ").expect("a result line");
            let mut it = rest.split(' ');
            let res = it.next().unwrap_or_default().to_string();
            let ms = it.next().and_then(|m| m.parse().ok()).unwrap_or(0.0);
            (what.to_string(), res, ms)
        })
        .collect()
}

/// The results alone.
fn results(lines: &[(String, String, f64)]) -> Vec<&str> {
    lines.iter().map(|(_, r, _)| r.as_str()).collect()
}

fn have_gcc(name: &str) -> bool {
    if !have("gcc") {
        skip(name, "gcc is not installed");
        return false;
    }
    true
}

#[test]
fn files_round_trip_through_the_mount() {
    let name = "files_round_trip_through_the_mount";
    need_mount!(name);
    let d = dirs();
    let _m = Daemon::start(&d.back, &d.mnt, &[]);
    // Written through the mount: byte-identical in the backing directory.
    let data = pattern(3 << 20, 1);
    std::fs::write(d.mnt.join("a.bin"), &data).expect("write through the mount");
    assert_eq!(std::fs::read(d.back.join("a.bin")).expect("read the backing file"), data);
    // Written in the backing directory: the same through the mount.
    let other = pattern(100_000, 2);
    std::fs::write(d.back.join("b.bin"), &other).expect("write the backing file");
    assert_eq!(std::fs::read(d.mnt.join("b.bin")).expect("read through the mount"), other);
    // Directories, rename, unlink, truncate, symlink, hard link, fallocate, xattr.
    std::fs::create_dir_all(d.mnt.join("x/y")).expect("mkdir through the mount");
    assert!(d.back.join("x/y").is_dir());
    std::fs::rename(d.mnt.join("a.bin"), d.mnt.join("x/y/a2.bin")).expect("rename");
    assert!(!d.back.join("a.bin").exists());
    assert_eq!(std::fs::read(d.mnt.join("x/y/a2.bin")).expect("read renamed"), data);
    let f = std::fs::OpenOptions::new().write(true).open(d.mnt.join("b.bin")).expect("open");
    f.set_len(1000).expect("truncate through the mount");
    // SAFETY: fallocate on an open descriptor, a range within i64.
    let r = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&f), 0, 0, 1 << 20) };
    assert_eq!(r, 0, "fallocate: {}", std::io::Error::last_os_error());
    drop(f);
    assert_eq!(std::fs::metadata(d.back.join("b.bin")).expect("stat").len(), 1 << 20);
    std::os::unix::fs::symlink("x/y/a2.bin", d.mnt.join("link")).expect("symlink");
    assert_eq!(std::fs::read_link(d.back.join("link")).expect("readlink"), Path::new("x/y/a2.bin"));
    assert_eq!(std::fs::read(d.mnt.join("link")).expect("read through the symlink"), data);
    std::fs::hard_link(d.mnt.join("x/y/a2.bin"), d.mnt.join("hard")).expect("link");
    assert_eq!(std::fs::metadata(d.mnt.join("hard")).expect("stat").nlink(), 2);
    let xattr = Command::new("setfattr")
        .args(["-n", "user.k", "-v", "v1"])
        .arg(d.mnt.join("hard"))
        .status();
    if xattr.is_ok_and(|s| s.success()) {
        let out = Command::new("getfattr")
            .args(["--only-values", "-n", "user.k"])
            .arg(d.back.join("hard"))
            .output()
            .expect("getfattr");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "v1");
    } else {
        skip("files_round_trip_through_the_mount (xattrs)", "setfattr unavailable or refused");
    }
    std::fs::remove_file(d.mnt.join("hard")).expect("unlink");
    std::fs::remove_file(d.mnt.join("link")).expect("unlink the symlink");
    assert!(!d.back.join("hard").exists() && !d.back.join("link").exists());
    let mut names = names(&d.mnt);
    names.sort();
    assert_eq!(names, ["b.bin", "x"]);
    std::fs::remove_dir(d.mnt.join("x/y")).expect_err("rmdir of a non-empty directory");
    // aio cp from and to the mount, both ways through the page cache and with O_DIRECT.
    std::fs::write(d.back.join("src.bin"), pattern(5 << 20, 3)).expect("write SRC");
    aio(&d.mnt, &["cp", "src.bin", "copy.bin", "--verify"]).expect_code(0, "aio cp on the mount");
    aio(&d.mnt, &["cp", "--direct", "src.bin", "copy2.bin", "--verify"])
        .expect_code(0, "aio cp --direct on the mount");
    for copy in ["copy.bin", "copy2.bin"] {
        assert_eq!(
            std::fs::read(d.back.join(copy)).expect("read the copy"),
            pattern(5 << 20, 3),
            "{copy}"
        );
    }
}

#[test]
fn fio_verifies_on_the_mount_with_libaio_and_io_uring() {
    let name = "fio_verifies_on_the_mount_with_libaio_and_io_uring";
    need_mount!(name);
    let Some(fio) = which("fio") else { return skip(name, "fio is not installed") };
    let d = dirs();
    let m = Daemon::start(&d.back, &d.mnt, &[]);
    for engine in ["libaio", "io_uring"] {
        fio_job(
            Command::new(&fio),
            &d.mnt,
            engine,
            &[&format!("--ioengine={engine}"), "--direct=1", "--iodepth=32"],
            &["--size=16M", "--bs=4k", "--rw=randwrite", "--verify=crc32c", "--do_verify=1"],
        );
    }
    // The daemon had many requests at the backing disk at once.
    let status = m.fault(&["status"]);
    status.expect_code(0, "aio fault status");
    let most: usize = status
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("most in flight: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no 'most in flight' in:\n{}", status.stdout));
    note(&format!("{name}: at most {most} requests in flight at the driver"));
    assert!(most >= 8, "QD 32 on the mount reached only {most} requests in flight");
}

#[test]
fn seed_programs_run_unchanged_on_the_mount() {
    let name = "seed_programs_run_unchanged_on_the_mount";
    need_mount!(name);
    if !have_gcc(name) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let d = dirs();
    let m = Daemon::start(&d.back, &d.mnt, &[]);
    let build = test_dir();
    // posix_aio_read.c, on glibc's POSIX AIO and on ours.
    let src = aio_testkit::seed_file(&root, "posix_aio_read.c").expect("seed/posix_aio_read.c");
    let exe = build.path().join("posix_aio_read");
    aio_testkit::gcc(&src, &exe, None, &["-w"]);
    let text: String = (0..4096).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    std::fs::write(d.mnt.join("test.txt"), &text).expect("write test.txt");
    let (_, posix_lib) = aio_testkit::stage_cdylib(
        "libposixaio.so",
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "mount-posixaio",
        "libposixaio.so",
    );
    for preload in [None, Some(&posix_lib)] {
        let mut cmd = Command::new(&exe);
        cmd.current_dir(&d.mnt).env_remove("LD_PRELOAD");
        if let Some(lib) = preload {
            cmd.env("LD_PRELOAD", lib);
        }
        let ran = run(&mut cmd, Duration::from_secs(60));
        assert!(ran.status.success(), "posix_aio_read ({preload:?}): {}{}", ran.stdout, ran.stderr);
        let last = ran.stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
        assert_eq!(last, "返回值为:1024", "posix_aio_read ({preload:?}):\n{}", ran.stdout);
    }
    // libaio_copy.c, on our libaio.so.1 and on the system's.
    let src = aio_testkit::seed_file(&root, "libaio_copy.c").expect("seed/libaio_copy.c");
    let include = root.join("libaio/include");
    let (lib_dir, _) = aio_testkit::stage_cdylib(
        "libaio_libaio.so",
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "mount-libaio",
        "libaio.so.1",
    );
    let _ = std::os::unix::fs::symlink("libaio.so.1", lib_dir.join("libaio.so"));
    let ours = build.path().join("copy-ours");
    aio_testkit::gcc(
        &src,
        &ours,
        Some(&include),
        &[format!("-L{}", lib_dir.display()).as_str(), "-laio", "-w"],
    );
    let mut programs = vec![(ours, Some(lib_dir.clone()))];
    let system = ["/usr/lib/x86_64-linux-gnu/libaio.so.1", "/lib/x86_64-linux-gnu/libaio.so.1"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    match system {
        Some(sys) => {
            let theirs = build.path().join("copy-system");
            aio_testkit::gcc(&src, &theirs, Some(&include), &[sys.to_str().expect("UTF-8"), "-w"]);
            programs.push((theirs, None));
        }
        None => skip(
            &format!("{name} (system libaio)"),
            "no system libaio.so.1; libaio_copy.c checked on ours only",
        ),
    }
    let mut outputs = Vec::new();
    for (exe, lib) in programs {
        let srcf = d.mnt.join("src.bin");
        let dstf = d.mnt.join("dst.bin");
        let data: Vec<u8> = (0..4096u32).map(|i| b'A' + (i % 26) as u8).collect();
        std::fs::write(&srcf, data).expect("write SRC");
        std::fs::write(&dstf, b"").expect("create DST");
        let mut cmd = Command::new(&exe);
        cmd.arg(&srcf).arg(&dstf).env_remove("LD_PRELOAD");
        match &lib {
            Some(p) => cmd.env("LD_LIBRARY_PATH", p),
            None => cmd.env_remove("LD_LIBRARY_PATH"),
        };
        let ran = run(&mut cmd, Duration::from_secs(60));
        assert!(ran.status.code().is_some(), "{exe:?} was killed");
        assert!(ran.stdout.contains("\n1 io_request completed"), "{exe:?}:\n{}", ran.stdout);
        let dst = std::fs::read(d.back.join("dst.bin")).expect("read DST in the backing dir");
        assert_eq!(dst.len(), 1024, "{exe:?}");
        assert!(dst.starts_with(b"abcdefg"), "{exe:?}: DST starts {:?}", &dst[..16]);
        outputs.push(dst);
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "DST differs between libraries");
    drop(m);
}

#[test]
fn each_fault_kind_hits_where_its_rule_says() {
    let name = "each_fault_kind_hits_where_its_rule_says";
    need_mount!(name);
    if !have_gcc(name) {
        return;
    }
    let d = dirs();
    for f in ["a.bad", "a.good", "ranged", "short", "torn", "full", "slow", "sync"] {
        std::fs::write(d.back.join(f), vec![b'o'; 16384]).expect("make a file");
    }
    let log = d.back.parent().expect("parent").join("faults.jsonl");
    let m = Daemon::start(
        &d.back,
        &d.mnt,
        &[
            "--fault",
            "op=read,path=*.bad,errno=EIO",
            "--fault",
            "op=read,path=ranged,offset=8k-12k,errno=EIO",
            "--fault",
            "op=read,path=short,short=1000",
            "--fault",
            "op=write,path=short,short=512",
            "--fault",
            "op=write,path=torn,torn=1024",
            "--fault",
            "op=write,path=full,errno=ENOSPC",
            "--fault",
            "op=read,path=slow,delay=300ms-400ms",
            "--fault",
            "op=fsync,path=sync,nth=3,delay=1s",
            "--fault",
            "op=open,path=*.locked,errno=EACCES",
            "--log",
            log.to_str().expect("UTF-8"),
        ],
    );
    let mnt = |f: &str| d.mnt.join(f);
    // errno by path: the .bad file fails, the .good one does not.
    assert_eq!(
        results(&probe_run(&mnt("a.bad"), "d", &["r:0:4096", "r:4096:4096"])),
        ["0", "-EIO", "-EIO"]
    );
    assert_eq!(
        results(&probe_run(&mnt("a.good"), "d", &["r:0:4096", "r:4096:4096"])),
        ["0", "4096", "4096"]
    );
    // An offset range: only reads touching [8 KiB, 12 KiB).
    assert_eq!(
        results(&probe_run(
            &mnt("ranged"),
            "d",
            &["r:0:4096", "r:4096:4096", "r:8192:4096", "r:12288:4096", "r:4096:8192"]
        )),
        ["0", "4096", "4096", "-EIO", "4096", "-EIO"]
    );
    // Short transfers: reads give 1000 bytes, writes take 512.
    assert_eq!(
        results(&probe_run(&mnt("short"), "d", &["r:0:4096", "w:0:4096:S"])),
        ["0", "1000", "512"]
    );
    let short = std::fs::read(d.back.join("short")).expect("read back");
    assert!(short[..512].iter().all(|&b| b == b'S') && short[512..].iter().all(|&b| b == b'o'));
    // A torn write: every byte reported written, the first 1024 persisted.
    assert_eq!(results(&probe_run(&mnt("torn"), "d", &["w:0:4096:N", "f"])), ["0", "4096", "0"]);
    let torn = std::fs::read(d.back.join("torn")).expect("read back");
    assert!(torn[..1024].iter().all(|&b| b == b'N'), "the torn part persists");
    assert!(torn[1024..].iter().all(|&b| b == b'o'), "nothing past the torn part");
    // ENOSPC on writes to one file only; its reads are fine.
    assert_eq!(
        results(&probe_run(&mnt("full"), "d", &["w:0:4096:F", "r:0:4096"])),
        ["0", "-ENOSPC", "4096"]
    );
    // Added latency in a range, on reads of one file.
    let slow = probe_run(&mnt("slow"), "d", &["r:0:4096"]);
    assert_eq!(results(&slow), ["0", "4096"]);
    assert!(slow[1].2 >= 299.0, "a delayed read took {} ms", slow[1].2);
    let fast = probe_run(&mnt("a.good"), "d", &["r:0:4096"]);
    assert!(fast[1].2 < 250.0, "an undelayed read took {} ms", fast[1].2);
    // The third fsync only is delayed.
    let syncs = probe_run(&mnt("sync"), "-", &["w:0:10:s", "f", "f", "f", "f"]);
    let ms: Vec<f64> = syncs[2..].iter().map(|s| s.2).collect();
    assert!(ms[2] >= 999.0, "the third fsync took {} ms", ms[2]);
    for (i, t) in ms.iter().enumerate().filter(|(i, _)| *i != 2) {
        assert!(*t < 900.0, "fsync {} took {t} ms", i + 1);
    }
    // errno on open.
    std::fs::write(d.back.join("x.locked"), b"x").expect("make a file");
    assert_eq!(results(&probe_run(&mnt("x.locked"), "-", &[])), ["-EACCES"]);
    // The log: one JSON line per injected fault, naming the operation, path and action.
    let text = std::fs::read_to_string(&log).expect("read the fault log");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let count = |path: &str, action: &str| {
        lines.iter().filter(|v| v["path"] == path && v["action"] == action).count()
    };
    assert_eq!(count("/a.bad", "error"), 2, "{text}");
    assert_eq!(count("/ranged", "error"), 2, "{text}");
    assert_eq!(count("/torn", "torn"), 1, "{text}");
    assert_eq!(count("/sync", "delay"), 1, "{text}");
    assert!(lines
        .iter()
        .any(|v| v["path"] == "/ranged" && v["offset"] == 8192 && v["len"] == 4096));
    assert!(count("/a.good", "error") == 0);
    // Rules at run time: add, list, clear.
    m.fault(&["add", "op=write,path=a.good,errno=EDQUOT"]).expect_code(0, "aio fault add");
    assert_eq!(results(&probe_run(&mnt("a.good"), "d", &["w:0:4096:q"])), ["0", "-EDQUOT"]);
    m.fault(&["list"])
        .expect_code(0, "list")
        .expect_stdout("op=write,path=a.good,errno=EDQUOT (matched 1, fired 1)");
    m.fault(&["clear"]).expect_code(0, "clear").expect_stdout("10 rules removed");
    assert_eq!(results(&probe_run(&mnt("a.bad"), "d", &["r:0:4096"])), ["0", "4096"]);
    m.fault(&["add", "op=write,errno=EBOGUS"])
        .expect_code(2, "bad SPEC")
        .expect_stderr("errno=EBOGUS");
    m.fault(&["crash"])
        .expect_code(1, "crash without --lose-unsynced")
        .expect_stderr("--lose-unsynced");
}

/// Runs a fixed sequence of writes on a file with a probability rule: which writes failed.
fn failures_with_seed(seed: &str) -> (Vec<usize>, String) {
    let d = dirs();
    let log = d.back.parent().expect("parent").join("faults.jsonl");
    let m = Daemon::start(
        &d.back,
        &d.mnt,
        &[
            "--seed",
            seed,
            "--fault",
            "op=write,prob=0.3,errno=ENOSPC",
            "--log",
            log.to_str().expect("UTF-8"),
        ],
    );
    let ops: Vec<String> = (0..60).map(|i| format!("w:{}:4096:w", i * 4096)).collect();
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let res = probe_run(&d.mnt.join("p"), "dc", &ops);
    drop(m);
    let failed =
        res[1..].iter().enumerate().filter(|(_, r)| r.1 == "-ENOSPC").map(|(i, _)| i).collect();
    (failed, std::fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn the_same_seed_replays_the_same_faults() {
    let name = "the_same_seed_replays_the_same_faults";
    need_mount!(name);
    if !have_gcc(name) {
        return;
    }
    let (a, log_a) = failures_with_seed("7");
    let (b, log_b) = failures_with_seed("7");
    let (c, _) = failures_with_seed("8");
    note(&format!("{name}: seed 7 failed writes {a:?}; seed 8 {c:?}"));
    assert!(!a.is_empty() && a.len() < 60, "prob=0.3 failed {} of 60 writes", a.len());
    assert_eq!(a, b, "the same seed gave different faults");
    assert_eq!(log_a, log_b, "the same seed gave a different log");
    assert_eq!(log_a.lines().count(), a.len());
    assert_ne!(a, c, "another seed gave the same faults");
}

#[test]
fn a_crash_keeps_synced_data_and_loses_the_rest() {
    let name = "a_crash_keeps_synced_data_and_loses_the_rest";
    need_mount!(name);
    if !have_gcc(name) {
        return;
    }
    let d = dirs();
    std::fs::write(d.back.join("T"), vec![b'o'; 8192]).expect("make T");
    let m = Daemon::start(
        &d.back,
        &d.mnt,
        &["--lose-unsynced", "--fault", "op=write,path=T,torn=1024"],
    );
    let (a, b) = (d.mnt.join("A"), d.mnt.join("B"));
    let wa = pattern(20_000, 10);
    {
        let f = std::fs::File::create(&a).expect("create A");
        f.write_all_at(&wa, 0).expect("write A");
        f.sync_all().expect("fsync A");
        let g = std::fs::File::create(&b).expect("create B");
        (&g).write_all(b"never synced").expect("write B");
        // Reads see held writes, as a page cache would; the backing file has none of them.
        assert_eq!(std::fs::read(&b).expect("read B"), b"never synced");
        assert_eq!(std::fs::metadata(d.back.join("B")).expect("stat").len(), 0);
        // A torn write, synced: only the persisted part is there after the crash.
        assert_eq!(
            results(&probe_run(&d.mnt.join("T"), "-", &["w:0:4096:N", "f"])),
            ["0", "4096", "0"]
        );
        // Written after the last fsync of A: lost.
        f.write_all_at(b"late", 0).expect("write A again");
        m.fault(&["crash"]).expect_code(0, "aio fault crash").expect_stdout("unsynced bytes lost");
        // Files open before the crash are gone with the power.
        let err = f.write_all_at(b"x", 0).expect_err("a write through a pre-crash handle");
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    assert_eq!(std::fs::read(&a).expect("read A"), wa, "synced A is intact");
    assert_eq!(std::fs::read(&b).expect("read B"), b"", "unsynced B is gone");
    let t = std::fs::read(d.mnt.join("T")).expect("read T");
    assert!(t[..1024].iter().all(|&c| c == b'N') && t[1024..].iter().all(|&c| c == b'o'));
    assert_eq!(t.len(), 8192);
    // A clean unmount writes back what is held.
    std::fs::write(d.mnt.join("C"), b"kept at unmount").expect("write C");
    let mut m = m;
    assert!(m.stop().expect("an exit status").success(), "{}", m.log());
    assert_eq!(std::fs::read(d.back.join("C")).expect("read C"), b"kept at unmount");
}

/// A tiny deterministic generator for the test's own choices.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn sqlite(dir: &Path, script: &str) -> aio_testkit::Ran {
    let mut cmd = Command::new("sqlite3");
    cmd.args(["-batch", "-bail"]).arg(dir.join("test.db")).arg(script);
    run(&mut cmd, Duration::from_secs(60))
}

#[test]
fn sqlite_in_wal_mode_survives_crashes() {
    let name = "sqlite_in_wal_mode_survives_crashes";
    need_mount!(name);
    if which("sqlite3").is_none() {
        return skip(name, "sqlite3 is not installed (scripts/install-test-deps.sh installs it)");
    }
    let d = dirs();
    let m = Daemon::start(&d.back, &d.mnt, &["--lose-unsynced", "--seed", "11"]);
    let setup =
        sqlite(&d.mnt, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);");
    assert!(setup.status.success(), "{}{}", setup.stdout, setup.stderr);
    let mut committed = 0u64; // rows known committed
    let mut rng = 0x5eed_u64;
    let mut crashed_mid_run = 0;
    for cycle in 0..30 {
        // The power fails at the Kth write or fsync to the database files from now on.
        let k = 1 + next(&mut rng) % 100;
        m.fault(&["add", &format!("op=write|fsync,path=test.db*,nth={k},action=crash")])
            .expect_code(0, "add a crash rule");
        let mut script = String::from("PRAGMA synchronous=FULL;\n");
        for j in 1..=10 {
            let id = committed + j;
            script.push_str(&format!(
                "BEGIN; INSERT INTO t VALUES({id}, hex(randomblob(300))); COMMIT; SELECT 'c ' || {id};\n"
            ));
        }
        let ran = sqlite(&d.mnt, &script);
        let printed: Vec<u64> =
            ran.stdout.lines().filter_map(|l| l.strip_prefix("c ")?.trim().parse().ok()).collect();
        if !ran.status.success() {
            crashed_mid_run += 1;
        }
        // If the rule never fired, the power fails now, between transactions.
        if m.fault(&["list"]).stdout.contains("fired 0") {
            m.fault(&["crash"]).expect_code(0, "crash");
        }
        m.fault(&["clear"]).expect_code(0, "clear");
        let check = sqlite(&d.mnt, "PRAGMA integrity_check; SELECT count(*), coalesce(min(id),0), coalesce(max(id),0) FROM t;");
        assert!(
            check.status.success(),
            "cycle {cycle}: reopening failed: {}{}",
            check.stdout,
            check.stderr
        );
        let lines: Vec<&str> = check.stdout.lines().collect();
        assert_eq!(lines.first(), Some(&"ok"), "cycle {cycle}: integrity_check: {}", check.stdout);
        let nums: Vec<u64> = lines
            .get(1)
            .expect("count line")
            .split('|')
            .map(|x| x.parse().expect("a number"))
            .collect();
        let (count, max) = (nums[0], nums[2]);
        let last_printed = printed.last().copied().unwrap_or(committed);
        assert!(
            max >= last_printed,
            "cycle {cycle}: committed row {last_printed} is gone (max {max})"
        );
        assert_eq!(count, max, "cycle {cycle}: rows are not 1..={max} ({count} rows)");
        assert!(max <= committed + 10);
        committed = max;
    }
    note(&format!(
        "{name}: 30 crash cycles, {crashed_mid_run} in the middle of a run; {committed} rows committed and intact"
    ));
    assert!(crashed_mid_run > 0, "no crash hit sqlite while it ran");
    drop(m);
}

#[test]
fn sigterm_unmounts_cleanly() {
    let name = "sigterm_unmounts_cleanly";
    need_mount!(name);
    let d = dirs();
    let mut m = Daemon::start(&d.back, &d.mnt, &[]);
    std::fs::write(d.mnt.join("f"), b"data").expect("write");
    assert!(mounted(&d.mnt));
    let status = m.stop().expect("an exit status");
    assert!(status.success(), "aio mount exited with {status}:\n{}", m.log());
    assert!(!mounted(&d.mnt), "still mounted after SIGTERM");
    assert!(m.log().contains("SIGTERM: unmounting"), "{}", m.log());
    assert_eq!(std::fs::read(d.back.join("f")).expect("read"), b"data");
}

#[test]
fn bad_input_is_refused_before_mounting() {
    let d = dirs();
    let (b, mnt) = (d.back.to_str().expect("UTF-8"), d.mnt.to_str().expect("UTF-8"));
    let cwd = d.back.parent().expect("parent").to_path_buf();
    // A mountpoint that is not an empty directory.
    std::fs::write(d.back.join("file"), b"x").expect("write");
    aio(&cwd, &["mount", mnt, b])
        .expect_code(2, "non-empty MOUNTPOINT")
        .expect_stderr("is not empty");
    aio(&cwd, &["mount", b, &format!("{b}/file")])
        .expect_code(2, "file MOUNTPOINT")
        .expect_stderr("not a directory");
    aio(&cwd, &["mount", b, "/nonexistent-mnt"])
        .expect_code(2, "missing MOUNTPOINT")
        .expect_stderr("cannot open");
    aio(&cwd, &["mount", "/nonexistent-back", mnt])
        .expect_code(2, "missing BACKING_DIR")
        .expect_stderr("cannot open");
    // One inside the other.
    std::fs::create_dir(d.mnt.join("inner")).expect("mkdir");
    let inner_back = d.mnt.join("inner");
    let empty = cwd.join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::remove_dir(&inner_back).expect("rmdir");
    std::fs::create_dir(&inner_back).expect("mkdir");
    // BACKING_DIR inside MOUNTPOINT: the mountpoint is not empty then, so that is what it says;
    // an empty directory inside it as the mountpoint's target is checked the other way round.
    aio(&cwd, &["mount", inner_back.to_str().expect("UTF-8"), mnt])
        .expect_code(2, "BACKING_DIR inside MOUNTPOINT");
    std::fs::create_dir(d.back.join("sub")).expect("mkdir");
    aio(&cwd, &["mount", b, d.back.join("sub").to_str().expect("UTF-8")])
        .expect_code(2, "MOUNTPOINT inside BACKING_DIR")
        .expect_stderr("inside BACKING_DIR");
    aio(&cwd, &["mount", empty.to_str().expect("UTF-8"), empty.to_str().expect("UTF-8")])
        .expect_code(2, "the same directory")
        .expect_stderr("inside");
    // Malformed rules.
    for (spec, needle) in [
        ("op=read,errno=EBOGUS", "errno=EBOGUS"),
        ("op=raed,errno=EIO", "raed"),
        ("prob=2,errno=EIO", "prob=2"),
        ("op=read", "does nothing"),
        ("op=write,nth=5,action=crash", "--lose-unsynced"),
    ] {
        aio(&cwd, &["mount", b, empty.to_str().expect("UTF-8"), "--fault", spec])
            .expect_code(2, spec)
            .expect_stderr(needle);
    }
    assert!(!mounted(&empty) && !mounted(&d.mnt), "something was mounted");
    aio(&cwd, &["fault", empty.to_str().expect("UTF-8"), "list"])
        .expect_code(1, "no daemon")
        .expect_stderr("no aio mount answers");
}
