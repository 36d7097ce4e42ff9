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
use serde::Serialize;

use crate::bench::PRETEND_NO_URING;
use crate::util::{self, cause, human_bytes, path_error, Failure};

/// `aio info`: what this system supports.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A file or directory to examine (default: the current directory).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Print the same facts as one JSON document.
    #[arg(long)]
    json: bool,
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

/// A number read from `/proc`, or why it could not be.
#[derive(Debug, Serialize)]
struct ProcValue {
    /// The value.
    value: Option<u64>,
    /// Why there is none.
    error: Option<String>,
}

impl ProcValue {
    fn read(path: &str) -> ProcValue {
        match std::fs::read_to_string(path) {
            Ok(s) => match s.trim().parse() {
                Ok(v) => ProcValue { value: Some(v), error: None },
                Err(_) => ProcValue { value: None, error: Some(format!("not a number: {s:?}")) },
            },
            Err(e) => ProcValue { value: None, error: Some(cause(&e)) },
        }
    }
}

impl std::fmt::Display for ProcValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.value, &self.error) {
            (Some(v), _) => write!(f, "{v}"),
            (None, Some(e)) => write!(f, "? ({e})"),
            (None, None) => write!(f, "?"),
        }
    }
}

/// Everything `aio info` reports: printed as text, or as one JSON document (`--json`).
#[derive(Debug, Serialize)]
struct Info {
    /// `uname -srm`.
    kernel: String,
    io_uring: UringInfo,
    kernel_aio: KernelAioInfo,
    /// `AIO_ENGINE`, when set (it forces the engines below).
    aio_engine: Option<String>,
    path: PathInfo,
}

