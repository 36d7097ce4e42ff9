//! [`PoolDriver`]: worker threads doing blocking `preadv2`/`pwritev2`/`fsync`, as glibc's POSIX
//! AIO does — but with no per-file queue: many requests on one descriptor run at once.
//!
//! Requests go to the workers as soon as they are queued. The first worker starts with the
//! first request; more start, up to [`PoolOptions::threads`], when requests wait in the queue
//! longer than [`STALL`] while the workers are blocked in slow I/O (requests take longer than a
//! page-cache hit to serve). So page-cache hits are served by one busy thread, as glibc serves
//! one file, and slow devices get many requests in flight at once. Workers exit after
//! [`PoolOptions::idle`] without work.
//!
//! Reads and writes of streams (pipes, FIFOs, sockets), which may wait for the other end for
//! as long as it likes, never hold a worker while they wait: a worker tries them without
//! waiting (`RWF_NOWAIT`), and one that would wait before moving a byte is parked with a
//! poller thread until its descriptor is ready, then tried again. So requests that may never
//! finish (reads of an empty pipe) cannot take every worker and starve the others; and a
//! parked request can be cancelled, having moved nothing.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::inline::Inline;
use super::ready::Ready;
use super::{CancelOutcome, Completion, Driver, InlineStats, Op, RawIo, Rejected, Request};
use crate::deadline::deadline;
use crate::sys;
use crate::EventFd;

/// How a [`PoolDriver`] is sized.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most worker threads at once (glibc's default is 20).
    pub threads: usize,
    /// How long a worker waits for work before it exits (glibc's default is 1 s).
    pub idle: Duration,
    /// Most requests accepted and not yet reaped; beyond it `queue` says `EAGAIN`.
    pub capacity: usize,
    /// Try small buffered reads and writes in the submitting thread, with `RWF_NOWAIT`, before
    /// handing them to a worker (see [`Driver::queue_now`]). On by default unless
    /// `AIO_INLINE=0`.
    pub inline: bool,
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions {
            threads: 20,
            idle: Duration::from_secs(1),
            capacity: 1 << 16,
            inline: super::inline::enabled_by_default(),
        }
    }
}

/// How long a request may wait in the queue before another worker is started for it.
pub const STALL: Duration = Duration::from_micros(50);

/// A pool of worker threads serving requests with blocking system calls.
pub struct PoolDriver {
    shared: Arc<Shared>,
}

struct Shared {
    opts: PoolOptions,
    jobs: Mutex<Jobs>,
    work: Condvar,
    /// Where the standby worker waits (it is not woken for each request).
    standby: Condvar,
    ready: Ready,
    in_flight: AtomicUsize,
    /// Requests in the queue (a copy of its length that idle workers can watch without the lock).
    queued: AtomicUsize,
    /// Whether an idle worker is looking for work before it sleeps.
    spinning: AtomicBool,
    /// Whether requests block: up by one for each request slower than [`FAST`], down by one
    /// for each faster one, between 0 and [`SLOW_MAX`]. A request delayed by preemption now and
    /// then does not move it far; a device that blocks every request does.
    slow: AtomicU32,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Stream requests waiting for their descriptor to be ready (see the module doc).
    parked: Mutex<Parked>,
    /// Written to make the poller look at `parked` again (or stop).
    poke: EventFd,
    inline: Inline,
}

