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
//! data is done by then). Completions are taken by the calling threads, one at a time —
//! `aio_error`, `aio_return` and `aio_suspend` look without waiting, and `aio_suspend` and
//! `lio_listio(LIO_WAIT)` wait in the driver (in slices: at most 1 s with io_uring, 20 ms with
//! the thread-pool engines, whose driver may miss a wake-up) — and, when some request asks
//! for a signal or a thread (`SIGEV_SIGNAL`, `SIGEV_THREAD`, `SIGEV_THREAD_ID`), by one
//! background thread that runs while such requests are in flight and exits a second after the
//! last. It, and any thread the driver starts (the pool's), block every signal, as glibc's
//! helper threads do, so the program's signals go to the program's threads.
//!
//! # Semantics, where POSIX leaves room
//!
//! glibc's behaviour is kept except where noted; the C suite in `posixaio/tests/` compares the
//! two and lists each difference with its reason.
//!
//! - `aio_error` of an aiocb this library never submitted gives `EINVAL` (glibc returns the
//!   aiocb's `__error_code` field, 0 for a zeroed one).
//! - `aio_return` before completion gives `-1`/`EINPROGRESS` (glibc: 0); after it, the return
//!   value — and the same value again on later calls, as glibc does.
//! - Submitting an aiocb that is still in flight gives `EINVAL` and leaves it alone (glibc
//!   would corrupt its queue).
//! - Refused at once, with `-1` and the errno also stored in the aiocb (as glibc does for
//!   `aio_reqprio`): `aio_reqprio` outside 0 to `AIO_PRIO_DELTA_MAX` (`EINVAL`; not checked for
//!   `aio_fsync`, as in glibc), a bad `aio_sigevent` (`EINVAL`: an unknown `sigev_notify`, a
//!   signal number beyond `SIGRTMAX`, `SIGEV_THREAD` without a function, `SIGEV_THREAD_ID` for
//!   a thread not in this process — glibc takes these and never notifies, or crashes), more
//!   than [`AIO_MAX`] requests in flight (`EAGAIN`). A null aiocb gives `EINVAL` (glibc
//!   crashes).
//! - A bad descriptor, a negative offset, an unknown `lio_listio` opcode: the request is
//!   accepted and fails, with the errno in `aio_error` (as glibc does); `aio_fsync` checks the
//!   descriptor at once (`EBADF`), as glibc does.
//! - Requests on one descriptor run at once, in no particular order (glibc runs them one at a
//!   time). `aio_fsync` waits for every write to its descriptor queued before it, then syncs.
//! - `aio_cancel` cancels what the engine can stop: with io_uring, a read or write waiting on
//!   a pipe or socket too (glibc's thread is blocked in `read` and cannot be stopped:
//!   `AIO_NOTCANCELED`). A cancelled request is notified, with `ECANCELED`, as in glibc.
//! - `lio_listio` sends each entry's own notification and the list's (as glibc does since
//!   2.4). An entry refused at once gets its errno in its status and the list fails with
//!   `EIO` (`EAGAIN` if it was for lack of room); the other entries run (glibc's `LIO_NOWAIT`
//!   reports such a refusal with the entry's errno, `EINVAL`).
//! - Notification: `SIGEV_SIGNAL` queues the signal to the process with `si_code` `SI_ASYNCIO`
//!   and `si_value` from `sigev_value`, once the status is final; `SIGEV_THREAD` runs the
//!   function on a new thread made with `sigev_notify_attributes` (detached when there are
//!   none) and no signal blocked; `SIGEV_THREAD_ID` queues the signal to the thread in
//!   `_sigev_un._tid` (glibc's POSIX AIO ignores `SIGEV_THREAD_ID` and sends nothing).
//! - `aio_reqprio` above 0 lowers the request's I/O priority (best effort, levels 5 to 7) where
//!   the engine can apply one.
//! - Limits: [`AIO_LISTIO_MAX`] entries per `lio_listio` (`EINVAL` beyond), [`AIO_MAX`]
//!   requests in flight at once (`EAGAIN` beyond). glibc's `sysconf(_SC_AIO_LISTIO_MAX)` and
//!   `sysconf(_SC_AIO_MAX)` say -1 (no limit); these are this library's.
//! - `aio_init` sizes the engine if called before the first request: `aio_threads` the pool's
//!   threads, `aio_num` the io_uring and kernel AIO queue depth, `aio_idle_time` how long an
//!   idle pool thread stays.
//! - After `fork`, the child starts with no requests in flight and a fresh engine; the
//!   parent's requests complete in the parent.
//! - A request belongs to the process, not to the thread that submitted it: io_uring cancels
//!   the requests a thread submitted when it exits, and such a request (which never ran) is
//!   submitted again by the thread that finds it cancelled.
//! - `aio_error` and `aio_return` may be called from a signal handler (POSIX lists them as
//!   async-signal-safe): when the handler interrupted this library on the same thread, they
//!   report the status as it is without taking completions (which needs locks the interrupted
//!   code may hold); a completion's signal is always sent after its status is final.
//! - With io_uring, the kernel may need the thread that submitted a request to finish it (a
//!   read that waited on a pipe) or to start an io_uring worker; it interrupts that thread's
//!   blocking system call to do so, and calls it does not restart (`sigtimedwait`,
//!   `epoll_wait`) fail with `EINTR` although no signal arrived. Programs that retry on
//!   `EINTR`, as they must for signals anyway, are unaffected.

