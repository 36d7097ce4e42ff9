//! The engines `aio bench` compares, and the loop each runs on one thread.
//!
//! Every engine runs the same job — the same offsets, block size and read/write mix — and keeps
//! `--iodepth` requests in flight (except `sync`, which has no queue):
//!
//! - `uring`, `kernel`, `pool`: an [`aio::driver`] driver per thread, used as the driver
//!   contract says: queue until the depth is reached, reap whatever has completed (at least
//!   one), queue that many again. Buffers go into each request and come back with its
//!   completion.
//! - `posix`: [`aio::posix`] through [`aio::posix::Slots`]: `aio_read`/`aio_write` on
//!   `aiocb`s kept in flight, `aio_suspend` to wait, `aio_error` and `aio_return` to collect,
//!   as a POSIX AIO program does.
//! - `file`: [`aio::File`]: `read_at`/`write_at` futures, `--iodepth` of them in flight in one
//!   task on [`Reactor::block_on`], a reactor per thread on the driver a program gets by
//!   default ([`aio::driver::select_shared`]: io_uring, else kernel AIO, else the pool;
//!   `AIO_ENGINE` forces one), as an async program uses the library.
//! - `sync`: `pread`/`pwrite`, one request at a time: the baseline.
//!
//! Latency is measured per request from just before it is queued to just after the reap that
//! returned it, in nanoseconds, into an HDR histogram.

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use aio::driver::{
    Buf, Completion, Driver, KernelDriver, KernelOptions, PoolDriver, PoolOptions, Request,
    UringDriver, UringOptions,
};
use aio::posix::slots::{Slots, Status as PosixStatus};
use aio::posix::Errno;
use aio::{AlignedBuf, IoBuf, Reactor, Slice};
use hdrhistogram::Histogram;

use super::job::{Distribution, Job, Pattern};
use super::zipf::{Scramble, Zipf};
use crate::util::{fill_random, splitmix64};

/// Environment variable that makes io_uring look unavailable, with its value as the reason
/// (for testing how an unusable engine is reported).
pub const PRETEND_NO_URING: &str = "AIO_PRETEND_NO_URING";

/// One way of doing the job's I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EngineKind {
    /// [`UringDriver`].
    Uring,
    /// [`KernelDriver`] (`O_DIRECT` only).
    Kernel,
    /// [`PoolDriver`].
    Pool,
    /// [`aio::posix`].
    Posix,
    /// [`aio::File`] futures on [`Reactor::block_on`].
    File,
    /// `pread`/`pwrite`.
    Sync,
}

impl EngineKind {
    /// Every engine, in the order tables list them.
    pub const ALL: [EngineKind; 6] = [
        EngineKind::Uring,
        EngineKind::Kernel,
        EngineKind::Pool,
        EngineKind::Posix,
        EngineKind::File,
        EngineKind::Sync,
    ];

    /// The name `--engine` takes.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Uring => "uring",
            EngineKind::Kernel => "kernel",
            EngineKind::Pool => "pool",
            EngineKind::Posix => "posix",
            EngineKind::File => "file",
            EngineKind::Sync => "sync",
        }
    }

    /// What it is, for the report.
    pub fn describe(self, job: &Job) -> String {
        match self {
            EngineKind::Uring => {
                format!("aio::driver::UringDriver, {} entries", uring_entries(job))
            }
            EngineKind::Kernel => "aio::driver::KernelDriver: io_submit/io_getevents (on a \
                buffered file io_submit does the I/O itself before returning, as with libaio)"
                .to_string(),
            EngineKind::Pool => {
                format!("aio::driver::PoolDriver, up to {} threads", pool_threads(job))
            }
            EngineKind::Posix => match aio::posix::engine_selection() {
                Ok(sel) => format!("aio::posix (aio_read/aio_suspend) on {sel}"),
                Err(e) => format!("aio::posix ({})", e),
            },
            EngineKind::File => match new_file_driver(job) {
                Ok((_, sel)) => format!(
                    "aio::File (read_at/write_at futures, --iodepth in flight, on block_on), a \
                     reactor per job on {sel}"
                ),
                Err(e) => format!("aio::File ({e})"),
            },
            EngineKind::Sync => {
                "pread/pwrite, one request at a time per job (--iodepth does not apply)".to_string()
            }
        }
    }

    /// Whether this engine can run `job` here: `Err(reason)` if not.
    pub fn check(self, job: &Job) -> Result<(), String> {
        match self {
            EngineKind::Uring => new_uring(job).map(drop),
            EngineKind::Kernel => new_kernel(job).map(drop),
            EngineKind::Posix => {
                aio::posix::engine_selection().map(drop).map_err(|e| format!("POSIX AIO: {}", e))
            }
            EngineKind::File => new_file_driver(job).map(drop),
            EngineKind::Pool | EngineKind::Sync => Ok(()),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<EngineKind, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "uring" | "io_uring" => Ok(EngineKind::Uring),
            "kernel" | "libaio" => Ok(EngineKind::Kernel),
            "pool" => Ok(EngineKind::Pool),
            "posix" | "posixaio" => Ok(EngineKind::Posix),
            "file" => Ok(EngineKind::File),
            "sync" | "psync" => Ok(EngineKind::Sync),
            _ => Err(format!(
                "unknown engine {s:?}: expected uring, kernel, pool, posix, file, sync or all"
            )),
        }
    }
}

