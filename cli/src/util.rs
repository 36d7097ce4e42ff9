//! What the subcommands share: errors and exit codes, sizes and durations as people write them,
//! the filesystem a file is on, CPU time, pseudo-random data, a checksum, and formatting.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// Exit status of a run-time failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage error (bad options), as clap uses.
pub const EXIT_USAGE: u8 = 2;

/// Why a subcommand failed: the message (naming the operation, the path and the cause) and the
/// exit status.
#[derive(Debug)]
pub struct Failure {
    /// [`EXIT_FAILURE`] or [`EXIT_USAGE`].
    pub code: u8,
    /// What went wrong.
    pub msg: String,
}

impl Failure {
    /// A run-time failure (exit status 1).
    pub fn run(msg: impl Into<String>) -> Failure {
        Failure { code: EXIT_FAILURE, msg: msg.into() }
    }

    /// A usage error (exit status 2).
    pub fn usage(msg: impl Into<String>) -> Failure {
        Failure { code: EXIT_USAGE, msg: msg.into() }
    }
}

impl From<String> for Failure {
    fn from(msg: String) -> Failure {
        Failure::run(msg)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

/// The message of an `io::Error` without Rust's " (os error N)" suffix, as C tools print it.
pub fn cause(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// `"{what} {path}: {cause}"`, the shape of every file error.
pub fn path_error(what: &str, path: &Path, e: &io::Error) -> String {
    format!("{what} {}: {}", path.display(), cause(e))
}

/// Parses a size the way fio and dd write them: `4096`, `4k`, `4KiB`, `1M`, `1g`, `1.5G`.
/// Suffixes are powers of 1024 (as in fio); `b`/`B` alone means bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{s:?} is not a size (examples: 4096, 4k, 1M, 2G)")),
    };
    let value: f64 =
        num.parse().map_err(|_| format!("{s:?} is not a size (examples: 4096, 4k, 1M, 2G)"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 / 2.0 {
        return Err(format!("{s:?} is out of range"));
    }
    if bytes.fract() != 0.0 {
        return Err(format!("{s:?} is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// Parses a duration: seconds (`3`, `0.5`) or with a unit (`500ms`, `3s`, `2m`, `100us`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?} is not a duration (examples: 3, 3s, 500ms, 1m)")),
    };
    let value: f64 =
        num.parse().map_err(|_| format!("{s:?} is not a duration (examples: 3, 3s, 500ms, 1m)"))?;
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e7 {
        return Err(format!("{s:?}: expected a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses fio's boolean option values: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{s:?}: expected 1 or 0")),
    }
}

/// Bytes as people read them: `4 KiB`, `256 MiB`, `1.5 GiB`, `123 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A latency in nanoseconds as people read it: `850ns`, `12.3us`, `1.25ms`, `2.10s`.
pub fn human_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e4 {
        format!("{:.2}us", ns / 1e3)
    } else if ns < 1e6 {
        format!("{:.1}us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

/// The name of the filesystem `magic` (`statfs`'s `f_type`) stands for, where known.
pub fn fs_magic_name(magic: u64) -> Option<&'static str> {
    Some(match magic {
        0xef53 => "ext2/ext3/ext4",
        0x5846_5342 => "xfs",
        0x9123_683e => "btrfs",
        0xf2f5_2010 => "f2fs",
        0x2fc1_2fc1 => "zfs",
        0x0102_1994 => "tmpfs",
        0x8584_58f6 => "ramfs",
        0x794c_7630 => "overlayfs",
        0x6969 => "nfs",
        0xff53_4d42 => "cifs",
        0x6573_5546 => "fuse",
        0x0102_1997 => "v9fs",
        0x6265_6572 => "sysfs",
        0x9fa0 => "proc",
        0x1373 => "devfs",
        0x4d44 => "vfat",
        0x5346_544e => "ntfs",
        0x7275 => "romfs",
        0x2840_0000 => "squashfs",
        0xca45_1a4e => "bcachefs",
        0x6e66_7364 => "nsfs",
        0x0027_e0eb => "cgroup",
        0x6367_7270 => "cgroup2",
        _ => return None,
    })
}

/// The filesystem a file is on.
#[derive(Debug, Clone)]
pub struct FsInfo {
    /// Its type as the mount table says (`ext4`), else from the magic number.
    pub name: String,
    /// `statfs`'s `f_type`.
    pub magic: u64,
    /// Where it is mounted, if the mount table says.
    pub mount_point: Option<String>,
    /// The device or source mounted, if the mount table says.
    pub source: Option<String>,
}

impl FsInfo {
    /// Whether the filesystem keeps files in memory only (tmpfs, ramfs): `O_DIRECT` there, where
    /// it works at all, measures memory copies, not a device.
    pub fn is_memory(&self) -> bool {
        matches!(self.magic, 0x0102_1994 | 0x8584_58f6)
    }
}

impl fmt::Display for FsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        match (&self.source, &self.mount_point) {
            (Some(src), Some(mp)) => write!(f, ", {src} on {mp}"),
            (None, Some(mp)) => write!(f, " on {mp}"),
            _ => Ok(()),
        }
    }
}

/// `fstatfs` and the mount table: what filesystem `file` is on.
pub fn filesystem(file: &File) -> io::Result<FsInfo> {
    let magic = aio::sys::fs::statfs_type(file.as_fd())?;
    let dev = file.metadata()?.dev();
    let mount = mount_of(dev);
    let name = match &mount {
        Some((fstype, _, _)) => fstype.clone(),
        None => {
            fs_magic_name(magic).map_or_else(|| format!("unknown (magic {magic:#x})"), String::from)
        }
    };
    Ok(FsInfo {
        name,
        magic,
        mount_point: mount.as_ref().map(|m| m.1.clone()),
        source: mount.map(|m| m.2),
    })
}

/// A block queue limit (`queue/NAME` in sysfs: `max_sectors_kb`, `max_segments`) of the block
/// device `dev` (a file's `st_dev`), or of the disk a partition is on.
pub fn queue_limit(dev: u64, name: &str) -> Option<u64> {
    let base = format!("/sys/dev/block/{}:{}", libc::major(dev), libc::minor(dev));
    ["queue", "../queue"].iter().find_map(|q| {
        std::fs::read_to_string(format!("{base}/{q}/{name}")).ok()?.trim().parse::<u64>().ok()
    })
}

/// The transparent huge page mode (`always`, `madvise`, `never`), if the kernel has them.
pub fn thp_mode() -> Option<String> {
    let s = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let start = s.find('[')? + 1;
    let end = start + s[start..].find(']')?;
    Some(s[start..end].to_string())
}

/// The mount of device `dev` in `/proc/self/mountinfo`: (type, mount point, source).
fn mount_of(dev: u64) -> Option<(String, String, String)> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let want = format!("{major}:{minor}");
    // The last matching line is the mount on top.
    table.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.get(2) != Some(&want.as_str()) {
            return None;
        }
        let sep = fields.iter().position(|f| *f == "-")?;
        let fstype = fields.get(sep + 1)?;
        let source = fields.get(sep + 2)?;
        Some((fstype.to_string(), unescape_mount(fields.get(4)?), source.to_string()))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// CPU time this process has used, all threads counted (`getrusage(RUSAGE_SELF)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    /// In user space.
    pub user: Duration,
    /// In the kernel.
    pub system: Duration,
}

impl CpuTime {
    /// Now.
    pub fn now() -> CpuTime {
        match aio::sys::proc::rusage_self() {
            Ok(ru) => CpuTime { user: ru.user, system: ru.system },
            Err(_) => CpuTime::default(),
        }
    }

