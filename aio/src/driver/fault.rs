//! [`FaultDriver`]: wraps any driver and injects faults, as dm-flakey does for a block device —
//! to test that what runs on top reports each failure where it happened and loses nothing.
//!
//! Each request's fate is drawn when it is queued, from the seed and the request's position in
//! the order of queueing, so the same seed and the same sequence of requests give the same
//! faults. Faults:
//!
//! - **fail** a fraction of requests with an errno (`EIO`, `ENOSPC`, …): the request is not
//!   passed on, and completes with the error;
//! - **shorten** a fraction of reads and writes: the request is passed on with its buffers cut
//!   to a shorter length (a multiple of 4096 when the request is longer than 8192, so O_DIRECT
//!   alignment holds), and completes short;
//! - **delay** completions by a random latency in a range;
//! - **crash** after N completions: the next completions are never reported and later requests
//!   are never passed on, as if the device had stopped — what completed before stays done,
//!   nothing after is reported done.
//!
//! Or faults as rules ([`FaultConfig::rules`], the SPECs of [`crate::faults`], the same as
//! `aio mount`'s): each request is shown to the rules as an operation on its file (the path
//! from `/proc/self/fd`, asked only when a rule names one), at its offset and length, and what
//! they decide is done — fail with an errno, transfer fewer bytes (`short`), keep only the
//! first bytes of a write while reporting all of it written (`torn`), add latency, or crash:
//! the request completes, and every later one fails with `EIO`, as a device that died would
//! answer (the program goes on, and sees what it does with a dead disk).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::BorrowedFd;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ready::Ready;
use super::{CancelOutcome, Completion, Driver, Rejected, Request};
use crate::deadline::deadline;

/// Which faults a [`FaultDriver`] injects.
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// Seeds every random choice.
    pub seed: u64,
    /// Fraction (0 to 1) of requests that fail.
    pub fail_rate: f64,
    /// The errnos failures use, chosen at random (empty: `EIO`). A value that is not an errno
    /// (outside 1 to 4095) fails with `EIO`.
    pub fail_errnos: Vec<i32>,
    /// Fraction (0 to 1) of reads and writes that are shortened.
    pub short_rate: f64,
    /// Added latency: each completion is held back by a random time in this range.
    pub latency: Option<(Duration, Duration)>,
    /// After this many completions, report no more and pass nothing on.
    pub crash_after: Option<u64>,
    /// Rules deciding each request instead of the rates above (see the module doc); their
    /// decisions are drawn from their own seed and logged to their own log.
    pub rules: Option<Arc<crate::faults::Faults>>,
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Fail(i32),
    Short(usize),
    /// Pass on this many bytes of a write, and report the whole length written.
    Torn(usize),
    Pass,
}

