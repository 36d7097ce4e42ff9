//! POSIX AIO (`<aio.h>`) on a real asynchronous engine.
//!
//! glibc implements `aio_read` and friends with threads doing blocking `pread`/`pwrite`, one
//! request at a time per file descriptor. This module keeps glibc's API and ABI — the same
//! `struct aiocb`, results in its `__error_code` and `__return_value` fields — and runs the
//! requests on a [`Driver`]: io_uring when the kernel allows it, else kernel AIO (with its thread
//! pool for buffered files), else the pool ([`driver::select_shared`]; `AIO_ENGINE` forces one).
//! Many requests on one descriptor are in flight at once.
//!
//! The functions here take the C structures by raw pointer and report errors as `Err(errno)`;
//! the `libposixaio.so` C library wraps them into `-1` and `errno`.
//!
//! # How requests progress
//!
//! A request is submitted to the kernel when it is queued (`aio_read`, `aio_write`,
//! `aio_fsync`; `lio_listio` submits its whole list at once), and the submitting thread takes
//! the completions that are ready in the same call to the driver (an io_uring read of cached
//! data is done by then). Before that, a small read or write of cached data is tried in the
//! submitting thread with `RWF_NOWAIT` (the inline path, [`Driver::try_now_raw`]): served there,
//! it never enters the engine's table. A read or write of 128 KiB or more of a buffered file
//! goes to the kernel's workers instead of being copied inside that call, so a submission
//! returns in about the same time whatever its size. Completions are then taken, one thread at
//! a time, by the threads that wait (`aio_suspend`, `lio_listio(LIO_WAIT)`, `aio_cancel`) and by
//! the submitters; `aio_error` and `aio_return` only read the status, as they must to be
//! async-signal-safe. One helper thread takes them when no one else does: while requests that
//! want a signal or a thread (`SIGEV_SIGNAL`, `SIGEV_THREAD`, `SIGEV_THREAD_ID`) are in flight,
//! and when a program polls `aio_error` without waiting for a while (50 µs). It runs while
//! requests are in flight and exits a second after the last. It, and any thread the driver
//! starts (the pool's), block every signal, as glibc's helper threads do, so the program's
//! signals go to the program's threads.
//!
//! A waiting thread looks at the statuses with every signal blocked and waits with its own
//! mask installed atomically for the wait (`io_uring_enter` with a signal mask, `ppoll`): a
//! signal the program lets in ends the wait (`EINTR`) whenever it arrives — none is handled
//! between a look and a wait that then goes on for good.
//!
//! # Semantics
//!
//! POSIX's, and glibc's answers where POSIX leaves room, except where this library answers
//! differently on purpose: a never-submitted aiocb, `aio_return` before completion, bad
//! sigevents and null aiocbs refused, `aio_cancel` of a read still waiting on a pipe or socket,
//! `SIGEV_THREAD_ID`, requests inherited across `fork`, [`AIO_MAX`] and [`AIO_LISTIO_MAX`]. The
//! specification — every rule, each deliberate difference from glibc with its reason, the
//! limits — is `docs/posix.md` in the repository; the C suite in `posixaio/tests/` checks it
//! against glibc line by line.
//!
//! Invariants the code keeps: `aio_error` and `aio_return` take no lock, allocate and free
//! nothing and start no thread, so a signal handler may call them; a completion's status is
//! final before its notification is sent; a request reported cancelled moved no byte, and when
//! `aio_cancel` answers, every status it speaks for is final; a request belongs to the process,
//! not to the thread that submitted it.

use std::cell::{OnceCell, UnsafeCell};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::deadline::{deadline, left};
use crate::driver::{self, CancelOutcome, Completion, Driver, RawIo, Request, Selection};
use crate::flags::{IoClass, IoPriority};
use crate::stats::{StatOp, Stats};
use crate::sys::posix::{self as abi, aiocb, aioinit, sigevent, sigval, SignalsBlocked};
use crate::EventFd;

/// Most entries in one `lio_listio` call.
pub const AIO_LISTIO_MAX: usize = 1 << 16;
/// Most requests in flight at once.
pub const AIO_MAX: usize = 1 << 16;

/// An errno, as the POSIX functions report it.
pub type Errno = i32;

/// What to do when a request (or a `lio_listio` list) completes.
#[derive(Clone, Copy)]
enum Notify {
    None,
    Signal {
        signo: i32,
        value: sigval,
    },
    ThreadId {
        signo: i32,
        value: sigval,
        tid: libc::pid_t,
    },
    Thread {
        function: unsafe extern "C" fn(sigval),
        value: sigval,
        attributes: *mut libc::pthread_attr_t,
    },
}

// SAFETY: the pointers are the program's (its sigev_value and thread attributes), carried to the
// thread that delivers the notification, as glibc does.
unsafe impl Send for Notify {}

impl Notify {
    /// Checks a `struct sigevent`.
    fn parse(ev: &sigevent) -> Result<Notify, Errno> {
        Ok(match ev.sigev_notify {
            abi::SIGEV_NONE => Notify::None,
            abi::SIGEV_SIGNAL | abi::SIGEV_THREAD_ID => {
                if ev.sigev_signo < 0 || ev.sigev_signo > libc::SIGRTMAX() {
                    return Err(libc::EINVAL);
                }
                // Signal 0 is no signal: a zeroed aiocb asks for nothing, as with glibc.
                if ev.sigev_signo == 0 {
                    return Ok(Notify::None);
                }
                if ev.sigev_notify == abi::SIGEV_SIGNAL {
                    Notify::Signal { signo: ev.sigev_signo, value: ev.sigev_value }
                } else {
                    // SAFETY: for SIGEV_THREAD_ID the union holds the thread id.
                    let tid = unsafe { ev.sigev_un.tid };
                    if tid <= 0 || !abi::is_own_thread(tid) {
                        return Err(libc::EINVAL);
                    }
                    Notify::ThreadId { signo: ev.sigev_signo, value: ev.sigev_value, tid }
                }
            }
            abi::SIGEV_THREAD => {
                // SAFETY: for SIGEV_THREAD the union holds the function and attributes.
                let t = unsafe { ev.sigev_un.thread };
                match t.function {
                    Some(function) => {
                        Notify::Thread { function, value: ev.sigev_value, attributes: t.attributes }
                    }
                    None => return Err(libc::EINVAL),
                }
            }
            _ => return Err(libc::EINVAL),
        })
    }

    fn is_async(&self) -> bool {
        !matches!(self, Notify::None)
    }

