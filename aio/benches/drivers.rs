//! Random 4 KiB reads through every file driver, against `pread` and two reference points.
//!
//! Every operation is a 4 KiB read at a random 4 KiB-aligned offset of one file (xorshift64;
//! every variant measured in a round reads the same sequence of offsets), at queue depth 1, 32
//! and 128, in two modes:
//!
//! - **cached**: a buffered descriptor on a file (256 MiB by default) that is read fully once
//!   first, so every read is a page-cache copy and what is measured is the cost of each
//!   interface — system calls, wake-ups, bookkeeping. The share of the file in the page cache
//!   is reported before and after measuring.
//! - **direct**: an `O_DIRECT` descriptor on a file (1 GiB by default), so every read goes to
//!   the device; nothing is dropped from the page cache, since `O_DIRECT` does not use it.
//!
//! Variants, all measured in the same run:
//!
//! - `pread`: `FileExt::read_at`, one read after another into one aligned buffer (it has no
//!   queue depth: it is measured once per mode), the baseline every other variant is compared
//!   with;
//! - `uring`: [`aio::driver::UringDriver`] with default options;
//! - `kernel`: [`aio::driver::KernelDriver`] with default options, in direct mode only (on a
//!   buffered descriptor it hands every read to its thread pool, so it would measure the pool
//!   again);
//! - `pool`: [`aio::driver::PoolDriver`] with default options;
//! - `raw io_uring`: a hand-written loop on the `io-uring` crate (a ring of the same size as the
//!   driver's, reads into reused buffers, batches submitted and reaped with one
//!   `submit_and_wait(1)` per batch) — the ceiling `uring` is compared to;
//! - `glibc posix aio`: glibc's `aio_read`, `aio_suspend`, `aio_error` and `aio_return`
//!   (default `aio_init` settings), with QD `aiocb`s kept in flight — the baseline `pool` is
//!   compared to.
//!
//! Each driver at queue depth N is used the same way: queue requests until N are outstanding,
//! flush, `reap(1, N, None, ..)` (take whatever has completed), queue that many again, and so
//! on. Buffers are `Buf::for_read(AlignedBuf)`, taken back from each completion with
//! `take::<AlignedBuf>()` and queued again; nothing else is allocated in the loop. The two
//! reference loops keep N reads in flight the same way, with their own reused buffers.
//!
//! Two targets are checked, on median IOPS at every mode and queue depth: `uring / raw
//! io_uring >= 0.90` and `pool / glibc posix aio >= 1.00`; each is marked PASS or FAIL. A
//! missed target is a measurement, not an error: the exit status stays 0.
//!
//! The machine this runs on may be shared and noisy, so the variants are interleaved: each
//! round measures every variant once (the starting variant rotates from round to round) and
//! the table reports medians over the rounds. A warm-up pass first fixes, per variant, the
//! number of reads that takes about 0.5 s; every round then repeats exactly that count, after
//! a few untimed reads that wake up thread pools. Every round uses its own offset sequence
//! (the same for every variant of that round), so a device cache does not serve later rounds
//! the blocks of earlier ones. Before timing anything, each variant's data is checked: every
//! 4 KiB block of the file carries its block number, so a read at a wrong offset is caught.
//! During timing every read must return 4096 bytes. Any failure stops the bench with a clear
//! message and a non-zero exit status.
//!
//! ```text
//! cargo bench -p aio --bench drivers                       # 5 rounds, ~0.5 s per measurement
//! cargo bench -p aio --bench drivers -- --quick            # 3 rounds, ~50 ms, small files
//! cargo bench -p aio --bench drivers -- --rounds 9         # more rounds
//! cargo bench -p aio --bench drivers -- --size-mb 512 --direct-size-mb 4096
//! cargo bench -p aio --bench drivers -- --only uring,raw-uring --mode cached --qd 1
//! ```
//!
//! `--only` takes variant keys (`pread`, `uring`, `kernel`, `pool`, `raw-uring`, `glibc-aio`),
//! `--mode` takes `cached` or `direct`, `--qd` takes queue depths; each may be repeated or
//! given a comma-separated list. They are meant for profiling one variant (`perf record`,
//! `valgrind --tool=callgrind` on the bench binary).
//!
//! The files are created in `$AIO_BENCH_DIR`, or else in the current directory (the crate's
//! directory under `cargo bench`), under unique names, and are deleted when the bench ends, on
//! error too (not when the process is killed by a signal). The direct mode needs a filesystem
//! that supports `O_DIRECT` (not tmpfs on older kernels) and is only meaningful on a disk.

use std::fs::File;
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aio::driver::{
    Buf, Completion, Driver, KernelDriver, KernelOptions, PoolDriver, PoolOptions, Request,
    UringDriver, UringOptions,
};
use aio::{AlignedBuf, DioAlign, IoBufMut};
use io_uring::{opcode, types, IoUring};