/// Parked requests, by descriptor, each with the `poll` events it waits for; and the poller.
///
/// A request moves between `Jobs::queue`, `Jobs::running` and here only with both locks held
/// (`jobs` first, then `parked`), as a cancel looks at all three: it finds a request in flight
/// in exactly one of them.
#[derive(Default)]
struct Parked {
    by_fd: HashMap<RawFd, VecDeque<(Request, libc::c_short)>>,
    poller: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Jobs {
    /// Requests waiting for a worker, with when they were queued.
    queue: VecDeque<(Request, Instant)>,
    /// The requests workers are running (at most one per worker): `user_data`, and when it
    /// started.
    running: Vec<(u64, Instant)>,
    threads: usize,
    idle: usize,
    /// Whether a standby worker exists (see `worker`).
    standby: bool,
    shutdown: bool,
}

impl Jobs {
    /// Whether the workers are stuck: the oldest request waits longer than [`STALL`] while a
    /// running one has run longer than [`BLOCKED`] or requests generally block.
    fn stuck(&self, blocking: bool) -> bool {
        let waited = self.queue.front().is_some_and(|(_, t)| t.elapsed() > STALL);
        waited && (blocking || self.running.iter().any(|(_, t)| t.elapsed() > BLOCKED))
    }
}

impl Shared {
    fn jobs(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PoolDriver {
    /// A pool with these options; no thread starts until a request comes.
    pub fn new(opts: PoolOptions) -> PoolDriver {
        PoolDriver::with_ready(opts, Ready::default())
    }

    /// A pool that signals `efd` when a request completes (shared with another driver).
    pub(crate) fn with_eventfd(opts: PoolOptions, efd: Arc<EventFd>) -> PoolDriver {
        PoolDriver::with_ready(opts, Ready::with_eventfd(efd))
    }

    fn with_ready(mut opts: PoolOptions, ready: Ready) -> PoolDriver {
        opts.threads = opts.threads.max(1);
        PoolDriver {
            shared: Arc::new(Shared {
                jobs: Mutex::new(Jobs::default()),
                work: Condvar::new(),
                standby: Condvar::new(),
                ready,
                in_flight: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
                spinning: AtomicBool::new(false),
                slow: AtomicU32::new(0),
                workers: Mutex::new(Vec::new()),
                parked: Mutex::new(Parked::default()),
                poke: EventFd::new().expect("an eventfd for the pool's poller"),
                inline: Inline::new(opts.inline),
                opts,
            }),
        }
    }

    /// Worker threads alive now.
    pub fn threads(&self) -> usize {
        self.shared.jobs().threads
    }

    /// Requests workers are running now.
    pub fn running(&self) -> usize {
        self.shared.jobs().running.len()
    }

    /// Requests waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.shared.jobs().queue.len()
    }

    /// Accepts a validated request for the workers, unless the pool is at capacity.
    fn enqueue(&self, req: Request) -> Result<(), Rejected> {
        let shared = &self.shared;
        if shared.in_flight.load(Ordering::Relaxed) >= shared.opts.capacity {
            return Err(Rejected::new(io::Error::from_raw_os_error(libc::EAGAIN), req));
        }
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        shared.enqueue(req).inspect_err(|_| {
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        })
    }
}

impl Shared {
    /// Whether most recent requests blocked in I/O.
    fn blocking(&self) -> bool {
        self.slow.load(Ordering::Relaxed) >= SLOW_MAX / 2
    }