    /// Delivers the notification. Errors cannot be reported to anyone; they are ignored, as
    /// glibc ignores them.
    fn deliver(self) {
        match self {
            Notify::None => {}
            Notify::Signal { signo, value } => {
                let _ = abi::queue_asyncio_signal(signo, value, None);
            }
            Notify::ThreadId { signo, value, tid } => {
                let _ = abi::queue_asyncio_signal(signo, value, Some(tid));
            }
            Notify::Thread { function, value, attributes } => {
                // SAFETY: the program gave this function and attributes for SIGEV_THREAD.
                let _ = unsafe { abi::start_notify_thread(function, value, attributes) };
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Fsync,
    Fdatasync,
    /// A `lio_listio` entry with an opcode that is not `LIO_READ`, `LIO_WRITE` or `LIO_NOP`.
    Invalid,
}

impl Kind {
    fn stat_op(self) -> StatOp {
        match self {
            Kind::Read => StatOp::Read,
            Kind::Write => StatOp::Write,
            Kind::Fsync => StatOp::Fsync,
            Kind::Fdatasync => StatOp::Fdatasync,
            Kind::Invalid => StatOp::Other,
        }
    }
}

struct Req {
    cb: *mut aiocb,
    fd: i32,
    kind: Kind,
    seq: u64,
    notify: Notify,
    list: Option<usize>,
    /// Whether `aio_cancel` asked the driver to cancel it: only then is an `ECANCELED`
    /// completion the request's end (see [`Engine::progress`]).
    cancel_requested: bool,
    /// The descriptor has no file position (a socket, a pipe, …): the offset is ignored, as
    /// glibc's `read`/`write` fallback does. Learnt from an `ESPIPE`.
    stream: bool,
}

// SAFETY: `cb` is the program's aiocb; the engine writes its status from whichever thread
// processes the completion, as glibc's worker threads do.
unsafe impl Send for Req {}

#[derive(Default)]
struct FdState {
    /// Sequence numbers of writes in flight.
    writes: BTreeSet<u64>,
    /// Fsyncs held until the writes queued before them complete: (sequence, request key).
    fsyncs: Vec<(u64, usize)>,
}

struct List {
    /// Members not yet complete, plus one while the list is being queued.
    remaining: usize,
    notify: Notify,
}

#[derive(Default)]
struct State {
    reqs: Slab<Req>,
    /// In-flight requests by aiocb address.
    fds: HashMap<i32, FdState, BuildHasherDefault<FdHasher>>,
    lists: Slab<List>,
    /// Requests the driver could not take yet (it was full), by key.
    backlog: VecDeque<usize>,
    seq: u64,
    /// In-flight requests and lists that want a signal or a thread.
    async_notify: usize,
    /// Calls of `aio_cancel` waiting for the requests they cancelled to complete.
    cancelling: usize,
    /// While there are: the sequence numbers of requests that ended cancelled.
    cancelled: Vec<u64>,
}

impl State {
    /// The request `cb` belongs to, if it is in flight here.
    fn key_of(&self, cb: *const aiocb) -> Option<usize> {
        // SAFETY: callers pass aiocbs the program vouched for (readable).
        let key = unsafe { abi::aiocb_key(cb) };
        self.reqs.get(key).filter(|r| r.cb.cast_const() == cb).map(|_| key)
    }

    fn in_flight(&self, cb: *const aiocb) -> bool {
        self.key_of(cb).is_some()
    }
}

/// A hasher for descriptor numbers: they are small and distinct, so the number is the hash.
#[derive(Default)]
struct FdHasher(u64);

impl Hasher for FdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_i32(&mut self, n: i32) {
        self.0 = n as u32 as u64;
    }
}

/// The process-wide engine.
struct Engine {
    driver: Arc<dyn Driver>,
    selection: Selection,
    /// Fault rules from `AIO_FAULT`, applied by the driver.
    faults: Option<Arc<crate::faults::Faults>>,
    state: Mutex<State>,
    /// Bumped after every batch of completions is processed, and whenever a thread stops
    /// reaping; threads waiting for someone else's progress sleep until it moves.
    generation: AtomicU32,
    /// The wake descriptors of the threads asleep until `generation` moves (see `sleep`).
    sleepers: Mutex<Vec<RawFd>>,
    /// How many there are (read without the lock).
    sleeping: AtomicU32,
    /// Whether a thread is taking completions from the driver. One at a time: a thread that
    /// finds another reaping leaves it to that one (which processes every completion, whoever
    /// it is for) and sleeps until `generation` moves, so no completion is taken from under a
    /// thread waiting in the driver for it.
    reaping: AtomicBool,
    /// Whether requests wait in `State::backlog` (read without the lock).
    backlogged: AtomicBool,
    /// Whether the thread reaping completed a request since it took the role.
    completed: AtomicBool,
    /// Completions taken from the driver: used only by the thread reaping (`reaping` set),
    /// the vectors kept from one call to the next.
    completions: ReaperVec,
    helper: Helper,
    /// When `aio_error` or `aio_return` first saw a request in progress with no thread taking
    /// completions (nanoseconds on the monotonic clock; 0: not since someone last did).
    polled_since: AtomicU64,
    /// Whether the driver starts threads of its own when requests are queued (the pool, and
    /// kernel AIO's pool for buffered files): they are queued with every signal blocked, so
    /// those threads never take the program's signals.
    block_signals: bool,
}

/// The helper thread: takes completions while requests that want a signal or a thread are in
/// flight (the program may call nothing meanwhile), and when asked by `aio_error` or
/// `aio_return` — which must not take completions themselves (a signal handler may call them)
/// — for a program that polls without waiting. It blocks every signal, runs while requests
/// are in flight, and exits [`HELPER_IDLE`] after the last one.
struct Helper {
    /// Whether the thread runs; changed under `lock`.
    alive: AtomicBool,
    lock: Mutex<()>,
    /// Written to wake it (asked by a poller, or a notification is due).
    kick: EventFd,
    /// Whether it sleeps waiting for a kick (so a kick is worth a write).
    idle: AtomicBool,
}

/// The role of the thread that takes completions from the driver (`Engine::reaping`), held
/// while it lives.
struct Reaper<'a>(&'a Engine);

impl Reaper<'_> {
    /// Starts what was queued and takes the completions that are ready, in one call to the
    /// driver (an io_uring read of cached data completes in the submitting system call, so its
    /// status is final when `aio_read` returns). False if that failed: then flush.
    fn flush_and_poll(&mut self) -> bool {
        let engine = self.0;
        engine.progress(self, Take::FlushReady).is_ok()
    }

    /// The vectors completions are taken into: the role's alone (see `Engine::completions`).
    fn vectors(&mut self) -> &mut ReaperVecs {
        // SAFETY: only the thread holding the role (this `Reaper`, borrowed mutably) touches
        // the vectors; they are not used across the notifications delivered after processing
        // (a handler they run cannot take the role while it is held).
        unsafe { &mut *self.0.completions.0.get() }
    }

    /// Completions as the driver gives them.
    fn completions(&mut self) -> &mut Vec<Completion> {
        &mut self.vectors().completions
    }

    /// Completions of raw requests: `(user_data, res)`.
    fn raw_completions(&mut self) -> &mut Vec<(u64, i64)> {
        &mut self.vectors().raw
    }
}

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        let engine = self.0;
        engine.reaping.store(false, Ordering::SeqCst);
        // Let a sleeper see what was processed, or take over the reaping. A sleeper counts
        // itself, then looks at `reaping` again before it sleeps (see `wait_until`): if it
        // counted itself too late to be seen here, it sees the role free.
        // (Looked at before it is cleared: a swap would write the line every time.)
        if (engine.completed.load(Ordering::Relaxed)
            && engine.completed.swap(false, Ordering::SeqCst))
            || engine.sleeping.load(Ordering::SeqCst) > 0
        {
            engine.bump();
        }
    }
}

/// What [`Engine::progress`] takes from the driver.
#[derive(Clone, Copy)]
enum Take {
    /// The completions that are ready (`Driver::poll`).
    Ready,
    /// Those, after starting what is queued (`Driver::reap` without waiting).
    FlushReady,
}

/// The reaper's vectors of completions (see `Engine::completions`).
struct ReaperVec(UnsafeCell<ReaperVecs>);

#[derive(Default)]
struct ReaperVecs {
    completions: Vec<Completion>,
    raw: Vec<(u64, i64)>,
}

// SAFETY: the vectors are only touched by the one thread that holds the engine's `reaping` flag
// (taken with Acquire, given back with Release), so accesses never overlap and each sees the
// previous holder's writes; completions are handed between threads by the drivers already.
unsafe impl Sync for ReaperVec {}

/// Most completions taken from the driver in one call.
const REAP_MAX: usize = 256;