#[derive(Debug, Serialize)]
struct UringInfo {
    /// Whether a ring can be set up.
    available: bool,
    /// Why not, when it cannot.
    unavailable: Option<String>,
    /// `/proc/sys/kernel/io_uring_disabled`.
    io_uring_disabled: ProcValue,
    /// The ring's features the driver uses.
    features: Option<UringFeatures>,
    /// The opcodes the driver uses, and whether the kernel has each.
    driver_opcodes: Vec<Opcode>,
    /// Every opcode the kernel reports (`IORING_REGISTER_PROBE`), by name.
    opcodes_supported: Option<Vec<String>>,
    /// How many opcodes this program knows the names of.
    opcodes_known: usize,
    /// Why the probe failed, if it did.
    opcodes_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct UringFeatures {
    ext_arg: bool,
    nodrop: bool,
    submit_stable: bool,
}

#[derive(Debug, Serialize)]
struct Opcode {
    name: String,
    supported: bool,
}

#[derive(Debug, Serialize)]
struct KernelAioInfo {
    /// `/proc/sys/fs/aio-nr`.
    aio_nr: ProcValue,
    /// `/proc/sys/fs/aio-max-nr`.
    aio_max_nr: ProcValue,
    /// Whether `io_setup` works.
    io_setup_works: bool,
    /// Why not, when it does not.
    io_setup_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct PathInfo {
    /// PATH, made absolute.
    path: String,
    /// `directory`, `file` or `special file`.
    kind: &'static str,
    /// Its size, for a file.
    size: Option<u64>,
    filesystem: Option<FsReport>,
    /// Why the filesystem is not known.
    filesystem_error: Option<String>,
    /// The block device's request limits, if it is on one.
    device: Option<DeviceInfo>,
    o_direct: DirectInfo,
    /// The O_DIRECT alignment, when O_DIRECT could be opened.
    alignment: Option<AlignInfo>,
    /// Why the alignment is not known.
    alignment_error: Option<String>,
    /// The engine chosen for a buffered open (absent when O_DIRECT was not tested).
    engine_buffered: Option<EngineChoice>,
    /// The engine chosen for an O_DIRECT open (absent when O_DIRECT does not work).
    engine_direct: Option<EngineChoice>,
    /// The engine POSIX AIO runs on.
    engine_posix: Option<EngineChoice>,
}

#[derive(Debug, Serialize)]
struct FsReport {
    /// Its type (`ext4`).
    name: String,
    /// `statfs`'s `f_type`.
    magic: u64,
    mount_point: Option<String>,
    source: Option<String>,
    /// tmpfs or ramfs: O_DIRECT bypasses nothing there.
    in_memory: bool,
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Serialize)]
struct DeviceInfo {
    /// `queue/max_sectors_kb`, in bytes.
    max_request_bytes: u64,
    /// `queue/max_segments`.
    max_segments: u64,
    /// The largest request from scattered 4 KiB pages, bytes.
    scattered_request_bytes: u64,
    /// The transparent huge page mode, if the kernel has them.
    transparent_huge_pages: Option<String>,
}

#[derive(Debug, Serialize)]
struct DirectInfo {
    /// `works`, `io_fails`, `open_fails` or `not_tested`.
    status: &'static str,
    /// What was done, or why it failed.
    detail: String,
}

#[derive(Debug, Serialize)]
struct AlignInfo {
    /// Buffer address alignment, bytes.
    memory: u32,
    /// File offset and length alignment, bytes.
    offset: u32,
    /// `statx`, `block_device` or `default`.
    source: &'static str,
    #[serde(skip)]
    source_text: &'static str,
}

#[derive(Debug, Serialize)]
struct EngineChoice {
    /// The engine chosen, if one can run.
    engine: Option<String>,
    /// Whether `AIO_ENGINE` forced it.
    forced: bool,
    /// The engines passed over, and why.
    passed_over: Vec<PassedOver>,
    /// Why none can run.
    error: Option<String>,
    /// All of it as one line (the text report's).
    text: String,
}

#[derive(Debug, Serialize)]
struct PassedOver {
    engine: String,
    reason: String,
}

impl EngineChoice {
    fn of(sel: Result<driver::Selection, String>) -> EngineChoice {
        match sel {
            Ok(sel) => EngineChoice {
                engine: Some(sel.engine.name().to_string()),
                forced: sel.forced,
                passed_over: sel
                    .skipped
                    .iter()
                    .map(|(e, why)| PassedOver {
                        engine: e.name().to_string(),
                        reason: why.clone(),
                    })
                    .collect(),
                error: None,
                text: sel.to_string(),
            },
            Err(e) => EngineChoice {
                engine: None,
                forced: false,
                passed_over: Vec::new(),
                text: format!("none: {e}"),
                error: Some(e),
            },
        }
    }
}

/// Runs `aio info`.
pub fn run(args: InfoArgs) -> Result<(), Failure> {
    let info = Info {
        kernel: util::kernel_version(),
        io_uring: uring_info(),
        kernel_aio: {
            let setup = KernelDriver::new(KernelOptions {
                max_events: 1,
                buffered_pool: None,
                ..KernelOptions::default()
            });
            KernelAioInfo {
                aio_nr: ProcValue::read("/proc/sys/fs/aio-nr"),
                aio_max_nr: ProcValue::read("/proc/sys/fs/aio-max-nr"),
                io_setup_works: setup.is_ok(),
                io_setup_error: setup.err().map(|e| e.to_string()),
            }
        },
        aio_engine: std::env::var_os("AIO_ENGINE").map(|v| v.to_string_lossy().into_owned()),
        path: path_info(&args.path)?,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&info)
            .map_err(|e| Failure::run(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        print_text(&info);
    }
    Ok(())
}

fn print_text(info: &Info) {
    line("kernel", &info.kernel);
    let u = &info.io_uring;
    match &u.unavailable {
        Some(why) => {
            line("io_uring", format!("unavailable: {why}"));
            line("  io_uring_disabled", &u.io_uring_disabled);
        }
        None => {
            line(
                "io_uring",
                format!("available (/proc/sys/kernel/io_uring_disabled = {})", u.io_uring_disabled),
            );
            if let Some(f) = &u.features {
                line(
                    "  features",
                    format!(
                        "ext_arg {}, nodrop {}, submit_stable {}",
                        yes(f.ext_arg),
                        yes(f.nodrop),
                        yes(f.submit_stable)
                    ),
                );
            }
            let used: Vec<String> = u
                .driver_opcodes
                .iter()
                .map(|o| if o.supported { o.name.clone() } else { format!("{} (NO)", o.name) })
                .collect();
            line("  driver's opcodes", used.join(", "));
            match (&u.opcodes_supported, &u.opcodes_error) {
                (Some(ops), _) => line(
                    "  opcodes supported",
                    wrap(&format!("{} of {}: {}", ops.len(), u.opcodes_known, ops.join(", "))),
                ),
                (None, e) => line(
                    "  opcodes supported",
                    format!("? (IORING_REGISTER_PROBE: {})", e.as_deref().unwrap_or("?")),
                ),
            }
        }
    }
    let k = &info.kernel_aio;
    line(
        "kernel AIO",
        format!(
            "/proc/sys/fs/aio-nr {}, /proc/sys/fs/aio-max-nr {}; io_setup {}",
            k.aio_nr,
            k.aio_max_nr,
            match &k.io_setup_error {
                None => "works".to_string(),
                Some(e) => format!("fails: {e}"),
            }
        ),
    );
    if let Some(v) = &info.aio_engine {
        line("AIO_ENGINE", format!("{v} (forces the engine below)"));
    }
    let p = &info.path;
    let kind = match p.size {
        Some(n) => format!("file, {}", human_bytes(n)),
        None => p.kind.to_string(),
    };
    line("path", format!("{} ({kind})", p.path));
    match (&p.filesystem, &p.filesystem_error) {
        (Some(fs), _) => {
            let mut s = format!("{} (statfs magic {:#x})", fs.text, fs.magic);
            if fs.in_memory {
                s.push_str(": in memory, O_DIRECT here bypasses nothing");
            }
            line("  filesystem", s);
        }
        (None, e) => line("  filesystem", format!("? ({})", e.as_deref().unwrap_or("?"))),
    }
    line("  device requests", wrap(&device_text(p.device.as_ref())));
    match p.o_direct.status {
        "not_tested" => {
            line("  O_DIRECT", format!("not tested: {}", p.o_direct.detail));
            return;
        }
        "works" => line("  O_DIRECT", format!("works ({})", p.o_direct.detail)),
        "io_fails" => line("  O_DIRECT", format!("open works, I/O fails: {}", p.o_direct.detail)),
        _ => line("  O_DIRECT", format!("does not work: {}", p.o_direct.detail)),
    }
    if p.o_direct.status != "open_fails" {
        match (&p.alignment, &p.alignment_error) {
            (Some(a), _) => line(
                "  O_DIRECT alignment",
                format!(
                    "memory {} bytes, offset and length {} bytes ({})",
                    a.memory, a.offset, a.source_text
                ),
            ),
            (None, e) => {
                line("  O_DIRECT alignment", format!("? ({})", e.as_deref().unwrap_or("?")))
            }
        }
    }
    if let Some(e) = &p.engine_buffered {
        line("  engine, buffered", &e.text);
    }
    match &p.engine_direct {
        Some(e) => line("  engine, O_DIRECT", &e.text),
        None => line("  engine, O_DIRECT", "- (O_DIRECT does not work here)"),
    }
    if let Some(e) = &p.engine_posix {
        line("  engine, POSIX AIO", &e.text);
    }
}

fn uring_info() -> UringInfo {
    let disabled = ProcValue::read("/proc/sys/kernel/io_uring_disabled");
    let pretend = std::env::var_os(PRETEND_NO_URING);
    let driver = match &pretend {
        Some(why) => Err(format!("{} ({PRETEND_NO_URING})", why.to_string_lossy())),
        None => UringDriver::new(UringOptions { entries: 8, ..UringOptions::default() })
            .map_err(|e| e.to_string()),
    };
    match driver {
        Err(why) => UringInfo {
            available: false,
            unavailable: Some(why),
            io_uring_disabled: disabled,
            features: None,
            driver_opcodes: Vec::new(),
            opcodes_supported: None,
            opcodes_known: URING_OPS.len(),
            opcodes_error: None,
        },
        Ok(d) => {
            let p = d.probe();
            let (ops, err) = match supported_ops() {
                Ok(ops) => (Some(ops), None),
                Err(e) => (None, Some(e.to_string())),
            };
            UringInfo {
                available: true,
                unavailable: None,
                io_uring_disabled: disabled,
                features: Some(UringFeatures {
                    ext_arg: p.ext_arg,
                    nodrop: p.nodrop,
                    submit_stable: p.submit_stable,
                }),
                driver_opcodes: p
                    .ops
                    .iter()
                    .map(|(n, ok)| Opcode { name: n.to_string(), supported: *ok })
                    .collect(),
                opcodes_supported: ops,
                opcodes_known: URING_OPS.len(),
                opcodes_error: err,
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

fn source_name(s: AlignSource) -> (&'static str, &'static str) {
    match s {
        AlignSource::Statx => ("statx", "from statx STATX_DIOALIGN"),
        AlignSource::BlockDevice => ("block_device", "from the block device's logical block size"),
        AlignSource::Default => ("default", "assumed: neither statx nor a block device reports it"),
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

fn path_info(path: &Path) -> Result<PathInfo, Failure> {
    let md =
        std::fs::metadata(path).map_err(|e| Failure::run(path_error("cannot open", path, &e)))?;
    let shown = std::fs::canonicalize(path).unwrap_or(path.to_path_buf());
    let (kind, size) = if md.is_dir() {
        ("directory", None)
    } else if md.is_file() {
        ("file", Some(md.len()))
    } else {
        ("special file", None)
    };
    let handle = File::open(path).map_err(|e| Failure::run(path_error("cannot open", path, &e)))?;
    let (filesystem, filesystem_error) = match util::filesystem(&handle) {
        Ok(fs) => (
            Some(FsReport {
                in_memory: fs.is_memory(),
                text: fs.to_string(),
                name: fs.name,
                magic: fs.magic,
                mount_point: fs.mount_point,
                source: fs.source,
            }),
            None,
        ),
        Err(e) => (None, Some(cause(&e))),
    };
    let mut info = PathInfo {
        path: shown.display().to_string(),
        kind,
        size,
        filesystem,
        filesystem_error,
        device: device_info(md.dev()),
        o_direct: DirectInfo { status: "not_tested", detail: String::new() },
        alignment: None,
        alignment_error: None,
        engine_buffered: None,
        engine_direct: None,
        engine_posix: None,
    };
    let probe = if md.is_dir() { probe_dir(path) } else { probe_file(path) };
    let probe = match probe {
        Ok(p) => p,
        Err(why) => {
            info.o_direct.detail = why;
            return Ok(info);
        }
    };
    match &probe.direct {
        Ok(f) => {
            let align = DioAlign::of(f);
            let test = match &align {
                Ok(a) => direct_io_test(f, a, md.is_dir()),
                Err(e) => Err(e.to_string()),
            };
            info.o_direct = match test {
                Ok(what) => {
                    DirectInfo { status: "works", detail: format!("{what} on {}", probe.what) }
                }
                Err(why) => DirectInfo { status: "io_fails", detail: why },
            };
            match align {
                Ok(a) => {
                    let (source, source_text) = source_name(a.source);
                    info.alignment = Some(AlignInfo {
                        memory: a.memory as u32,
                        offset: a.offset as u32,
                        source,
                        source_text,
                    })
                }
                Err(e) => info.alignment_error = Some(e.to_string()),
            }
        }
        Err(e) => {
            info.o_direct = DirectInfo {
                status: "open_fails",
                detail: format!("open with O_DIRECT: {}", cause(e)),
            }
        }
    }
    let mut opts = SelectOptions::default();
    if let Some(why) = std::env::var_os(PRETEND_NO_URING) {
        opts.pretend_uring_unavailable =
            Some(format!("{} ({PRETEND_NO_URING})", why.to_string_lossy()));
    }
    let pick = |f: &File| {
        EngineChoice::of(
            driver::select_with(f, &opts).map(|(_, sel)| sel).map_err(|e| e.to_string()),
        )
    };
    info.engine_buffered = Some(pick(&probe.buffered));
    info.engine_direct = probe.direct.as_ref().ok().map(pick);
    info.engine_posix =
        Some(EngineChoice::of(aio::posix::engine_selection().map_err(|e| e.to_string())));
    Ok(info)
}

/// The largest request the disk under `dev` takes, in how many DMA segments, and whether
/// aio's large buffers can come from huge pages (one segment each 2 MiB instead of 4 KiB).
fn device_info(dev: u64) -> Option<DeviceInfo> {
    let kb = util::queue_limit(dev, "max_sectors_kb")?;
    let segs = util::queue_limit(dev, "max_segments")?;
    Some(DeviceInfo {
        max_request_bytes: kb << 10,
        max_segments: segs,
        scattered_request_bytes: (segs * 4).min(kb) << 10,
        transparent_huge_pages: util::thp_mode(),
    })
}

fn device_text(d: Option<&DeviceInfo>) -> String {
    let Some(d) = d else {
        return "- (not a block device: no queue limits in sysfs)".to_string();
    };
    let huge = match &d.transparent_huge_pages {
        Some(m) if m != "never" => {
            format!("transparent huge pages {m}: aio's buffers of 2 MiB and more use them")
        }
        Some(_) => "transparent huge pages off: aio's buffers are 4 KiB pages".to_string(),
        None => "no transparent huge pages in this kernel".to_string(),
    };
    format!(
        "up to {} in at most {} segments ({} from scattered 4 KiB pages); {huge}",
        human_bytes(d.max_request_bytes),
        d.max_segments,
        human_bytes(d.scattered_request_bytes)
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