    /// Starts a worker (a standby one if `standby`); `jobs.threads` already counts it.
    fn spawn_worker(self: &Arc<Self>, standby: bool) -> io::Result<()> {
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("aio-pool".into())
            .spawn(move || worker(&shared, standby));
        match spawned {
            Ok(handle) => {
                let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
                workers.retain(|h| !h.is_finished());
                workers.push(handle);
                Ok(())
            }
            Err(e) => {
                self.jobs().threads -= 1;
                Err(e)
            }
        }
    }
}

/// A request served faster than this is not blocked on a device: more workers would not serve
/// such requests sooner, they would only take turns on the CPUs.
const FAST: Duration = Duration::from_micros(20);
/// How long an idle worker looks for new work before it sleeps (a sleeping worker costs a
/// wake-up to the next request). Only one worker at a time does this.
const SPIN: Duration = Duration::from_micros(20);
/// The top of the `slow` score.
const SLOW_MAX: u32 = 16;
/// How often a standby worker looks while no request waits.
const STANDBY_QUIET: Duration = Duration::from_millis(10);
/// A request running longer than this is blocked (an empty pipe, a stalled device).
const BLOCKED: Duration = Duration::from_millis(1);

/// A worker. Normal workers take requests as they come and sleep when there are none. At
/// most one worker at a time is a *standby*: started when requests wait while every worker is
/// busy, it takes a request only once the workers look stuck (see `Jobs::stuck`) — then it
/// becomes a normal worker, and another standby may start. So page-cache hits, served faster
/// than a new thread could help, stay on few threads, while requests that block (a slow device,
/// an empty pipe) get more workers, up to the limit, without anyone having to ask.
fn worker(shared: &Arc<Shared>, mut standby: bool) {
    let mut prio: Option<u16> = None;
    let mut last: Option<u64> = None;
    let mut idle_since = Instant::now();
    loop {
        // Retire the last request and take the next in one visit to the lock.
        let mut jobs = shared.jobs();
        if let Some(user_data) = last.take() {
            if let Some(pos) = jobs.running.iter().position(|&(u, _)| u == user_data) {
                jobs.running.swap_remove(pos);
            }
        }
        let next = loop {
            if jobs.shutdown {
                break None;
            }
            if standby {
                if jobs.stuck(shared.blocking()) {
                    jobs.standby = false;
                    standby = false;
                    continue;
                }
                if jobs.queue.is_empty() && idle_since.elapsed() > shared.opts.idle {
                    jobs.standby = false;
                    break None;
                }
                // Watch closely only while requests wait; otherwise look now and then, so a
                // quiet pool costs no wake-ups to speak of.
                let watch = if jobs.queue.is_empty() {
                    STANDBY_QUIET
                } else {
                    idle_since = Instant::now();
                    STALL
                };
                jobs = shared
                    .standby
                    .wait_timeout(jobs, watch)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            if let Some(job) = jobs.queue.pop_front() {
                break Some(job);
            }
            // Look for work a little before sleeping: a reaper usually queues the next request
            // right after it takes a completion — when requests are fast. When they block, the
            // next one comes later than a look would last.
            if !shared.blocking() && !shared.spinning.swap(true, Ordering::Relaxed) {
                drop(jobs);
                let until = Instant::now() + SPIN;
                while shared.queued.load(Ordering::Relaxed) == 0 && Instant::now() < until {
                    // Yield rather than spin: the thread that will queue may need this CPU.
                    std::thread::yield_now();
                }
                shared.spinning.store(false, Ordering::Relaxed);
                jobs = shared.jobs();
                if !jobs.queue.is_empty() || jobs.shutdown {
                    continue;
                }
            }
            jobs.idle += 1;
            let (guard, timeout) = shared
                .work
                .wait_timeout(jobs, shared.opts.idle)
                .unwrap_or_else(PoisonError::into_inner);
            jobs = guard;
            jobs.idle -= 1;
            if timeout.timed_out() && jobs.queue.is_empty() {
                break None;
            }
        };
        let Some((mut req, _queued)) = next else {
            jobs.threads -= 1;
            return;
        };
        shared.queued.fetch_sub(1, Ordering::Relaxed);
        jobs.running.push((req.user_data, Instant::now()));
        // Requests wait behind busy workers: make sure a standby is watching.
        let spawn = !jobs.queue.is_empty()
            && jobs.idle == 0
            && !jobs.standby
            && jobs.threads < shared.opts.threads;
        if spawn {
            jobs.threads += 1;
            jobs.standby = true;
        }
        drop(jobs);
        if spawn && shared.spawn_worker(true).is_err() {
            shared.jobs().standby = false;
        }

        let wanted = req.ioprio.map(|p| p.raw());
        if wanted.is_some() && wanted != prio {
            // Best effort: a priority the kernel refuses leaves the thread's as it was.
            if sys::io::set_thread_ioprio(wanted.unwrap_or_default()).is_ok() {
                prio = wanted;
            }
        }
        let started = Instant::now();
        let res = match execute(&mut req) {
            Exec::Done(res) => res,
            Exec::Wait(events) => {
                // Nothing moved: wait for the descriptor, without this worker.
                shared.park(req, events);
                continue;
            }
        };
        let score = shared.slow.load(Ordering::Relaxed);
        let score = if started.elapsed() > FAST {
            (score + 1).min(SLOW_MAX)
        } else {
            score.saturating_sub(1)
        };
        shared.slow.store(score, Ordering::Relaxed);
        last = Some(req.user_data);
        idle_since = Instant::now();
        shared.ready.push([Completion::new(req.user_data, res, req.buf)]);
    }
}

/// What running a request came to.
enum Exec {
    /// Its result: bytes, or a negated errno.
    Done(i64),
    /// A stream that is not ready: nothing moved; wait for these `poll` events.
    Wait(libc::c_short),
}

/// Runs one request with a blocking system call, retrying on `EINTR`. On a descriptor without
/// positions (a pipe, a socket: `ESPIPE`) the offset is ignored, as glibc's POSIX AIO does.
/// A stream is tried without waiting (see the module doc).
fn execute(req: &mut Request) -> Exec {
    let flags = req.flags.bits();
    let stream = matches!(req.op, Op::Read | Op::Readv | Op::Write | Op::Writev)
        && matches!(sys::io::file_type(req.fd), Some(libc::S_IFIFO | libc::S_IFSOCK));
    if stream {
        return execute_stream(req, flags);
    }
    let mut positioned = true;
    loop {
        let iov = req.buf.iovecs();
        let result = match req.op {
            // SAFETY: the request owns its buffer (or its raw memory's owner promised it stays
            // valid) until its completion is pushed, after this call; reads only go into
            // writable buffers (Request::validate).
            Op::Read | Op::Readv => unsafe {
                if positioned {
                    sys::io::preadv2(req.fd, iov, req.offset, flags)
                } else {
                    sys::io::readv(req.fd, iov)
                }
            },
            // SAFETY: as above, for reads of the buffer.
            Op::Write | Op::Writev => unsafe {
                if positioned {
                    sys::io::pwritev2(req.fd, iov, req.offset, flags)
                } else {
                    sys::io::writev(req.fd, iov)
                }
            },
            Op::Fsync => sys::io::fsync(req.fd).map(|()| 0),
            Op::Fdatasync => sys::io::fdatasync(req.fd).map(|()| 0),
        };
        match result {
            Ok(n) => return Exec::Done(n as i64),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ESPIPE) && positioned && flags == 0 => {
                positioned = false;
            }
            Err(e) => return Exec::Done(errno_result(&e)),
        }
    }
}

fn errno_result(e: &io::Error) -> i64 {
    -i64::from(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A read or write of a stream, at its position (the offset means nothing there): without
/// waiting first; if nothing can move, [`Exec::Wait`]. A write that moved some bytes goes on,
/// waiting, until all are written, as a blocking write does.
fn execute_stream(req: &mut Request, flags: libc::c_int) -> Exec {
    let read = req.op.is_read();
    let nowait = |iov: &[libc::iovec]| {
        // SAFETY: as in `execute`: the request's buffers are valid for the call, writable for
        // a read.
        unsafe {
            if read {
                sys::io::readv2(req.fd, iov, flags | libc::RWF_NOWAIT)
            } else {
                sys::io::writev2(req.fd, iov, flags | libc::RWF_NOWAIT)
            }
        }
    };
    let first = loop {
        match nowait(req.buf.iovecs()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r,
        }
    };
    let supported = !matches!(&first, Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP));
    let moved = match first {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
            return Exec::Wait(if read { libc::POLLIN } else { libc::POLLOUT });
        }
        // No RWF_NOWAIT here (before Linux 4.14, or this kind of stream): the plain call,
        // which may hold this worker.
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => 0,
        Err(e) => return Exec::Done(errno_result(&e)),
    };
    let total = req.buf.len();
    if read && supported || moved == total {
        return Exec::Done(moved as i64);
    }
    // The rest, waiting as a blocking call would: a write that began finishes; a read or write
    // without RWF_NOWAIT support runs as it always did.
    let mut done = moved;
    let iov: Vec<libc::iovec> = req.buf.iovecs().to_vec();
    while done < total {
        let rest = skip(&iov, done);
        // SAFETY: as above.
        let r = unsafe {
            if read {
                sys::io::readv(req.fd, &rest)
            } else {
                sys::io::writev(req.fd, &rest)
            }
        };
        match r {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                if read {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) if done > 0 => break,
            Err(e) => return Exec::Done(errno_result(&e)),
        }
    }
    Exec::Done(done as i64)
}

/// The segments of `iov` after the first `n` bytes.
fn skip(iov: &[libc::iovec], mut n: usize) -> Vec<libc::iovec> {
    let mut out = Vec::with_capacity(iov.len());
    for v in iov {
        if n >= v.iov_len {
            n -= v.iov_len;
            continue;
        }
        out.push(libc::iovec {
            // SAFETY: `n < iov_len`, so the result stays inside the segment.
            iov_base: unsafe { v.iov_base.cast::<u8>().add(n) }.cast(),
            iov_len: v.iov_len - n,
        });
        n = 0;
    }
    out
}

impl Shared {
    /// Hands a request to the workers: a sleeping one takes it, or a new one starts (or a
    /// standby, which takes requests over if the busy workers look stuck: see `worker`).
    fn enqueue(self: &Arc<Self>, req: Request) -> Result<(), Rejected> {
        let mut jobs = self.jobs();
        if jobs.shutdown {
            return Err(Rejected::new(io::Error::other("the pool is shutting down"), req));
        }
        jobs.queue.push_back((req, Instant::now()));
        self.queued.fetch_add(1, Ordering::Relaxed);
        let plan = self.plan_workers(&mut jobs);
        drop(jobs);
        if let Err(e) = self.start_workers(plan) {
            let mut jobs = self.jobs();
            // With no worker at all the request would never run: give it back.
            if jobs.threads == 0 {
                if let Some((req, _)) = jobs.queue.pop_back() {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    return Err(Rejected::new(
                        io::Error::new(e.kind(), format!("cannot start a worker thread: {e}")),
                        req,
                    ));
                }
            }
        }
        Ok(())
    }