    /// The time used since `earlier`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// splitmix64: seeds, and the pseudo-random data files are filled with.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with pseudo-random bytes from `state` (incompressible, unlike zeros).
pub fn fill_random(buf: &mut [u8], state: &mut u64) {
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&splitmix64(state).to_le_bytes());
    }
    let rest = chunks.into_remainder();
    let last = splitmix64(state).to_le_bytes();
    let n = rest.len();
    rest.copy_from_slice(&last[..n]);
}

/// A fast 64-bit checksum over a stream of bytes (four independent multiply-rotate lanes over
/// 8-byte words, then mixed with the length). Not cryptographic: it catches corruption, not an
/// adversary.
#[derive(Debug, Clone)]
pub struct Checksum {
    lanes: [u64; 4],
    /// Bytes not yet making a 32-byte block.
    tail: [u8; 32],
    tail_len: usize,
    len: u64,
}

const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;

impl Default for Checksum {
    fn default() -> Self {
        Checksum {
            lanes: [P1, P2, P1 ^ P2, P1.wrapping_mul(3)],
            tail: [0; 32],
            tail_len: 0,
            len: 0,
        }
    }
}

impl Checksum {
    #[inline]
    fn block(lanes: &mut [u64; 4], b: &[u8]) {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            *lane = (*lane ^ w.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1);
        }
    }

    /// Adds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.tail_len > 0 {
            let n = (32 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + n].copy_from_slice(&data[..n]);
            self.tail_len += n;
            data = &data[n..];
            if self.tail_len < 32 {
                return;
            }
            let t = self.tail;
            Self::block(&mut self.lanes, &t);
            self.tail_len = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            Self::block(&mut self.lanes, b);
        }
        let rest = blocks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// The checksum of everything added.
    pub fn finish(&self) -> u64 {
        let mut lanes = self.lanes;
        if self.tail_len > 0 {
            let mut t = [0u8; 32];
            t[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            t[31] ^= 0x80 | self.tail_len as u8;
            Self::block(&mut lanes, &t);
        }
        let mut h = self.len.wrapping_mul(P1);
        for l in lanes {
            h = (h ^ l).rotate_left(27).wrapping_mul(P2).wrapping_add(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^ (h >> 29)
    }
}

/// The checksum of a whole file, read from the start in 1 MiB reads.
pub fn checksum_file(file: &File) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 1 << 20];
    let mut sum = Checksum::default();
    let mut off = 0u64;
    loop {
        let n = match file.read_at(&mut buf, off) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sum.update(&buf[..n]);
        off += n as u64;
    }
    Ok((sum.finish(), off))
}