fn uring_entries(job: &Job) -> u32 {
    (job.iodepth as u32).next_power_of_two().max(UringOptions::default().entries)
}

fn pool_threads(job: &Job) -> usize {
    job.iodepth.clamp(1, 256)
}

fn new_uring(job: &Job) -> Result<UringDriver, String> {
    if let Some(why) = std::env::var_os(PRETEND_NO_URING) {
        return Err(format!(
            "io_uring is unavailable: {} ({PRETEND_NO_URING})",
            why.to_string_lossy()
        ));
    }
    // The bench only reaps (no eventfd): the ring can be cooperative, as fio sets up its own.
    let opts =
        UringOptions { entries: uring_entries(job), coop_taskrun: true, ..UringOptions::default() };
    UringDriver::new(opts).map_err(|e| e.to_string())
}

fn new_kernel(job: &Job) -> Result<KernelDriver, String> {
    let opts = KernelOptions {
        max_events: job.iodepth.max(KernelOptions::default().max_events),
        buffered_pool: None,
        // On a buffered file, io_submit as libaio does: synchronous, and described so.
        submit_buffered: !job.direct,
        ..KernelOptions::default()
    };
    KernelDriver::new(opts)
        .map_err(|e| format!("io_setup: {e} (see /proc/sys/fs/aio-nr and aio-max-nr)"))
}

/// The driver of the `file` engine: what a program gets by default
/// ([`aio::driver::select_shared`], `AIO_ENGINE` honoured), with a ring as deep as the job.
fn new_file_driver(job: &Job) -> Result<(Arc<dyn Driver>, aio::driver::Selection), String> {
    let opts = aio::driver::SelectOptions {
        uring: UringOptions { entries: uring_entries(job), ..UringOptions::default() },
        pretend_uring_unavailable: std::env::var_os(PRETEND_NO_URING)
            .map(|why| format!("{} ({PRETEND_NO_URING})", why.to_string_lossy())),
        ..aio::driver::SelectOptions::default()
    };
    aio::driver::select_shared(&opts).map_err(|e| e.to_string())
}

/// When one thread's part of a run ends.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop queueing at this time.
    pub time: Option<Duration>,
    /// Stop after this many requests.
    pub ios: Option<u64>,
}

/// What one thread measured.
pub struct Stats {
    /// Completion latency, nanoseconds.
    pub hist: Histogram<u64>,
    /// Reads completed.
    pub read_ios: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Writes completed.
    pub write_ios: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// How the engine's inline path served the requests.
    pub inline: aio::driver::InlineStats,
}

impl Stats {
    /// Empty.
    pub fn new() -> Stats {
        Stats {
            // 1 ns to an hour, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds"),
            read_ios: 0,
            read_bytes: 0,
            write_ios: 0,
            write_bytes: 0,
            inline: aio::driver::InlineStats::default(),
        }
    }

    /// Adds another thread's or round's figures.
    pub fn merge(&mut self, other: &Stats) {
        let _ = self.hist.add(&other.hist);
        self.read_ios += other.read_ios;
        self.read_bytes += other.read_bytes;
        self.write_ios += other.write_ios;
        self.write_bytes += other.write_bytes;
        self.inline = self.inline + other.inline;
    }