/// Size of one read, and the alignment of every offset and buffer.
const BLOCK: usize = 4096;
/// Queue depths measured.
const DEPTHS: [usize; 3] = [1, 32, 128];
/// Rounds by default.
const DEFAULT_ROUNDS: usize = 5;
/// Rounds with `--quick`.
const QUICK_ROUNDS: usize = 3;
/// Duration of one measurement.
const TARGET: Duration = Duration::from_millis(500);
/// Duration of one measurement with `--quick`.
const QUICK_TARGET: Duration = Duration::from_millis(50);
/// Default size of the cached file, in MiB (`--size-mb`).
const CACHED_MB: u64 = 256;
/// Default size of the direct file, in MiB (`--direct-size-mb`).
const DIRECT_MB: u64 = 1024;
/// File sizes with `--quick`, unless given.
const QUICK_CACHED_MB: u64 = 32;
/// See [`QUICK_CACHED_MB`].
const QUICK_DIRECT_MB: u64 = 64;
/// Submission queue entries of the raw io_uring ring: `UringOptions::default().entries`.
const RAW_RING_ENTRIES: u32 = 256;
/// Seed of the offset sequences (any value; each use mixes in its own number).
const SEED: u64 = 0x2545_f491_4f6c_dd1d;
/// Sequence number of the offsets used to verify data.
const VERIFY_SEQ: u64 = 1 << 40;
/// Sequence number of the offsets used to calibrate.
const CALIBRATE_SEQ: u64 = 2 << 40;
/// Sequence number of the offsets of the untimed reads before each measurement.
const WARMUP_SEQ: u64 = 3 << 40;
/// Target ratio: `uring` IOPS over `raw io_uring` IOPS.
const URING_TARGET: f64 = 0.90;
/// Target ratio: `pool` IOPS over `glibc posix aio` IOPS.
const POOL_TARGET: f64 = 1.00;

/// Every variant, by key.
const KEYS: [&str; 6] = ["pread", "uring", "kernel", "pool", "raw-uring", "glibc-aio"];

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("drivers: {msg}");
            eprintln!(
                "usage: drivers [--quick] [--rounds N] [--size-mb N] [--direct-size-mb N] \
                 [--only KEY,..] [--mode cached|direct] [--qd N,..]\n       keys: {}",
                KEYS.join(", ")
            );
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("drivers: FAILED: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Page-cache-hot buffered reads, or `O_DIRECT` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cached,
    Direct,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Cached => "cached",
            Mode::Direct => "direct",
        }
    }
}

struct Options {
    rounds: usize,
    target: Duration,
    cached_mb: u64,
    direct_mb: u64,
    only: Option<Vec<&'static str>>,
    modes: Vec<Mode>,
    depths: Vec<usize>,
}

impl Options {
    /// Parses the options; anything unknown, such as the `--bench` that `cargo bench` passes,
    /// is ignored.
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut quick = false;
        let mut rounds = None;
        let mut cached_mb = None;
        let mut direct_mb = None;
        let mut only: Option<Vec<&'static str>> = None;
        let mut modes: Vec<Mode> = Vec::new();
        let mut depths: Vec<usize> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--quick" {
                quick = true;
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            if !matches!(
                name.as_str(),
                "--rounds" | "--size-mb" | "--direct-size-mb" | "--only" | "--mode" | "--qd"
            ) {
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => args.next().ok_or(format!("{name} needs a value"))?,
            };
            let positive = |v: &str| match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{name} {v:?}: expected a positive integer")),
            };
            match name.as_str() {
                "--rounds" => rounds = Some(positive(&value)? as usize),
                "--size-mb" => cached_mb = Some(positive(&value)?),
                "--direct-size-mb" => direct_mb = Some(positive(&value)?),
                "--only" => {
                    for v in value.split(',') {
                        let key = KEYS.iter().find(|k| **k == v.trim()).ok_or(format!(
                            "--only {v:?}: unknown variant (keys: {})",
                            KEYS.join(", ")
                        ))?;
                        only.get_or_insert_with(Vec::new).push(key);
                    }
                }
                "--mode" => {
                    for v in value.split(',') {
                        modes.push(match v.trim() {
                            "cached" => Mode::Cached,
                            "direct" => Mode::Direct,
                            _ => return Err(format!("--mode {v:?}: expected cached or direct")),
                        });
                    }
                }
                _ => {
                    for v in value.split(',') {
                        depths.push(positive(v)? as usize);
                    }
                }
            }
        }
        if modes.is_empty() {
            modes = vec![Mode::Cached, Mode::Direct];
        }
        if depths.is_empty() {
            depths = DEPTHS.to_vec();
        }
        Ok(Options {
            rounds: rounds.unwrap_or(if quick { QUICK_ROUNDS } else { DEFAULT_ROUNDS }),
            target: if quick { QUICK_TARGET } else { TARGET },
            cached_mb: cached_mb.unwrap_or(if quick { QUICK_CACHED_MB } else { CACHED_MB }),
            direct_mb: direct_mb.unwrap_or(if quick { QUICK_DIRECT_MB } else { DIRECT_MB }),
            only,
            modes,
            depths,
        })
    }

    fn wants(&self, key: &str) -> bool {
        match &self.only {
            None => true,
            Some(o) => o.contains(&key),
        }
    }
}

/// xorshift64: the random offsets.
struct Xorshift {
    state: u64,
    blocks: u64,
}

