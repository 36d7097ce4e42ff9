//! The reactor: what connects futures to a [`Driver`].
//!
//! A [`Reactor`] owns a driver and a table of operations in flight. An operation's future
//! queues its request on first poll and parks its waker in the table; whoever reaps — any
//! future being polled, [`Reactor::wait`], [`block_on`], or a task watching
//! [`Reactor::eventfd`] — hands each completion to its operation and wakes its task. There is no
//! background thread.
//!
//! **Batching.** A future does not submit its request on first poll: it queues it, wakes itself
//! and returns `Pending`; on its next poll it flushes everything queued so far. An executor
//! polls every ready future before coming back to the first, so a thousand futures joined in one
//! task are queued in one pass and submitted by one flush.
//!
//! **Cancellation safety.** A request's buffers belong to the driver from the moment it is
//! queued until its completion is reaped. Dropping a future in flight only marks its operation
//! abandoned; the completion, when it comes, is dropped by the reaper — after the kernel is done
//! with the memory.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use slab::Slab;

use crate::driver::{self, Buf, CancelOutcome, Completion, Driver, Rejected, Request, Selection};
use crate::EventFd;

/// Most completions taken in one non-blocking sweep.
const SWEEP: usize = 256;

/// Connects futures to a driver. See the module documentation.
pub struct Reactor {
    driver: Arc<dyn Driver>,
    selection: Option<Selection>,
    ops: Mutex<Slab<Slot>>,
    /// Requests the driver refused as full, queued again as completions make room.
    backlog: Mutex<VecDeque<Request>>,
    /// Whether the backlog has anything (read without its lock).
    backlogged: AtomicBool,
    /// Requests queued so far, and how many of them a flush has covered.
    queued: AtomicU64,
    flushed: AtomicU64,
    /// A vector to reap into, reused.
    scratch: Mutex<Vec<Completion>>,
}

