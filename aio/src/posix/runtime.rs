//! The process-wide runtime: its setup on first use (the driver chosen, `AIO_FAULT` and
//! `AIO_STATS` applied, the fork and exit handlers), the state it keeps, and what the rest of
//! the engine reaches it by. Submission is in `submit`, completion in `complete`.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

use super::complete::ReaperVec;
use super::table::State;
use super::wait::Helper;
use super::{Errno, AIO_MAX};
use crate::driver::{self, Driver, Selection};
use crate::stats::Stats;
use crate::sys::posix::{self as abi, aioinit};
use crate::EventFd;

/// The process-wide engine.
pub(super) struct Runtime {
    pub(super) driver: Arc<dyn Driver>,
    pub(super) selection: Selection,
    /// Fault rules from `AIO_FAULT`, applied by the driver.
    pub(super) faults: Option<Arc<crate::faults::Faults>>,
    pub(super) state: Mutex<State>,
    /// Bumped after every batch of completions is processed, and whenever a thread stops
    /// reaping; threads waiting for someone else's progress sleep until it moves.
    pub(super) generation: AtomicU32,
    /// The wake descriptors of the threads asleep until `generation` moves (see `sleep`).
    pub(super) sleepers: Mutex<Vec<RawFd>>,
    /// How many there are (read without the lock).
    pub(super) sleeping: AtomicU32,
    /// Whether a thread is taking completions from the driver. One at a time: a thread that
    /// finds another reaping leaves it to that one (which processes every completion, whoever
    /// it is for) and sleeps until `generation` moves, so no completion is taken from under a
    /// thread waiting in the driver for it.
    pub(super) reaping: AtomicBool,
    /// Whether requests wait in `State::backlog` (read without the lock).
    pub(super) backlogged: AtomicBool,
    /// Whether the thread reaping completed a request since it took the role.
    pub(super) completed: AtomicBool,
    /// Completions taken from the driver: used only by the thread reaping (`reaping` set),
    /// the vectors kept from one call to the next.
    pub(super) completions: ReaperVec,
    pub(super) helper: Helper,
    /// When `aio_error` or `aio_return` first saw a request in progress with no thread taking
    /// completions (nanoseconds on the monotonic clock; 0: not since someone last did).
    pub(super) polled_since: AtomicU64,
    /// Whether the driver starts threads of its own when requests are queued (the pool, and
    /// kernel AIO's pool for buffered files): they are queued with every signal blocked, so
    /// those threads never take the program's signals.
    pub(super) block_signals: bool,
}

/// Locks `m`, whatever a panicking holder left behind (the state stays consistent: every
/// change under a lock is complete before anything that can panic).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
pub(super) static RUNTIME_INIT: Mutex<()> = Mutex::new(());
pub(super) static CONFIG: Mutex<Option<aioinit>> = Mutex::new(None);
pub(super) static AT_FORK: Once = Once::new();
/// Whether the fork handler is registered.
static FORK_HANDLER: AtomicBool = AtomicBool::new(false);
/// Counts the forks this process descends from since the engine first started (in the child):
/// an aiocb stamped with an older count was submitted by a parent, and never completes here.
pub(super) static FORK_STAMP: AtomicU32 = AtomicU32::new(0);
/// What the engine did (`AIO_STATS=1`: printed at exit).
pub(super) static STATS: Stats = Stats::new();

extern "C" fn print_stats() {
    let engine = current().map_or_else(|| "no engine".to_string(), Runtime::description);
    STATS.print("libposixaio", &engine);
}

pub(super) static STATS_AT_EXIT: AtomicBool = AtomicBool::new(false);

extern "C" fn forget_engine_in_child() {
    // The parent's requests are not the child's: leave the engine (and its driver) behind,
    // never touching it, and build a fresh one on first use.
    RUNTIME.store(std::ptr::null_mut(), Ordering::SeqCst);
    FORK_STAMP.fetch_add(1, Ordering::SeqCst);
    STATS.reset();
}

/// The runtime, if it was started (in this process: a child of `fork` starts its own).
/// Async-signal-safe: one atomic load.
#[inline]
pub(super) fn current() -> Option<&'static Runtime> {
    let p = RUNTIME.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is a leaked box, never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// The runtime, started on first use.
#[inline]
pub(super) fn runtime() -> Result<&'static Runtime, Errno> {
    match current() {
        Some(rt) => Ok(rt),
        None => start_runtime(),
    }
}