impl Xorshift {
    /// Sequence number `seq` over a file of `blocks` blocks.
    fn new(seq: u64, blocks: u64) -> Xorshift {
        // Any non-zero state will do; mixing the number in keeps the sequences apart.
        let state = (SEED ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
        Xorshift { state, blocks }
    }

    /// The next `BLOCK`-aligned offset inside the file.
    #[inline]
    fn next_offset(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        ((x >> 32) % self.blocks) * BLOCK as u64
    }
}

/// The 8 bytes after the block number in block `block`: different for (nearly) every block.
fn block_tag(block: u64) -> [u8; 8] {
    ((block ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 0x0101_0101_0101_0101)
        .to_le_bytes()
}

/// The byte that fills the rest of block `block` (never zero).
fn block_fill(block: u64) -> u8 {
    (block % 251) as u8 + 1
}

/// Block `block`: its number (little endian), its tag, then its fill byte.
fn fill_block(out: &mut [u8], block: u64) {
    out[..8].copy_from_slice(&block.to_le_bytes());
    out[8..16].copy_from_slice(&block_tag(block));
    out[16..].fill(block_fill(block));
}

/// Checks that `data` is the whole block at file offset `offset`.
fn check_block(data: &[u8], offset: u64) -> Result<(), String> {
    let block = offset / BLOCK as u64;
    if data.len() != BLOCK {
        return Err(format!("read at offset {offset} gave {} bytes, not {BLOCK}", data.len()));
    }
    let found = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    if found != block {
        return Err(format!(
            "read at offset {offset} (block {block}) returned block {found}'s number: wrong \
             offset"
        ));
    }
    let fill = block_fill(block);
    if data[8..16] != block_tag(block) || data[16..].iter().any(|&b| b != fill) {
        return Err(format!("read at offset {offset} returned data that is not that block's"));
    }
    Ok(())
}

/// Checks a read's result: exactly `BLOCK` bytes.
fn check_res(who: &str, res: i64, offset: u64) -> Result<(), String> {
    if res == BLOCK as i64 {
        Ok(())
    } else if res < 0 {
        let e = io::Error::from_raw_os_error(-res as i32);
        Err(format!("{who}: read at offset {offset} failed: {e}"))
    } else {
        Err(format!("{who}: read at offset {offset} gave {res} bytes, not {BLOCK}"))
    }
}

/// One way of doing reads, at one queue depth, in one mode.
trait Variant {
    /// Short name for the table.
    fn name(&self) -> &'static str;

    /// Queue depth (`None`: one read after another).
    fn depth(&self) -> Option<usize>;

    /// Does `ops` reads at the next offsets of `rng`, all finished when it returns. Fails if a
    /// read does not return exactly `BLOCK` bytes, or, with `check`, the block at its offset.
    fn run(&mut self, rng: &mut Xorshift, ops: usize, check: bool) -> Result<(), String>;
}

/// The baseline: `pread(2)` (std's `read_at`), one read after another.
struct Pread<'f> {
    file: &'f File,
    /// Aligned, so that it serves `O_DIRECT` reads as well.
    buf: AlignedBuf,
}

impl Variant for Pread<'_> {
    fn name(&self) -> &'static str {
        "pread"
    }

    fn depth(&self) -> Option<usize> {
        None
    }

    fn run(&mut self, rng: &mut Xorshift, ops: usize, check: bool) -> Result<(), String> {
        let buf = self.buf.as_full_mut_slice();
        for _ in 0..ops {
            let offset = rng.next_offset();
            match self.file.read_at(buf, offset) {
                Ok(n) => check_res("pread", n as i64, offset)?,
                Err(e) => return Err(format!("pread: read at offset {offset} failed: {e}")),
            }
            if check {
                check_block(buf, offset).map_err(|e| format!("pread: {e}"))?;
            }
        }
        Ok(())
    }
}

/// A [`Driver`], kept at its queue depth: queue until `depth` are outstanding, flush, reap
/// whatever has completed (at least one), queue that many again.
struct DriverRun<'f, D: Driver> {
    driver: D,
    name: &'static str,
    /// The file read; borrowed, so it stays open as long as `self` exists.
    file: &'f File,
    depth: usize,
    /// Buffers not in flight.
    free: Vec<AlignedBuf>,
    /// Completions of one reap (kept for its capacity).
    out: Vec<Completion>,
}

impl<'f, D: Driver> DriverRun<'f, D> {
    fn new(driver: D, name: &'static str, file: &'f File, depth: usize) -> DriverRun<'f, D> {
        DriverRun {
            driver,
            name,
            file,
            depth,
            free: (0..depth).map(|_| AlignedBuf::new(BLOCK, BLOCK)).collect(),
            out: Vec::with_capacity(depth),
        }
    }
}

impl<D: Driver> Variant for DriverRun<'_, D> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn depth(&self) -> Option<usize> {
        Some(self.depth)
    }

    fn run(&mut self, rng: &mut Xorshift, ops: usize, check: bool) -> Result<(), String> {
        let name = self.name;
        let fd: RawFd = self.file.as_raw_fd();
        let mut issued = 0;
        let mut in_flight = 0;
        loop {
            while in_flight < self.depth && issued < ops {
                let buf = self.free.pop().ok_or_else(|| format!("{name}: a buffer was lost"))?;
                let offset = rng.next_offset();
                // The offset is the request's user_data: the completion says what to check.
                let req = Request::read(fd, Buf::for_read(buf), offset, offset);
                self.driver.queue(req).map_err(|r| {
                    format!("{name}: queue of a read at offset {offset} refused: {}", r.error)
                })?;
                issued += 1;
                in_flight += 1;
            }
            if in_flight == 0 {
                return Ok(());
            }
            self.driver.flush().map_err(|e| format!("{name}: flush: {e}"))?;
            self.out.clear();
            let n = match self.driver.reap(1, self.depth, None, &mut self.out) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{name}: reap: {e}")),
            };
            in_flight -= n;
            for c in self.out.drain(..) {
                let offset = c.user_data;
                let buf = c
                    .buf
                    .take::<AlignedBuf>()
                    .ok_or_else(|| format!("{name}: a completion without its AlignedBuf"))?;
                let checked = check_res(name, c.res, offset).and_then(|()| match check {
                    true => check_block(&buf.as_full_slice()[..BLOCK], offset)
                        .map_err(|e| format!("{name}: {e}")),
                    false => Ok(()),
                });
                self.free.push(buf);
                checked?;
            }
        }
    }
}