use std::cell::{Cell, UnsafeCell};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::driver::{self, CancelOutcome, Completion, Driver, RawIo, Request, Selection};
use crate::kernel::{IoClass, IoPriority};
use crate::sys::posix::{self as abi, aiocb, aioinit, sigevent, sigval};

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

thread_local! {
    /// How deep this thread is in the functions that take the library's locks.
    static IN_LIBRARY: Cell<u32> = const { Cell::new(0) };
}

/// Marks this thread as inside the library (taking its locks) while it lives.
struct InLibrary;

impl InLibrary {
    fn enter() -> InLibrary {
        IN_LIBRARY.with(|d| d.set(d.get() + 1));
        InLibrary
    }

    /// Whether this thread is inside the library: then a signal handler running on it must not
    /// take the locks the interrupted code may hold.
    fn here() -> bool {
        IN_LIBRARY.with(|d| d.get() > 0)
    }
}

impl Drop for InLibrary {
    fn drop(&mut self) {
        IN_LIBRARY.with(|d| d.set(d.get() - 1));
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
    state: Mutex<State>,
    /// Bumped after every batch of completions is processed, and whenever a thread stops
    /// reaping; threads waiting for someone else's progress sleep on it (a futex, so a signal
    /// interrupts them).
    generation: AtomicU32,
    sleepers: AtomicU32,
    /// Whether a thread is taking completions from the driver. One at a time: a thread that
    /// finds another reaping leaves it to that one (which processes every completion, whoever
    /// it is for) and sleeps on `generation`, so no completion is taken from under a thread
    /// waiting in the driver for it.
    reaping: AtomicBool,
    /// Whether requests wait in `State::backlog` (read without the lock).
    backlogged: AtomicBool,
    /// Whether the thread reaping completed a request since it took the role.
    completed: AtomicBool,
    /// Completions taken from the driver: used only by the thread reaping (`reaping` set),
    /// the vectors kept from one call to the next.
    completions: ReaperVec,
    notifier: Mutex<Option<std::thread::Thread>>,
    /// Whether the driver starts threads of its own when requests are queued (the pool, and
    /// kernel AIO's pool for buffered files): they are queued with every signal blocked, so
    /// those threads never take the program's signals.
    block_signals: bool,
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
            || engine.sleepers.load(Ordering::SeqCst) > 0
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
    /// At least one, waiting up to this long.
    Wait(Duration),
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

/// How long the background notifier stays without requests that need it, before it exits.
const NOTIFIER_IDLE: Duration = Duration::from_secs(1);

/// The longest a thread waits in the driver before it looks again: with io_uring, insurance
/// only; with kernel AIO, whose driver may wait in `io_getevents` while a completion arrives
/// from its thread pool, the most such a completion is late.
const SLICE_URING: Duration = Duration::from_secs(1);
const SLICE_THREADED: Duration = Duration::from_millis(20);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

static ENGINE: AtomicPtr<Engine> = AtomicPtr::new(std::ptr::null_mut());
static ENGINE_INIT: Mutex<()> = Mutex::new(());
static CONFIG: Mutex<Option<aioinit>> = Mutex::new(None);
static AT_FORK: Once = Once::new();

extern "C" fn forget_engine_in_child() {
    // The parent's requests are not the child's: leave the engine (and its driver) behind,
    // never touching it, and build a fresh one on first use.
    ENGINE.store(std::ptr::null_mut(), Ordering::SeqCst);
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
    opts.kernel.max_events = num.clamp(64, 65536);
    if cfg.aio_threads > 0 {
        opts.pool.threads = cfg.aio_threads as usize;
    }
    if cfg.aio_idle_time > 0 {
        opts.pool.idle = Duration::from_secs(cfg.aio_idle_time as u64);
    }
    let (driver, selection) =
        driver::select_shared(&opts).map_err(|e| e.raw_os_error().unwrap_or(libc::EAGAIN))?;
    let block_signals = selection.engine != driver::Engine::Uring;
    let engine = Box::leak(Box::new(Engine {
        driver,
        selection,
        block_signals,
        state: Mutex::new(State::default()),
        generation: AtomicU32::new(0),
        sleepers: AtomicU32::new(0),
        reaping: AtomicBool::new(false),
        backlogged: AtomicBool::new(false),
        completed: AtomicBool::new(false),
        completions: ReaperVec(UnsafeCell::default()),
        notifier: Mutex::new(None),
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
            return Err(libc::EINVAL);
        }
        if st.reqs.len() >= AIO_MAX {
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
        });
        // SAFETY: valid, and ours to write from now until the request completes.
        unsafe { abi::aiocb_set_key(cb, key) };
        if notify.is_async() {
            st.async_notify += 1;
        }
        if let Some(l) = list {
            st.lists[l].remaining += 1;
        }
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
            offset: f.offset as u64,
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
        let (ret, err) = if res < 0 { (-1, (-res) as i32) } else { (res as isize, 0) };
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
            Take::Wait(timeout) => self.driver.reap(1, REAP_MAX, Some(timeout), completions)?,
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

    /// Waits in the driver for a completion, up to `timeout`, unless another thread is reaping
    /// (`None`) or `ready()` already holds once this thread is the only reaper.
    fn reap_waiting(
        &self,
        timeout: Duration,
        ready: &impl Fn() -> bool,
    ) -> Option<io::Result<usize>> {
        let mut reaper = self.reaper()?;
        // Re-checked here: another reaper may have processed what this thread waits for
        // between its last look and taking over.
        Some(if ready() { Ok(0) } else { self.progress(&mut reaper, Take::Wait(timeout)) })
    }

    /// Waits until `ready()` or `deadline`: one thread waits in the driver, others sleep until
    /// it has processed something. `Err(EINTR)` if a signal arrives, `Err(EAGAIN)` on timeout.
    fn wait_until(&self, deadline: Option<Instant>, ready: impl Fn() -> bool) -> Result<(), Errno> {
        let slice = if self.block_signals { SLICE_THREADED } else { SLICE_URING };
        loop {
            self.poll();
            // Loaded before looking: what is processed after the look bumps it.
            let generation = self.generation.load(Ordering::SeqCst);
            if ready() {
                return Ok(());
            }
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(libc::EAGAIN),
                },
            };
            match self.reap_waiting(left.map_or(slice, |l| l.min(slice)), &ready) {
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => return Err(libc::EINTR),
                Some(_) => continue,
                None => {}
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            if !self.reaping.load(Ordering::SeqCst) {
                // The reaper left before it could see this thread: take over instead.
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let r = abi::futex_wait(&self.generation, generation, left);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            if let Err(e) = r {
                if e.kind() == io::ErrorKind::Interrupted {
                    return Err(libc::EINTR);
                }
            }
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            abi::futex_wake_all(&self.generation);
        }
    }

    /// Makes sure the background notifier runs (requests want signals or threads).
    fn need_notifier(&'static self) {
        let mut n = lock(&self.notifier);
        match &*n {
            Some(thread) => thread.unpark(),
            None => {
                // Started with every signal blocked, so it never takes the program's signals.
                let spawned = abi::with_signals_blocked(|| {
                    std::thread::Builder::new()
                        .name("aio-notify".into())
                        .spawn(move || self.notifier_loop())
                });
                if let Ok(handle) = spawned {
                    *n = Some(handle.thread().clone());
                }
            }
        }
    }

    /// The background notifier: takes completions while requests that want a signal or a
    /// thread are in flight (the program may not call into the library meanwhile), and exits
    /// after [`NOTIFIER_IDLE`] without such requests.
    fn notifier_loop(&self) {
        let mut idle_since: Option<Instant> = None;
        loop {
            if self.state().async_notify > 0 {
                idle_since = None;
                let deadline = Some(Instant::now() + Duration::from_millis(200));
                let _ = self.wait_until(deadline, || self.state().async_notify == 0);
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            let idle = since.elapsed();
            if idle >= NOTIFIER_IDLE {
                // Decided under the notifier lock: a submitter counts its request first, then
                // takes this lock, so it either sees the thread still here (and unparks it) or
                // gone (and starts another).
                let mut n = lock(&self.notifier);
                if self.state().async_notify == 0 {
                    *n = None;
                    return;
                }
                continue;
            }
            std::thread::park_timeout(NOTIFIER_IDLE - idle);
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
    // Submitting as the reaper, when no one else is: it starts the request and takes what is
    // ready in one go, and a signal handler that interrupts it on this thread finds the role
    // taken and takes no lock. Otherwise the thread is marked as inside the library.
    let mut reaper = engine.reaper();
    let _inside = reaper.is_none().then(InLibrary::enter);
    // SAFETY: as above.
    let notify = match unsafe { check_request(cb, &f, kind) } {
        Ok(n) => n,
        Err(e) => {
            engine.refuse_locked(&engine.state(), cb, e);
            return Err(e);
        }
    };
    let mut done = Done::default();
    let result = {
        let mut st = engine.state();
        engine.submit_locked(&mut st, cb, &f, kind, notify, None, &mut done, reaper.as_mut())
    };
    if result.is_ok() {
        if notify.is_async() {
            engine.need_notifier();
        }
        if !done.polled {
            // Not started yet (an fsync after writes, no room, or another thread reaping).
            done.flush = !reaper.as_mut().is_some_and(Reaper::flush_and_poll);
        }
    }
    // Stop reaping before the notifications: a handler they run may call in.
    drop(reaper);
    done.finish_and_wake(engine);
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

/// The status of `cb`, taking completions that are ready first if it is still in progress.
///
/// # Safety
///
/// `cb` must point at a readable `aiocb`.
unsafe fn current_status(cb: *const aiocb) -> Option<(i32, isize)> {
    // SAFETY: the caller's promise.
    let status = unsafe { abi::aiocb_status(cb) };
    if !matches!(status, Some((libc::EINPROGRESS, _))) {
        return status;
    }
    // From a signal handler that interrupted the library on this thread, only look: the
    // interrupted code may hold the locks taking completions needs.
    if !InLibrary::here() {
        if let Ok(e) = engine() {
            e.poll();
        }
    }
    // SAFETY: as above.
    unsafe { abi::aiocb_status(cb) }
}

/// `aio_error`: `EINPROGRESS`, 0, or the request's errno; `Err(EINVAL)` for an aiocb never
/// submitted here.
///
/// # Safety
///
/// `cb` must be null or point at a readable `aiocb`.
pub unsafe fn aio_error(cb: *const aiocb) -> Result<i32, Errno> {
    if cb.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: non-null; the caller vouches it is readable.
    match unsafe { current_status(cb) } {
        Some((error, _)) => Ok(error),
        None => Err(libc::EINVAL),
    }
}

/// `aio_return`: the request's return value (bytes, or -1 with its errno in `aio_error`).
/// `Err(EINPROGRESS)` before it completes, `Err(EINVAL)` for an aiocb never submitted here.
///
/// # Safety
///
/// As for [`aio_error`].
pub unsafe fn aio_return(cb: *mut aiocb) -> Result<isize, Errno> {
    if cb.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: non-null; the caller vouches it is readable.
    match unsafe { current_status(cb) } {
        None => Err(libc::EINVAL),
        Some((libc::EINPROGRESS, _)) => Err(libc::EINPROGRESS),
        Some((_, ret)) => Ok(ret),
    }
}

/// `aio_suspend`: waits until one of `list` (null entries ignored) has completed, or `timeout`
/// (relative) passes: `Err(EAGAIN)`; a signal: `Err(EINTR)`. Returns at once if one is done.
///
/// # Safety
///
/// Every non-null entry must point at a readable `aiocb`.
pub unsafe fn aio_suspend(list: &[*const aiocb], timeout: Option<Duration>) -> Result<(), Errno> {
    let deadline = timeout.map(|t| Instant::now() + t);
    // Nothing to wait for (every entry null) counts as done, as in glibc.
    if list.iter().all(|cb| cb.is_null()) {
        return Ok(());
    }
    let _inside = InLibrary::enter();
    let engine = engine()?;
    // Done: an entry whose request has completed, or which this library is not running: never
    // submitted here, or marked in progress but not ours (a copy, or the parent's before a
    // fork) — waiting for it would never end; glibc does not wait for those either.
    let any_done = || {
        list.iter().any(|&cb| {
            // SAFETY: non-null entries are readable (the caller's promise).
            !cb.is_null()
                && !matches!(unsafe { abi::aiocb_status(cb) }, Some((libc::EINPROGRESS, _)))
        })
    };
    if any_done() {
        return Ok(());
    }
    // Looked at once: a request of ours leaves the table only as it completes.
    if list.iter().any(|&cb| !cb.is_null() && !engine.state().in_flight(cb)) {
        return Ok(());
    }
    engine.wait_until(deadline, any_done)
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
    let _inside = InLibrary::enter();
    let engine = engine()?;
    let mut done = Done::default();
    // (key, sequence) of the requests cancelled: done once that request is gone.
    let mut cancelled: Vec<(usize, u64)> = Vec::new();
    let mut running = false;
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
            let seq = st.reqs[key].seq;
            if held.is_some() || backlogged.is_some() {
                engine.finish_locked(&mut st, key, -i64::from(libc::ECANCELED), &mut done);
                cancelled.push((key, seq));
                continue;
            }
            st.reqs[key].cancel_requested = true;
            match engine.driver.cancel(key as u64) {
                Ok(CancelOutcome::Cancelled) => cancelled.push((key, seq)),
                Ok(CancelOutcome::Running) => {
                    running = true;
                    st.reqs[key].cancel_requested = false;
                }
                Ok(CancelOutcome::NotFound) | Err(_) => st.reqs[key].cancel_requested = false,
            }
        }
    }
    done.finish_and_wake(engine);
    // The cancelled requests' completions (ECANCELED) come through the driver: process them
    // before answering, so aio_error already says ECANCELED.
    let deadline = Some(Instant::now() + Duration::from_secs(10));
    let _ = engine.wait_until(deadline, || {
        let st = engine.state();
        cancelled.iter().all(|&(k, seq)| st.reqs.get(k).is_none_or(|r| r.seq != seq))
    });
    Ok(if running {
        abi::AIO_NOTCANCELED
    } else if !cancelled.is_empty() {
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
    let _inside = InLibrary::enter();
    let engine = engine()?;
    let mut done = Done::default();
    let mut again = false;
    let mut invalid = false;
    let mut refused = false;
    let mut wants_notifier = notify.is_async();
    let mut queued: Vec<*mut aiocb> = Vec::with_capacity(list.len());
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
    }
    if wants_notifier {
        engine.need_notifier();
    }
    done.flush = !engine.reaper().is_some_and(|mut r| r.flush_and_poll());
    done.finish_and_wake(engine);
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

/// Requests in flight in this process (queued and not yet completed).
pub fn in_flight() -> usize {
    let p = ENGINE.load(Ordering::Acquire);
    if p.is_null() {
        return 0;
    }
    // SAFETY: engines are leaked boxes, never freed.
    unsafe { &*p }.state().reqs.len()
}