    #[inline]
    fn record(&mut self, write: bool, bytes: usize, latency: Duration) {
        let _ = self.hist.record(latency.as_nanos().clamp(1, 3_600_000_000_000) as u64);
        if write {
            self.write_ios += 1;
            self.write_bytes += bytes as u64;
        } else {
            self.read_ios += 1;
            self.read_bytes += bytes as u64;
        }
    }
}

/// The offsets and directions of a job's requests, for one thread.
pub struct OpGen {
    rw: Pattern,
    mix_read: u64,
    bs: u64,
    blocks: u64,
    next_block: u64,
    rng: u64,
    /// For `--random_distribution zipf`: the ranks, and where each rank's block is.
    zipf: Option<(Zipf, Scramble)>,
}

impl OpGen {
    /// Thread `thread` of `job`, with its own random sequence (`seed`). Sequential threads
    /// start at evenly spaced places in the file. A Zipf job's popular blocks are the same for
    /// every thread and round (they come from the job's own seed).
    pub fn new(job: &Job, thread: usize, seed: u64) -> OpGen {
        let blocks = (job.size / job.bs as u64).max(1);
        let mut rng = seed ^ (thread as u64).wrapping_mul(0xa076_1d64_78bd_642f);
        splitmix64(&mut rng);
        let zipf = match job.dist {
            Distribution::Zipf(theta) if job.rw.is_random() => {
                let mut s = job.seed ^ 0x2545_f491_4f6c_dd1d;
                Some((Zipf::new(blocks, theta), Scramble::new(blocks, splitmix64(&mut s))))
            }
            _ => None,
        };
        OpGen {
            rw: job.rw,
            mix_read: u64::from(job.rwmixread),
            bs: job.bs as u64,
            blocks,
            next_block: blocks * thread as u64 / job.numjobs.max(1) as u64,
            rng,
            zipf,
        }
    }

    /// The next request: (is it a write, file offset).
    #[inline]
    pub fn next(&mut self) -> (bool, u64) {
        let write = match self.rw {
            Pattern::Read | Pattern::RandRead => false,
            Pattern::Write | Pattern::RandWrite => true,
            Pattern::RandRw => splitmix64(&mut self.rng) % 100 >= self.mix_read,
        };
        let block = if let Some((zipf, scramble)) = &self.zipf {
            let rng = &mut self.rng;
            let rank = zipf.sample(|| (splitmix64(rng) >> 11) as f64 * (1.0 / (1u64 << 53) as f64));
            scramble.map(rank - 1)
        } else if self.rw.is_random() {
            ((u128::from(splitmix64(&mut self.rng)) * u128::from(self.blocks)) >> 64) as u64
        } else {
            let b = self.next_block;
            self.next_block = if b + 1 >= self.blocks { 0 } else { b + 1 };
            b
        };
        (write, block * self.bs)
    }
}

/// Everything a thread needs to run its part.
pub struct ThreadCtx<'a> {
    /// The job.
    pub job: &'a Job,
    /// The file, open as the job needs (`O_DIRECT` or not, read-only or read-write).
    pub file: &'a File,
    /// Buffer alignment (the `O_DIRECT` alignment, at least 4096).
    pub align: usize,
    /// This thread's number.
    pub thread: usize,
    /// Seed of its offsets.
    pub seed: u64,
    /// Requests completed by every thread so far, for the progress line.
    pub progress: &'a AtomicU64,
}

/// A thread's engine, set up before the clock starts.
pub enum Prepared {
    /// A driver.
    Driver(Arc<dyn Driver>),
    /// POSIX AIO.
    Posix,
    /// aio::File, on its own reactor.
    File(Arc<Reactor>),
    /// pread/pwrite.
    Sync,
}

/// Sets up `kind` for one thread (a driver of its own, for the driver engines).
pub fn prepare(kind: EngineKind, job: &Job) -> Result<Prepared, String> {
    Ok(match kind {
        EngineKind::Uring => Prepared::Driver(Arc::new(new_uring(job)?)),
        EngineKind::Kernel => Prepared::Driver(Arc::new(new_kernel(job)?)),
        EngineKind::Pool => Prepared::Driver(Arc::new(PoolDriver::new(PoolOptions {
            threads: pool_threads(job),
            ..PoolOptions::default()
        }))),
        EngineKind::Posix => {
            kind.check(job)?;
            Prepared::Posix
        }
        EngineKind::File => Prepared::File(Reactor::new(new_file_driver(job)?.0)),
        EngineKind::Sync => Prepared::Sync,
    })
}