/// A driver wrapped with fault injection.
pub struct FaultDriver<D> {
    inner: D,
    cfg: FaultConfig,
    name: String,
    /// Position of the next request in queueing order.
    seq: AtomicU64,
    state: Arc<Mutex<State>>,
    /// Injected failures, completed at once.
    ready: Ready,
    in_flight: AtomicUsize,
    /// Whether someone watches the eventfd (injected failures must then signal it).
    watched: AtomicBool,
    /// With latency and a watched eventfd: a thread that signals it when held completions
    /// become due, and the flag that stops it.
    ticker: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

#[derive(Default)]
struct State {
    /// Requests passed on, by the `user_data` given to the inner driver: the caller's
    /// `user_data`, the latency to add, and (a torn write) the length to report.
    passed: HashMap<u64, (u64, Duration, Option<i64>)>,
    /// Completions held back for latency, by release time.
    held: BinaryHeap<Reverse<Held>>,
    /// Completions reported so far.
    reported: u64,
    /// Requests and completions swallowed by the crash, kept until drop.
    lost: Vec<Completion>,
    lost_requests: Vec<Request>,
    crashed: bool,
    /// A rule's crash happened: every later request fails with EIO.
    dead: bool,
}

struct Held {
    at: Instant,
    order: u64,
    completion: Completion,
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Held) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// How often the latency ticker looks when nothing is due.
const TICK: Duration = Duration::from_millis(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SplitMix64: a good 64-bit mix, enough for drawing faults.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `k`-th random number in [0, 1) for request `seq`.
fn draw(seed: u64, seq: u64, k: u64) -> f64 {
    (mix(seed ^ mix(seq.wrapping_mul(8).wrapping_add(k))) >> 11) as f64 / (1u64 << 53) as f64
}

impl<D: Driver> FaultDriver<D> {
    /// Wraps `inner`.
    pub fn new(inner: D, cfg: FaultConfig) -> FaultDriver<D> {
        let name = format!("fault({})", inner.name());
        FaultDriver {
            inner,
            cfg,
            name,
            seq: AtomicU64::new(0),
            state: Arc::new(Mutex::new(State::default())),
            ready: Ready::default(),
            in_flight: AtomicUsize::new(0),
            watched: AtomicBool::new(false),
            ticker: Mutex::new(None),
        }
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Whether the simulated crash has happened.
    pub fn crashed(&self) -> bool {
        self.state().crashed
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Signals the watched eventfd (the inner driver's) that something is ready here.
    fn poke(&self) {
        // Through the inner driver's waits: a thread waiting in them (in `reap`, below) or on
        // its eventfd looks again.
        self.inner.wake();
    }

    /// Starts the thread that signals `fd` when held completions become due.
    fn start_ticker(&self, fd: OwnedFd) -> io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let (state, flag) = (Arc::clone(&self.state), Arc::clone(&stop));
        let handle =
            std::thread::Builder::new().name("aio-fault-tick".into()).spawn(move || {
                use std::os::fd::AsFd;
                let mut signalled: Option<Instant> = None;
                while !flag.load(Ordering::SeqCst) {
                    let next = lock(&state).held.peek().map(|h| h.0.at);
                    let now = Instant::now();
                    match next {
                        Some(at) if at <= now && signalled != Some(at) => {
                            let _ = crate::sys::fs::eventfd_write(fd.as_fd(), 1);
                            signalled = Some(at);
                        }
                        Some(at) if at > now => std::thread::sleep((at - now).min(TICK)),
                        _ => std::thread::sleep(TICK),
                    }
                }
            })?;
        *lock(&self.ticker) = Some((stop, handle));
        Ok(())
    }

    /// What the rules decide for `req`: its fate and the latency to add.
    fn ruled(&self, faults: &crate::faults::Faults, req: &Request) -> (Fate, Duration) {
        use crate::faults::{Event, FaultOp, Outcome};
        let op = match req.op {
            super::Op::Read | super::Op::Readv => FaultOp::Read,
            super::Op::Write | super::Op::Writev => FaultOp::Write,
            super::Op::Fsync => FaultOp::Fsync,
            super::Op::Fdatasync => FaultOp::Fdatasync,
        };
        let path = faults.wants_path().then(|| crate::sys::fs::fd_path(req.fd)).flatten();
        let len = req.buf.len() as u64;
        let ev = if req.op.is_read() || req.op.is_write() {
            Event::data(op, path.as_deref(), req.offset, len)
        } else {
            Event::new(op, path.as_deref())
        };
        let d = faults.decide(&ev);
        let fate = match d.outcome {
            Outcome::Pass => Fate::Pass,
            Outcome::Fail(e) => Fate::Fail(e),
            Outcome::Short(n) => Fate::Short(n as usize),
            Outcome::Torn(n) if req.op.is_write() => Fate::Torn(n as usize),
            Outcome::Torn(_) => Fate::Pass,
            Outcome::Crash => {
                self.state().dead = true;
                Fate::Pass
            }
        };
        (fate, d.delay)
    }

    fn fate(&self, seq: u64, req: &Request) -> Fate {
        let c = &self.cfg;
        if draw(c.seed, seq, 0) < c.fail_rate {
            let errnos = if c.fail_errnos.is_empty() { &[libc::EIO][..] } else { &c.fail_errnos };
            let pick = (draw(c.seed, seq, 1) * errnos.len() as f64) as usize;
            let errno = errnos[pick.min(errnos.len() - 1)];
            // The completion's result is -errno: anything but a real errno would read as
            // success (0), or as bytes transferred by a request that never ran — which a
            // caller of a read takes as initialized memory.
            return Fate::Fail(if (1..4096).contains(&errno) { errno } else { libc::EIO });
        }
        let len = req.buf.len();
        if (req.op.is_read() || req.op.is_write()) && len > 1 && draw(c.seed, seq, 2) < c.short_rate
        {
            let r = draw(c.seed, seq, 3);
            let short = if len > 8192 {
                4096 * (1 + (r * (len / 4096 - 1) as f64) as usize)
            } else {
                1 + (r * (len - 1) as f64) as usize
            };
            if short < len {
                return Fate::Short(short);
            }
        }
        Fate::Pass
    }

    fn latency(&self, seq: u64) -> Duration {
        match self.cfg.latency {
            None => Duration::ZERO,
            Some((lo, hi)) => {
                let span = hi.saturating_sub(lo);
                lo + span.mul_f64(draw(self.cfg.seed, seq, 4))
            }
        }
    }

    /// Sorts completions from the inner driver: back to the caller's `user_data`, held for
    /// latency, or swallowed after the crash.
    fn absorb(&self, from_inner: Vec<Completion>) {
        let mut st = self.state();
        let now = Instant::now();
        for mut c in from_inner {
            let Some((user_data, delay, report)) = st.passed.remove(&c.user_data) else {
                continue;
            };
            let order = c.user_data;
            c.user_data = user_data;
            if let Some(full) = report.filter(|_| c.res >= 0) {
                // A torn write: part of it went to the file, all of it is said written.
                c.res = full;
            }
            let at = now.checked_add(delay).unwrap_or(now);
            st.held.push(Reverse(Held { at, order, completion: c }));
        }
    }

    /// Moves completions that are due (and allowed before the crash) into `out`.
    fn release(&self, max: usize, out: &mut Vec<Completion>) -> usize {
        let mut got = 0;
        let now = Instant::now();
        let mut st = self.state();
        loop {
            if got == max {
                break;
            }
            let due = st.held.peek().is_some_and(|h| h.0.at <= now);
            let next = if due {
                st.held.pop().map(|h| h.0.completion)
            } else {
                let mut one = Vec::with_capacity(1);
                (self.ready.take(1, &mut one) == 1).then(|| one.pop().expect("one"))
            };
            let Some(c) = next else { break };
            if st.crashed {
                st.lost.push(c);
                continue;
            }
            out.push(c);
            got += 1;
            st.reported += 1;
            if self.cfg.crash_after.is_some_and(|n| st.reported >= n) {
                st.crashed = true;
            }
        }
        got
    }

    fn next_release(&self) -> Option<Instant> {
        self.state().held.peek().map(|h| h.0.at)
    }
}

// SAFETY: buffers go to the inner driver (which keeps the promises) or stay here until their
// completion is reported or the wrapper is dropped; shortened buffers only report what the inner
// driver transferred.
unsafe impl<D: Driver> Driver for FaultDriver<D> {
    fn name(&self) -> &str {
        &self.name
    }

    fn queue(&self, mut req: Request) -> Result<(), Rejected> {
        if let Err(e) = req.validate() {
            return Err(Rejected::new(e, req));
        }
        if self.state().crashed {
            // A crashed device takes requests and never answers.
            self.state().lost_requests.push(req);
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let (fate, latency) = match &self.cfg.rules {
            _ if self.state().dead => (Fate::Fail(libc::EIO), Duration::ZERO),
            Some(rules) => self.ruled(rules, &req),
            None => (self.fate(seq, &req), self.latency(seq)),
        };
        let mut report = None;
        match fate {
            Fate::Fail(errno) if latency.is_zero() => {
                self.in_flight.fetch_add(1, Ordering::SeqCst);
                self.ready.push([Completion::new(req.user_data, -i64::from(errno), req.buf)]);
                self.poke();
                return Ok(());
            }
            Fate::Fail(errno) => {
                // Late: held like a passed request's completion.
                self.in_flight.fetch_add(1, Ordering::SeqCst);
                let c = Completion::new(req.user_data, -i64::from(errno), req.buf);
                let at = Instant::now().checked_add(latency).unwrap_or_else(Instant::now);
                self.state().held.push(Reverse(Held { at, order: seq, completion: c }));
                self.poke();
                return Ok(());
            }
            Fate::Short(len) => req.buf.truncate(len),
            Fate::Torn(len) => {
                report = Some(req.buf.len() as i64);
                req.buf.truncate(len);
            }
            Fate::Pass => {}
        }
        let user_data = std::mem::replace(&mut req.user_data, seq);
        self.state().passed.insert(seq, (user_data, latency, report));
        match self.inner.queue(req) {
            Ok(()) => {
                self.in_flight.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(mut rejected) => {
                self.state().passed.remove(&seq);
                rejected.request.user_data = user_data;
                Err(rejected)
            }
        }
    }

    fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }

    fn reap(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize> {
        let deadline = deadline(timeout);
        let min = min.min(max);
        let mut got = 0;
        let mut batch = Vec::new();
        loop {
            // Take what the inner driver has, without waiting.
            self.inner.reap(0, usize::MAX, Some(Duration::ZERO), &mut batch)?;
            self.absorb(std::mem::take(&mut batch));
            got += self.release(max - got, out);
            // A crashed device reports nothing more: waiting would be for nothing.
            if got >= min || got == max || self.crashed() {
                break;
            }
            let now = Instant::now();
            let until = match (deadline, self.next_release()) {
                (Some(d), Some(r)) => Some(d.min(r)),
                (d, r) => d.or(r),
            };
            let left = until.map(|u| u.saturating_duration_since(now));
            if deadline.is_some_and(|d| d <= now) {
                break;
            }
            // Wait for the inner driver (or until the next held completion is due). Injected
            // failures are in `ready`; one pushed meanwhile wakes this wait (`poke`, sticky).
            if self.ready.len() == 0 {
                match self.inner.wait_ready(left, None) {
                    Err(e) if got == 0 => return Err(e),
                    Err(_) => break,
                    Ok(()) => {}
                }
            }
        }
        self.in_flight.fetch_sub(got, Ordering::SeqCst);
        Ok(got)
    }

    fn wait_ready(
        &self,
        timeout: Option<Duration>,
        sigmask: Option<&libc::sigset_t>,
    ) -> io::Result<()> {
        // Ready here (injected failures, held completions now due), or soon: no wait, or one
        // only until the next held completion is due.
        let now = Instant::now();
        let next = self.next_release();
        if self.ready.len() > 0 || next.is_some_and(|at| at <= now) {
            return Ok(());
        }
        let until_next = next.map(|at| at - now);
        let left = match (timeout, until_next) {
            (Some(t), Some(n)) => Some(t.min(n)),
            (t, n) => t.or(n),
        };
        self.inner.wait_ready(left, sigmask)
    }

    fn wake(&self) {
        self.ready.wake();
        self.inner.wake();
    }

    fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome> {
        let seq =
            self.state().passed.iter().find(|(_, &(u, _, _))| u == user_data).map(|(&s, _)| s);
        match seq {
            Some(seq) => self.inner.cancel(seq),
            None => {
                let st = self.state();
                let held = st.held.iter().any(|h| h.0.completion.user_data == user_data);
                Ok(if held { CancelOutcome::Running } else { CancelOutcome::NotFound })
            }
        }
    }

    fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
        // One descriptor covers everything: the inner driver's, which it signals for requests
        // passed on; injected failures and due held completions signal it from here.
        let fd = self.inner.eventfd()?;
        if !self.watched.swap(true, Ordering::SeqCst) && self.cfg.latency.is_some() {
            self.start_ticker(fd.try_clone_to_owned()?)?;
        }
        if self.ready.len() > 0 {
            crate::sys::fs::eventfd_write(fd, 1)?;
        }
        Ok(fd)
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

impl<D> Drop for FaultDriver<D> {
    fn drop(&mut self) {
        if let Some((stop, handle)) =
            self.ticker.get_mut().unwrap_or_else(PoisonError::into_inner).take()
        {
            stop.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
    }
}
