//! [`PoolDriver`]: worker threads doing blocking `preadv2`/`pwritev2`/`fsync`, as glibc's POSIX
//! AIO does — but with no per-file queue: many requests on one descriptor run at once.
//!
//! Requests go to the workers as soon as they are queued. The first worker starts with the
//! first request; more start, up to [`PoolOptions::threads`], when requests wait in the queue
//! longer than [`STALL`] while the workers are blocked in slow I/O (requests take longer than a
//! page-cache hit to serve). So page-cache hits are served by one busy thread, as glibc serves
//! one file, and slow devices get many requests in flight at once. Workers exit after
//! [`PoolOptions::idle`] without work.

use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ready::{deadline, Ready};
use super::{CancelOutcome, Completion, Driver, Op, Rejected, Request};
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
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions { threads: 20, idle: Duration::from_secs(1), capacity: 1 << 16 }
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
                opts,
                jobs: Mutex::new(Jobs::default()),
                work: Condvar::new(),
                standby: Condvar::new(),
                ready,
                in_flight: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
                spinning: AtomicBool::new(false),
                slow: AtomicU32::new(0),
                workers: Mutex::new(Vec::new()),
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
        let res = execute(&mut req);
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

/// Runs one request with a blocking system call, retrying on `EINTR`. On a descriptor without
/// positions (a pipe, a socket: `ESPIPE`) the offset is ignored, as glibc's POSIX AIO does.
fn execute(req: &mut Request) -> i64 {
    let flags = req.flags.bits();
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
            Ok(n) => return n as i64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ESPIPE) && positioned && flags == 0 => {
                positioned = false;
            }
            Err(e) => return -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }
}

// SAFETY: a request's buffer is used only by the one worker running it, and goes back in the
// completion pushed after the system call returned; reads report the kernel's byte count.
unsafe impl Driver for PoolDriver {
    fn name(&self) -> &str {
        "pool"
    }

    fn queue(&self, req: Request) -> Result<(), Rejected> {
        if let Err(e) = req.validate() {
            return Err(Rejected::new(e, req));
        }
        let shared = &self.shared;
        if shared.in_flight.load(Ordering::Relaxed) >= shared.opts.capacity {
            return Err(Rejected::new(io::Error::from_raw_os_error(libc::EAGAIN), req));
        }
        let mut jobs = shared.jobs();
        if jobs.shutdown {
            return Err(Rejected::new(io::Error::other("the pool is shutting down"), req));
        }
        // A sleeping worker takes it; else the first worker starts, or a standby that takes
        // requests over if the busy workers turn out to be stuck (see `worker`).
        let wake = jobs.idle > 0;
        let spawn = !wake && jobs.threads == 0;
        let standby = !wake && !spawn && !jobs.standby && jobs.threads < shared.opts.threads;
        if spawn || standby {
            jobs.threads += 1;
        }
        jobs.standby |= standby;
        jobs.queue.push_back((req, Instant::now()));
        shared.queued.fetch_add(1, Ordering::Relaxed);
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        drop(jobs);
        if wake {
            shared.work.notify_one();
        }
        if standby && shared.spawn_worker(true).is_err() {
            shared.jobs().standby = false;
        }
        if spawn {
            if let Err(e) = shared.spawn_worker(false) {
                let mut jobs = shared.jobs();
                // With no worker at all the request would never run: give it back.
                if jobs.threads == 0 {
                    if let Some((req, _)) = jobs.queue.pop_back() {
                        shared.queued.fetch_sub(1, Ordering::Relaxed);
                        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                        return Err(Rejected::new(
                            io::Error::new(e.kind(), format!("cannot start a worker thread: {e}")),
                            req,
                        ));
                    }
                }
            }
        }
        Ok(())
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

    fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome> {
        let mut jobs = self.shared.jobs();
        if let Some(pos) = jobs.queue.iter().position(|(r, _)| r.user_data == user_data) {
            let (req, _) = jobs.queue.remove(pos).expect("position is in range");
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
            drop(jobs);
            self.shared.ready.push([Completion::new(
                req.user_data,
                -i64::from(libc::ECANCELED),
                req.buf,
            )]);
            return Ok(CancelOutcome::Cancelled);
        }
        Ok(if jobs.running.iter().any(|&(u, _)| u == user_data) {
            CancelOutcome::Running
        } else {
            CancelOutcome::NotFound
        })
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
        let workers = std::mem::take(
            &mut *self.shared.workers.lock().unwrap_or_else(PoisonError::into_inner),
        );
        for w in workers {
            let _ = w.join();
        }
    }
}