/// Runs one thread's part of the job on a prepared engine until `budget` is spent.
pub fn run(engine: &Prepared, ctx: &ThreadCtx<'_>, budget: Budget) -> Result<Stats, String> {
    match engine {
        Prepared::Driver(d) => run_driver(&**d, ctx, budget).map(|mut stats| {
            // The thread's own driver: all it served.
            stats.inline = d.inline_stats();
            stats
        }),
        Prepared::Posix => run_posix(ctx, budget),
        Prepared::File(reactor) => run_file(reactor, ctx, budget).map(|mut stats| {
            stats.inline = reactor.driver().inline_stats();
            stats
        }),
        Prepared::Sync => run_sync(ctx, budget),
    }
}

/// Buffers for `n` requests of the job's block size, full of pseudo-random data (what writes
/// write). A refused allocation is an error naming what was asked for (`--iodepth` and `--bs`
/// come from the user), not an abort.
fn buffers(ctx: &ThreadCtx<'_>, n: usize) -> Result<Vec<AlignedBuf>, String> {
    let job = ctx.job;
    let refused = || {
        let each = AlignedBuf::for_io_size(job.bs, ctx.align) as u64;
        let (jobs, n) = (job.numjobs as u64, n as u64);
        crate::util::buffers_refused(
            jobs.saturating_mul(n).saturating_mul(each),
            &crate::util::buffers_text(jobs, n, job.bs as u64),
            &job.path_shown,
        )
    };
    let mut state = ctx.seed ^ 0x5151;
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| refused())?;
    // All of them first, then their data: a refusal comes before any time is spent filling.
    for _ in 0..n {
        out.push(AlignedBuf::try_for_io(job.bs, ctx.align).map_err(|_| refused())?);
    }
    for b in &mut out {
        b.set_len(b.capacity());
        fill_random(b, &mut state);
    }
    Ok(out)
}

/// `n` copies of `value` in a vector whose allocation may be refused (its length comes from
/// `--iodepth`).
fn filled<T: Clone>(n: usize, value: T) -> Result<Vec<T>, std::collections::TryReserveError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)?;
    v.resize(n, value);
    Ok(v)
}

/// The message for a request table the allocator refused.
fn table_refused(ctx: &ThreadCtx<'_>) -> String {
    format!(
        "cannot allocate the table of {} requests in flight for {}: out of memory",
        ctx.job.iodepth, ctx.job.path_shown
    )
}

struct Clock {
    deadline: Option<Instant>,
    ios_left: Option<u64>,
}

impl Clock {
    fn start(budget: Budget) -> Clock {
        Clock { deadline: budget.time.map(|t| Instant::now() + t), ios_left: budget.ios }
    }

    /// Whether one more request may be issued; counts it if so.
    #[inline]
    fn take(&mut self) -> bool {
        match &mut self.ios_left {
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
            None => true,
        }
    }

