//! [`PoolDriver`]: worker threads doing blocking `preadv2`/`pwritev2`/`fsync`, as glibc's POSIX
//! AIO does — but with no per-file queue: many requests on one descriptor run at once.
//!
//! Workers start on demand up to [`PoolOptions::threads`] and exit after
//! [`PoolOptions::idle`] without work. Requests go to the workers as soon as they are queued.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

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

/// A pool of worker threads serving requests with blocking system calls.
pub struct PoolDriver {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    opts: PoolOptions,
    jobs: Mutex<Jobs>,
    work: Condvar,
    ready: Ready,
    in_flight: AtomicUsize,
}

#[derive(Default)]
struct Jobs {
    queue: VecDeque<Request>,
    /// `user_data` of the requests workers are running.
    running: HashSet<u64>,
    threads: usize,
    idle: usize,
    shutdown: bool,
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
                ready,
                in_flight: AtomicUsize::new(0),
            }),
            workers: Mutex::new(Vec::new()),
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

    fn spawn_worker(&self) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let handle =
            std::thread::Builder::new().name("aio-pool".into()).spawn(move || worker(&shared))?;
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.retain(|h| !h.is_finished());
        workers.push(handle);
        Ok(())
    }
}

fn worker(shared: &Shared) {
    let mut prio: Option<u16> = None;
    let mut jobs = shared.jobs();
    loop {
        let Some(mut req) = jobs.queue.pop_front() else {
            if jobs.shutdown {
                break;
            }
            jobs.idle += 1;
            let (guard, timeout) = shared
                .work
                .wait_timeout(jobs, shared.opts.idle)
                .unwrap_or_else(PoisonError::into_inner);
            jobs = guard;
            jobs.idle -= 1;
            if timeout.timed_out() && jobs.queue.is_empty() {
                break;
            }
            continue;
        };
        jobs.running.insert(req.user_data);
        drop(jobs);

        let wanted = req.ioprio.map(|p| p.raw());
        if wanted.is_some() && wanted != prio {
            // Best effort: a priority the kernel refuses leaves the thread's as it was.
            if sys::io::set_thread_ioprio(wanted.unwrap_or_default()).is_ok() {
                prio = wanted;
            }
        }
        let res = execute(&mut req);

        jobs = shared.jobs();
        jobs.running.remove(&req.user_data);
        shared.ready.push([Completion::new(req.user_data, res, req.buf)]);
    }
    jobs.threads -= 1;
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
        if shared.in_flight.load(Ordering::SeqCst) >= shared.opts.capacity {
            return Err(Rejected::new(io::Error::from_raw_os_error(libc::EAGAIN), req));
        }
        let mut jobs = shared.jobs();
        if jobs.shutdown {
            return Err(Rejected::new(io::Error::other("the pool is shutting down"), req));
        }
        // Start a worker if every one is busy, up to the limit.
        let spawn = jobs.idle <= jobs.queue.len() && jobs.threads < shared.opts.threads;
        if spawn {
            jobs.threads += 1;
        }
        jobs.queue.push_back(req);
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        drop(jobs);
        shared.work.notify_one();
        if spawn {
            if let Err(e) = self.spawn_worker() {
                let mut jobs = shared.jobs();
                jobs.threads -= 1;
                // With no worker at all the request would never run: give it back.
                if jobs.threads == 0 {
                    if let Some(req) = jobs.queue.pop_back() {
                        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
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
        let n = self.shared.ready.wait(min, max, deadline(timeout), out)?;
        self.shared.in_flight.fetch_sub(n, Ordering::SeqCst);
        Ok(n)
    }

    fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome> {
        let mut jobs = self.shared.jobs();
        if let Some(pos) = jobs.queue.iter().position(|r| r.user_data == user_data) {
            let req = jobs.queue.remove(pos).expect("position is in range");
            drop(jobs);
            self.shared.ready.push([Completion::new(
                req.user_data,
                -i64::from(libc::ECANCELED),
                req.buf,
            )]);
            return Ok(CancelOutcome::Cancelled);
        }
        Ok(if jobs.running.contains(&user_data) {
            CancelOutcome::Running
        } else {
            CancelOutcome::NotFound
        })
    }

    fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
        self.shared.ready.eventfd()
    }

    fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for PoolDriver {
    fn drop(&mut self) {
        // Requests not started are dropped without I/O; running ones finish first.
        let not_started = {
            let mut jobs = self.shared.jobs();
            jobs.shutdown = true;
            std::mem::take(&mut jobs.queue)
        };
        drop(not_started);
        self.shared.work.notify_all();
        let workers =
            std::mem::take(self.workers.get_mut().unwrap_or_else(PoisonError::into_inner));
        for w in workers {
            let _ = w.join();
        }
    }
}
