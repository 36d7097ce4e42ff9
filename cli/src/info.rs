//! `aio info [PATH]`: what this kernel supports, and for PATH its filesystem, whether `O_DIRECT`
//! works there and with what alignment, and which engine auto-selection picks and why.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aio::align::AlignSource;
use aio::driver::{self, KernelDriver, KernelOptions, SelectOptions, UringDriver, UringOptions};
use aio::{AlignedBuf, DioAlign};
use clap::Args;

use crate::bench::PRETEND_NO_URING;
use crate::util::{self, cause, human_bytes, path_error, Failure};

/// `aio info`: what this system supports.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A file or directory to examine (default: the current directory).
    #[arg(default_value = ".")]
    path: PathBuf,
}

/// io_uring opcodes by number (`enum io_uring_op` in `<linux/io_uring.h>`).
const URING_OPS: [&str; 63] = [
    "nop",
    "readv",
    "writev",
    "fsync",
    "read_fixed",
    "write_fixed",
    "poll_add",
    "poll_remove",
    "sync_file_range",
    "sendmsg",
    "recvmsg",
    "timeout",
    "timeout_remove",
    "accept",
    "async_cancel",
    "link_timeout",
    "connect",
    "fallocate",
    "openat",
    "close",
    "files_update",
    "statx",
    "read",
    "write",
    "fadvise",
    "madvise",
    "send",
    "recv",
    "openat2",
    "epoll_ctl",
    "splice",
    "provide_buffers",
    "remove_buffers",
    "tee",
    "shutdown",
    "renameat",
    "unlinkat",
    "mkdirat",
    "symlinkat",
    "linkat",
    "msg_ring",
    "fsetxattr",
    "setxattr",
    "fgetxattr",
    "getxattr",
    "socket",
    "uring_cmd",
    "send_zc",
    "sendmsg_zc",
    "read_multishot",
    "waitid",
    "futex_wait",
    "futex_wake",
    "futex_waitv",
    "fixed_fd_install",
    "ftruncate",
    "bind",
    "listen",
    "recv_zc",
    "epoll_wait",
    "readv_fixed",
    "writev_fixed",
    "pipe",
];

fn line(label: &str, value: impl std::fmt::Display) {
    println!("{:<24}{value}", format!("{label}:"));
}

fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path)
        .map_or_else(|e| format!("? ({})", cause(&e)), |s| s.trim().to_string())
}

/// Runs `aio info`.
pub fn run(args: InfoArgs) -> Result<(), Failure> {
    line("kernel", util::kernel_version());
    uring_info();
    line(
        "kernel AIO",
        format!(
            "/proc/sys/fs/aio-nr {}, /proc/sys/fs/aio-max-nr {}; io_setup {}",
            read_proc("/proc/sys/fs/aio-nr"),
            read_proc("/proc/sys/fs/aio-max-nr"),
            match KernelDriver::new(KernelOptions {
                max_events: 1,
                buffered_pool: None,
                ..KernelOptions::default()
            }) {
                Ok(_) => "works".to_string(),
                Err(e) => format!("fails: {e}"),
            }
        ),
    );
    if let Some(v) = std::env::var_os("AIO_ENGINE") {
        line("AIO_ENGINE", format!("{} (forces the engine below)", v.to_string_lossy()));
    }
    path_info(&args.path)
}

fn uring_info() {
    let disabled = read_proc("/proc/sys/kernel/io_uring_disabled");
    let pretend = std::env::var_os(PRETEND_NO_URING);
    let driver = match &pretend {
        Some(why) => Err(format!("{} ({PRETEND_NO_URING})", why.to_string_lossy())),
        None => UringDriver::new(UringOptions { entries: 8, ..UringOptions::default() })
            .map_err(|e| e.to_string()),
    };
    match driver {
        Err(why) => {
            line("io_uring", format!("unavailable: {why}"));
            line("  io_uring_disabled", disabled);
        }
        Ok(d) => {
            line(
                "io_uring",
                format!("available (/proc/sys/kernel/io_uring_disabled = {disabled})"),
            );
            let p = d.probe();
            line(
                "  features",
                format!(
                    "ext_arg {}, nodrop {}, submit_stable {}",
                    yes(p.ext_arg),
                    yes(p.nodrop),
                    yes(p.submit_stable)
                ),
            );
            let used: Vec<String> = p
                .ops
                .iter()
                .map(|(n, ok)| if *ok { n.to_string() } else { format!("{n} (NO)") })
                .collect();
            line("  driver's opcodes", used.join(", "));
            match supported_ops() {
                Ok(ops) => line(
                    "  opcodes supported",
                    wrap(&format!("{} of {}: {}", ops.len(), URING_OPS.len(), ops.join(", "))),
                ),
                Err(e) => line("  opcodes supported", format!("? (IORING_REGISTER_PROBE: {e})")),
            }
        }
    }
}