#[cold]
pub(super) fn start_runtime() -> Result<&'static Runtime, Errno> {
    let _init = lock(&RUNTIME_INIT);
    if let Some(rt) = current() {
        return Ok(rt);
    }
    AT_FORK.call_once(|| {
        // The handler only stores to atomics. Without it (no memory) a child would see the
        // parent's requests as its own: refuse to start instead.
        FORK_HANDLER.store(
            crate::sys::proc::at_fork_child(forget_engine_in_child).is_ok(),
            Ordering::SeqCst,
        );
    });
    if !FORK_HANDLER.load(Ordering::SeqCst) {
        return Err(Errno::ENOMEM);
    }
    let cfg = (*lock(&CONFIG)).unwrap_or_default();
    let mut opts = driver::SelectOptions::default();
    let num = if cfg.aio_num > 0 { cfg.aio_num as usize } else { 4096 };
    opts.uring.entries = num.clamp(64, 32768) as u32;
    // Room in the completion queue for every request the engine takes (AIO_MAX), so a ring
    // full of requests that may never finish (reads of empty pipes) cannot keep a later
    // request waiting for room: it is refused with EAGAIN at submission instead.
    opts.uring.cq_entries = Some(AIO_MAX as u32);
    opts.kernel.max_events = num.clamp(64, 65536);
    if cfg.aio_threads > 0 {
        opts.pool.threads = cfg.aio_threads as usize;
    }
    if cfg.aio_idle_time > 0 {
        opts.pool.idle = Duration::from_secs(cfg.aio_idle_time as u64);
    }
    let (driver, selection) = driver::select_shared(&opts)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)))?;
    // Faults from the environment (`AIO_FAULT`): the fault driver in front of the engine's.
    let (driver, faults) = match crate::faults::from_env() {
        None => (driver, None),
        Some(Ok(f)) => {
            let f = Arc::new(f);
            let cfg = driver::FaultConfig { rules: Some(Arc::clone(&f)), ..Default::default() };
            (Arc::new(driver::FaultDriver::new(driver, cfg)) as Arc<dyn Driver>, Some(f))
        }
        Some(Err(why)) => {
            // A library never exits the program: it says so and runs without faults.
            eprintln!("libposixaio: {why}; no faults injected");
            (driver, None)
        }
    };
    if STATS.on() && !STATS_AT_EXIT.swap(true, Ordering::SeqCst) {
        // Without room for the handler, the statistics are not printed: nothing else is lost.
        let _ = crate::sys::proc::at_exit(print_stats);
    }
    let block_signals = selection.engine != driver::Engine::Uring;
    let kick =
        EventFd::new().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)))?;
    let engine = Box::leak(Box::new(Runtime {
        driver,
        selection,
        faults,
        block_signals,
        state: Mutex::new(State::default()),
        generation: AtomicU32::new(0),
        sleepers: Mutex::new(Vec::new()),
        sleeping: AtomicU32::new(0),
        reaping: AtomicBool::new(false),
        backlogged: AtomicBool::new(false),
        completed: AtomicBool::new(false),
        completions: ReaperVec::new(),
        helper: Helper {
            alive: AtomicBool::new(false),
            lock: Mutex::new(()),
            kick,
            idle: AtomicBool::new(false),
        },
        polled_since: AtomicU64::new(0),
    }));
    RUNTIME.store(engine, Ordering::Release);
    Ok(engine)
}

/// `aio_init`: sizing hints, used when the engine is set up (before the first request):
/// `aio_threads` sizes the thread pool, `aio_num` the io_uring and kernel AIO queues,
/// `aio_idle_time` how long idle pool threads stay.
pub fn aio_init(init: &aioinit) {
    *lock(&CONFIG) = Some(*init);
}

/// How the engine was chosen (io_uring, kernel AIO or the pool, and why), setting it up if
/// needed.
pub fn engine_selection() -> Result<Selection, Errno> {
    runtime().map(|e| e.selection.clone())
}

impl Runtime {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The engine for the statistics line: `uring`, `pool`, …, and the fault rules if any.
    pub(super) fn description(&self) -> String {
        match &self.faults {
            None => self.selection.engine.to_string(),
            Some(f) => format!("{} with {} fault rule(s)", self.selection.engine, f.rules().len()),
        }
    }

    /// Runs `f` with every signal blocked when the driver starts threads of its own (see
    /// `block_signals`).
    pub(super) fn guarded<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.block_signals {
            abi::with_signals_blocked(f)
        } else {
            f()
        }
    }
}

/// How the engine's inline path served requests so far (zeros before the engine starts).
pub fn inline_stats() -> driver::InlineStats {
    current().map(|rt| rt.driver.inline_stats()).unwrap_or_default()
}

/// Requests in flight in this process (queued and not yet completed).
pub fn in_flight() -> usize {
    current().map_or(0, |rt| rt.state().reqs.len())
}