    /// For requests just queued (`jobs` held): whether to wake a sleeping worker, start the
    /// first one, or start a standby. Counts a thread to start as started.
    fn plan_workers(&self, jobs: &mut Jobs) -> (bool, bool, bool) {
        let wake = jobs.idle > 0;
        let spawn = !wake && jobs.threads == 0;
        let standby = !wake && !spawn && !jobs.standby && jobs.threads < self.opts.threads;
        if spawn || standby {
            jobs.threads += 1;
        }
        jobs.standby |= standby;
        (wake, spawn, standby)
    }

    /// Carries out a plan of [`plan_workers`](Self::plan_workers) (the lock released). `Err`:
    /// the first worker could not start.
    fn start_workers(
        self: &Arc<Self>,
        (wake, spawn, standby): (bool, bool, bool),
    ) -> io::Result<()> {
        if wake {
            self.work.notify_one();
        }
        if standby && self.spawn_worker(true).is_err() {
            self.jobs().standby = false;
        }
        if spawn {
            self.spawn_worker(false)?;
        }
        Ok(())
    }

    fn parked(&self) -> MutexGuard<'_, Parked> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parks a stream request that a worker found not ready, until its descriptor shows
    /// `events`: from `running` to `parked` under both locks (see [`Parked`]); starts the
    /// poller if needed.
    fn park(self: &Arc<Self>, req: Request, events: libc::c_short) {
        let mut jobs = self.jobs();
        let mut parked = self.parked();
        if let Some(pos) = jobs.running.iter().position(|&(u, _)| u == req.user_data) {
            jobs.running.swap_remove(pos);
        }
        parked.by_fd.entry(req.fd).or_default().push_back((req, events));
        if parked.poller.is_none() {
            let shared = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("aio-pool-poll".into())
                .spawn(move || poller(&shared));
            match spawned {
                Ok(handle) => parked.poller = Some(handle),
                Err(_) => {
                    // No poller: the requests run again at once (a worker then waits in the
                    // system call, as a blocking call would) rather than wait for nothing.
                    let by_fd = std::mem::take(&mut parked.by_fd);
                    drop(parked);
                    let n = self
                        .requeue_front(&mut jobs, by_fd.into_values().flatten().map(|(r, _)| r));
                    self.after_requeue(jobs, n);
                    return;
                }
            }
        }
        drop(parked);
        drop(jobs);
        let _ = self.poke.write(1);
    }

