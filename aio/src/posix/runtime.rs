//! The process-wide runtime: the driver requests go to, the request table, and the one thread
//! at a time that takes completions (the reaper's role); submission, completion and what is
//! done once the state lock is released.

use std::cell::UnsafeCell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

use super::notify::Notify;
use super::ops::status_of;
use super::table::{AioOp, Req, State};
use super::wait::Helper;
use super::{Errno, AIO_MAX};
use crate::driver::{self, Completion, Driver, RawIo, Request, Selection};
use crate::flags::{IoClass, IoPriority};
use crate::stats::Stats;
use crate::sys::posix::{self as abi, aioinit, AiocbFields, AiocbRef};
use crate::EventFd;
use std::os::fd::RawFd;

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

/// The role of the thread that takes completions from the driver (`Runtime::reaping`), held
/// while it lives.
pub(super) struct Reaper<'a>(&'a Runtime);

impl Reaper<'_> {
    /// Starts what was queued and takes the completions that are ready, in one call to the
    /// driver (an io_uring read of cached data completes in the submitting system call, so its
    /// status is final when `aio_read` returns). False if that failed: then flush.
    pub(super) fn flush_and_poll(&mut self) -> bool {
        let engine = self.0;
        engine.progress(self, Harvest::FlushReady).is_ok()
    }

    /// The vectors completions are taken into: the role's alone (see `Runtime::completions`).
    pub(super) fn vectors(&mut self) -> &mut ReaperVecs {
        // SAFETY: only the thread holding the role (this `Reaper`, borrowed mutably) touches
        // the vectors; they are not used across the notifications delivered after processing
        // (a handler they run cannot take the role while it is held).
        unsafe { &mut *self.0.completions.0.get() }
    }

    /// Completions as the driver gives them.
    pub(super) fn completions(&mut self) -> &mut Vec<Completion> {
        &mut self.vectors().completions
    }

    /// Completions of raw requests: `(user_data, res)`.
    pub(super) fn raw_completions(&mut self) -> &mut Vec<(u64, i64)> {
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

/// What [`Runtime::progress`] takes from the driver.
#[derive(Clone, Copy)]
pub(super) enum Harvest {
    /// The completions that are ready (`Driver::poll`).
    Ready,
    /// Those, after starting what is queued (`Driver::reap` without waiting).
    FlushReady,
}

/// The reaper's vectors of completions (see `Runtime::completions`).
pub(super) struct ReaperVec(UnsafeCell<ReaperVecs>);

#[derive(Default)]
pub(super) struct ReaperVecs {
    pub(super) completions: Vec<Completion>,
    pub(super) raw: Vec<(u64, i64)>,
}

// SAFETY: the vectors are only touched by the one thread that holds the engine's `reaping` flag
// (taken with Acquire, given back with Release), so accesses never overlap and each sees the
// previous holder's writes; completions are handed between threads by the drivers already.
unsafe impl Sync for ReaperVec {}

/// Most completions taken from the driver in one call.
pub(super) const REAP_MAX: usize = 256;

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

    /// Queues one request (the state lock held), its fields `f` as read from `cb`. With the
    /// reaper's role, starts it at once and processes the completions that are ready (see
    /// `queue_locked`). `Err(EAGAIN)` if there is no room; other failures complete the request
    /// with the error.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn submit_locked(
        &self,
        st: &mut State,
        cb: AiocbRef,
        f: &AiocbFields,
        kind: AioOp,
        notify: Notify,
        list: Option<usize>,
        done: &mut AfterUnlock,
        reaper: Option<&mut Reaper<'_>>,
    ) -> Result<(), Errno> {
        if st.in_flight(cb) {
            STATS.refused();
            return Err(Errno::EINVAL);
        }
        if st.reqs.len() >= AIO_MAX {
            STATS.refused();
            // Not in flight: its status is ours to set (as glibc does).
            cb.set_status(-1, libc::EAGAIN);
            return Err(Errno::EAGAIN);
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
        // Ours to write from now until the request completes.
        cb.claim(key, FORK_STAMP.load(Ordering::Relaxed));
        if notify.is_async() {
            st.async_notify += 1;
        }
        if let Some(l) = list {
            st.lists[l].remaining += 1;
        }
        STATS.request(kind.stat_op(), false);
        cb.set_status(0, libc::EINPROGRESS);
        match kind {
            AioOp::Invalid => {
                self.finish_locked(st, key, -i64::from(libc::EINVAL), done);
                return Ok(());
            }
            AioOp::Write => {
                st.fds.entry(f.fildes).or_default().writes.insert(seq);
            }
            AioOp::Fsync | AioOp::Fdatasync => {
                let fd = st.fds.entry(f.fildes).or_default();
                if fd.writes.first().is_some_and(|&w| w < seq) {
                    // Earlier writes are in flight: sync after them.
                    fd.fsyncs.push((seq, key));
                    return Ok(());
                }
            }
            AioOp::Read => {}
        }
        self.queue_locked(st, key, f, done, reaper);
        Ok(())
    }

    /// Hands request `key` (its aiocb's fields `f`) to the driver, or to the backlog if the
    /// driver is full. With the reaper's role, in the same call to the driver it starts the
    /// request and takes the completions that are ready, and processes them: the status of a
    /// read of cached data is final when `aio_read` returns, for one lock and one system call.
    pub(super) fn queue_locked(
        &self,
        st: &mut State,
        key: usize,
        f: &abi::AiocbFields,
        done: &mut AfterUnlock,
        reaper: Option<&mut Reaper<'_>>,
    ) {
        let req = &st.reqs[key];
        if f.fildes < 0 {
            // No descriptor at all: what the kernel would answer, without asking any driver.
            self.finish_locked(st, key, -i64::from(libc::EBADF), done);
            return;
        }
        if matches!(req.kind, AioOp::Read | AioOp::Write) && f.nbytes > abi::MAX_RW_COUNT {
            // Longer than one transfer: the engines would shorten it before the kernel could
            // check the whole range (a bad one would become a valid transfer of its first
            // bytes, past the end of the program's buffer). The kernel's answer for the whole
            // range, as pread and pwrite give it: EFAULT, EINVAL, or go on (and be short).
            if let Err(errno) =
                abi::check_user_range(f.buf as usize, f.nbytes, req.kind == AioOp::Write)
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
            (AioOp::Read | AioOp::Write, Some(reaper)) => {
                let io = io(req.kind == AioOp::Write);
                let out = reaper.raw_completions();
                out.clear();
                // SAFETY: the program promises the buffer stays valid until the request
                // completes (POSIX: the aiocb and its buffer must not be touched meanwhile).
                let reaped =
                    self.guarded(|| unsafe { self.driver.queue_raw_and_reap(io, REAP_MAX, out) });
                reaped.map(|queued| {
                    done.polled = true;
                    // Starting failed (no resources): flush again once the lock is released.
                    done.flush |= queued.start_error.is_some();
                    self.process_locked(st, out.iter().copied(), done);
                    out.clear();
                })
            }
            (kind, _) => {
                let request = match kind {
                    // SAFETY: as above.
                    AioOp::Read | AioOp::Write => unsafe {
                        io(kind == AioOp::Write).into_request()
                    },
                    AioOp::Fsync => Request::fsync(f.fildes, key as u64),
                    AioOp::Fdatasync => Request::fdatasync(f.fildes, key as u64),
                    AioOp::Invalid => unreachable!("completed at submission"),
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
    pub(super) fn finish_locked(
        &self,
        st: &mut State,
        key: usize,
        res: i64,
        done: &mut AfterUnlock,
    ) {
        done.completed = true;
        let Some(req) = st.reqs.try_remove(key) else { return };
        STATS.done(res);
        if req.cancel_requested && res == -i64::from(libc::ECANCELED) && st.cancelling > 0 {
            st.cancelled.push(req.seq);
        }
        let (ret, err) = if res < 0 { (-1, (-res) as i32) } else { (res as isize, 0) };
        if req.kind == AioOp::Read && res > 0 {
            // memcheck cannot see the kernel fill the buffer through a ring (nothing natively).
            crate::sys::valgrind::mark_defined(req.cb.fields().buf.cast(), res as usize);
        }
        req.cb.set_status(ret, err);
        if req.notify.is_async() {
            st.async_notify -= 1;
            done.notes.push(req.notify);
        }
        if let Some(l) = req.list {
            self.list_member_done(st, l, done);
        }
        if req.kind == AioOp::Write {
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
    pub(super) fn requeue_locked(&self, st: &mut State, key: usize, done: &mut AfterUnlock) {
        let f = st.reqs[key].cb.fields();
        self.queue_locked(st, key, &f, done, None);
        done.flush = true;
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

    pub(super) fn list_member_done(&self, st: &mut State, l: usize, done: &mut AfterUnlock) {
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
    pub(super) fn progress(&self, reaper: &mut Reaper<'_>, take: Harvest) -> io::Result<usize> {
        let completions = reaper.completions();
        completions.clear();
        let n = match take {
            Harvest::Ready => self.driver.poll(REAP_MAX, completions)?,
            Harvest::FlushReady => {
                self.driver.reap(0, REAP_MAX, Some(Duration::ZERO), completions)?
            }
        };
        if n == 0 && !self.backlogged.load(Ordering::Acquire) {
            return Ok(0);
        }
        let mut done = AfterUnlock::default();
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
    pub(super) fn process_locked(
        &self,
        st: &mut State,
        completions: impl Iterator<Item = (u64, i64)>,
        done: &mut AfterUnlock,
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
                    if matches!(req.kind, AioOp::Read | AioOp::Write) {
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
    pub(super) fn reaper(&self) -> Option<Reaper<'_>> {
        // (`then`, not `then_some`: a Reaper made and dropped for nothing would give up the
        // role of the thread that holds it.)
        (!self.reaping.swap(true, Ordering::AcqRel)).then(|| Reaper(self))
    }

    /// Takes the completions that are ready, unless another thread is reaping (it will).
    pub(super) fn poll(&self) {
        if let Some(mut reaper) = self.reaper() {
            let _ = self.progress(&mut reaper, Harvest::Ready);
        }
    }

    /// The inline path (see [`Driver::queue_now`]): a small read or write of cached data is
    /// done here, in the submitting thread, without any lock of the engine's — the request
    /// never enters the table. True if it was done (its status is final, its notification
    /// sent); false if it must go the usual way (nothing was changed that it would not redo).
    pub(super) fn try_now(
        &self,
        cb: AiocbRef,
        f: &AiocbFields,
        kind: AioOp,
        notify: Notify,
    ) -> bool {
        if f.fildes < 0 || f.nbytes > abi::MAX_RW_COUNT || f.offset < 0 {
            return false;
        }
        // An aiocb still in flight is refused by the usual way (EINVAL), untouched.
        if matches!(status_of(cb), Some((libc::EINPROGRESS, _))) {
            return false;
        }
        let io = RawIo {
            write: kind == AioOp::Write,
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
        // Ours to write now (it is not in flight).
        cb.set_origin(FORK_STAMP.load(Ordering::Relaxed));
        cb.set_status(res as isize, 0);
        notify.deliver();
        true
    }

    /// Records a refusal in the aiocb (`-1` and the errno, as glibc does), unless it belongs to
    /// a request still in flight.
    pub(super) fn refuse_locked(&self, st: &State, cb: AiocbRef, errno: Errno) {
        if !st.in_flight(cb) {
            cb.set_status(-1, errno.raw());
        }
    }
}

/// What processing completions leaves to do once the state lock is released.
#[derive(Default)]
pub(super) struct AfterUnlock {
    pub(super) notes: Vec<Notify>,
    pub(super) flush: bool,
    /// Whether the reaper started the request and took what was ready (`queue_locked`).
    pub(super) polled: bool,
    /// Whether a request completed (its status changed): threads sleeping on `generation`
    /// must look.
    pub(super) completed: bool,
}

impl AfterUnlock {
    /// Flushes and notifies. Returns whether some request completed, for the caller to wake
    /// the threads sleeping on `generation` (`Runtime::bump`) — after it stops reaping, if it
    /// was reaping.
    #[must_use]
    pub(super) fn finish(self, engine: &Runtime) -> bool {
        if self.flush {
            let _ = engine.driver.flush();
        }
        for n in self.notes {
            n.deliver();
        }
        self.completed
    }

    /// [`finish`](Self::finish) for a thread that is not reaping: wakes the sleepers at once.
    pub(super) fn finish_and_wake(self, engine: &Runtime) {
        if self.finish(engine) {
            engine.bump();
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