/// The io_uring ceiling: the `io-uring` crate used directly, `depth` reads kept in flight into
/// reused buffers, each batch submitted — and completions waited for — in one
/// `submit_and_wait(1)`.
///
/// Field order matters: `ring` is dropped first. Drop waits for every read in flight first,
/// and if it cannot, leaks the buffers rather than free memory the kernel may still write.
struct RawUring<'f> {
    ring: IoUring,
    bufs: Vec<AlignedBuf>,
    offsets: Vec<u64>,
    /// Slots (buffer indices) not in flight.
    free: Vec<usize>,
    /// Reads submitted (or pushed to the submission queue) and not yet completed.
    in_flight: usize,
    /// The file read; borrowed, so it stays open as long as `self` exists.
    file: &'f File,
    depth: usize,
}

impl<'f> RawUring<'f> {
    fn new(file: &'f File, depth: usize) -> Result<RawUring<'f>, String> {
        let ring = IoUring::builder()
            .setup_cqsize(RAW_RING_ENTRIES * 2)
            .build(RAW_RING_ENTRIES)
            .map_err(|e| format!("raw io_uring: io_uring_setup: {e}"))?;
        Ok(RawUring {
            ring,
            bufs: (0..depth).map(|_| AlignedBuf::new(BLOCK, BLOCK)).collect(),
            offsets: vec![0; depth],
            free: (0..depth).rev().collect(),
            in_flight: 0,
            file,
            depth,
        })
    }

    /// Takes every completion off the queue; returns the first failure among them.
    fn reap(&mut self, check: bool) -> Result<(), String> {
        let mut failure = Ok(());
        for cqe in self.ring.completion() {
            let slot = cqe.user_data() as usize;
            self.in_flight -= 1;
            self.free.push(slot);
            let offset = self.offsets[slot];
            let checked = check_res("raw io_uring", i64::from(cqe.result()), offset).and_then(
                |()| match check {
                    true => check_block(&self.bufs[slot].as_full_slice()[..BLOCK], offset)
                        .map_err(|e| format!("raw io_uring: {e}")),
                    false => Ok(()),
                },
            );
            if failure.is_ok() {
                failure = checked;
            }
        }
        failure
    }

    /// Waits for every read in flight. Returns false if it could not.
    fn drain(&mut self) -> bool {
        while self.in_flight > 0 {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(_) => return false,
            }
            let _ = self.reap(false);
        }
        true
    }
}

impl Variant for RawUring<'_> {
    fn name(&self) -> &'static str {
        "raw io_uring"
    }

    fn depth(&self) -> Option<usize> {
        Some(self.depth)
    }

    fn run(&mut self, rng: &mut Xorshift, ops: usize, check: bool) -> Result<(), String> {
        let fd = types::Fd(self.file.as_raw_fd());
        let mut issued = 0;
        loop {
            {
                let mut sq = self.ring.submission();
                while issued < ops {
                    let Some(slot) = self.free.pop() else { break };
                    let offset = rng.next_offset();
                    self.offsets[slot] = offset;
                    let ptr = self.bufs[slot].stable_mut_ptr();
                    let entry = opcode::Read::new(fd, ptr, BLOCK as u32)
                        .offset(offset)
                        .build()
                        .user_data(slot as u64);
                    // SAFETY: the entry names buffer `slot` (BLOCK bytes, owned by `self.bufs`,
                    // which is neither resized nor touched while the slot is out of `free`)
                    // and the descriptor of `self.file`, open as long as `self` is. The slot
                    // comes back to `free` only when the read's completion is taken, and Drop
                    // waits for every read in flight (or leaks the buffers) before freeing them.
                    if unsafe { sq.push(&entry) }.is_err() {
                        self.free.push(slot);
                        break;
                    }
                    self.in_flight += 1;
                    issued += 1;
                }
            }
            if self.in_flight == 0 {
                return Ok(());
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                // EBUSY: completions to take first; EINTR: a signal. Take what is there.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(format!("raw io_uring: io_uring_enter: {e}")),
            }
            if let Err(e) = self.reap(check) {
                self.drain();
                return Err(e);
            }
        }
    }
}

impl Drop for RawUring<'_> {
    fn drop(&mut self) {
        if !self.drain() {
            // The kernel may still write into them: leak them rather than free them.
            std::mem::forget(std::mem::take(&mut self.bufs));
        }
    }
}

/// An all-zero `aiocb`.
fn zeroed_aiocb() -> libc::aiocb {
    // SAFETY: aiocb is a plain C struct of integers, pointers and a sigevent (integers and a
    // union of an integer and a pointer): all zero bytes is a valid value of every field.
    unsafe { MaybeUninit::<libc::aiocb>::zeroed().assume_init() }
}

/// glibc's POSIX AIO: `depth` `aiocb`s kept in flight with `aio_read`, waited for with
/// `aio_suspend`, each finished one found with `aio_error` and collected with `aio_return`.
///
/// glibc's worker threads write into the `aiocb`s and buffers until a request is done, so
/// Drop waits for every request in flight, and if it cannot, leaks them.
struct GlibcAio<'f> {
    /// The control blocks, at stable addresses (a boxed slice is never resized).
    cbs: Box<[libc::aiocb]>,
    /// `aio_suspend`'s list: the control block of each slot in flight, null for free slots.
    list: Vec<*const libc::aiocb>,
    bufs: Vec<AlignedBuf>,
    offsets: Vec<u64>,
    free: Vec<usize>,
    in_flight: usize,
    /// The file read; borrowed, so it stays open as long as `self` exists.
    file: &'f File,
    depth: usize,
}

