//! The data path: reads, writes and fsyncs of backing files go to an `aio::driver` driver, and
//! a completion thread reaps it and answers the kernel as each request completes — so as many
//! requests are in flight as the kernel sends (FUSE worker threads only queue, never wait).
//!
//! Each request carries what to do with its completion (a closure that replies). Requests the
//! driver refuses because it is full wait in a backlog the completion thread resubmits. Added
//! latency (fault rules with `delay=`) is served by a timer thread, so a delayed reply holds no
//! thread either.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aio::driver::{Completion, Driver, Request};
use slab::Slab;

/// What to do with a completion.
pub type Done = Box<dyn FnOnce(Completion) + Send>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters for `aio fault MOUNTPOINT status`.
#[derive(Default)]
pub struct Stats {
    /// Requests given to the driver.
    pub submitted: AtomicU64,
    /// Requests in the driver now.
    pub in_flight: AtomicUsize,
    /// The most requests in the driver at once.
    pub max_in_flight: AtomicUsize,
    /// Requests that waited in the backlog because the driver was full.
    pub backlogged: AtomicU64,
}

/// The driver, the completions still to deliver, and the thread that delivers them.
pub struct DataPath {
    driver: Arc<dyn Driver>,
    pending: Mutex<Slab<Done>>,
    backlog: Mutex<VecDeque<Request>>,
    stop: AtomicBool,
    /// Counters.
    pub stats: Stats,
    reaper: Mutex<Option<JoinHandle<()>>>,
    /// Replies held back for added latency.
    pub timer: Arc<Timer>,
}

impl DataPath {
    /// Starts the completion thread (and the timer's) over `driver`.
    pub fn start(driver: Arc<dyn Driver>) -> io::Result<Arc<DataPath>> {
        let data = Arc::new(DataPath {
            driver,
            pending: Mutex::new(Slab::with_capacity(256)),
            backlog: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
            stats: Stats::default(),
            reaper: Mutex::new(None),
            timer: Timer::start()?,
        });
        let d = Arc::clone(&data);
        let handle = std::thread::Builder::new()
            .name("aio-mount-reap".into())
            .spawn(move || d.reap_loop())?;
        *lock(&data.reaper) = Some(handle);
        Ok(data)
    }

    /// The driver's name.
    pub fn driver_name(&self) -> &str {
        self.driver.name()
    }

    /// Gives `req` to the driver; `done` runs with its completion on the completion thread
    /// (at once, here, if the driver refuses the request as invalid).
    pub fn submit(&self, mut req: Request, done: Done) {
        let key = lock(&self.pending).insert(done) as u64;
        req.set_user_data(key);
        self.queue(req);
    }

    fn queue(&self, req: Request) {
        // Counted before the driver has it: its completion may be reaped before `queue` returns.
        let n = self.stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        match self.driver.queue(req) {
            Ok(()) => {
                self.stats.max_in_flight.fetch_max(n, Ordering::Relaxed);
                self.stats.submitted.fetch_add(1, Ordering::Relaxed);
                // A request that fails to start completes with the error, through reap.
                let _ = self.driver.flush();
            }
            Err(r) if r.is_full() => {
                self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.stats.backlogged.fetch_add(1, Ordering::Relaxed);
                lock(&self.backlog).push_back(*r.request);
            }
            Err(r) => {
                self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                let key = r.request.user_data();
                let done = lock(&self.pending).try_remove(key as usize);
                if let Some(done) = done {
                    let aio::driver::Rejected { error, request } = r;
                    done(Completion::failed(key, &error, request.into_buf()));
                }
            }
        }
    }

    /// Submits `req` and waits for its completion (for the few callers that must: a sync of
    /// held writes, which runs in a FUSE worker thread).
    pub fn run(&self, req: Request) -> Completion {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(
            req,
            Box::new(move |c| {
                let _ = tx.send(c);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Completion::new(0, -i64::from(libc::EIO), aio::driver::Buf::none()))
    }

    fn reap_loop(&self) {
        let mut out = Vec::with_capacity(256);
        loop {
            let stopping = self.stop.load(Ordering::SeqCst);
            if stopping && self.stats.in_flight.load(Ordering::SeqCst) == 0 {
                break;
            }
            // A bounded wait: requests moved to the backlog while nothing was in flight are
            // picked up within this time.
            match self.driver.reap(1, 256, Some(Duration::from_millis(20)), &mut out) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
            for c in out.drain(..) {
                self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                let done = lock(&self.pending).try_remove(c.user_data as usize);
                if let Some(done) = done {
                    done(c);
                }
            }
            loop {
                let Some(req) = lock(&self.backlog).pop_front() else { break };
                let before = self.stats.backlogged.load(Ordering::Relaxed);
                self.queue(req);
                if self.stats.backlogged.load(Ordering::Relaxed) != before {
                    break; // Full again: wait for completions.
                }
            }
        }
    }

    /// Waits for every request in flight, then stops the completion and timer threads.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = lock(&self.reaper).take() {
            let _ = h.join();
        }
        self.timer.shutdown();
    }
}

/// Runs closures at a later time, on its own thread.
pub struct Timer {
    queue: Mutex<TimerQueue>,
    cv: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    jobs: std::collections::HashMap<u64, Job>,
    next: u64,
    stop: bool,
}

impl Timer {
    fn start() -> io::Result<Arc<Timer>> {
        let t = Arc::new(Timer {
            queue: Mutex::new(TimerQueue::default()),
            cv: Condvar::new(),
            thread: Mutex::new(None),
        });
        let t2 = Arc::clone(&t);
        let h =
            std::thread::Builder::new().name("aio-mount-timer".into()).spawn(move || t2.run())?;
        *lock(&t.thread) = Some(h);
        Ok(t)
    }

    /// Runs `job` after `delay` (at once, on this thread, when `delay` is zero).
    pub fn after(&self, delay: Duration, job: impl FnOnce() + Send + 'static) {
        if delay.is_zero() {
            return job();
        }
        let mut q = lock(&self.queue);
        if q.stop {
            drop(q);
            return job();
        }
        let id = q.next;
        q.next += 1;
        q.heap.push(Reverse((Instant::now() + delay, id)));
        q.jobs.insert(id, Box::new(job));
        drop(q);
        self.cv.notify_one();
    }

    fn run(&self) {
        let mut q = lock(&self.queue);
        loop {
            let now = Instant::now();
            match q.heap.peek().copied() {
                Some(Reverse((at, id))) if at <= now || q.stop => {
                    q.heap.pop();
                    let job = q.jobs.remove(&id);
                    drop(q);
                    if let Some(job) = job {
                        job();
                    }
                    q = lock(&self.queue);
                }
                Some(Reverse((at, _))) => {
                    q = self.cv.wait_timeout(q, at - now).unwrap_or_else(PoisonError::into_inner).0;
                }
                None if q.stop => break,
                None => q = self.cv.wait(q).unwrap_or_else(PoisonError::into_inner),
            }
        }
    }

    /// Runs what is left at once and stops the thread.
    fn shutdown(&self) {
        lock(&self.queue).stop = true;
        self.cv.notify_all();
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
    }
}