/// How long the helper stays with no request in flight, before it exits.
const HELPER_IDLE: Duration = Duration::from_secs(1);

/// How long a request may be seen in progress by `aio_error`/`aio_return`, with no thread
/// taking completions, before the helper is asked to take them: a program that polls and then
/// waits (fio does) never needs it; one that only polls gets its completions this late at most.
const POLL_GRACE_NS: u64 = 50_000;

/// How long the helper, asked by a poller, waits for a completion before it goes back to sleep.
const HELPER_SLICE: Duration = Duration::from_millis(20);

/// How long a thread waits before it looks again after the driver failed to wait (which it
/// should not do): no wait is a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

static ENGINE: AtomicPtr<Engine> = AtomicPtr::new(std::ptr::null_mut());
static ENGINE_INIT: Mutex<()> = Mutex::new(());
static CONFIG: Mutex<Option<aioinit>> = Mutex::new(None);
static AT_FORK: Once = Once::new();
/// Counts the forks this process descends from since the engine first started (in the child):
/// an aiocb stamped with an older count was submitted by a parent, and never completes here.
static FORK_STAMP: AtomicU32 = AtomicU32::new(0);
/// What the engine did (`AIO_STATS=1`: printed at exit).
static STATS: Stats = Stats::new();

extern "C" fn print_stats() {
    let p = ENGINE.load(Ordering::Acquire);
    let engine = if p.is_null() {
        "no engine".to_string()
    } else {
        // SAFETY: engines are leaked boxes, never freed.
        unsafe { &*p }.description()
    };
    STATS.print("libposixaio", &engine);
}

static STATS_AT_EXIT: AtomicBool = AtomicBool::new(false);

extern "C" fn forget_engine_in_child() {
    // The parent's requests are not the child's: leave the engine (and its driver) behind,
    // never touching it, and build a fresh one on first use.
    ENGINE.store(std::ptr::null_mut(), Ordering::SeqCst);
    FORK_STAMP.fetch_add(1, Ordering::SeqCst);
    STATS.reset();
}

#[inline]
fn engine() -> Result<&'static Engine, Errno> {
    let p = ENGINE.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: engines are leaked boxes, never freed.
        return Ok(unsafe { &*p });
    }
    start_engine()
}

#[cold]
fn start_engine() -> Result<&'static Engine, Errno> {
    let _init = lock(&ENGINE_INIT);
    let p = ENGINE.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: as above.
        return Ok(unsafe { &*p });
    }
    AT_FORK.call_once(|| {
        // SAFETY: registers a child handler that only stores to an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(forget_engine_in_child)) };
    });
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
    let (driver, selection) =
        driver::select_shared(&opts).map_err(|e| e.raw_os_error().unwrap_or(libc::EAGAIN))?;
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
        // SAFETY: registers a handler that only reads counters and writes one line.
        unsafe { libc::atexit(print_stats) };
    }
    let block_signals = selection.engine != driver::Engine::Uring;
    let kick = EventFd::new().map_err(|e| e.raw_os_error().unwrap_or(libc::EAGAIN))?;
    let engine = Box::leak(Box::new(Engine {
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
        completions: ReaperVec(UnsafeCell::new(ReaperVecs {
            completions: Vec::with_capacity(REAP_MAX),
            raw: Vec::with_capacity(REAP_MAX),
        })),
        helper: Helper {
            alive: AtomicBool::new(false),
            lock: Mutex::new(()),
            kick,
            idle: AtomicBool::new(false),
        },
        polled_since: AtomicU64::new(0),
    }));
    ENGINE.store(engine, Ordering::Release);
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
    engine().map(|e| e.selection.clone())
}

impl Engine {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The engine for the statistics line: `uring`, `pool`, …, and the fault rules if any.
    fn description(&self) -> String {
        match &self.faults {
            None => self.selection.engine.to_string(),
            Some(f) => format!("{} with {} fault rule(s)", self.selection.engine, f.rules().len()),
        }
    }

    /// Queues one request (the state lock held), its fields `f` as read from `cb`. With the
    /// reaper's role, starts it at once and processes the completions that are ready (see
    /// `queue_locked`). `Err(EAGAIN)` if there is no room; other failures complete the request
    /// with the error.
    #[allow(clippy::too_many_arguments)]
    fn submit_locked(
        &self,
        st: &mut State,
        cb: *mut aiocb,
        f: &abi::AiocbFields,
        kind: Kind,
        notify: Notify,
        list: Option<usize>,
        done: &mut Done,
        reaper: Option<&mut Reaper<'_>>,
    ) -> Result<(), Errno> {
        if st.in_flight(cb) {
            STATS.refused();
            return Err(libc::EINVAL);
        }
        if st.reqs.len() >= AIO_MAX {
            STATS.refused();
            // SAFETY: valid, and not in flight: its status is ours to set (as glibc does).
            unsafe { abi::aiocb_set_status(cb, -1, libc::EAGAIN) };
            return Err(libc::EAGAIN);
        }
        st.seq += 1;
        let seq = st.seq;
        let key = st.reqs.insert(Req {
            cb,
            fd: f.fildes,
            kind,
            seq,
            notify,
            list,
            cancel_requested: false,
            stream: false,
        });
        // SAFETY: valid, and ours to write from now until the request completes.
        unsafe {
            abi::aiocb_set_key(cb, key);
            abi::aiocb_set_stamp(cb, FORK_STAMP.load(Ordering::Relaxed));
            abi::aiocb_set_owner(cb);
        }
        if notify.is_async() {
            st.async_notify += 1;
        }
        if let Some(l) = list {
            st.lists[l].remaining += 1;
        }
        STATS.request(kind.stat_op(), false);
        // SAFETY: `cb` is valid and ours to write until the request completes.
        unsafe { abi::aiocb_set_status(cb, 0, libc::EINPROGRESS) };
        match kind {
            Kind::Invalid => {
                self.finish_locked(st, key, -i64::from(libc::EINVAL), done);
                return Ok(());
            }
            Kind::Write => {
                st.fds.entry(f.fildes).or_default().writes.insert(seq);
            }
            Kind::Fsync | Kind::Fdatasync => {
                let fd = st.fds.entry(f.fildes).or_default();
                if fd.writes.first().is_some_and(|&w| w < seq) {
                    // Earlier writes are in flight: sync after them.
                    fd.fsyncs.push((seq, key));
                    return Ok(());
                }
            }
            Kind::Read => {}
        }
        self.queue_locked(st, key, f, done, reaper);
        Ok(())
    }