impl<'f> GlibcAio<'f> {
    fn new(file: &'f File, depth: usize) -> GlibcAio<'f> {
        GlibcAio {
            cbs: vec![zeroed_aiocb(); depth].into_boxed_slice(),
            list: vec![std::ptr::null(); depth],
            bufs: (0..depth).map(|_| AlignedBuf::new(BLOCK, BLOCK)).collect(),
            offsets: vec![0; depth],
            free: (0..depth).rev().collect(),
            in_flight: 0,
            file,
            depth,
        }
    }

    /// Waits until at least one request in flight is done (`aio_suspend`).
    fn suspend(&self) -> io::Result<()> {
        // SAFETY: `list` holds `depth` entries, each null or pointing to a control block in
        // `self.cbs`, alive and submitted with aio_read; no timeout (a null pointer).
        let r =
            unsafe { libc::aio_suspend(self.list.as_ptr(), self.depth as i32, std::ptr::null()) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR | libc::EAGAIN) => Ok(()),
            _ => Err(e),
        }
    }

    /// Collects every request that is done; returns the first failure among them.
    fn collect(&mut self, check: bool) -> Result<(), String> {
        let mut failure = Ok(());
        for slot in 0..self.depth {
            if self.list[slot].is_null() {
                continue;
            }
            let cb = &mut self.cbs[slot] as *mut libc::aiocb;
            // SAFETY: `cb` is the control block of a request in flight, submitted by aio_read
            // and not yet collected.
            let err = unsafe { libc::aio_error(cb) };
            if err == libc::EINPROGRESS {
                continue;
            }
            // SAFETY: the request is done (aio_error is no longer EINPROGRESS); aio_return is
            // called once for it, as POSIX requires.
            let ret = unsafe { libc::aio_return(cb) };
            self.list[slot] = std::ptr::null();
            self.in_flight -= 1;
            self.free.push(slot);
            let offset = self.offsets[slot];
            let res = if ret < 0 { -i64::from(err) } else { ret as i64 };
            let checked = check_res("glibc posix aio", res, offset).and_then(|()| match check {
                true => check_block(&self.bufs[slot].as_full_slice()[..BLOCK], offset)
                    .map_err(|e| format!("glibc posix aio: {e}")),
                false => Ok(()),
            });
            if failure.is_ok() {
                failure = checked;
            }
        }
        failure
    }

    /// Waits for every request in flight. Returns false if it could not.
    fn drain(&mut self) -> bool {
        while self.in_flight > 0 {
            if self.suspend().is_err() {
                return false;
            }
            let _ = self.collect(false);
        }
        true
    }
}

impl Variant for GlibcAio<'_> {
    fn name(&self) -> &'static str {
        "glibc posix aio"
    }

    fn depth(&self) -> Option<usize> {
        Some(self.depth)
    }

    fn run(&mut self, rng: &mut Xorshift, ops: usize, check: bool) -> Result<(), String> {
        let fd = self.file.as_raw_fd();
        let mut issued = 0;
        loop {
            while issued < ops {
                let Some(slot) = self.free.pop() else { break };
                let offset = rng.next_offset();
                self.offsets[slot] = offset;
                let cb = &mut self.cbs[slot];
                *cb = zeroed_aiocb();
                cb.aio_fildes = fd;
                cb.aio_buf = self.bufs[slot].stable_mut_ptr().cast();
                cb.aio_nbytes = BLOCK;
                cb.aio_offset = offset as libc::off_t;
                cb.aio_sigevent.sigev_notify = libc::SIGEV_NONE;
                let cb = cb as *mut libc::aiocb;
                // SAFETY: the control block and buffer `slot` (BLOCK bytes) live in `self`,
                // at stable addresses, and are not touched until the request is collected
                // (the slot is out of `free` until then); Drop waits for every request in
                // flight, or leaks them, before they are freed. The descriptor is that of
                // `self.file`, open as long as `self` is.
                if unsafe { libc::aio_read(cb) } != 0 {
                    let e = io::Error::last_os_error();
                    self.free.push(slot);
                    self.drain();
                    return Err(format!("glibc posix aio: aio_read at offset {offset}: {e}"));
                }
                self.list[slot] = cb;
                self.in_flight += 1;
                issued += 1;
            }
            if self.in_flight == 0 {
                return Ok(());
            }
            self.suspend().map_err(|e| format!("glibc posix aio: aio_suspend: {e}"))?;
            if let Err(e) = self.collect(check) {
                self.drain();
                return Err(e);
            }
        }
    }
}

impl Drop for GlibcAio<'_> {
    fn drop(&mut self) {
        if !self.drain() {
            // glibc's workers may still write into them: leak them rather than free them.
            std::mem::forget(std::mem::take(&mut self.cbs));
            std::mem::forget(std::mem::take(&mut self.bufs));
        }
    }
}

/// A bench file: created, filled block by block and synced. Deleted when dropped.
struct BenchFile {
    tmp: tempfile::NamedTempFile,
    size: u64,
    shown: PathBuf,
}