/// Breaks a long value into lines of at most 76 columns, continued under the value column.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for word in text.split(' ') {
        if width > 0 && width + 1 + word.len() > 76 {
            out.push('\n');
            out.push_str(&" ".repeat(24));
            width = 0;
        } else if width > 0 {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.len();
    }
    out
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Every opcode the kernel reports supported (`IORING_REGISTER_PROBE`), by name.
fn supported_ops() -> io::Result<Vec<String>> {
    let ring = io_uring::IoUring::new(2)?;
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let mut out = Vec::new();
    for code in 0..=255u8 {
        if probe.is_supported(code) {
            out.push(
                URING_OPS.get(code as usize).map_or_else(|| format!("op{code}"), |n| n.to_string()),
            );
        }
    }
    Ok(out)
}

fn source_name(s: AlignSource) -> &'static str {
    match s {
        AlignSource::Statx => "from statx STATX_DIOALIGN",
        AlignSource::BlockDevice => "from the block device's logical block size",
        AlignSource::Default => "assumed: neither statx nor a block device reports it",
    }
}

/// The test file for a directory: made, opened twice, and unlinked at once.
struct Probe {
    buffered: File,
    direct: Result<File, io::Error>,
    what: String,
}

fn probe_dir(dir: &Path) -> Result<Probe, String> {
    let shown = std::fs::canonicalize(dir).unwrap_or(dir.to_path_buf());
    let name = dir.join(format!(".aio-info-{}.tmp", std::process::id()));
    let buffered = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&name)
        .map_err(|e| path_error("cannot create a test file", &name, &e))?;
    let direct = OpenOptions::new().read(true).write(true).custom_flags(libc::O_DIRECT).open(&name);
    let _ = std::fs::remove_file(&name);
    Ok(Probe { buffered, direct, what: format!("a test file in {}", shown.display()) })
}

fn probe_file(path: &Path) -> Result<Probe, String> {
    let buffered = File::open(path).map_err(|e| path_error("cannot open", path, &e))?;
    let direct = OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path);
    Ok(Probe { buffered, direct, what: path.display().to_string() })
}

fn path_info(path: &Path) -> Result<(), Failure> {
    let md =
        std::fs::metadata(path).map_err(|e| Failure::run(path_error("cannot open", path, &e)))?;
    let shown = std::fs::canonicalize(path).unwrap_or(path.to_path_buf());
    let kind = if md.is_dir() {
        "directory".to_string()
    } else if md.is_file() {
        format!("file, {}", human_bytes(md.len()))
    } else {
        "special file".to_string()
    };
    line("path", format!("{} ({kind})", shown.display()));
    let handle = File::open(path).map_err(|e| Failure::run(path_error("cannot open", path, &e)))?;
    match util::filesystem(&handle) {
        Ok(fs) => {
            let mut s = format!("{fs} (statfs magic {:#x})", fs.magic);
            if fs.is_memory() {
                s.push_str(": in memory, O_DIRECT here bypasses nothing");
            }
            line("  filesystem", s);
        }
        Err(e) => line("  filesystem", format!("? ({})", cause(&e))),
    }
    line("  device requests", wrap(&device_requests(md.dev())));
    let probe = if md.is_dir() { probe_dir(path) } else { probe_file(path) };
    let probe = match probe {
        Ok(p) => p,
        Err(why) => {
            line("  O_DIRECT", format!("not tested: {why}"));
            return Ok(());
        }
    };
    match &probe.direct {
        Ok(f) => {
            let align = DioAlign::of(f);
            let test = match &align {
                Ok(a) => direct_io_test(f, a, md.is_dir()),
                Err(e) => Err(e.to_string()),
            };
            match test {
                Ok(what) => line("  O_DIRECT", format!("works ({what} on {})", probe.what)),
                Err(why) => line("  O_DIRECT", format!("open works, I/O fails: {why}")),
            }
            match align {
                Ok(a) => line(
                    "  O_DIRECT alignment",
                    format!(
                        "memory {} bytes, offset and length {} bytes ({})",
                        a.memory,
                        a.offset,
                        source_name(a.source)
                    ),
                ),
                Err(e) => line("  O_DIRECT alignment", format!("? ({e})")),
            }
        }
        Err(e) => line("  O_DIRECT", format!("does not work: open with O_DIRECT: {}", cause(e))),
    }
    let mut opts = SelectOptions::default();
    if let Some(why) = std::env::var_os(PRETEND_NO_URING) {
        opts.pretend_uring_unavailable =
            Some(format!("{} ({PRETEND_NO_URING})", why.to_string_lossy()));
    }
    let pick = |f: &File| match driver::select_with(f, &opts) {
        Ok((_, sel)) => sel.to_string(),
        Err(e) => format!("none: {e}"),
    };
    line("  engine, buffered", pick(&probe.buffered));
    match &probe.direct {
        Ok(f) => line("  engine, O_DIRECT", pick(f)),
        Err(_) => line("  engine, O_DIRECT", "- (O_DIRECT does not work here)"),
    }
    match aio::posix::engine_selection() {
        Ok(sel) => line("  engine, POSIX AIO", sel),
        Err(e) => line("  engine, POSIX AIO", format!("none: {}", io::Error::from_raw_os_error(e))),
    }
    Ok(())
}