    /// Hands request `key` (its aiocb's fields `f`) to the driver, or to the backlog if the
    /// driver is full. With the reaper's role, in the same call to the driver it starts the
    /// request and takes the completions that are ready, and processes them: the status of a
    /// read of cached data is final when `aio_read` returns, for one lock and one system call.
    fn queue_locked(
        &self,
        st: &mut State,
        key: usize,
        f: &abi::AiocbFields,
        done: &mut Done,
        reaper: Option<&mut Reaper<'_>>,
    ) {
        let req = &st.reqs[key];
        if f.fildes < 0 {
            // No descriptor at all: what the kernel would answer, without asking any driver.
            self.finish_locked(st, key, -i64::from(libc::EBADF), done);
            return;
        }
        if matches!(req.kind, Kind::Read | Kind::Write) && f.nbytes > abi::MAX_RW_COUNT {
            // Longer than one transfer: the engines would shorten it before the kernel could
            // check the whole range (a bad one would become a valid transfer of its first
            // bytes, past the end of the program's buffer). The kernel's answer for the whole
            // range, as pread and pwrite give it: EFAULT, EINVAL, or go on (and be short).
            if let Err(errno) =
                abi::check_user_range(f.buf as usize, f.nbytes, req.kind == Kind::Write)
            {
                self.finish_locked(st, key, -i64::from(errno), done);
                return;
            }
        }
        // Without a file position, the offset means nothing (glibc falls back to read and
        // write): 0 is what every engine takes for such a descriptor.
        let offset = if req.stream { 0 } else { f.offset as u64 };
        let ioprio = (f.reqprio > 0).then(|| {
            // A higher aio_reqprio means a lower priority: best-effort levels 5 to 7 (4, the
            // default, is what 0 gets).
            let level = 4 + (f.reqprio * 3 + abi::AIO_PRIO_DELTA_MAX - 1) / abi::AIO_PRIO_DELTA_MAX;
            IoPriority::new(IoClass::BestEffort, level.min(7) as u8)
        });
        let io = |write| RawIo {
            write,
            fd: f.fildes,
            ptr: f.buf.cast(),
            len: f.nbytes,
            offset,
            ioprio,
            user_data: key as u64,
        };
        let queued = match (req.kind, reaper) {
            (Kind::Read | Kind::Write, Some(reaper)) => {
                let io = io(req.kind == Kind::Write);
                let out = reaper.raw_completions();
                out.clear();
                // SAFETY: the program promises the buffer stays valid until the request
                // completes (POSIX: the aiocb and its buffer must not be touched meanwhile).
                let reaped =
                    self.guarded(|| unsafe { self.driver.queue_raw_and_reap(io, REAP_MAX, out) });
                reaped.map(|reaped| {
                    done.polled = true;
                    // Starting failed (no resources): flush again once the lock is released.
                    done.flush |= reaped.is_err();
                    self.process_locked(st, out.iter().copied(), done);
                    out.clear();
                })
            }
            (kind, _) => {
                let request = match kind {
                    // SAFETY: as above.
                    Kind::Read | Kind::Write => unsafe { io(kind == Kind::Write).into_request() },
                    Kind::Fsync => Request::fsync(f.fildes, key as u64),
                    Kind::Fdatasync => Request::fdatasync(f.fildes, key as u64),
                    Kind::Invalid => unreachable!("completed at submission"),
                };
                self.guarded(|| self.driver.queue(request)).map_err(|r| r.error)
            }
        };
        match queued {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                st.backlog.push_back(key);
                self.backlogged.store(true, Ordering::Release);
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
                self.finish_locked(st, key, -i64::from(errno), done);
            }
        }
    }

    /// Records a completion: the aiocb's status, the fd's write ordering, the list, and the
    /// notifications to deliver once the lock is released.
    fn finish_locked(&self, st: &mut State, key: usize, res: i64, done: &mut Done) {
        done.completed = true;
        let Some(req) = st.reqs.try_remove(key) else { return };
        STATS.done(res);
        if req.cancel_requested && res == -i64::from(libc::ECANCELED) && st.cancelling > 0 {
            st.cancelled.push(req.seq);
        }
        let (ret, err) = if res < 0 { (-1, (-res) as i32) } else { (res as isize, 0) };
        if req.kind == Kind::Read && res > 0 {
            // memcheck cannot see the kernel fill the buffer through a ring (nothing natively).
            // SAFETY: the aiocb is valid until its request completes, which is now.
            let buf = unsafe { (*req.cb).aio_buf };
            crate::sys::valgrind::mark_defined(buf.cast(), res as usize);
        }
        // SAFETY: the aiocb is valid until its request completes, which is now.
        unsafe { abi::aiocb_set_status(req.cb, ret, err) };
        if req.notify.is_async() {
            st.async_notify -= 1;
            done.notes.push(req.notify);
        }
        if let Some(l) = req.list {
            self.list_member_done(st, l, done);
        }
        if req.kind == Kind::Write {
            let mut release = Vec::new();
            if let Some(fd) = st.fds.get_mut(&req.fd) {
                fd.writes.remove(&req.seq);
                let first = fd.writes.first().copied().unwrap_or(u64::MAX);
                fd.fsyncs.retain(|&(seq, k)| {
                    if seq < first {
                        release.push(k);
                        false
                    } else {
                        true
                    }
                });
                if fd.writes.is_empty() && fd.fsyncs.is_empty() {
                    st.fds.remove(&req.fd);
                }
            }
            for k in release {
                self.requeue_locked(st, k, done);
            }
        }
    }

    /// Queues request `key` again (released after the writes before it, waiting for room, or
    /// cancelled by the kernel without running), to be started by the flush after the lock.
    fn requeue_locked(&self, st: &mut State, key: usize, done: &mut Done) {
        // SAFETY: the request's aiocb is valid while it is in flight (the C API contract).
        let f = unsafe { abi::aiocb_fields(st.reqs[key].cb) };
        self.queue_locked(st, key, &f, done, None);
        done.flush = true;
    }

    /// Runs `f` with every signal blocked when the driver starts threads of its own (see
    /// `block_signals`).
    fn guarded<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.block_signals {
            abi::with_signals_blocked(f)
        } else {
            f()
        }
    }

    fn list_member_done(&self, st: &mut State, l: usize, done: &mut Done) {
        let list = &mut st.lists[l];
        list.remaining -= 1;
        if list.remaining == 0 {
            let list = st.lists.remove(l);
            if list.notify.is_async() {
                st.async_notify -= 1;
                done.notes.push(list.notify);
            }
        }
    }

    /// Takes completions from the driver as `take` says and processes them, up to
    /// [`REAP_MAX`]. Returns how many. Only the thread reaping calls it (it holds `reaper`).
    fn progress(&self, reaper: &mut Reaper<'_>, take: Take) -> io::Result<usize> {
        let completions = reaper.completions();
        completions.clear();
        let n = match take {
            Take::Ready => self.driver.poll(REAP_MAX, completions)?,
            Take::FlushReady => self.driver.reap(0, REAP_MAX, Some(Duration::ZERO), completions)?,
        };
        if n == 0 && !self.backlogged.load(Ordering::Acquire) {
            return Ok(0);
        }
        let mut done = Done::default();
        self.process_locked(
            &mut self.state(),
            completions.iter().map(|c| (c.user_data, c.res)),
            &mut done,
        );
        completions.clear();
        // The reaper wakes the sleepers when it stops reaping.
        if done.finish(self) {
            self.completed.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }

    /// Processes completions taken from the driver, then queues what waited for room.
    fn process_locked(
        &self,
        st: &mut State,
        completions: impl Iterator<Item = (u64, i64)>,
        done: &mut Done,
    ) {
        for (user_data, res) in completions {
            let key = user_data as usize;
            let uncalled = st.reqs.get(key).is_some_and(|r| !r.cancel_requested);
            if res == -i64::from(libc::ECANCELED) && uncalled {
                // Cancelled by no one here: io_uring cancels the requests a thread submitted
                // when that thread exits (any thread's io_uring_enter submits what others
                // queued, too). The request never ran: submit it again, from this thread, so
                // it outlives its submitter as POSIX requires.
                self.requeue_locked(st, key, done);
                continue;
            }
            if res == -i64::from(libc::ESPIPE) {
                if let Some(req) = st.reqs.get_mut(key).filter(|r| !r.stream) {
                    if matches!(req.kind, Kind::Read | Kind::Write) {
                        // A descriptor without file positions (a socket): nothing moved. Again
                        // without the offset, as glibc's read/write fallback does.
                        req.stream = true;
                        self.requeue_locked(st, key, done);
                        continue;
                    }
                }
            }
            self.finish_locked(st, key, res, done);
        }
        if !self.backlogged.load(Ordering::Acquire) {
            return;
        }
        // Room was made: queue what waited for it.
        while let Some(key) = st.backlog.pop_front() {
            let before = st.backlog.len();
            self.requeue_locked(st, key, done);
            if st.backlog.len() > before {
                break;
            }
        }
        self.backlogged.store(!st.backlog.is_empty(), Ordering::Release);
    }

    /// Becomes the thread that reaps, unless another one is (`None`). Dropping the role wakes
    /// the sleepers, so one of them can take it over.
    fn reaper(&self) -> Option<Reaper<'_>> {
        // (`then`, not `then_some`: a Reaper made and dropped for nothing would give up the
        // role of the thread that holds it.)
        (!self.reaping.swap(true, Ordering::AcqRel)).then(|| Reaper(self))
    }

    /// Takes the completions that are ready, unless another thread is reaping (it will).
    fn poll(&self) {
        if let Some(mut reaper) = self.reaper() {
            let _ = self.progress(&mut reaper, Take::Ready);
        }
    }

    /// Waits until `ready()` or `deadline`: one thread waits in the driver, others sleep until
    /// it has processed something. `Err(EINTR)` if a signal arrives, `Err(EAGAIN)` on timeout.
    ///
    /// Every look happens with signals blocked, and every wait installs the caller's own mask
    /// atomically for its duration: a signal the program lets in either arrives during a wait
    /// (which ends with `EINTR`) or is pending when the next wait starts (which then ends at
    /// once) — it is never handled between a look and a wait that then goes on for good. The
    /// handler runs when the mask comes back, before this returns.
    fn wait_until(&self, deadline: Option<Instant>, ready: impl Fn() -> bool) -> Result<(), Errno> {
        let blocked = SignalsBlocked::all();
        let mask = blocked.original();
        // Someone waits: a poller's request needs no helper (see `nudge`).
        self.polled_since.store(0, Ordering::Relaxed);
        loop {
            self.poll();
            // Loaded before looking: what is processed after the look moves it.
            let generation = self.generation.load(Ordering::SeqCst);
            if ready() {
                return Ok(());
            }
            let left = left(deadline);
            if left == Some(Duration::ZERO) {
                return Err(libc::EAGAIN);
            }
            let waited = match self.reaper() {
                Some(mut reaper) => {
                    // Looked at again: the previous reaper may have processed what this
                    // thread waits for between its last look and taking over.
                    if ready() {
                        return Ok(());
                    }
                    let waited = self.driver.wait_ready(left, Some(mask));
                    if waited.is_ok() {
                        // Everything that is ready, not one batch: the wait may have reset
                        // the driver's readiness (the default `wait_ready` reads its
                        // eventfd), and completions a batch left behind would then not end
                        // the next wait — which, for requests that end no other way
                        // (cancelled pipe reads), would never end.
                        while let Ok(REAP_MAX) = self.progress(&mut reaper, Take::FlushReady) {}
                    }
                    waited
                }
                None => self.sleep(generation, left, mask),
            };
            match waited {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(libc::EINTR),
                Err(_) => std::thread::sleep(RETRY_PAUSE),
                Ok(()) => {}
            }
        }
    }

    /// Sleeps until `generation` moves from `seen` (another thread processed completions, or
    /// stopped reaping), `timeout`, or a signal the thread's own `mask` lets in. Each sleeping
    /// thread waits on a wake descriptor of its own, written by `bump`, with `ppoll` and the
    /// mask installed atomically.
    fn sleep(&self, seen: u32, timeout: Option<Duration>, mask: &libc::sigset_t) -> io::Result<()> {
        thread_local! {
            static WAKE: OnceCell<Option<EventFd>> = const { OnceCell::new() };
        }
        WAKE.with(|wake| {
            let Some(efd) = wake.get_or_init(|| EventFd::new().ok()) else {
                // No descriptor to spare: look again soon rather than sleep blind.
                std::thread::sleep(RETRY_PAUSE);
                return Ok(());
            };
            let fd = efd.as_raw_fd();
            lock(&self.sleepers).push(fd);
            self.sleeping.fetch_add(1, Ordering::SeqCst);
            // Registered first, then looked: a bump from now on writes this descriptor.
            let moved = self.generation.load(Ordering::SeqCst) != seen;
            let r = if moved || !self.reaping.load(Ordering::SeqCst) {
                // Processed meanwhile, or the reaper left before it could see this thread:
                // look again (and take over).
                Ok(0)
            } else {
                let mut fds = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
                crate::sys::fs::ppoll(&mut fds, timeout, Some(mask))
            };
            self.sleeping.fetch_sub(1, Ordering::SeqCst);
            {
                let mut sleepers = lock(&self.sleepers);
                if let Some(pos) = sleepers.iter().position(|&f| f == fd) {
                    sleepers.swap_remove(pos);
                }
            }
            let _ = efd.read();
            r.map(drop)
        })
    }

    /// Tells the threads asleep in `sleep` that something changed.
    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            for &fd in lock(&self.sleepers).iter() {
                // SAFETY: a sleeper's descriptor stays open while it is in the list (it leaves
                // the list before its thread can exit and close it).
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let _ = crate::sys::fs::eventfd_write(fd, 1);
            }
        }
    }

    /// Called by `aio_error` and `aio_return` when they see a request in progress; must be
    /// async-signal-safe (no lock, no allocation): atomics, the clock and one `write`. When
    /// no thread is taking completions and the program has been polling for a while, asks the
    /// helper to take them.
    fn nudge(&self) {
        if self.reaping.load(Ordering::Relaxed) {
            return;
        }
        let now = abi::monotonic_ns().max(1);
        let since = self.polled_since.load(Ordering::Relaxed);
        if since == 0 {
            let _ =
                self.polled_since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            return;
        }
        if now.saturating_sub(since) >= POLL_GRACE_NS {
            self.kick_helper();
        }
    }

    /// Wakes the helper if it sleeps (async-signal-safe).
    fn kick_helper(&self) {
        if self.helper.idle.swap(false, Ordering::AcqRel) {
            let _ = self.helper.kick.write(1);
        }
    }

    /// Makes sure the helper runs, after a request was accepted that did not complete at once:
    /// a poller may need it, and a notification (`notify`) will. Decided under the helper's
    /// lock, as its exit is: a request counted before this call is seen by the helper, or the
    /// helper is gone and this starts another.
    fn need_helper(&'static self, notify: bool) {
        // Always under the lock (uncontended: one atomic exchange): a helper deciding to exit
        // looks at the requests under it too, so it either sees this one or is gone before
        // this looks.
        let _lock = lock(&self.helper.lock);
        if self.helper.alive.load(Ordering::Acquire) {
            if notify {
                self.kick_helper();
            }
            return;
        }
        // Started with every signal blocked, so it never takes the program's signals.
        let spawned = abi::with_signals_blocked(|| {
            std::thread::Builder::new().name("aio-notify".into()).spawn(move || self.helper_loop())
        });
        if spawned.is_ok() {
            self.helper.alive.store(true, Ordering::Release);
        }
    }

    /// The helper (see [`Helper`]).
    fn helper_loop(&self) {
        let mut idle_since = Instant::now();
        loop {
            if self.state().async_notify > 0 {
                idle_since = Instant::now();
                let until = deadline(Some(Duration::from_millis(200)));
                let _ = self.wait_until(until, || self.state().async_notify == 0);
                continue;
            }
            // Sleep until kicked: by a poller (take completions for it) or a submitter whose
            // request wants a notification.
            self.helper.idle.store(true, Ordering::SeqCst);
            let kicked = if self.state().async_notify > 0 {
                true
            } else {
                let wait = HELPER_IDLE.saturating_sub(idle_since.elapsed()).max(RETRY_PAUSE);
                self.helper.kick.wait(Some(wait)).unwrap_or(false)
            };
            self.helper.idle.store(false, Ordering::SeqCst);
            if kicked {
                let _ = self.helper.kick.read();
                idle_since = Instant::now();
                let seen = self.generation.load(Ordering::SeqCst);
                let until = deadline(Some(HELPER_SLICE));
                let _ = self.wait_until(until, || self.generation.load(Ordering::SeqCst) != seen);
                continue;
            }
            let busy = { !self.state().reqs.is_empty() };
            if busy {
                idle_since = Instant::now();
                continue;
            }
            if idle_since.elapsed() >= HELPER_IDLE {
                // Decided under the helper's lock (see `need_helper`).
                let _lock = lock(&self.helper.lock);
                if self.state().reqs.is_empty() {
                    self.helper.alive.store(false, Ordering::Release);
                    return;
                }
            }
        }
    }
}