    #[inline]
    fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

fn io_failure(who: &str, write: bool, offset: u64, res: i64, bs: usize, path: &str) -> String {
    let what = if write { "write" } else { "read" };
    if res < 0 {
        let e = io::Error::from_raw_os_error(-res as i32);
        format!(
            "{who}: {what} of {bs} bytes at offset {offset} of {path}: {}",
            crate::util::cause(&e)
        )
    } else {
        format!(
            "{who}: {what} of {bs} bytes at offset {offset} of {path} transferred only {res} \
             bytes{}",
            if write { " (is the disk full?)" } else { " (is the file shorter than --size?)" }
        )
    }
}

fn run_driver(driver: &dyn Driver, ctx: &ThreadCtx<'_>, budget: Budget) -> Result<Stats, String> {
    let who = driver.name().to_string();
    let job = ctx.job;
    let bs = job.bs;
    let qd = job.iodepth;
    let fd: RawFd = ctx.file.as_raw_fd();
    let batch = job.iodepth_batch.clamp(1, qd);
    let mut unflushed = 0usize;
    let mut gen = OpGen::new(job, ctx.thread, ctx.seed);
    let mut stats = Stats::new();
    let mut bufs: Vec<Option<AlignedBuf>> = buffers(ctx, qd)?.into_iter().map(Some).collect();
    let mut started = filled(qd, Instant::now()).map_err(|_| table_refused(ctx))?;
    let mut meta = filled(qd, (false, 0u64)).map_err(|_| table_refused(ctx))?;
    let mut free: Vec<usize> = filled(qd, 0).map_err(|_| table_refused(ctx))?;
    free.iter_mut().enumerate().for_each(|(i, f)| *f = qd - 1 - i);
    let mut out: Vec<Completion> = Vec::new();
    out.try_reserve_exact(qd).map_err(|_| table_refused(ctx))?;
    let mut in_flight = 0usize;
    let mut clock = Clock::start(budget);
    let mut published = 0u64;
    let mut stopping = false;
    loop {
        while !stopping {
            let Some(&slot) = free.last() else { break };
            if !clock.take() {
                stopping = true;
                break;
            }
            free.pop();
            let (write, offset) = gen.next();
            let buf = bufs[slot].take().expect("a free slot has its buffer").slice(0..bs);
            let req = if write {
                Request::write(fd, Buf::for_write(buf), offset, slot as u64)
            } else {
                Request::read(fd, Buf::for_read(buf), offset, slot as u64)
            };
            meta[slot] = (write, offset);
            started[slot] = Instant::now();
            match driver.queue_now(req) {
                // Served at submission (the inline path): processed with the reaped ones.
                Ok(Some(c)) => {
                    in_flight += 1;
                    out.push(c);
                }
                Ok(None) => {
                    in_flight += 1;
                    // Start requests in batches of --iodepth_batch (1, as fio's default: each
                    // as soon as it is queued); reap flushes the rest.
                    unflushed += 1;
                    if unflushed >= batch {
                        driver.flush().map_err(|e| format!("{who}: flush: {e}"))?;
                        unflushed = 0;
                    }
                }
                Err(r) => {
                    let full = r.is_full();
                    let error = r.error.to_string();
                    bufs[slot] = r.into_buf().take::<Slice<AlignedBuf>>().map(Slice::into_inner);
                    free.push(slot);
                    if full && in_flight > 0 {
                        break;
                    }
                    return Err(format!("{who}: queue refused a request: {error}"));
                }
            }
        }
        if in_flight == 0 {
            return Ok(stats);
        }
        if out.is_empty() {
            unflushed = 0;
            match driver.reap(1, qd, None, &mut out) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{who}: reap: {e}")),
            }
        } else if unflushed > 0 {
            // Served at once ones to process; the others queued must still start.
            driver.flush().map_err(|e| format!("{who}: flush: {e}"))?;
            unflushed = 0;
        }
        let now = Instant::now();
        for c in out.drain(..) {
            let slot = c.user_data as usize;
            let (write, offset) = meta[slot];
            let res = c.res;
            let buf = c.buf.take::<Slice<AlignedBuf>>().map(Slice::into_inner);
            if buf.is_none() {
                return Err(format!("{who}: a completion came back without its buffer"));
            }
            bufs[slot] = buf;
            free.push(slot);
            in_flight -= 1;
            if res != bs as i64 {
                return Err(io_failure(&who, write, offset, res, bs, &job.path_shown));
            }
            stats.record(write, bs, now.duration_since(started[slot]));
        }
        if clock.expired(now) {
            stopping = true;
        }
        add_progress(ctx, &stats, &mut published);
    }
}

/// Publishes this thread's completed count: a relaxed add of what is new since `published`.
#[inline]
fn add_progress(ctx: &ThreadCtx<'_>, stats: &Stats, published: &mut u64) {
    let total = stats.read_ios + stats.write_ios;
    ctx.progress.fetch_add(total - *published, Ordering::Relaxed);
    *published = total;
}