enum Slot {
    /// In flight; the waker of the task waiting for it.
    Waiting(Option<Waker>),
    /// Completed, not yet taken by its future.
    Done(Completion),
    /// Its future was dropped: the completion is dropped when it comes.
    Abandoned,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Reactor {
    /// A reactor on this driver.
    pub fn new(driver: Arc<dyn Driver>) -> Arc<Reactor> {
        Reactor::build(driver, None)
    }

    fn build(driver: Arc<dyn Driver>, selection: Option<Selection>) -> Arc<Reactor> {
        Arc::new(Reactor {
            driver,
            selection,
            ops: Mutex::new(Slab::new()),
            backlog: Mutex::new(VecDeque::new()),
            backlogged: AtomicBool::new(false),
            queued: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            scratch: Mutex::new(Vec::new()),
        })
    }

    /// A reactor on the best driver here ([`driver::select_shared`], honouring `AIO_ENGINE`):
    /// io_uring, else kernel AIO — which serves `O_DIRECT` files itself and others with its
    /// thread pool — else the pool.
    pub fn with_best_driver() -> io::Result<Arc<Reactor>> {
        let (driver, selection) = driver::select_shared(&driver::SelectOptions::default())?;
        Ok(Reactor::build(driver, Some(selection)))
    }

    /// The process-wide reactor, made by [`Reactor::with_best_driver`] on first use.
    pub fn global() -> io::Result<Arc<Reactor>> {
        static GLOBAL: OnceLock<Arc<Reactor>> = OnceLock::new();
        if let Some(r) = GLOBAL.get() {
            return Ok(Arc::clone(r));
        }
        let r = Reactor::with_best_driver()?;
        Ok(Arc::clone(GLOBAL.get_or_init(|| r)))
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// How the driver was chosen, when the reactor chose it.
    pub fn selection(&self) -> Option<&Selection> {
        self.selection.as_ref()
    }

    /// Operations in flight (queued, not yet taken by their futures).
    pub fn in_flight(&self) -> usize {
        lock(&self.ops).len()
    }

    /// A descriptor that becomes readable when completions may be waiting: watch it (epoll,
    /// tokio's `AsyncFd`), read it, then call [`poll_completions`](Self::poll_completions).
    /// Before each wait on it, [`flush`](Self::flush), so that what it waits for was started.
    pub fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
        self.driver.eventfd()
    }

    /// Submits everything queued.
    pub fn flush(&self) -> io::Result<()> {
        let upto = self.queued.load(Ordering::SeqCst);
        self.driver.flush()?;
        self.flushed.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    /// Takes the completions that are ready, without waiting (and without submitting what is
    /// queued), and wakes their tasks. Returns how many.
    pub fn poll_completions(&self) -> io::Result<usize> {
        self.reap(0, Some(Duration::ZERO))
    }

    /// Flushes, then waits until at least one completion arrives or `timeout` passes, handing
    /// out what arrived. Returns how many.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<usize> {
        self.flush()?;
        self.reap(1, timeout)
    }

    fn reap(&self, min: usize, timeout: Option<Duration>) -> io::Result<usize> {
        // Reuse one vector for the completions when no other thread is reaping.
        let mut scratch = self.scratch.try_lock().ok();
        let mut own = Vec::new();
        let done = scratch.as_deref_mut().unwrap_or(&mut own);
        let n = if min == 0 && timeout == Some(Duration::ZERO) {
            self.driver.poll(SWEEP, done)?
        } else {
            self.driver.reap(min, SWEEP, timeout, done)?
        };
        if n > 0 {
            self.dispatch(done.drain(..));
            drop(scratch);
            if self.backlogged.load(Ordering::Acquire) {
                self.drain_backlog();
            }
        }
        Ok(n)
    }

    fn dispatch(&self, done: impl IntoIterator<Item = Completion>) {
        let mut dropped = Vec::new();
        let mut ops = lock(&self.ops);
        for c in done {
            let key = c.user_data as usize;
            match ops.get_mut(key) {
                Some(slot @ Slot::Waiting(_)) => {
                    if let Slot::Waiting(Some(w)) = std::mem::replace(slot, Slot::Done(c)) {
                        // Waking only schedules the task; it does not come back in here.
                        w.wake();
                    }
                }
                Some(Slot::Abandoned) => {
                    ops.remove(key);
                    dropped.push(c);
                }
                // Not ours (cannot happen: every request carries its slot's key).
                Some(Slot::Done(_)) | None => dropped.push(c),
            }
        }
        drop(ops);
        drop(dropped);
    }

    /// Queues requests the driver refused as full, while it takes them.
    fn drain_backlog(&self) {
        let mut backlog = lock(&self.backlog);
        while let Some(req) = backlog.pop_front() {
            match self.driver.queue(req) {
                Ok(()) => {
                    self.queued.fetch_add(1, Ordering::SeqCst);
                }
                Err(r) if r.is_full() => {
                    backlog.push_front(*r.request);
                    break;
                }
                Err(r) => {
                    // It can no longer be queued: it completes with the error.
                    let user_data = r.request.user_data();
                    let Rejected { error, request } = r;
                    let c = Completion::failed(user_data, &error, request.into_buf());
                    drop(backlog);
                    self.dispatch(vec![c]);
                    backlog = lock(&self.backlog);
                }
            }
        }
        self.backlogged.store(!backlog.is_empty(), Ordering::Release);
    }

    /// Runs `fut` to completion on this thread, driving this reactor while it waits.
    pub fn block_on<F: Future>(self: &Arc<Self>, fut: F) -> F::Output {
        block_on_reactor(self, fut)
    }
}

/// Runs `fut` to completion on this thread, driving the [global reactor](Reactor::global).
///
/// # Panics
///
/// If no driver at all can be set up (not even the thread pool).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let reactor = Reactor::global().expect("aio: no driver can be set up");
    block_on_reactor(&reactor, fut)
}

/// A waker for `block_on`: a flag, and an eventfd to interrupt a wait — written only while
/// the thread sleeps, so a wake-up from a future it is polling costs no system call.
struct Signal {
    woken: AtomicBool,
    sleeping: AtomicBool,
    efd: EventFd,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // SeqCst on both sides: either this sees `sleeping` set, or the sleeper sees `woken`
        // set before it sleeps.
        if !self.woken.swap(true, Ordering::SeqCst) && self.sleeping.load(Ordering::SeqCst) {
            let _ = self.efd.write(1);
        }
    }
}