/// What processing completions leaves to do once the state lock is released.
#[derive(Default)]
struct Done {
    notes: Vec<Notify>,
    flush: bool,
    /// Whether the reaper started the request and took what was ready (`queue_locked`).
    polled: bool,
    /// Whether a request completed (its status changed): threads sleeping on `generation`
    /// must look.
    completed: bool,
}

impl Done {
    /// Flushes and notifies. Returns whether some request completed, for the caller to wake
    /// the threads sleeping on `generation` (`Engine::bump`) — after it stops reaping, if it
    /// was reaping.
    #[must_use]
    fn finish(self, engine: &Engine) -> bool {
        if self.flush {
            let _ = engine.driver.flush();
        }
        for n in self.notes {
            n.deliver();
        }
        self.completed
    }

    /// [`finish`](Self::finish) for a thread that is not reaping: wakes the sleepers at once.
    fn finish_and_wake(self, engine: &Engine) {
        if self.finish(engine) {
            engine.bump();
        }
    }
}

/// The checks that refuse a request at once: `aio_reqprio` out of range (reads and writes;
/// glibc ignores it for fsync) and a bad `aio_sigevent`. Returns the notification to send.
///
/// # Safety
///
/// `cb` must point at a readable `aiocb` (whose fields `f` are).
unsafe fn check_request(
    cb: *const aiocb,
    f: &abi::AiocbFields,
    kind: Kind,
) -> Result<Notify, Errno> {
    if !matches!(kind, Kind::Fsync | Kind::Fdatasync)
        && (f.reqprio < 0 || f.reqprio > abi::AIO_PRIO_DELTA_MAX)
    {
        return Err(libc::EINVAL);
    }
    // SAFETY: the caller's promise.
    Notify::parse(unsafe { &(*cb).aio_sigevent })
}