fn run_posix(ctx: &ThreadCtx<'_>, budget: Budget) -> Result<Stats, String> {
    let who = "posix";
    let job = ctx.job;
    let bs = job.bs;
    let qd = job.iodepth;
    let fd = ctx.file.as_fd();
    let mut gen = OpGen::new(job, ctx.thread, ctx.seed);
    let mut stats = Stats::new();
    // Dropping the slots waits for every request in flight.
    let mut slots = Slots::new(buffers(ctx, qd)?).map_err(|_| table_refused(ctx))?;
    let mut started = filled(qd, Instant::now()).map_err(|_| table_refused(ctx))?;
    let mut meta = filled(qd, (false, 0u64)).map_err(|_| table_refused(ctx))?;
    let mut free: Vec<usize> = filled(qd, 0).map_err(|_| table_refused(ctx))?;
    free.iter_mut().enumerate().for_each(|(i, f)| *f = qd - 1 - i);
    let mut clock = Clock::start(budget);
    let mut published = 0u64;
    let mut stopping = false;
    loop {
        while !stopping {
            let Some(&slot) = free.last() else { break };
            if !clock.take() {
                stopping = true;
                break;
            }
            free.pop();
            let (write, offset) = gen.next();
            meta[slot] = (write, offset);
            started[slot] = Instant::now();
            let r = if write {
                slots.submit_write(slot, fd, offset, bs)
            } else {
                slots.submit_read(slot, fd, offset, bs)
            };
            match r {
                Ok(()) => {}
                Err(Errno::EAGAIN) if slots.in_flight() > 0 => {
                    free.push(slot);
                    break;
                }
                Err(e) => {
                    free.push(slot);
                    let what = if write { "aio_write" } else { "aio_read" };
                    return Err(format!("{who}: {what}: {}", e));
                }
            }
        }
        if slots.in_flight() == 0 {
            return Ok(stats);
        }
        match slots.suspend(None) {
            Ok(()) | Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(e) => return Err(format!("{who}: aio_suspend: {}", e)),
        }
        let now = Instant::now();
        for slot in 0..qd {
            let res = match slots.status(slot) {
                PosixStatus::Idle | PosixStatus::InProgress => continue,
                PosixStatus::Done(Ok(n)) => n as i64,
                PosixStatus::Done(Err(e)) => -i64::from(e.raw()),
            };
            free.push(slot);
            let (write, offset) = meta[slot];
            if res != bs as i64 {
                return Err(io_failure(who, write, offset, res, bs, &job.path_shown));
            }
            stats.record(write, bs, now.duration_since(started[slot]));
        }
        if clock.expired(now) {
            stopping = true;
        }
        add_progress(ctx, &stats, &mut published);
    }
}

/// What the `file` engine's lanes share (all on one thread).
struct FileLanes {
    gen: OpGen,
    stats: Stats,
    clock: Clock,
    stopping: bool,
    published: u64,
}

fn run_file(reactor: &Arc<Reactor>, ctx: &ThreadCtx<'_>, budget: Budget) -> Result<Stats, String> {
    let job = ctx.job;
    let std_file =
        ctx.file.try_clone().map_err(|e| format!("file: cannot duplicate the descriptor: {e}"))?;
    let file =
        aio::File::with_reactor(std_file, Arc::clone(reactor)).map_err(|e| format!("file: {e}"))?;
    let lanes = RefCell::new(FileLanes {
        gen: OpGen::new(job, ctx.thread, ctx.seed),
        stats: Stats::new(),
        clock: Clock::start(budget),
        stopping: false,
        published: 0,
    });
    let mut futures = Vec::new();
    futures.try_reserve_exact(job.iodepth).map_err(|_| table_refused(ctx))?;
    for buf in buffers(ctx, job.iodepth)? {
        futures.push(file_lane(&file, &lanes, buf, ctx));
    }
    reactor.block_on(join_all(futures))?;
    let mut lanes = lanes.into_inner();
    add_progress(ctx, &lanes.stats, &mut lanes.published);
    Ok(lanes.stats)
}

