//! `aio cp SRC DST`: a pipelined asynchronous copy on the driver layer.
//!
//! Up to `--iodepth` buffers of `--bs` bytes are in flight at once; each is read from SRC and,
//! as soon as its read completes, written to the copy at the same offset, then reused. Buffers
//! of 2 MiB and more come from huge pages where the kernel gives them ([`AlignedBuf::huge`]), so
//! an `O_DIRECT` request reaches the disk whole. Only the
//! data ranges of SRC are copied (`lseek` `SEEK_DATA`/`SEEK_HOLE`), so holes stay holes; the
//! final size is set with `ftruncate`. The copy goes to a temporary file in DST's directory
//! (`.NAME.aio-cp.PID.XXXXXX`, locked while the copy runs: see [`crate::cptemp`], which also
//! removes the ones killed copies left), which gets SRC's permission bits, is fsynced, optionally verified
//! (`--verify`: checksums of SRC and the copy compared), then renamed over DST, and the directory
//! is fsynced: a crash leaves DST as it was or complete, never half-written. On any error the
//! temporary file is removed.
//!
//! With `--direct` both files are opened `O_DIRECT`; ranges are widened to the alignment both
//! files need, the last block is written whole (zero-padded) and the size fixed by `ftruncate`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aio::driver::{self, Buf, Completion, Driver, Request, SelectOptions};
use aio::{AlignedBuf, DioAlign, IoBuf, Slice};
use clap::Args;

use crate::cptemp::{self, Found};
use crate::ui::Progress;
use crate::util::{
    cause, checksum_file, human_bytes, parse_bool, parse_size, path_error, queue_limit, Failure,
};

/// `aio cp`: copy a file with many asynchronous requests in flight.
#[derive(Debug, Args)]
#[command(override_usage = "aio cp [OPTIONS] SRC DST\n       aio cp --clean DST")]
#[command(after_help = "The copy is made in DST's directory as .NAME.aio-cp.PID.XXXXXX and \
renamed over DST once complete. A copy that was killed leaves that file behind: the next aio cp \
to the same DST removes it, and --clean DST removes such files without copying. Only files \
whose process is gone and whose lock nobody holds are removed.")]
pub struct CpArgs {
    /// The file to copy.
    #[arg(required_unless_present = "clean")]
    src: Option<PathBuf>,
    /// Where to copy it: a file path (replaced atomically), or a directory to copy into.
    #[arg(required_unless_present = "clean")]
    dst: Option<PathBuf>,
    /// Copy nothing: remove the temporary files that killed copies to DST left in its
    /// directory (for a directory: those of every name in it).
    #[arg(long, value_name = "DST", conflicts_with_all = ["src", "dst", "verify", "direct", "bs", "iodepth"])]
    clean: Option<PathBuf>,
    /// Buffers in flight at once [default: 32 with --direct; 4 through the page cache, whose
    /// readahead already runs ahead of the reads, and which many concurrent large reads only
    /// scatter].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    iodepth: Option<u64>,
    /// Bytes per request (64k, 1M, 4M...) [default: 1M, or the largest request the disks take
    /// (queue/max_sectors_kb) when that is larger, up to 4M].
    #[arg(long, value_parser = bs_arg)]
    bs: Option<u64>,
    /// O_DIRECT on both files: bypass the page cache (--direct, --direct=1, --direct=0).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "1", default_value = "0", value_parser = parse_bool)]
    direct: bool,
    /// Compare checksums of SRC and the copy before putting the copy in place.
    #[arg(long)]
    verify: bool,
}

fn bs_arg(s: &str) -> Result<u64, String> {
    let v = parse_size(s)?;
    if v == 0 || v > (1 << 30) {
        return Err("expected a size between 1 byte and 1 GiB".to_string());
    }
    Ok(v)
}

/// Smallest and largest default request size.
const DEFAULT_BS: (u64, u64) = (1 << 20, 4 << 20);

/// The default `--iodepth`: through the page cache, and with `--direct`. On the development VM
/// a 1 GiB copy through the page cache took 0.94-1.07 s at depth 4 and 1.58-1.63 s at 32.
const DEFAULT_DEPTH: (u64, u64) = (4, 32);