impl BenchFile {
    fn create(dir: &Path, shown_dir: &Path, mode: Mode, size: u64) -> Result<BenchFile, String> {
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".drivers-{}-", mode.name()))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| format!("cannot create the bench file in {}: {e}", shown_dir.display()))?;
        let shown = tmp.path().file_name().map(|n| shown_dir.join(n)).unwrap_or_default();
        eprintln!("drivers: writing {} MiB to {} ...", size >> 20, shown.display());
        const CHUNK: usize = 1 << 20;
        let mut chunk = vec![0u8; CHUNK];
        for c in 0..size / CHUNK as u64 {
            for (j, block) in chunk.chunks_exact_mut(BLOCK).enumerate() {
                fill_block(block, c * (CHUNK / BLOCK) as u64 + j as u64);
            }
            tmp.write_all(&chunk).map_err(|e| format!("writing {}: {e}", shown.display()))?;
        }
        // Write it back now, so that writeback does not happen during the measurements.
        tmp.as_file().sync_all().map_err(|e| format!("fsync of {}: {e}", shown.display()))?;
        Ok(BenchFile { tmp, size, shown })
    }

    fn blocks(&self) -> u64 {
        self.size / BLOCK as u64
    }

    /// Reads the whole file once through `file`, checking it, so that it is in the page cache.
    fn read_all(&self, file: &File) -> Result<(), String> {
        let mut chunk = vec![0u8; 1 << 20];
        let mut offset = 0;
        while offset < self.size {
            file.read_exact_at(&mut chunk, offset)
                .map_err(|e| format!("reading {} back: {e}", self.shown.display()))?;
            for (j, block) in chunk.chunks_exact(BLOCK).enumerate() {
                check_block(block, offset + (j * BLOCK) as u64)
                    .map_err(|e| format!("reading {} back: {e}", self.shown.display()))?;
            }
            offset += chunk.len() as u64;
        }
        Ok(())
    }

    fn close(self) -> Result<(), String> {
        let shown = self.shown;
        self.tmp.close().map_err(|e| format!("deleting {}: {e}", shown.display()))
    }
}

/// The share of the file's pages in the page cache (`mincore` on a mapping of it).
fn cached_share(file: &File, size: u64) -> io::Result<f64> {
    let size = usize::try_from(size).map_err(io::Error::other)?;
    // SAFETY: sysconf takes no pointers.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096);
    // SAFETY: a new shared read-only mapping of `size` bytes of an open file, at an address
    // the kernel chooses; it overlaps no Rust object, and nothing reads through it.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let pages = size.div_ceil(page);
    let mut resident = vec![0u8; pages];
    // SAFETY: `addr` is the page-aligned start of our live mapping of `size` bytes, and
    // `resident` holds one writable byte for each of its pages.
    let ret = unsafe { libc::mincore(addr, size, resident.as_mut_ptr()) };
    let err = io::Error::last_os_error();
    // SAFETY: unmaps exactly the mapping made above, which nothing refers to any more.
    unsafe { libc::munmap(addr, size) };
    if ret != 0 {
        return Err(err);
    }
    let cached = resident.iter().filter(|&&r| r & 1 != 0).count();
    Ok(cached as f64 / pages as f64)
}