/// One request after another through `file`, until the budget is spent.
async fn file_lane(
    file: &aio::File,
    lanes: &RefCell<FileLanes>,
    mut buf: AlignedBuf,
    ctx: &ThreadCtx<'_>,
) -> Result<(), String> {
    let bs = ctx.job.bs;
    loop {
        let (write, offset) = {
            let mut l = lanes.borrow_mut();
            if l.stopping || !l.clock.take() {
                l.stopping = true;
                return Ok(());
            }
            l.gen.next()
        };
        let start = Instant::now();
        let (res, back) = if write {
            file.write_at(buf.slice(0..bs), offset).await
        } else {
            file.read_at(buf.slice(0..bs), offset).await
        };
        let now = Instant::now();
        buf = back.into_inner();
        let res = match res {
            Ok(n) => n as i64,
            Err(e) => -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        if res != bs as i64 {
            return Err(io_failure("file", write, offset, res, bs, &ctx.job.path_shown));
        }
        let mut l = lanes.borrow_mut();
        l.stats.record(write, bs, now.duration_since(start));
        if l.clock.expired(now) {
            l.stopping = true;
        }
        if (l.stats.read_ios + l.stats.write_ios).is_multiple_of(64) {
            let l = &mut *l;
            add_progress(ctx, &l.stats, &mut l.published);
        }
    }
}

/// Runs the futures together on one task, polling each that is not finished whenever the task
/// is woken; the first error ends it (the others are dropped: the reactor keeps their buffers
/// until their requests complete).
async fn join_all<F: Future<Output = Result<(), String>>>(futures: Vec<F>) -> Result<(), String> {
    let mut futures: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for slot in futures.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(Ok(())) => *slot = None,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await
}

fn run_sync(ctx: &ThreadCtx<'_>, budget: Budget) -> Result<Stats, String> {
    let job = ctx.job;
    let bs = job.bs;
    let mut gen = OpGen::new(job, ctx.thread, ctx.seed);
    let mut stats = Stats::new();
    let mut buf = buffers(ctx, 1)?.pop().expect("one buffer");
    let mut clock = Clock::start(budget);
    let mut published = 0u64;
    let mut count = 0u32;
    while clock.take() {
        let (write, offset) = gen.next();
        let start = Instant::now();
        let r = if write {
            ctx.file.write_at(&buf[..bs], offset)
        } else {
            ctx.file.read_at(&mut buf[..bs], offset)
        };
        let now = Instant::now();
        let res = match r {
            Ok(n) => n as i64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        if res != bs as i64 {
            return Err(io_failure("sync", write, offset, res, bs, &job.path_shown));
        }
        stats.record(write, bs, now.duration_since(start));
        count += 1;
        if count.is_multiple_of(64) {
            add_progress(ctx, &stats, &mut published);
        }
        if clock.expired(now) {
            break;
        }
    }
    add_progress(ctx, &stats, &mut published);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn job(dist: Distribution, seed: u64) -> Job {
        Job {
            name: String::new(),
            rw: Pattern::RandRead,
            rwmixread: 50,
            bs: 4096,
            iodepth: 1,
            iodepth_batch: 1,
            direct: false,
            numjobs: 2,
            size: 1 << 30,
            runtime: None,
            io_size: None,
            dist,
            seed,
            warm: false,
            path_shown: String::new(),
        }
    }

    /// How often each offset comes up in `n` draws.
    fn counts(gen: &mut OpGen, n: usize) -> HashMap<u64, u64> {
        let mut seen = HashMap::new();
        for _ in 0..n {
            let (write, offset) = gen.next();
            assert!(!write);
            assert_eq!(offset % 4096, 0, "offset {offset} is not a block's");
            assert!(offset < 1 << 30, "offset {offset} past --size");
            *seen.entry(offset).or_insert(0) += 1;
        }
        seen
    }

    fn hottest(seen: &HashMap<u64, u64>) -> (u64, u64) {
        seen.iter().map(|(&o, &c)| (o, c)).max_by_key(|&(o, c)| (c, o)).unwrap()
    }

    #[test]
    fn zipf_offsets_share_one_hot_set_per_job_seed() {
        let draws = 200_000;
        let zipf = job(Distribution::Zipf(1.2), 99);
        // Two threads, two rounds: different sequences, the same hottest block, drawn about
        // 1/H(262144, 1.2) = 18% of the time.
        let a = counts(&mut OpGen::new(&zipf, 0, 1), draws);
        let b = counts(&mut OpGen::new(&zipf, 1, 2), draws);
        let (hot_a, n_a) = hottest(&a);
        let (hot_b, _) = hottest(&b);
        assert_eq!(hot_a, hot_b);
        assert!(n_a > draws as u64 / 7 && n_a < draws as u64 / 4, "hottest drawn {n_a} times");
        // Far fewer distinct blocks than uniform draws touch.
        let uniform = counts(&mut OpGen::new(&job(Distribution::Uniform, 99), 0, 1), draws);
        assert!(a.len() * 2 < uniform.len(), "zipf {} blocks, uniform {}", a.len(), uniform.len());
        assert!(hottest(&uniform).1 < 100);
        // Another job seed: another hot block.
        let c = counts(&mut OpGen::new(&job(Distribution::Zipf(1.2), 100), 0, 1), draws);
        assert_ne!(hottest(&c).0, hot_a);
        // The same seeds: the same sequence.
        let mut x = OpGen::new(&zipf, 0, 5);
        let mut y = OpGen::new(&zipf, 0, 5);
        assert!((0..1000).all(|_| x.next() == y.next()));
    }
}