impl Engine {
    /// The inline path (see [`Driver::queue_now`]): a small read or write of cached data is
    /// done here, in the submitting thread, without any lock of the engine's — the request
    /// never enters the table. True if it was done (its status is final, its notification
    /// sent); false if it must go the usual way (nothing was changed that it would not redo).
    fn try_now(&self, cb: *mut aiocb, f: &abi::AiocbFields, kind: Kind, notify: Notify) -> bool {
        if f.fildes < 0 || f.nbytes > abi::MAX_RW_COUNT || f.offset < 0 {
            return false;
        }
        // An aiocb still in flight is refused by the usual way (EINVAL), untouched.
        // SAFETY: a valid aiocb (the caller's promise).
        if matches!(unsafe { status_of(cb) }, Some((libc::EINPROGRESS, _))) {
            return false;
        }
        let io = RawIo {
            write: kind == Kind::Write,
            fd: f.fildes,
            ptr: f.buf.cast(),
            len: f.nbytes,
            offset: f.offset as u64,
            ioprio: None,
            user_data: 0,
        };
        // SAFETY: the program promises the buffer stays valid and untouched until the request
        // completes, which it does within this call if it is served.
        let Some(res) = (unsafe { self.driver.try_now_raw(&io) }) else { return false };
        STATS.request(kind.stat_op(), true);
        STATS.result(res);
        // SAFETY: the aiocb is the program's, ours to write now (it is not in flight).
        unsafe {
            abi::aiocb_set_stamp(cb, FORK_STAMP.load(Ordering::Relaxed));
            abi::aiocb_set_owner(cb);
            abi::aiocb_set_status(cb, res as isize, 0);
        }
        notify.deliver();
        true
    }

    /// Records a refusal in the aiocb (`-1` and the errno, as glibc does), unless it belongs to
    /// a request still in flight.
    fn refuse_locked(&self, st: &State, cb: *mut aiocb, errno: Errno) {
        if !st.in_flight(cb) {
            // SAFETY: a valid aiocb (the caller's promise) that no request of ours owns.
            unsafe { abi::aiocb_set_status(cb, -1, errno) };
        }
    }
}

fn submit_one(cb: *mut aiocb, kind: Kind) -> Result<(), Errno> {
    if cb.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: non-null; the caller vouches it is a valid aiocb.
    let f = unsafe { abi::aiocb_fields(cb) };
    let engine = engine()?;
    // SAFETY: as above.
    let notify = match unsafe { check_request(cb, &f, kind) } {
        Ok(n) => n,
        Err(e) => {
            STATS.refused();
            engine.refuse_locked(&engine.state(), cb, e);
            return Err(e);
        }
    };
    if matches!(kind, Kind::Read | Kind::Write) && engine.try_now(cb, &f, kind, notify) {
        return Ok(());
    }
    // Submitting as the reaper, when no one else is: it starts the request and takes what is
    // ready in one go.
    let mut reaper = engine.reaper();
    let mut done = Done::default();
    let (result, pending) = {
        let mut st = engine.state();
        let r =
            engine.submit_locked(&mut st, cb, &f, kind, notify, None, &mut done, reaper.as_mut());
        // Looked at now, while the aiocb is surely the program's still (a notification
        // delivered below may let it go).
        (r, st.in_flight(cb))
    };
    if result.is_ok() && !done.polled {
        // Not started yet (an fsync after writes, no room, or another thread reaping).
        done.flush = !reaper.as_mut().is_some_and(Reaper::flush_and_poll);
    }
    // Stop reaping before the notifications: a handler they run may call in.
    drop(reaper);
    done.finish_and_wake(engine);
    if result.is_ok() && (pending || notify.is_async()) {
        engine.need_helper(notify.is_async());
    }
    result
}

/// `aio_read`: queues a read of `aio_nbytes` bytes at `aio_offset` into `aio_buf`.
///
/// # Safety
///
/// `cb` must be null or point at a valid `aiocb` that, with its buffer, stays valid and
/// untouched until the request completes (as POSIX requires).
pub unsafe fn aio_read(cb: *mut aiocb) -> Result<(), Errno> {
    submit_one(cb, Kind::Read)
}

/// `aio_write`: queues a write of `aio_buf` at `aio_offset` (at the end, if the descriptor has
/// `O_APPEND`).
///
/// # Safety
///
/// As for [`aio_read`].
pub unsafe fn aio_write(cb: *mut aiocb) -> Result<(), Errno> {
    submit_one(cb, Kind::Write)
}