/// This machine's memory (`MemTotal` in `/proc/meminfo`), bytes, if the kernel says.
pub fn mem_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// `count` I/O buffers of `size` bytes each, as the messages about them count them:
/// `"65536 x 1 MiB"`, or `"4 jobs x 32 x 1 MiB"` when several threads each have their own.
pub fn buffers_text(jobs: u64, count: u64, size: u64) -> String {
    if jobs > 1 {
        format!("{jobs} jobs x {count} x {}", human_bytes(size))
    } else {
        format!("{count} x {}", human_bytes(size))
    }
}

/// Refuses I/O buffers of `total` bytes (`what` counts them, as [`buffers_text`] does) for
/// `path` when they exceed this machine's memory: touching them would bring the OOM killer,
/// which may pick another process than this one. Smaller requests are left to the allocator
/// (the `try_` constructors, which report a refusal as an error).
pub fn check_buffer_memory(total: u64, what: &str, path: &Path) -> Result<(), String> {
    match mem_total() {
        Some(mem) if total > mem => Err(format!(
            "cannot allocate {} of I/O buffers ({what}) for {}: more than this machine's memory \
             ({}); lower --iodepth or --bs",
            human_bytes(total),
            path.display(),
            human_bytes(mem)
        )),
        _ => Ok(()),
    }
}

/// The message for I/O buffers the allocator refused.
pub fn buffers_refused(total: u64, what: &str, path: &str) -> String {
    format!(
        "cannot allocate {} of I/O buffers ({what}) for {path}: out of memory",
        human_bytes(total)
    )
}

/// The system's load averages (`/proc/loadavg`): the 1-minute one and the three as text.
pub fn loadavg() -> (f64, String) {
    match std::fs::read_to_string("/proc/loadavg") {
        Ok(s) => {
            let three: Vec<&str> = s.split_whitespace().take(3).collect();
            (three.first().and_then(|v| v.parse().ok()).unwrap_or(0.0), three.join(" "))
        }
        Err(e) => (0.0, format!("? ({e})")),
    }
}

/// The kernel's release and machine (`uname -rm`).
pub fn kernel_version() -> String {
    match aio::sys::proc::uname() {
        Ok(u) => format!("{} {} {}", u.sysname, u.release, u.machine),
        Err(e) => format!("unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert!(parse_size("abc").is_err());
        assert!(parse_size("4x").is_err());
        assert!(parse_size("0.3").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("3 fortnights").is_err());
    }

    #[test]
    fn checksum_is_streaming() {
        let mut state = 7;
        let mut data = vec![0u8; 10_000];
        fill_random(&mut data, &mut state);
        let mut whole = Checksum::default();
        whole.update(&data);
        for split in [0, 1, 31, 32, 33, 4097, 9999] {
            let mut parts = Checksum::default();
            parts.update(&data[..split]);
            parts.update(&data[split..]);
            assert_eq!(parts.finish(), whole.finish(), "split at {split}");
        }
        let mut other = data.clone();
        other[5000] ^= 1;
        let mut changed = Checksum::default();
        changed.update(&other);
        assert_ne!(changed.finish(), whole.finish());
        let mut shorter = Checksum::default();
        shorter.update(&data[..9999]);
        assert_ne!(shorter.finish(), whole.finish());
        // Trailing zeros change the checksum (a hole at the end is not the same as no bytes).
        let mut zeros = Checksum::default();
        zeros.update(&[0u8; 3]);
        let mut zeros4 = Checksum::default();
        zeros4.update(&[0u8; 4]);
        assert_ne!(zeros.finish(), zeros4.finish());
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(human_bytes(256 << 20), "256 MiB");
        assert_eq!(human_bytes(123), "123 B");
        assert_eq!(human_ns(850.0), "850ns");
        assert_eq!(human_ns(1_250_000.0), "1.25ms");
    }

    #[test]
    fn mount_unescape() {
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }
}