/// The default `--bs`: 1 MiB, or the largest request the block devices under `files` take in
/// one piece (`queue/max_sectors_kb`, the size readahead and writeback use) when that is larger,
/// up to 4 MiB. Fewer, larger requests are what a virtual disk serves fastest.
fn default_bs(files: &[&File]) -> u64 {
    let mut best: Option<u64> = None;
    for f in files {
        let Ok(md) = f.metadata() else { return DEFAULT_BS.0 };
        let Some(kb) = queue_limit(md.dev(), "max_sectors_kb") else {
            return DEFAULT_BS.0;
        };
        best = Some(best.map_or(kb, |b| b.min(kb)));
    }
    best.map_or(DEFAULT_BS.0, |kb| (kb << 10).clamp(DEFAULT_BS.0, DEFAULT_BS.1))
}

/// Removes the temporary file on drop unless it was put in place.
struct TempFile {
    path: PathBuf,
    armed: bool,
    /// Removes it if a signal ends the process.
    on_signal: Option<crate::cleanup::Registered>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Runs `aio cp`.
pub fn run(args: CpArgs) -> Result<(), Failure> {
    if let Some(dst) = &args.clean {
        return clean(dst);
    }
    let (Some(src_path), Some(dst_arg)) = (&args.src, &args.dst) else {
        return Err(Failure::usage("SRC and DST are required"));
    };
    let start = Instant::now();

    // SRC: a regular file.
    let mut src_opts = OpenOptions::new();
    src_opts.read(true);
    let probe = File::open(src_path).map_err(|e| path_error("cannot open", src_path, &e))?;
    let src_md = probe.metadata().map_err(|e| path_error("cannot stat", src_path, &e))?;
    if src_md.is_dir() {
        return Err(Failure::run(format!(
            "{} is a directory (aio cp copies one file)",
            src_path.display()
        )));
    }
    if !src_md.is_file() {
        return Err(Failure::run(format!("{} is not a regular file", src_path.display())));
    }
    drop(probe);

    // DST: into a directory, or a file path.
    let dst_path = match std::fs::metadata(dst_arg) {
        Ok(md) if md.is_dir() => {
            let name = src_path.file_name().ok_or_else(|| {
                Failure::run(format!(
                    "{} has no file name to copy into a directory",
                    src_path.display()
                ))
            })?;
            dst_arg.join(name)
        }
        _ => dst_arg.clone(),
    };
    match std::fs::metadata(&dst_path) {
        Ok(md) if md.dev() == src_md.dev() && md.ino() == src_md.ino() => {
            return Err(Failure::run(format!(
                "{} and {} are the same file",
                src_path.display(),
                dst_path.display()
            )));
        }
        Ok(md) if md.is_dir() => {
            return Err(Failure::run(format!(
                "cannot overwrite directory {} with a file",
                dst_path.display()
            )));
        }
        _ => {}
    }
    let dst_name = dst_path
        .file_name()
        .ok_or_else(|| Failure::run(format!("{} does not name a file", dst_path.display())))?
        .to_os_string();
    let dir = match dst_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir_handle = File::open(&dir).map_err(|e| path_error("cannot open directory", &dir, &e))?;

    // Open SRC for the copy.
    if args.direct {
        src_opts.custom_flags(libc::O_DIRECT);
    }
    let src = src_opts.open(src_path).map_err(|e| {
        direct_hint(
            path_error(
                if args.direct { "cannot open with O_DIRECT" } else { "cannot open" },
                src_path,
                &e,
            ),
            args.direct,
            &e,
        )
    })?;
    let size = src.metadata().map_err(|e| path_error("cannot stat", src_path, &e))?.len();
    if !args.direct {
        // Read once, front to back: a larger readahead window, as cp asks for.
        let _ = aio::sys::fs::fadvise(src.as_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
    }

    // Temporary files that killed copies to DST left behind, then ours.
    if let Ok(found) = cptemp::clean(&dir, Some(&dst_name)) {
        for f in found {
            if let Found::Removed(path, pid) = f {
                eprintln!(
                    "aio cp: removed {}, left by a copy that no longer runs (process {pid})",
                    path.display()
                );
            }
        }
    }
    let (tmp_file, tmp) = create_temp(&dir, &dst_name, args.direct)?;
    let tmp_path = tmp.path.clone();

    let bs = args.bs.unwrap_or_else(|| default_bs(&[&src, &tmp_file]));

    // Alignment and buffers.
    let (offset_align, mem_align) = if args.direct {
        let a = DioAlign::of(&src).map_err(|e| {
            Failure::run(format!("O_DIRECT alignment of {}: {e}", src_path.display()))
        })?;
        let b = DioAlign::of(&tmp_file).map_err(|e| {
            Failure::run(format!("O_DIRECT alignment of {}: {e}", tmp_path.display()))
        })?;
        let off = a.offset.max(b.offset);
        let mem = a.buffer_align().max(b.buffer_align());
        if !bs.is_multiple_of(off as u64) {
            return Err(Failure::usage(format!(
                "--bs {} is not a multiple of the O_DIRECT alignment ({off} bytes) of {} and {}",
                bs,
                src_path.display(),
                dir.display()
            )));
        }
        (off as u64, mem.max(4096))
    } else {
        (1, 4096)
    };

    let ranges = data_ranges(&src, size, offset_align).map_err(|e| {
        Failure::run(path_error("cannot find the data ranges (SEEK_DATA) of", src_path, &e))
    })?;
    let data_bytes: u64 = ranges.iter().map(|(s, e)| e - s).sum();

    // The copy's final size and its blocks, before any write: a full disk is found now, and
    // writes into allocated blocks inside the file run in parallel (ext4 and xfs serialize
    // direct writes that extend the file or allocate).
    tmp_file
        .set_len(size)
        .map_err(|e| Failure::run(path_error("cannot set the size of", &tmp_path, &e)))?;
    for &(start, end) in &ranges {
        reserve(&tmp_file, start, end - start).map_err(|e| {
            Failure::run(format!(
                "cannot allocate {} for {}: {}",
                human_bytes(end - start),
                tmp_path.display(),
                cause(&e)
            ))
        })?;
    }

    let iodepth =
        args.iodepth.unwrap_or(if args.direct { DEFAULT_DEPTH.1 } else { DEFAULT_DEPTH.0 });
    // The buffers the copy will have in flight at most: refuse what this machine cannot hold
    // before reading anything (the temporary file goes with the error).
    let needed = buffers_needed(&ranges, bs, iodepth as usize);
    let each = AlignedBuf::for_io_size(bs as usize, mem_align) as u64;
    crate::util::check_buffer_memory(
        needed.saturating_mul(each),
        &crate::util::buffers_text(1, needed, bs),
        src_path,
    )
    .map_err(Failure::run)?;

    let mut select = SelectOptions::default();
    select.uring.entries = (iodepth as u32 * 2).next_power_of_two().max(64);
    select.kernel.max_events = (iodepth as usize * 2).max(64);
    let (driver, selection) =
        driver::select_shared(&select).map_err(|e| Failure::run(format!("no I/O engine: {e}")))?;

    let progress = Progress::bytes(data_bytes);
    let copy = Copy {
        driver: driver.clone(),
        src: &src,
        dst: &tmp_file,
        src_path,
        tmp_path: &tmp_path,
        size,
        bs,
        depth: iodepth as usize,
        align: offset_align,
        mem_align,
        progress: &progress,
    };
    let stats = copy.run(&ranges)?;
    drop(driver);

    // Size, permissions, durability.
    tmp_file
        .set_len(size)
        .map_err(|e| Failure::run(path_error("cannot set the size of", &tmp_path, &e)))?;
    let mode = src_md.permissions().mode() & 0o7777;
    tmp_file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Failure::run(path_error("cannot set the permissions of", &tmp_path, &e)))?;
    tmp_file.sync_all().map_err(|e| Failure::run(path_error("cannot fsync", &tmp_path, &e)))?;
    progress.clear();

    // The copy is on disk: what follows is checking and putting it in place.
    let copy_time = start.elapsed();
    let mut verified = None;
    if args.verify {
        let t = Instant::now();
        verified = Some((verify(src_path, &tmp_path, &dst_path, size)?, t.elapsed()));
    }

    std::fs::rename(&tmp_path, &dst_path).map_err(|e| {
        Failure::run(format!(
            "cannot rename {} to {}: {}",
            tmp_path.display(),
            dst_path.display(),
            cause(&e)
        ))
    })?;
    let mut tmp = tmp;
    tmp.armed = false;
    tmp.on_signal = None;
    dir_handle
        .sync_all()
        .map_err(|e| Failure::run(path_error("cannot fsync directory", &dir, &e)))?;

    let secs = copy_time.as_secs_f64();
    println!(
        "copied {} ({size} bytes, {} in {} data range(s)) from {} to {} in {secs:.3} s ({:.1} MiB/s); \
         {} reads, {} writes, {} x {} in flight{}, engine {}",
        human_bytes(size),
        human_bytes(data_bytes),
        ranges.len(),
        src_path.display(),
        dst_path.display(),
        size as f64 / secs.max(1e-9) / (1u64 << 20) as f64,
        stats.reads,
        stats.writes,
        iodepth,
        human_bytes(bs),
        if args.direct { ", O_DIRECT" } else { "" },
        selection
    );
    if let Some((sum, took)) = verified {
        println!(
            "verified: {} and {} have the same checksum ({sum:016x}, {:.3} s to read both)",
            src_path.display(),
            dst_path.display(),
            took.as_secs_f64()
        );
    }
    Ok(())
}

/// `aio cp --clean DST`: removes the stale temporary files of copies to DST (of every copy
/// into DST, when it is a directory) and says what it found.
fn clean(dst: &Path) -> Result<(), Failure> {
    let (dir, name) = match std::fs::metadata(dst) {
        Ok(md) if md.is_dir() => (dst.to_path_buf(), None),
        _ => {
            let name = dst
                .file_name()
                .ok_or_else(|| Failure::run(format!("{} does not name a file", dst.display())))?;
            let dir = match dst.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (dir, Some(name))
        }
    };
    let found = cptemp::clean(&dir, name)
        .map_err(|e| Failure::run(path_error("cannot read directory", &dir, &e)))?;
    let mut removed = 0;
    for f in &found {
        match f {
            Found::Removed(path, pid) => {
                removed += 1;
                println!("removed {} (process {pid} no longer runs)", path.display());
            }
            Found::Kept(path, why) => println!("kept {}: {why}", path.display()),
        }
    }
    let whose = match name {
        Some(n) => format!("copies to {}", dir.join(n).display()),
        None => format!("copies into {}", dir.display()),
    };
    println!(
        "{removed} stale temporary file(s) of {whose} removed, {} kept",
        found.len() - removed
    );
    Ok(())
}

fn direct_hint(mut msg: String, direct: bool, e: &io::Error) -> Failure {
    if direct && e.raw_os_error() == Some(libc::EINVAL) {
        msg.push_str(" (this filesystem does not support O_DIRECT; copy without --direct)");
    }
    Failure::run(msg)
}

/// Creates `DIR/.NAME.aio-cp.PID.XXXXXX` (mode 0600 until the copy is complete) and takes its
/// ownership lock (see [`crate::cptemp`]).
fn create_temp(
    dir: &Path,
    name: &std::ffi::OsStr,
    direct: bool,
) -> Result<(File, TempFile), Failure> {
    let pid = std::process::id();
    let mut state = pid as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    let mut last = None;
    for _ in 0..100 {
        let suffix = cptemp::random_suffix(&mut state);
        let path = dir.join(cptemp::temp_name(name, pid, &suffix));
        let mut o = OpenOptions::new();
        o.write(true).create_new(true).mode(0o600);
        if direct {
            o.custom_flags(libc::O_DIRECT);
        }
        match o.open(&path) {
            Ok(f) => {
                cptemp::lock(&f);
                let on_signal = crate::cleanup::remove_on_signal(&path);
                return Ok((f, TempFile { path, armed: true, on_signal }));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((path, e)),
            Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                // The file was made before O_DIRECT was refused.
                let _ = std::fs::remove_file(&path);
                return Err(direct_hint(
                    path_error("cannot create with O_DIRECT", &path, &e),
                    direct,
                    &e,
                ));
            }
            Err(e) => return Err(Failure::run(path_error("cannot create", &path, &e))),
        }
    }
    let (path, e) = last.expect("a try was made");
    Err(Failure::run(path_error("cannot create", &path, &e)))
}

/// The data ranges of `file` (`SEEK_DATA`/`SEEK_HOLE`), widened to multiples of `align`,
/// merged, and within the file (rounded up to `align`). The whole file when the filesystem
/// cannot tell.
fn data_ranges(file: &File, size: u64, align: u64) -> io::Result<Vec<(u64, u64)>> {
    let fd = file.as_fd();
    let limit = size.next_multiple_of(align);
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut off = 0u64;
    while off < size {
        let data = match aio::sys::fs::lseek(fd, off, libc::SEEK_DATA) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP))
                    && off == 0 =>
            {
                return Ok(vec![(0, limit)]);
            }
            Err(e) => return Err(e),
        };
        if data >= size {
            break;
        }
        let hole = match aio::sys::fs::lseek(fd, data, libc::SEEK_HOLE) {
            Ok(h) => h.min(size),
            Err(e) => return Err(e),
        };
        let start = data / align * align;
        let end = hole.next_multiple_of(align).min(limit);
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
        off = hole.max(data + 1);
    }
    Ok(out)
}