/// `aio_fsync`: `op` is `O_SYNC` (fsync) or `O_DSYNC` (fdatasync); it covers every write to
/// the descriptor queued before it.
///
/// # Safety
///
/// As for [`aio_read`].
pub unsafe fn aio_fsync(op: i32, cb: *mut aiocb) -> Result<(), Errno> {
    let kind = match op {
        libc::O_SYNC => Kind::Fsync,
        libc::O_DSYNC => Kind::Fdatasync,
        _ => return Err(libc::EINVAL),
    };
    if cb.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: non-null; the caller vouches it is a valid aiocb.
    let fd = unsafe { (*cb).aio_fildes };
    if !fd_is_open(fd) {
        return Err(libc::EBADF);
    }
    submit_one(cb, kind)
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFL only asks about the descriptor; a closed one gives EBADF.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFL) } != -1
}

/// The status of `cb` as this process sees it: `None` if this library never submitted it here.
/// A request still marked in progress in an aiocb that is not the one submitted (a copy of
/// it) is not a request here either. One submitted by a parent before a `fork` never completes
/// in the child: it reads as cancelled (`ECANCELED`, return value -1), so the child's wait
/// loops end. Async-signal-safe: only reads.
///
/// # Safety
///
/// `cb` must point at a readable `aiocb`.
unsafe fn status_of(cb: *const aiocb) -> Option<(i32, isize)> {
    // SAFETY: the caller's promise.
    let status = unsafe { abi::aiocb_status(cb) }?;
    if status.0 != libc::EINPROGRESS {
        return Some(status);
    }
    // SAFETY: as above.
    if unsafe { abi::aiocb_owner(cb) } != cb as usize {
        return None;
    }
    // SAFETY: as above.
    if unsafe { abi::aiocb_stamp(cb) } != FORK_STAMP.load(Ordering::Relaxed) {
        return Some((libc::ECANCELED, -1));
    }
    Some(status)
}

/// Lets the engine know a request was seen in progress (see `Engine::nudge`).
fn nudge() {
    let p = ENGINE.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: engines are leaked boxes, never freed.
        unsafe { &*p }.nudge();
    }
}

/// `aio_error`: `EINPROGRESS`, 0, or the request's errno; `Err(EINVAL)` for an aiocb never
/// submitted here. Async-signal-safe, as POSIX requires: it reads the status and takes no
/// lock; completions are taken by the threads that wait, or by the helper thread for a
/// program that only polls.
///
/// # Safety
///
/// `cb` must be null or point at a readable `aiocb`.
pub unsafe fn aio_error(cb: *const aiocb) -> Result<i32, Errno> {
    if cb.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: non-null; the caller vouches it is readable.
    match unsafe { status_of(cb) } {
        Some((libc::EINPROGRESS, _)) => {
            nudge();
            Ok(libc::EINPROGRESS)
        }
        Some((error, _)) => Ok(error),
        None => Err(libc::EINVAL),
    }
}

/// `aio_return`: the request's return value (bytes, or -1 with its errno in `aio_error`).
/// `Err(EINPROGRESS)` before it completes, `Err(EINVAL)` for an aiocb never submitted here.
/// Async-signal-safe, as [`aio_error`].
///
/// # Safety
///
/// As for [`aio_error`].
pub unsafe fn aio_return(cb: *mut aiocb) -> Result<isize, Errno> {
    if cb.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: non-null; the caller vouches it is readable.
    match unsafe { status_of(cb) } {
        None => Err(libc::EINVAL),
        Some((libc::EINPROGRESS, _)) => {
            nudge();
            Err(libc::EINPROGRESS)
        }
        Some((_, ret)) => Ok(ret),
    }
}

/// `aio_suspend`: waits until one of `list` (null entries ignored) has completed, or `timeout`
/// (relative; one too large to reach is none) passes: `Err(EAGAIN)`; a signal: `Err(EINTR)`.
/// Returns at once if one is done.
///
/// # Safety
///
/// Every non-null entry must point at a readable `aiocb`.
pub unsafe fn aio_suspend(list: &[*const aiocb], timeout: Option<Duration>) -> Result<(), Errno> {
    // SAFETY: forwarded from the caller.
    unsafe { suspend(list, || Ok(timeout)) }
}

/// [`aio_suspend`] with the C library's `timespec` (null: none), checked only when there is
/// something to wait for — as glibc does: a bad timeout with a request already done is no
/// error. A negative or malformed one gives `EINVAL`.
///
/// # Safety
///
/// As for [`aio_suspend`]; `timeout` must be null or readable.
pub unsafe fn aio_suspend_timespec(
    list: &[*const aiocb],
    timeout: *const libc::timespec,
) -> Result<(), Errno> {
    let timeout = || {
        if timeout.is_null() {
            return Ok(None);
        }
        // SAFETY: non-null and readable (the caller's promise).
        let ts = unsafe { *timeout };
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(libc::EINVAL);
        }
        Ok(Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)))
    };
    // SAFETY: forwarded from the caller.
    unsafe { suspend(list, timeout) }
}

/// # Safety
///
/// As for [`aio_suspend`].
unsafe fn suspend(
    list: &[*const aiocb],
    timeout: impl FnOnce() -> Result<Option<Duration>, Errno>,
) -> Result<(), Errno> {
    // Nothing to wait for (every entry null) counts as done, as in glibc.
    if list.iter().all(|cb| cb.is_null()) {
        return Ok(());
    }
    // Done: an entry whose request has completed, or which this library is not running: never
    // submitted here, a copy of one in flight, or the parent's before a fork — waiting for it
    // would never end; glibc does not wait for those either.
    let any_done = || {
        list.iter().any(|&cb| {
            // SAFETY: non-null entries are readable (the caller's promise).
            !cb.is_null() && !matches!(unsafe { status_of(cb) }, Some((libc::EINPROGRESS, _)))
        })
    };
    if any_done() {
        return Ok(());
    }
    let timeout = timeout()?;
    let engine = engine()?;
    // Looked at once: a request of ours leaves the table only as it completes.
    if list.iter().any(|&cb| !cb.is_null() && !engine.state().in_flight(cb)) {
        return Ok(());
    }
    engine.wait_until(deadline(timeout), any_done)
}