/// The largest request the disk under `dev` takes, in how many DMA segments, and whether
/// aio's large buffers can come from huge pages (one segment each 2 MiB instead of 4 KiB).
fn device_requests(dev: u64) -> String {
    let (Some(kb), Some(segs)) =
        (util::queue_limit(dev, "max_sectors_kb"), util::queue_limit(dev, "max_segments"))
    else {
        return "- (not a block device: no queue limits in sysfs)".to_string();
    };
    let scattered = (segs * 4).min(kb);
    let huge = match util::thp_mode() {
        Some(m) if m != "never" => {
            format!("transparent huge pages {m}: aio's buffers of 2 MiB and more use them")
        }
        Some(_) => "transparent huge pages off: aio's buffers are 4 KiB pages".to_string(),
        None => "no transparent huge pages in this kernel".to_string(),
    };
    format!(
        "up to {} in at most {segs} segments ({} from scattered 4 KiB pages); {huge}",
        human_bytes(kb << 10),
        human_bytes(scattered << 10)
    )
}

/// One aligned block written and read back (a test file), or read (a file of the user's).
fn direct_io_test(f: &File, a: &DioAlign, scratch: bool) -> Result<String, String> {
    let n = a.buffer_align();
    let mut buf = AlignedBuf::new(n, a.buffer_align());
    buf.set_len(n);
    if scratch {
        buf.fill(0x5a);
        f.write_all_at(&buf, 0).map_err(|e| format!("write of {n} bytes: {}", cause(&e)))?;
        buf.fill(0);
        f.read_exact_at(&mut buf, 0).map_err(|e| format!("read of {n} bytes: {}", cause(&e)))?;
        if buf.iter().any(|&b| b != 0x5a) {
            return Err("the block read back differs from the one written".to_string());
        }
        Ok(format!("wrote and read back {n} bytes"))
    } else {
        let got =
            f.read_at(&mut buf, 0).map_err(|e| format!("read of {n} bytes: {}", cause(&e)))?;
        Ok(format!("read {got} bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::URING_OPS;
    use io_uring::opcode;

    #[test]
    fn opcode_names_match_the_crate() {
        let known = [
            (opcode::Nop::CODE, "nop"),
            (opcode::Readv::CODE, "readv"),
            (opcode::Fsync::CODE, "fsync"),
            (opcode::ReadFixed::CODE, "read_fixed"),
            (opcode::AsyncCancel::CODE, "async_cancel"),
            (opcode::OpenAt::CODE, "openat"),
            (opcode::Read::CODE, "read"),
            (opcode::Write::CODE, "write"),
            (opcode::Splice::CODE, "splice"),
            (opcode::Socket::CODE, "socket"),
            (opcode::SendZc::CODE, "send_zc"),
            (opcode::FutexWaitV::CODE, "futex_waitv"),
            (opcode::FixedFdInstall::CODE, "fixed_fd_install"),
            (opcode::Ftruncate::CODE, "ftruncate"),
        ];
        for (code, name) in known {
            assert_eq!(URING_OPS[code as usize], name, "opcode {code}");
        }
    }
}