fn block_on_reactor<F: Future>(reactor: &Reactor, fut: F) -> F::Output {
    let signal = Arc::new(Signal {
        woken: AtomicBool::new(false),
        sleeping: AtomicBool::new(false),
        efd: EventFd::new().expect("aio: eventfd for block_on"),
    });
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        if signal.woken.swap(false, Ordering::SeqCst) {
            continue;
        }
        // Nothing to poll again yet: submit, then wait for a completion or a wake-up.
        let _ = reactor.flush();
        if reactor.poll_completions().unwrap_or(0) > 0 {
            continue;
        }
        let driver_fd = reactor.eventfd().map(|fd| fd.as_raw_fd()).unwrap_or(-1);
        let mut fds = [
            libc::pollfd { fd: signal.efd.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: driver_fd, events: libc::POLLIN, revents: 0 },
        ];
        let n = if driver_fd >= 0 { 2 } else { 1 };
        signal.sleeping.store(true, Ordering::SeqCst);
        let polled = if signal.woken.load(Ordering::SeqCst) {
            Ok(0)
        } else {
            crate::sys::fs::poll(&mut fds[..n], None)
        };
        signal.sleeping.store(false, Ordering::SeqCst);
        if fds[0].revents != 0 {
            let _ = signal.efd.read();
        }
        if polled.is_ok() && fds[1].revents != 0 {
            let _ = crate::sys::fs::eventfd_read(reactor.eventfd().expect("it was there"));
            let _ = reactor.poll_completions();
        }
    }
}

/// One operation: queued on first poll, resolved with its completion.
pub(crate) struct Operation<T> {
    reactor: Arc<Reactor>,
    state: State,
    /// Turns the completion (result and buffers) into the future's output.
    finish: fn(i64, Buf) -> T,
}

enum State {
    /// Not queued yet.
    Ready(Request),
    /// Queued with this slot key, as the `seq`-th request.
    Queued { key: usize, seq: u64 },
    /// Resolved (or never to be polled again).
    Gone,
}

impl<T> Operation<T> {
    pub(crate) fn new(reactor: Arc<Reactor>, req: Request, finish: fn(i64, Buf) -> T) -> Self {
        Operation { reactor, state: State::Ready(req), finish }
    }

    /// Asks the driver to cancel the operation; the future then resolves to its final state:
    /// `ECANCELED` if it was stopped in time, its real result otherwise. Before the first poll
    /// it is never queued and resolves to `ECANCELED` at once.
    pub(crate) fn cancel(&mut self) -> io::Result<CancelOutcome> {
        match &mut self.state {
            State::Ready(_) => {
                let State::Ready(req) = std::mem::replace(&mut self.state, State::Gone) else {
                    unreachable!("matched above")
                };
                let buf = req.into_buf();
                let key = lock(&self.reactor.ops).insert(Slot::Done(Completion::new(
                    0,
                    -i64::from(libc::ECANCELED),
                    buf,
                )));
                self.state = State::Queued { key, seq: 0 };
                Ok(CancelOutcome::Cancelled)
            }
            State::Queued { key, .. } => {
                let key = *key;
                // Still in the backlog: never reached the driver.
                let mut backlog = lock(&self.reactor.backlog);
                if let Some(pos) = backlog.iter().position(|r| r.user_data() == key as u64) {
                    let req = backlog.remove(pos).expect("in range");
                    self.reactor.backlogged.store(!backlog.is_empty(), Ordering::Release);
                    drop(backlog);
                    self.reactor.dispatch(vec![Completion::new(
                        req.user_data(),
                        -i64::from(libc::ECANCELED),
                        req.into_buf(),
                    )]);
                    return Ok(CancelOutcome::Cancelled);
                }
                drop(backlog);
                self.reactor.flush()?;
                self.reactor.driver.cancel(key as u64)
            }
            State::Gone => Ok(CancelOutcome::NotFound),
        }
    }
}

impl<T> Unpin for Operation<T> {}