/// `aio_cancel`: cancels the request of `cb`, or every request on `fd` when `cb` is null.
/// `AIO_CANCELED` if all were cancelled, `AIO_NOTCANCELED` if some are running and cannot be,
/// `AIO_ALLDONE` if none was in flight. `Err(EBADF)` for a closed descriptor, `Err(EINVAL)` if
/// `cb`'s descriptor is not `fd`.
///
/// # Safety
///
/// `cb` must be null or point at a valid `aiocb`.
pub unsafe fn aio_cancel(fd: i32, cb: *mut aiocb) -> Result<i32, Errno> {
    if !fd_is_open(fd) {
        return Err(libc::EBADF);
    }
    // SAFETY: non-null cb is valid (the caller's promise).
    if !cb.is_null() && unsafe { (*cb).aio_fildes } != fd {
        return Err(libc::EINVAL);
    }
    let engine = engine()?;
    let mut done = Done::default();
    // Requests at the driver, to ask it: (key, sequence).
    let mut at_driver: Vec<(usize, u64)> = Vec::new();
    let mut cancelled = false;
    {
        let mut st = engine.state();
        let targets: Vec<usize> = match cb.is_null() {
            false => st.key_of(cb).into_iter().collect(),
            true => st.reqs.iter().filter(|(_, r)| r.fd == fd).map(|(k, _)| k).collect(),
        };
        for key in targets {
            // Held fsyncs and backlogged requests never reached the driver.
            let held = st.fds.get_mut(&fd).and_then(|f| {
                let pos = f.fsyncs.iter().position(|&(_, k)| k == key)?;
                Some(f.fsyncs.remove(pos))
            });
            let backlogged =
                st.backlog.iter().position(|&k| k == key).map(|p| st.backlog.remove(p));
            if held.is_some() || backlogged.is_some() {
                engine.finish_locked(&mut st, key, -i64::from(libc::ECANCELED), &mut done);
                cancelled = true;
                STATS.cancelled(1);
                continue;
            }
            // From now on an ECANCELED completion is this request's end, not a loss to retry.
            st.reqs[key].cancel_requested = true;
            at_driver.push((key, st.reqs[key].seq));
        }
        st.cancelling += 1;
    }
    done.finish_and_wake(engine);
    // Asked without the state lock: the driver may wait in the kernel for its answer, and
    // completions must go on meanwhile.
    let mut running = false;
    let mut settling: Vec<(usize, u64)> = Vec::with_capacity(at_driver.len());
    for (key, seq) in at_driver {
        match engine.driver.cancel(key as u64) {
            Ok(CancelOutcome::Cancelled) => settling.push((key, seq)),
            outcome => {
                if matches!(outcome, Ok(CancelOutcome::Running)) {
                    running = true;
                } else {
                    // Not found (completing now) or not asked: its completion is coming.
                    settling.push((key, seq));
                }
                let mut st = engine.state();
                if let Some(r) = st.reqs.get_mut(key).filter(|r| r.seq == seq) {
                    r.cancel_requested = false;
                }
            }
        }
    }
    // Every status this answer speaks for is final when it is given: wait until those
    // completions are processed, however long that takes and whatever signals come (the
    // handlers run; aio_cancel cannot fail with EINTR).
    let gone = |targets: &[(usize, u64)]| {
        let st = engine.state();
        targets.iter().all(|&(k, seq)| st.reqs.get(k).is_none_or(|r| r.seq != seq))
    };
    while !gone(&settling) {
        match engine.wait_until(None, || gone(&settling)) {
            Ok(()) => break,
            Err(_) => continue,
        }
    }
    // What happened to each (one cancelled "in time" may have completed first).
    {
        let mut st = engine.state();
        st.cancelled.retain(|seq| {
            let mine = settling.iter().any(|&(_, s)| s == *seq);
            if mine {
                cancelled = true;
                STATS.cancelled(1);
            }
            !mine
        });
        st.cancelling -= 1;
        if st.cancelling == 0 {
            st.cancelled.clear();
        }
    }
    Ok(if running {
        abi::AIO_NOTCANCELED
    } else if cancelled {
        abi::AIO_CANCELED
    } else {
        abi::AIO_ALLDONE
    })
}

/// `lio_listio`: queues every entry of `list` (null entries and `LIO_NOP` skipped) in one
/// submission, each with its own `aio_sigevent` (as glibc does since 2.4).
///
/// An entry refused at once — a bad opcode, `aio_reqprio` or sigevent — gets `-1` and `EINVAL`
/// in its status; one refused for lack of room (more than [`AIO_MAX`] in flight) gets `EAGAIN`;
/// the others run. `LIO_WAIT` waits for all that run, then fails with `EAGAIN` if some entry
/// could not be queued, with `EIO` if some entry failed (the entries' statuses say which), or
/// with `EINTR` if a signal arrives first (the requests go on). `LIO_NOWAIT` returns at once
/// (`EAGAIN` or `EIO` if some entry was refused) and notifies `sig` when all that run are
/// done. More than [`AIO_LISTIO_MAX`] entries, or a bad mode or `sig`: `EINVAL`, nothing
/// queued.
///
/// # Safety
///
/// Every non-null entry must point at a valid `aiocb` that, with its buffer, stays valid until
/// its request completes; `sig` must be null or readable.
pub unsafe fn lio_listio(
    mode: i32,
    list: &[*mut aiocb],
    sig: *const sigevent,
) -> Result<(), Errno> {
    if mode != abi::LIO_WAIT && mode != abi::LIO_NOWAIT {
        return Err(libc::EINVAL);
    }
    if list.len() > AIO_LISTIO_MAX {
        return Err(libc::EINVAL);
    }
    let notify = if mode == abi::LIO_NOWAIT && !sig.is_null() {
        // SAFETY: non-null and readable (the caller's promise).
        Notify::parse(unsafe { &*sig })?
    } else {
        Notify::None
    };
    let engine = engine()?;
    let mut done = Done::default();
    let mut again = false;
    let mut invalid = false;
    let mut refused = false;
    let mut wants_notifier = notify.is_async();
    let mut queued: Vec<*mut aiocb> = Vec::with_capacity(list.len());
    let pending;
    {
        let mut st = engine.state();
        let l = st.lists.insert(List { remaining: 1, notify });
        if notify.is_async() {
            st.async_notify += 1;
        }
        for &cb in list.iter().filter(|cb| !cb.is_null()) {
            // SAFETY: non-null entries are valid (the caller's promise).
            let f = unsafe { abi::aiocb_fields(cb) };
            let kind = match f.lio_opcode {
                abi::LIO_NOP => continue,
                abi::LIO_READ => Kind::Read,
                abi::LIO_WRITE => Kind::Write,
                _ => Kind::Invalid,
            };
            // SAFETY: as above.
            let entry_notify = match unsafe { check_request(cb, &f, kind) } {
                Ok(n) => n,
                Err(e) => {
                    STATS.refused();
                    engine.refuse_locked(&st, cb, e);
                    invalid = true;
                    continue;
                }
            };
            let submitted =
                engine.submit_locked(&mut st, cb, &f, kind, entry_notify, Some(l), &mut done, None);
            match submitted {
                Ok(()) => {
                    queued.push(cb);
                    wants_notifier |= entry_notify.is_async();
                }
                // Its status says EAGAIN.
                Err(libc::EAGAIN) => again = true,
                // Still in flight from an earlier submission: its status is that request's.
                Err(_) => refused = true,
            }
        }
        engine.list_member_done(&mut st, l, &mut done);
        // Looked at now, while the aiocbs are surely the program's (see `submit_one`).
        pending = queued.iter().any(|&cb| st.in_flight(cb));
    }
    done.flush = !engine.reaper().is_some_and(|mut r| r.flush_and_poll());
    done.finish_and_wake(engine);
    if pending || wants_notifier {
        engine.need_helper(wants_notifier);
    }
    if mode == abi::LIO_NOWAIT {
        return match (again, invalid || refused) {
            (true, _) => Err(libc::EAGAIN),
            (_, true) => Err(libc::EIO),
            _ => Ok(()),
        };
    }
    let status = |cb: *mut aiocb| {
        // SAFETY: as above.
        unsafe { abi::aiocb_status(cb) }
    };
    let all_done = || queued.iter().all(|&cb| !matches!(status(cb), Some((libc::EINPROGRESS, _))));
    engine.wait_until(None, all_done)?;
    if again {
        return Err(libc::EAGAIN);
    }
    let failed = queued.iter().any(|&cb| matches!(status(cb), Some((e, _)) if e != 0));
    if failed || invalid || refused {
        Err(libc::EIO)
    } else {
        Ok(())
    }
}

/// How the engine's inline path served requests so far (zeros before the engine starts).
pub fn inline_stats() -> driver::InlineStats {
    let p = ENGINE.load(Ordering::Acquire);
    if p.is_null() {
        return driver::InlineStats::default();
    }
    // SAFETY: engines are leaked boxes, never freed.
    unsafe { &*p }.driver.inline_stats()
}

/// Requests in flight in this process (queued and not yet completed).
pub fn in_flight() -> usize {
    let p = ENGINE.load(Ordering::Acquire);
    if p.is_null() {
        return 0;
    }
    // SAFETY: engines are leaked boxes, never freed.
    unsafe { &*p }.state().reqs.len()
}