/// The name of the filesystem `file` is on, and whether it is backed by a disk.
fn filesystem(file: &File) -> (String, bool) {
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` is writable memory for one statfs, which fstatfs fills on success.
    if unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return (format!("unknown ({})", io::Error::last_os_error()), true);
    }
    // SAFETY: fstatfs returned 0, so it initialized `st`.
    let magic = unsafe { st.assume_init() }.f_type as u32;
    let (name, disk) = match magic {
        0xef53 => ("ext2/3/4", true),
        0x5846_5342 => ("xfs", true),
        0x9123_683e => ("btrfs", true),
        0xf2f5_2010 => ("f2fs", true),
        0x2fc1_2fc1 => ("zfs", true),
        0x0102_1994 => ("tmpfs", false),
        0x8584_58f6 => ("ramfs", false),
        0x794c_7630 => ("overlayfs", true),
        0x6969 => ("nfs", true),
        0x6573_5546 => ("fuse", true),
        _ => ("other", true),
    };
    (format!("{name} (magic {magic:#x})"), disk)
}

/// The system's load averages (`/proc/loadavg`), for the report.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("? ({e})"))
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// One entry of the measurement plan.
struct Entry<'f> {
    mode: Mode,
    key: &'static str,
    variant: Box<dyn Variant + 'f>,
    blocks: u64,
    /// Reads per measurement (from calibration).
    ops: usize,
    /// Nanoseconds per read, one per round.
    samples: Vec<f64>,
}

impl Entry<'_> {
    fn label(&self) -> String {
        let qd = self.variant.depth().map_or("-".into(), |d| d.to_string());
        format!("{} {} QD {qd}", self.mode.name(), self.variant.name())
    }

    /// A few untimed reads (the pools' threads may have gone idle), then `ops` reads timed:
    /// nanoseconds per read.
    fn measure(&mut self, round: u64) -> Result<f64, String> {
        let warm = self.variant.depth().unwrap_or(1) * 2;
        self.variant.run(&mut Xorshift::new(WARMUP_SEQ + round, self.blocks), warm, false)?;
        let mut rng = Xorshift::new(round, self.blocks);
        let start = Instant::now();
        self.variant.run(&mut rng, self.ops, false)?;
        Ok(start.elapsed().as_nanos() as f64 / self.ops as f64)
    }

    /// How many reads take about `target`, from a trial run of a quarter of it.
    fn calibrate(&mut self, target: Duration) -> Result<(), String> {
        let mut rng = Xorshift::new(CALIBRATE_SEQ, self.blocks);
        let chunk = (self.variant.depth().unwrap_or(1) * 8).max(64);
        let trial = target / 4;
        let start = Instant::now();
        let mut done = 0usize;
        while done == 0 || start.elapsed() < trial {
            self.variant.run(&mut rng, chunk, false)?;
            done += chunk;
        }
        let per_op = start.elapsed().as_nanos() as f64 / done as f64;
        let min = self.variant.depth().unwrap_or(1) * 4;
        self.ops = ((target.as_nanos() as f64 / per_op.max(1.0)) as usize).max(min);
        Ok(())
    }

    /// Reads a few batches and checks every block.
    fn verify(&mut self) -> Result<(), String> {
        let ops = (self.variant.depth().unwrap_or(1) * 4).max(256);
        self.variant
            .run(&mut Xorshift::new(VERIFY_SEQ, self.blocks), ops, true)
            .map_err(|e| format!("data check of {}: {e}", self.label()))
    }

    fn ns(&self) -> f64 {
        median(&self.samples)
    }
}

fn run(opts: &Options) -> Result<(), String> {
    let dir = std::env::var_os("AIO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| ".".into());
    let shown_dir = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
    let load_before = loadavg();

    // The files. Each is deleted when dropped: on success or error.
    let cached = if opts.modes.contains(&Mode::Cached) {
        let f = BenchFile::create(&dir, &shown_dir, Mode::Cached, opts.cached_mb << 20)?;
        let file = f.tmp.reopen().map_err(|e| format!("opening {}: {e}", f.shown.display()))?;
        f.read_all(&file)?;
        let before = cached_share(&file, f.size);
        Some((f, file, before))
    } else {
        None
    };
    let direct = if opts.modes.contains(&Mode::Direct) {
        let f = BenchFile::create(&dir, &shown_dir, Mode::Direct, opts.direct_mb << 20)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(f.tmp.path())
            .map_err(|e| {
                format!(
                    "opening {} with O_DIRECT: {e} (does this filesystem support O_DIRECT? set \
                     AIO_BENCH_DIR to a directory on a disk filesystem)",
                    f.shown.display()
                )
            })?;
        let align = DioAlign::of(&file)
            .map_err(|e| format!("O_DIRECT alignment of {}: {e}", f.shown.display()))?;
        if !BLOCK.is_multiple_of(align.buffer_align()) {
            return Err(format!(
                "{}: O_DIRECT needs {align}, which 4 KiB reads at 4 KiB offsets do not meet",
                f.shown.display()
            ));
        }
        Some((f, file, align))
    } else {
        None
    };

    // The plan: per mode, pread once, then every variant at every queue depth.
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    fn add<'f>(
        entries: &mut Vec<Entry<'f>>,
        mode: Mode,
        key: &'static str,
        blocks: u64,
        variant: Box<dyn Variant + 'f>,
    ) {
        entries.push(Entry { mode, key, variant, blocks, ops: 0, samples: Vec::new() });
    }
    for (mode, bench, file) in [
        cached.as_ref().map(|(b, f, _)| (Mode::Cached, b, f)),
        direct.as_ref().map(|(b, f, _)| (Mode::Direct, b, f)),
    ]
    .into_iter()
    .flatten()
    {
        let blocks = bench.blocks();
        if opts.wants("pread") {
            let buf = AlignedBuf::new(BLOCK, BLOCK);
            add(&mut entries, mode, "pread", blocks, Box::new(Pread { file, buf }));
        }
        for &depth in &opts.depths {
            if opts.wants("uring") {
                let d = UringDriver::new(UringOptions::default())
                    .map_err(|e| format!("UringDriver::new: {e}"))?;
                add(
                    &mut entries,
                    mode,
                    "uring",
                    blocks,
                    Box::new(DriverRun::new(d, "uring", file, depth)),
                );
            }
            if opts.wants("raw-uring") {
                add(&mut entries, mode, "raw-uring", blocks, Box::new(RawUring::new(file, depth)?));
            }
            if opts.wants("kernel") && mode == Mode::Direct {
                let d = KernelDriver::new(KernelOptions::default())
                    .map_err(|e| format!("KernelDriver::new: {e}"))?;
                add(
                    &mut entries,
                    mode,
                    "kernel",
                    blocks,
                    Box::new(DriverRun::new(d, "kernel", file, depth)),
                );
            }
            if opts.wants("pool") {
                let d = PoolDriver::new(PoolOptions::default());
                add(
                    &mut entries,
                    mode,
                    "pool",
                    blocks,
                    Box::new(DriverRun::new(d, "pool", file, depth)),
                );
            }
            if opts.wants("glibc-aio") {
                add(&mut entries, mode, "glibc-aio", blocks, Box::new(GlibcAio::new(file, depth)));
            }
        }
    }
    if opts.wants("kernel") && cached.is_some() {
        notes.push(
            "kernel: not measured in cached mode: on a buffered descriptor KernelDriver hands \
             every read to its thread pool (KernelOptions::buffered_pool), so it would measure \
             the pool driver again"
                .into(),
        );
    }
    if entries.is_empty() {
        return Err("nothing to measure: --only/--mode/--qd select no variant".into());
    }

    // Check each variant's data once, then find its operation count.
    for e in entries.iter_mut() {
        e.verify()?;
    }
    eprintln!("drivers: data checked for {} variants; calibrating ...", entries.len());
    for e in entries.iter_mut() {
        e.calibrate(opts.target).map_err(|err| format!("calibrating {}: {err}", e.label()))?;
    }

    let n = entries.len();
    for round in 0..opts.rounds {
        for k in 0..n {
            let e = &mut entries[(round + k) % n];
            let ns = e.measure(round as u64).map_err(|err| format!("{}: {err}", e.label()))?;
            e.samples.push(ns);
        }
        eprintln!("drivers: round {}/{} done", round + 1, opts.rounds);
    }
    let load_after = loadavg();

    // The report.
    let share = |r: &io::Result<f64>| match r {
        Ok(s) => format!("{:.1}%", s * 100.0),
        Err(e) => format!("? ({e})"),
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    println!();
    println!("drivers: {} KiB reads at random {} KiB-aligned offsets", BLOCK >> 10, BLOCK >> 10);
    println!("Linux {kernel}, {cpus} CPUs; load average {load_before} before, {load_after} after");
    println!(
        "{} rounds, each variant once per round for ~{} ms; medians over the rounds",
        opts.rounds,
        opts.target.as_millis()
    );
    println!(
        "uring: UringDriver, UringOptions::default() ({} entries); raw io_uring: the io-uring \
         crate, ring of {RAW_RING_ENTRIES} entries; kernel: KernelDriver, \
         KernelOptions::default(); pool: PoolDriver, PoolOptions::default() ({} threads); \
         glibc posix aio: glibc defaults",
        UringOptions::default().entries,
        PoolOptions::default().threads
    );
    for note in &notes {
        println!("note: {note}");
    }

    let find = |mode: Mode, key: &str, depth: Option<usize>| {
        entries
            .iter()
            .find(|e| {
                e.mode == mode && e.key == key && (key == "pread" || e.variant.depth() == depth)
            })
            .map(|e| e.ns())
    };
    let mut verdicts: Vec<String> = Vec::new();
    for mode in [Mode::Cached, Mode::Direct] {
        if !entries.iter().any(|e| e.mode == mode) {
            continue;
        }
        println!();
        match mode {
            Mode::Cached => {
                let (f, file, before) = cached.as_ref().expect("cached mode has its file");
                let (fs, on_disk) = filesystem(file);
                let after = cached_share(file, f.size);
                println!(
                    "== cached: buffered descriptor, {} MiB file {} on {fs}; in the page \
                     cache: {} before, {} after measuring",
                    f.size >> 20,
                    f.shown.display(),
                    share(before),
                    share(&after)
                );
                if !on_disk {
                    println!("   (not a disk filesystem; fine for this mode)");
                }
            }
            Mode::Direct => {
                let (f, file, align) = direct.as_ref().expect("direct mode has its file");
                let (fs, on_disk) = filesystem(file);
                println!(
                    "== direct: O_DIRECT descriptor, {} MiB file {} on {fs}; alignment {align}",
                    f.size >> 20,
                    f.shown.display()
                );
                if !on_disk {
                    println!(
                        "WARNING: this filesystem is not on a disk; set AIO_BENCH_DIR to one \
                         that is"
                    );
                }
            }
        }
        println!(
            "{:>4}  {:<16} {:>9} {:>10} {:>10} {:>9} {:>21}",
            "QD", "variant", "ops/run", "IOPS", "ns/op", "vs pread", "min..max ns/op"
        );
        let base = find(mode, "pread", None);
        let mut last_depth = None;
        for e in entries.iter().filter(|e| e.mode == mode) {
            let depth = e.variant.depth();
            if depth != last_depth && last_depth.is_some() {
                println!();
            }
            last_depth = depth;
            let ns = e.ns();
            let (lo, hi) = e
                .samples
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            let vs = base.map_or("n/a".to_string(), |b| format!("{:.2}x", b / ns));
            println!(
                "{:>4}  {:<16} {:>9} {:>10.0} {:>10.1} {:>9} {:>21}",
                depth.map_or("-".into(), |d| d.to_string()),
                e.variant.name(),
                e.ops,
                1e9 / ns,
                ns,
                vs,
                format!("{lo:.1}..{hi:.1}")
            );
        }
        println!("(vs pread: IOPS over pread's IOPS; above 1 is faster than pread)");
        for &depth in &opts.depths {
            for (num, den, label, target) in [
                ("uring", "raw-uring", "uring / raw io_uring", URING_TARGET),
                ("pool", "glibc-aio", "pool / glibc posix aio", POOL_TARGET),
            ] {
                let line = match (find(mode, num, Some(depth)), find(mode, den, Some(depth))) {
                    (Some(a), Some(b)) => {
                        // IOPS ratio: the inverse of the ns/op ratio.
                        let ratio = b / a;
                        let verdict = if ratio >= target { "PASS" } else { "FAIL" };
                        format!(
                            "{:<6} QD {depth:>3}  {label:<23} {ratio:>5.2}  (target >= \
                             {target:.2})  {verdict}",
                            mode.name()
                        )
                    }
                    _ => format!(
                        "{:<6} QD {depth:>3}  {label:<23}   n/a  (not measured: see --only)",
                        mode.name()
                    ),
                };
                verdicts.push(line);
            }
        }
    }
    println!();
    println!("targets (median IOPS ratios):");
    for v in &verdicts {
        println!("  {v}");
    }

    drop(entries);
    if let Some((f, file, _)) = cached {
        drop(file);
        f.close()?;
    }
    if let Some((f, file, _)) = direct {
        drop(file);
        f.close()?;
    }
    Ok(())
}