impl<T> Future for Operation<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        let reactor = &*this.reactor;
        match std::mem::replace(&mut this.state, State::Gone) {
            State::Gone => panic!("aio operation polled after it completed"),
            State::Ready(mut req) => {
                // Served at once (data in the page cache): ready on this first poll, without
                // a slot in the table.
                if let Some(res) = reactor.driver.try_now(&mut req) {
                    return Poll::Ready((this.finish)(res, req.into_buf()));
                }
                // No waker yet: the future wakes itself below, and parks its waker on its next
                // poll if the completion has not come by then.
                let key = lock(&reactor.ops).insert(Slot::Waiting(None));
                req.set_user_data(key as u64);
                match reactor.driver.queue_now(req) {
                    // (Not tried again: `try_now` marked it. A driver without `try_now` may
                    // still serve it here.)
                    Ok(Some(c)) => {
                        lock(&reactor.ops).remove(key);
                        Poll::Ready((this.finish)(c.res, c.buf))
                    }
                    Ok(None) => {
                        let seq = reactor.queued.fetch_add(1, Ordering::SeqCst) + 1;
                        this.state = State::Queued { key, seq };
                        // Come back after the executor has polled the others: then flush them
                        // all at once.
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    Err(r) if r.is_full() => {
                        lock(&reactor.backlog).push_back(*r.request);
                        reactor.backlogged.store(true, Ordering::Release);
                        this.state = State::Queued { key, seq: u64::MAX };
                        // Make room: take what is done, which also queues the backlog.
                        let _ = reactor.poll_completions();
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    Err(r) => {
                        lock(&reactor.ops).remove(key);
                        let Rejected { error, request } = r;
                        let c = Completion::failed(0, &error, request.into_buf());
                        Poll::Ready((this.finish)(c.res, c.buf))
                    }
                }
            }
            State::Queued { key, seq } => {
                // Not flushed yet: it cannot have completed, so there is nothing to look for
                // before flushing.
                if seq != u64::MAX && seq > reactor.flushed.load(Ordering::SeqCst) {
                    let _ = reactor.flush();
                } else if let Some(out) = take(reactor, key, this.finish) {
                    return Poll::Ready(out);
                }
                let _ = reactor.poll_completions();
                if let Some(out) = take(reactor, key, this.finish) {
                    return Poll::Ready(out);
                }
                let mut ops = lock(&reactor.ops);
                match ops.get_mut(key) {
                    Some(Slot::Waiting(w)) => match w {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => *w = Some(cx.waker().clone()),
                    },
                    // Completed between the two looks.
                    Some(Slot::Done(_)) => cx.waker().wake_by_ref(),
                    _ => {}
                }
                drop(ops);
                this.state = State::Queued { key, seq };
                Poll::Pending
            }
        }
    }
}

/// The output of operation `key`, if its completion has arrived.
fn take<T>(reactor: &Reactor, key: usize, finish: fn(i64, Buf) -> T) -> Option<T> {
    let mut ops = lock(&reactor.ops);
    if !matches!(ops.get(key), Some(Slot::Done(_))) {
        return None;
    }
    let Slot::Done(c) = ops.remove(key) else { unreachable!() };
    drop(ops);
    Some(finish(c.res, c.buf))
}

impl<T> Drop for Operation<T> {
    fn drop(&mut self) {
        if let State::Queued { key, .. } = self.state {
            let mut ops = lock(&self.reactor.ops);
            match ops.get_mut(key) {
                // Completed and never taken: drop it now (the kernel is done with it).
                Some(Slot::Done(_)) => {
                    let slot = ops.remove(key);
                    drop(ops);
                    drop(slot);
                }
                // In flight: the buffers stay with the driver; the completion is dropped when
                // it comes.
                Some(slot) => *slot = Slot::Abandoned,
                None => {}
            }
        }
    }
}

/// Driving a reactor from tokio: a task that waits on the reactor's eventfd with `AsyncFd` and
/// hands out completions. No thread of its own.
#[cfg(feature = "tokio")]
pub mod tokio {
    use std::io;
    use std::sync::Arc;

    use tokio::io::unix::AsyncFd;

    use super::Reactor;

    /// Drives `reactor` until an error: every time its eventfd fires, takes the completions
    /// and wakes their tasks. Run it as a task next to the ones doing I/O.
    pub async fn drive(reactor: Arc<Reactor>) -> io::Result<()> {
        // A descriptor of our own for the same eventfd, so tokio's registration owns it.
        let fd = reactor.eventfd()?.try_clone_to_owned()?;
        // SAFETY: `fd` is open and owned by the AsyncFd for its whole life, so it stays open and
        // refers to the same eventfd until the AsyncFd is dropped.
        let afd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        loop {
            reactor.flush()?;
            reactor.poll_completions()?;
            let mut ready = afd.readable().await?;
            ready.clear_ready();
            // Reading resets the counter; an empty one (EAGAIN) is fine.
            let _ = crate::sys::fs::eventfd_read(reactor.eventfd()?);
            reactor.poll_completions()?;
        }
    }

    /// Spawns [`drive`] on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn_driver(reactor: Arc<Reactor>) -> tokio::task::JoinHandle<io::Result<()>> {
        tokio::spawn(drive(reactor))
    }
}