    /// Puts requests back at the front of the queue (`jobs` held); returns how many.
    fn requeue_front(&self, jobs: &mut Jobs, reqs: impl IntoIterator<Item = Request>) -> usize {
        let mut n = 0;
        for req in reqs {
            jobs.queue.push_front((req, Instant::now()));
            n += 1;
        }
        self.queued.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// After `n` requests went back to the queue: workers for them. If none can start, the
    /// queued requests complete with the error (they are never left waiting for no one); if
    /// the pool is shutting down, they are dropped unrun, as its other queued requests are.
    fn after_requeue(self: &Arc<Self>, mut jobs: MutexGuard<'_, Jobs>, n: usize) {
        if n == 0 {
            return;
        }
        if jobs.shutdown {
            let dropped: Vec<_> = jobs.queue.drain(..).collect();
            self.queued.store(0, Ordering::Relaxed);
            self.in_flight.fetch_sub(dropped.len(), Ordering::Relaxed);
            return;
        }
        let plan = self.plan_workers(&mut jobs);
        drop(jobs);
        if let Err(e) = self.start_workers(plan) {
            let mut jobs = self.jobs();
            if jobs.threads == 0 {
                let failed: Vec<_> = jobs.queue.drain(..).collect();
                self.queued.store(0, Ordering::Relaxed);
                drop(jobs);
                let errno = e.raw_os_error().unwrap_or(libc::EAGAIN);
                self.ready.push(
                    failed
                        .into_iter()
                        .map(|(r, _)| Completion::new(r.user_data, -i64::from(errno), r.buf)),
                );
            }
        }
    }
}

/// The poller: waits, with `poll`, for the descriptors of parked requests, and sends the
/// requests whose descriptor is ready back to the workers — for each ready event, the first
/// request waiting for it (the others stay: one byte in a pipe serves one read). Stops when the
/// pool shuts down.
fn poller(shared: &Arc<Shared>) {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        fds.clear();
        fds.push(libc::pollfd { fd: shared.poke.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        {
            let parked = shared.parked();
            for (&fd, reqs) in &parked.by_fd {
                let events = reqs.iter().fold(0, |e, (_, want)| e | want);
                fds.push(libc::pollfd { fd, events, revents: 0 });
            }
        }
        if shared.jobs().shutdown {
            return;
        }
        match sys::fs::poll(&mut fds, None) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
        if fds[0].revents != 0 {
            let _ = shared.poke.read();
        }
        let mut ready = Vec::new();
        let mut jobs = shared.jobs();
        {
            let mut parked = shared.parked();
            for pfd in &fds[1..] {
                if pfd.revents == 0 {
                    continue;
                }
                let Some(reqs) = parked.by_fd.get_mut(&pfd.fd) else { continue };
                // An error or hang-up ends every wait (the calls then say what happened);
                // readiness serves the first request waiting for it.
                let all = pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
                let mut served = 0;
                let mut keep = VecDeque::with_capacity(reqs.len());
                while let Some((req, want)) = reqs.pop_front() {
                    if all || (pfd.revents & want != 0 && served & want == 0) {
                        served |= want;
                        ready.push(req);
                    } else {
                        keep.push_back((req, want));
                    }
                }
                *reqs = keep;
                if reqs.is_empty() {
                    parked.by_fd.remove(&pfd.fd);
                }
            }
        }
        // Still under both locks (see `Parked`): from parked to the front of the queue.
        let n = shared.requeue_front(&mut jobs, ready);
        shared.after_requeue(jobs, n);
    }
}

// SAFETY: a request's buffer is used only by the one worker running it, and goes back in the
// completion pushed after the system call returned; reads report the kernel's byte count.
unsafe impl Driver for PoolDriver {
    fn name(&self) -> &str {
        "pool"
    }

    fn queue(&self, req: Request) -> Result<(), Rejected> {
        if let Some(c) = self.queue_now(req)? {
            // Served at once, in this thread: its completion waits for a reap like any other.
            self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
            self.shared.ready.push([c]);
        }
        Ok(())
    }

    fn queue_now(&self, req: Request) -> Result<Option<Completion>, Rejected> {
        if let Err(e) = req.validate() {
            return Err(Rejected::new(e, req));
        }
        if let Some(res) = self.shared.inline.try_request(&req) {
            return Ok(Some(Completion::new(req.user_data, res, req.buf)));
        }
        self.enqueue(req).map(|()| None)
    }

    fn try_now(&self, req: &mut Request) -> Option<i64> {
        self.shared.inline.try_now(req)
    }

    unsafe fn try_now_raw(&self, io: &RawIo) -> Option<i64> {
        // SAFETY: forwarded from the caller.
        unsafe { self.shared.inline.try_raw(io) }
    }

    fn inline_stats(&self) -> InlineStats {
        self.shared.inline.stats()
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn reap(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize> {
        // Look before sleeping only while requests are fast (page-cache hits).
        let look = !self.shared.blocking();
        let n = self.shared.ready.wait(min, max, deadline(timeout), out, look)?;
        self.shared.in_flight.fetch_sub(n, Ordering::Relaxed);
        Ok(n)
    }

    fn wake(&self) {
        self.shared.ready.wake();
    }

    fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome> {
        let shared = &self.shared;
        // Both locks: a request in flight is in exactly one of the three places (see `Parked`).
        let mut jobs = shared.jobs();
        let mut parked = shared.parked();
        let taken = if let Some(pos) = jobs.queue.iter().position(|(r, _)| r.user_data == user_data)
        {
            shared.queued.fetch_sub(1, Ordering::Relaxed);
            jobs.queue.remove(pos).map(|(r, _)| r)
        } else {
            // Parked: waiting for its stream, nothing moved.
            let found = parked.by_fd.iter_mut().find_map(|(&fd, reqs)| {
                let pos = reqs.iter().position(|(r, _)| r.user_data == user_data)?;
                Some((fd, reqs.remove(pos)?.0))
            });
            found.map(|(fd, req)| {
                if parked.by_fd.get(&fd).is_some_and(VecDeque::is_empty) {
                    parked.by_fd.remove(&fd);
                }
                req
            })
        };
        let running = jobs.running.iter().any(|&(u, _)| u == user_data);
        drop(parked);
        drop(jobs);
        match taken {
            Some(req) => {
                let _ = shared.poke.write(1);
                shared.ready.push([Completion::new(
                    req.user_data,
                    -i64::from(libc::ECANCELED),
                    req.buf,
                )]);
                Ok(CancelOutcome::Cancelled)
            }
            None if running => Ok(CancelOutcome::Running),
            None => Ok(CancelOutcome::NotFound),
        }
    }

    fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
        self.shared.ready.eventfd()
    }

    fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }
}

impl Drop for PoolDriver {
    fn drop(&mut self) {
        // Requests not started are dropped without I/O; running ones finish first.
        let not_started = {
            let mut jobs = self.shared.jobs();
            jobs.shutdown = true;
            self.shared.queued.store(0, Ordering::Relaxed);
            std::mem::take(&mut jobs.queue)
        };
        drop(not_started);
        self.shared.work.notify_all();
        let poller = {
            let mut parked = self.shared.parked();
            parked.by_fd.clear();
            parked.poller.take()
        };
        let _ = self.shared.poke.write(1);
        if let Some(p) = poller {
            let _ = p.join();
        }
        let workers = std::mem::take(
            &mut *self.shared.workers.lock().unwrap_or_else(PoisonError::into_inner),
        );
        for w in workers {
            let _ = w.join();
        }
    }
}