/// Allocates `len` bytes at `offset` (`fallocate`, keeping the size); a filesystem without
/// `fallocate` is fine.
fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    match aio::sys::fs::fallocate(file.as_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS)) => Ok(()),
        r => r,
    }
}

/// Checksums SRC and the copy (in parallel) and compares them.
fn verify(src: &Path, tmp: &Path, dst: &Path, size: u64) -> Result<u64, Failure> {
    let sum = |p: &Path| -> Result<(u64, u64), Failure> {
        let f =
            File::open(p).map_err(|e| Failure::run(path_error("verify: cannot open", p, &e)))?;
        checksum_file(&f).map_err(|e| Failure::run(path_error("verify: cannot read", p, &e)))
    };
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(|| sum(tmp));
        let a = sum(src);
        let b = other.join().unwrap_or_else(|_| Err(Failure::run("verify: a thread panicked")));
        (a, b)
    });
    let (a, alen) = a?;
    let (b, blen) = b?;
    if a != b || alen != blen || alen != size {
        return Err(Failure::run(format!(
            "verify failed: {} has checksum {a:016x} ({alen} bytes) but the copy has {b:016x} \
             ({blen} bytes); {} was left untouched",
            src.display(),
            dst.display()
        )));
    }
    Ok(a)
}

/// How many buffers a copy of `ranges` in requests of `bs` bytes has at most, with `depth` in
/// flight: one per request, up to the depth.
fn buffers_needed(ranges: &[(u64, u64)], bs: u64, depth: usize) -> u64 {
    let requests: u64 = ranges.iter().map(|(s, e)| (e - s).div_ceil(bs)).sum();
    requests.min(depth as u64)
}

/// Counts of requests.
struct CopyStats {
    reads: u64,
    writes: u64,
}

/// What a buffer in flight is doing.
#[derive(Clone, Copy)]
enum Phase {
    Idle,
    /// Reading `len` bytes at `off`.
    Read {
        off: u64,
        len: u64,
    },
    /// Writing bytes `from..to` of the buffer to `off + from`; the buffer holds `to` bytes for
    /// `off`.
    Write {
        off: u64,
        from: u64,
        to: u64,
    },
}

struct Copy<'a> {
    driver: Arc<dyn Driver>,
    src: &'a File,
    dst: &'a File,
    src_path: &'a Path,
    tmp_path: &'a Path,
    size: u64,
    bs: u64,
    depth: usize,
    align: u64,
    mem_align: usize,
    progress: &'a Progress,
}

impl Copy<'_> {
    fn run(&self, ranges: &[(u64, u64)]) -> Result<CopyStats, Failure> {
        let src_fd = self.src.as_raw_fd();
        let dst_fd = self.dst.as_raw_fd();
        let bs = self.bs;
        // The chunks to read: (offset, length), each within one data range.
        let mut chunks: VecDeque<(u64, u64)> = VecDeque::new();
        let needed = buffers_needed(ranges, bs, self.depth);
        let mut ranges = ranges.iter().copied();
        let mut current: Option<(u64, u64)> = None;
        let mut next_chunk = |chunks: &mut VecDeque<(u64, u64)>| -> Option<(u64, u64)> {
            if let Some(c) = chunks.pop_front() {
                return Some(c);
            }
            loop {
                match current {
                    Some((s, e)) if s < e => {
                        let len = (e - s).min(bs);
                        current = Some((s + len, e));
                        return Some((s, len));
                    }
                    _ => current = Some(ranges.next()?),
                }
            }
        };
        let depth = self.depth;
        // Buffers are made on first use: a small file needs few. A refused allocation is an
        // error (--iodepth and --bs come from the user), not an abort.
        let new_buf = || -> Result<AlignedBuf, Failure> {
            // From huge pages when large: an O_DIRECT request then reaches the device whole
            // instead of split at its segment limit (see AlignedBuf::huge).
            let mut b = AlignedBuf::try_for_io(bs as usize, self.mem_align).map_err(|_| {
                let each = AlignedBuf::for_io_size(bs as usize, self.mem_align) as u64;
                Failure::run(crate::util::buffers_refused(
                    needed.saturating_mul(each),
                    &crate::util::buffers_text(1, needed, bs),
                    &self.src_path.display().to_string(),
                ))
            })?;
            b.set_len(b.capacity());
            Ok(b)
        };
        let mut bufs: Vec<Option<AlignedBuf>> = (0..depth).map(|_| None).collect();
        let mut phase = vec![Phase::Idle; depth];
        let mut free: Vec<usize> = (0..depth).rev().collect();
        // Requests the driver could not take yet (it was full).
        let mut pending: VecDeque<Request> = VecDeque::new();
        let mut in_flight = 0usize;
        let mut out: Vec<Completion> = Vec::with_capacity(depth);
        let mut stats = CopyStats { reads: 0, writes: 0 };
        let mut copied = 0u64;
        let mut last_progress = Instant::now();
        let mut exhausted = false;

        let queue = |req: Request,
                     pending: &mut VecDeque<Request>,
                     in_flight: &mut usize|
         -> Result<(), Failure> {
            match self.driver.queue(req) {
                Ok(()) => {
                    *in_flight += 1;
                    Ok(())
                }
                Err(r) if r.is_full() => {
                    pending.push_back(*r.request);
                    Ok(())
                }
                Err(r) => Err(Failure::run(format!(
                    "{} refused a request: {}",
                    self.driver.name(),
                    r.error
                ))),
            }
        };

        loop {
            // Requests that waited for room first, then new reads.
            while let Some(req) = pending.pop_front() {
                let before = pending.len();
                queue(req, &mut pending, &mut in_flight)?;
                if pending.len() > before {
                    break;
                }
            }
            while pending.is_empty() && !exhausted {
                let Some(&slot) = free.last() else { break };
                let Some((off, len)) = next_chunk(&mut chunks) else {
                    exhausted = true;
                    break;
                };
                free.pop();
                let buf = match bufs[slot].take() {
                    Some(b) => b,
                    None => new_buf()?,
                };
                let buf = buf.slice(0..len as usize);
                phase[slot] = Phase::Read { off, len };
                stats.reads += 1;
                queue(
                    Request::read(src_fd, Buf::for_read(buf), off, slot as u64),
                    &mut pending,
                    &mut in_flight,
                )?;
            }
            if in_flight == 0 && pending.is_empty() {
                break;
            }
            out.clear();
            match self.driver.reap(1, depth, None, &mut out) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::run(format!("{}: reap: {e}", self.driver.name()))),
            }
            for c in out.drain(..) {
                in_flight -= 1;
                let slot = c.user_data as usize;
                let res = c.res;
                let mut buf = c
                    .buf
                    .take::<Slice<AlignedBuf>>()
                    .map(Slice::into_inner)
                    .ok_or_else(|| Failure::run("a completion came back without its buffer"))?;
                match phase[slot] {
                    Phase::Idle => return Err(Failure::run("a completion for no request")),
                    Phase::Read { off, len } => {
                        if res < 0 {
                            let e = io::Error::from_raw_os_error(-res as i32);
                            return Err(Failure::run(format!(
                                "cannot read {} at offset {off}: {}",
                                self.src_path.display(),
                                cause(&e)
                            )));
                        }
                        let n = res as u64;
                        if n == 0 {
                            return Err(Failure::run(format!(
                                "{} ended at {off} bytes while being copied (it was {} bytes): \
                                 did it shrink?",
                                self.src_path.display(),
                                self.size
                            )));
                        }
                        let at_eof = off + n >= self.size;
                        if n < len && !at_eof {
                            // A short read inside the file: read the rest as a chunk of its own.
                            chunks.push_front((off + n, len - n));
                        }
                        // With O_DIRECT, write whole aligned blocks: zero the padding past the
                        // data (the size is fixed by ftruncate at the end).
                        let to = if self.align > 1 {
                            n.next_multiple_of(self.align).min(len.max(n))
                        } else {
                            n
                        };
                        let to = to.max(n);
                        if to > n {
                            buf[n as usize..to as usize].fill(0);
                        }
                        phase[slot] = Phase::Write { off, from: 0, to };
                        stats.writes += 1;
                        let slice = buf.slice(0..to as usize);
                        queue(
                            Request::write(dst_fd, Buf::for_write(slice), off, slot as u64),
                            &mut pending,
                            &mut in_flight,
                        )?;
                    }
                    Phase::Write { off, from, to } => {
                        if res < 0 {
                            let e = io::Error::from_raw_os_error(-res as i32);
                            return Err(Failure::run(format!(
                                "cannot write {} at offset {}: {}",
                                self.tmp_path.display(),
                                off + from,
                                cause(&e)
                            )));
                        }
                        let n = res as u64;
                        if n == 0 {
                            let e = io::Error::from_raw_os_error(libc::ENOSPC);
                            return Err(Failure::run(format!(
                                "cannot write {} at offset {}: {}",
                                self.tmp_path.display(),
                                off + from,
                                cause(&e)
                            )));
                        }
                        if from + n < to {
                            // A short write: write the rest.
                            let from = from + n;
                            phase[slot] = Phase::Write { off, from, to };
                            stats.writes += 1;
                            let slice = buf.slice(from as usize..to as usize);
                            queue(
                                Request::write(
                                    dst_fd,
                                    Buf::for_write(slice),
                                    off + from,
                                    slot as u64,
                                ),
                                &mut pending,
                                &mut in_flight,
                            )?;
                        } else {
                            copied += to;
                            phase[slot] = Phase::Idle;
                            bufs[slot] = Some(buf);
                            free.push(slot);
                        }
                    }
                }
            }
            if self.progress.is_shown() && last_progress.elapsed() > Duration::from_millis(50) {
                self.progress.position(copied);
                last_progress = Instant::now();
            }
        }
        self.progress.position(copied);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_block_size_is_between_1_and_4_mib() {
        let f = File::open(std::env::current_exe().unwrap()).unwrap();
        let bs = default_bs(&[&f, &f]);
        assert!((DEFAULT_BS.0..=DEFAULT_BS.1).contains(&bs), "{bs}");
        assert!(bs.is_multiple_of(4096), "{bs}");
        // No file: the smallest.
        assert_eq!(default_bs(&[]), DEFAULT_BS.0);
    }

    #[test]
    fn data_ranges_of_a_sparse_file_are_widened_and_merged() {
        let dir = std::env::temp_dir().join(format!("aio-cp-ranges-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.bin");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        use std::os::unix::fs::FileExt;
        f.set_len(8 << 20).unwrap();
        f.write_all_at(b"x", 1 << 20).unwrap();
        f.write_all_at(b"y", (1 << 20) + 5000).unwrap();
        let size = 8 << 20;
        let r = data_ranges(&f, size, 1).unwrap();
        // A filesystem that cannot tell gives the whole file, which is right too.
        if r != vec![(0, size)] {
            assert!(r.iter().all(|&(s, e)| s < e && e <= size), "{r:?}");
            assert!(r.iter().any(|&(s, e)| s <= 1 << 20 && e > (1 << 20) + 5000), "{r:?}");
            let aligned = data_ranges(&f, size, 1 << 20).unwrap();
            assert!(
                aligned.iter().all(|&(s, e)| s % (1 << 20) == 0 && e % (1 << 20) == 0),
                "{aligned:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
