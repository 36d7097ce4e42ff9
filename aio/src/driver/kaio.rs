//! [`KernelDriver`]: native kernel AIO (`io_submit`/`io_getevents`) as a driver.
//!
//! Kernel AIO is asynchronous only for `O_DIRECT` files and block devices: on a buffered file
//! `io_submit` performs the I/O before it returns. So this driver checks each request's
//! descriptor (`F_GETFL`): `O_DIRECT` requests go to the kernel; others go to a thread pool
//! ([`KernelOptions::buffered_pool`], the default) or are refused with a message saying why —
//! the driver never blocks while pretending to be asynchronous.
//!
//! Requests are batched: `queue` builds the iocb, `flush` submits everything queued in one
//! `io_submit`. Every iocb carries the driver's eventfd (`IOCB_FLAG_RESFD`), which the pool
//! signals too, so one descriptor wakes an event loop for both.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use slab::Slab;

use super::ready::Ready;
use super::{
    CancelOutcome, Completion, Driver, InlineStats, Op, PoolDriver, PoolOptions, RawIo, Rejected,
    Request,
};
use crate::deadline::deadline;
use crate::kernel::RawContext;
use crate::sys::{self, io_event, iocb};
use crate::EventFd;

/// How a [`KernelDriver`] is set up.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    /// Requests in flight at once (`io_setup`'s `nr_events`); beyond it `queue` says `EAGAIN`.
    pub max_events: usize,
    /// Requests held before `queue` submits on its own.
    pub batch: usize,
    /// Where requests on buffered (not `O_DIRECT`) descriptors go: a thread pool, or — `None` —
    /// nowhere: they are refused (unless `submit_buffered`).
    pub buffered_pool: Option<PoolOptions>,
    /// Submit requests on buffered descriptors with `io_submit` anyway, as libaio does — knowing
    /// that `io_submit` then does the I/O itself before it returns. For measuring kernel AIO
    /// against libaio on cached files; it is synchronous, and said to be. Takes precedence over
    /// `buffered_pool`.
    pub submit_buffered: bool,
}

impl Default for KernelOptions {
    fn default() -> KernelOptions {
        KernelOptions {
            max_events: 1024,
            batch: 64,
            buffered_pool: Some(PoolOptions::default()),
            submit_buffered: false,
        }
    }
}

/// Native kernel AIO as a [`Driver`].
pub struct KernelDriver {
    // Dropped by hand, first: see Drop.
    ctx: RawContext,
    state: Mutex<State>,
    /// Completions taken from the kernel or made here, not yet reaped.
    ready: Ready,
    efd: Arc<EventFd>,
    /// Whether iocbs ask the kernel to signal `efd` (`IOCB_FLAG_RESFD`): when there is a pool
    /// (waits watch both) or someone asked for the eventfd. Otherwise the signal is work for
    /// nothing.
    signal_efd: AtomicBool,
    pool: Option<PoolDriver>,
    opts: KernelOptions,
    /// Accepted by this driver (not the pool) and not yet reaped.
    in_flight: AtomicUsize,
    /// Threads waiting in `io_getevents` (see `wake_getevents`).
    getevents_waiters: AtomicUsize,
    /// Made readable to complete the poll request that ends waits in `io_getevents`.
    wake_efd: EventFd,
}

struct State {
    table: Slab<Entry>,
    /// Keys of requests queued and not yet submitted, in order.
    plugged: VecDeque<usize>,
    /// iocb allocations kept for reuse.
    #[allow(clippy::vec_box)] // the boxes are what is reused: their addresses go to the kernel
    spare: Vec<Box<IocbCell>>,
    /// The poll request on `wake_efd`, at a stable address, and whether it is in the kernel.
    wake_iocb: Box<IocbCell>,
    wake_pending: bool,
}

impl State {
    /// Removes a request's entry, keeping its iocb allocation for the next one.
    fn take(&mut self, key: usize) -> Option<(u64, super::Buf)> {
        let Entry { iocb, buf, user_data } = self.table.try_remove(key)?;
        if self.spare.len() < 1024 {
            self.spare.push(iocb);
        }
        Some((user_data, buf))
    }
}

struct Entry {
    iocb: Box<IocbCell>,
    buf: super::Buf,
    user_data: u64,
}

/// The `aio_data` of the poll request that only ends waits in `io_getevents`.
const WAKE_DATA: u64 = u64::MAX;

/// An iocb at a stable address, written by the kernel during `io_submit` (`aio_key`).
struct IocbCell(std::cell::UnsafeCell<iocb>);

// SAFETY: plain data, written only by the kernel inside io_submit and read by it in io_cancel.
unsafe impl Send for IocbCell {}
// SAFETY: as above.
unsafe impl Sync for IocbCell {}

impl Entry {
    fn iocb_ptr(&self) -> *mut iocb {
        self.iocb.0.get()
    }
}

impl KernelDriver {
    /// A driver with these options (`io_setup`, and the pool when there is one).
    pub fn new(opts: KernelOptions) -> io::Result<KernelDriver> {
        let ctx = RawContext::new(opts.max_events)?;
        let efd = Arc::new(EventFd::new()?);
        let pool =
            opts.buffered_pool.clone().map(|p| PoolDriver::with_eventfd(p, Arc::clone(&efd)));
        Ok(KernelDriver {
            ctx,
            state: Mutex::new(State {
                table: Slab::new(),
                plugged: VecDeque::new(),
                spare: Vec::new(),
                wake_iocb: Box::new(IocbCell(std::cell::UnsafeCell::new(iocb::default()))),
                wake_pending: false,
            }),
            signal_efd: AtomicBool::new(pool.is_some()),
            ready: Ready::with_eventfd(Arc::clone(&efd)),
            efd,
            pool,
            opts,
            in_flight: AtomicUsize::new(0),
            getevents_waiters: AtomicUsize::new(0),
            wake_efd: EventFd::new()?,
        })
    }

    /// The native context (for its reaping mode and ring).
    pub fn context(&self) -> &RawContext {
        &self.ctx
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `queue_now` and `try_now` hand `req` to the pool (and its inline path): a
    /// buffered read or write, when buffered requests are not submitted to the kernel.
    fn pool_serves(&self, req: &Request) -> bool {
        !self.opts.submit_buffered
            && !matches!(req.op, Op::Fsync | Op::Fdatasync)
            && Self::is_direct(req.fd).is_ok_and(|d| !d)
    }

    /// Whether requests on `fd` can be asynchronous in the kernel: `O_DIRECT`.
    fn is_direct(fd: RawFd) -> io::Result<bool> {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        // SAFETY: a non-negative descriptor number, only asked for its flags; a closed one gives
        // EBADF.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        Ok(sys::fs::status_flags(fd)? & libc::O_DIRECT != 0)
    }

    /// Submits queued requests until none is left or the kernel is full. A request the kernel
    /// refuses completes with the error.
    fn submit_plugged(&self) -> io::Result<()> {
        let mut state = self.state();
        let mut ptrs = [std::ptr::null_mut::<iocb>(); 64];
        while !state.plugged.is_empty() {
            let n = state.plugged.len().min(ptrs.len());
            for (p, &k) in ptrs.iter_mut().zip(state.plugged.iter()) {
                *p = state.table[k].iocb_ptr();
            }
            // SAFETY: each iocb, its buffer (owned by the entry or promised by the raw buffer's
            // owner) and the eventfd live in the table until the completion is taken out; the
            // context is destroyed (waiting for the kernel) before the table is dropped.
            match unsafe { self.ctx.submit(&ptrs[..n]) } {
                Ok(n) => {
                    state.plugged.drain(..n);
                }
                // Full: what is left goes in once completions are reaped.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(()),
                Err(e) => {
                    // The first request is refused: it completes with the error.
                    let key = state.plugged.pop_front().expect("not empty");
                    if let Some((user_data, buf)) = state.take(key) {
                        self.ready.push([Completion::failed(user_data, &e, buf)]);
                        self.wake_getevents(&mut state);
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes up to `max` completions the kernel has into `out`, waiting until `min` or
    /// `timeout`. Returns how many.
    fn harvest(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize> {
        let mut events = [io_event::default(); 64];
        let max = max.clamp(1, events.len());
        self.getevents_waiters.fetch_add(1, Ordering::SeqCst);
        let got = self.ctx.get_events(min.min(max), &mut events[..max], timeout);
        self.getevents_waiters.fetch_sub(1, Ordering::SeqCst);
        let n = got?;
        let mut taken = 0;
        if n > 0 {
            let mut state = self.state();
            for ev in &events[..n] {
                if ev.data == WAKE_DATA {
                    state.wake_pending = false;
                    let _ = self.wake_efd.read();
                    continue;
                }
                if let Some((user_data, buf)) =
                    usize::try_from(ev.data).ok().and_then(|key| state.take(key))
                {
                    out.push(Completion::new(user_data, ev.res, buf));
                    taken += 1;
                }
            }
        }
        Ok(taken)
    }

    /// Ends the waits of threads in `io_getevents` — which only kernel completions end — after
    /// a completion was made here (`ready`): submits a poll request on `wake_efd`, made
    /// readable, so an event arrives. One at a time; it goes when a harvest takes it.
    fn wake_getevents(&self, state: &mut State) {
        if self.getevents_waiters.load(Ordering::SeqCst) == 0 || state.wake_pending {
            return;
        }
        let _ = self.wake_efd.write(1);
        let mut cb = iocb::poll(self.wake_efd.as_raw_fd(), libc::POLLIN as u16);
        cb.aio_data = WAKE_DATA;
        *state.wake_iocb.0.get_mut() = cb;
        let ptr = state.wake_iocb.0.get();
        // SAFETY: the iocb lives in the state (boxed, not moved) until the driver is dropped,
        // after io_destroy has waited for it; the eventfd lives as long.
        if unsafe { self.ctx.submit(&[ptr]) }.is_ok() {
            state.wake_pending = true;
        }
    }
}

// SAFETY: buffers stay in the table while the kernel may use them (the context is destroyed,
// which waits for every request, before the table is freed); the kernel's byte counts are
// reported as they are; buffered requests go to the pool, which keeps the same promises.
unsafe impl Driver for KernelDriver {
    fn name(&self) -> &str {
        "kernel"
    }

    fn queue(&self, req: Request) -> Result<(), Rejected> {
        if let Err(e) = req.validate() {
            return Err(Rejected::new(e, req));
        }
        let direct = self.opts.submit_buffered
            || match Self::is_direct(req.fd) {
                Ok(d) => d,
                Err(e) => return Err(Rejected::new(e, req)),
            };
        if !direct && !matches!(req.op, Op::Fsync | Op::Fdatasync) {
            return match &self.pool {
                Some(pool) => pool.queue(req),
                None => Err(Rejected::new(
                    io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!(
                            "kernel AIO {} on descriptor {}: the file is not opened with \
                             O_DIRECT, and io_submit would block doing the I/O; open it with \
                             O_DIRECT, or use the pool or io_uring driver",
                            req.op.name(),
                            req.fd
                        ),
                    ),
                    req,
                )),
            };
        }
        if self.in_flight.load(Ordering::SeqCst) >= self.opts.max_events {
            return Err(Rejected::new(io::Error::from_raw_os_error(libc::EAGAIN), req));
        }
        let mut state = self.state();
        let Request { op, fd, offset, buf, flags, ioprio, user_data, .. } = req;
        let iocb = match state.spare.pop() {
            Some(spare) => spare,
            None => Box::new(IocbCell(std::cell::UnsafeCell::new(iocb::default()))),
        };
        let key = state.table.insert(Entry { iocb, buf, user_data });
        // The iocb is built from the buffer where it rests until the completion is taken: the
        // table entry (its segments, or its boxed iovec array for the vectored operations).
        let entry = &mut state.table[key];
        let (addr, len) = match op {
            Op::Read | Op::Write => {
                let v = entry.buf.iovecs()[0];
                (v.iov_base as u64, v.iov_len as u64)
            }
            Op::Readv | Op::Writev => {
                (entry.buf.iovecs().as_ptr() as u64, entry.buf.segments() as u64)
            }
            Op::Fsync | Op::Fdatasync => (0, 0),
        };
        let opcode = match op {
            Op::Read => sys::IOCB_CMD_PREAD,
            Op::Write => sys::IOCB_CMD_PWRITE,
            Op::Readv => sys::IOCB_CMD_PREADV,
            Op::Writev => sys::IOCB_CMD_PWRITEV,
            Op::Fsync => sys::IOCB_CMD_FSYNC,
            Op::Fdatasync => sys::IOCB_CMD_FDSYNC,
        };
        // The offset fits: `validate` refused any beyond i64::MAX.
        let mut cb = iocb::rw(opcode, fd, addr, len, offset as i64);
        if self.signal_efd.load(Ordering::Relaxed) {
            cb = cb.with_resfd(self.efd.as_raw_fd());
        }
        cb.aio_data = key as u64;
        cb.aio_rw_flags = flags.bits();
        if let Some(p) = ioprio {
            cb.aio_flags |= sys::IOCB_FLAG_IOPRIO;
            cb.aio_reqprio = p.raw() as i16;
        }
        *entry.iocb.0.get_mut() = cb;
        state.plugged.push_back(key);
        let full = state.plugged.len() >= self.opts.batch.max(1);
        drop(state);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if full {
            // Errors of individual requests become their completions; nothing to report here.
            let _ = self.submit_plugged();
        }
        Ok(())
    }

    fn queue_now(&self, req: Request) -> Result<Option<Completion>, Rejected> {
        // Buffered requests go to the pool, which tries them inline; O_DIRECT ones never are.
        let buffered = self.pool_serves(&req);
        match (&self.pool, buffered) {
            (Some(pool), true) => {
                if let Err(e) = req.validate() {
                    return Err(Rejected::new(e, req));
                }
                pool.queue_now(req)
            }
            _ => self.queue(req).map(|()| None),
        }
    }

    fn try_now(&self, req: &mut Request) -> Option<i64> {
        // As `queue_now`: only what would go to the pool (buffered reads and writes).
        let pool = self.pool.as_ref()?;
        let buffered = self.pool_serves(req);
        if buffered {
            pool.try_now(req)
        } else {
            None
        }
    }

    unsafe fn try_now_raw(&self, io: &RawIo) -> Option<i64> {
        // SAFETY: forwarded from the caller.
        self.pool.as_ref().and_then(|p| unsafe { p.try_now_raw(io) })
    }

    fn inline_stats(&self) -> InlineStats {
        self.pool.as_ref().map_or_else(InlineStats::default, |p| p.inline_stats())
    }

    fn flush(&self) -> io::Result<()> {
        self.submit_plugged()?;
        if let Some(pool) = &self.pool {
            pool.flush()?;
        }
        Ok(())
    }

    fn reap(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize> {
        self.flush()?;
        let deadline = deadline(timeout);
        let min = min.min(max);
        let mut got = 0;
        loop {
            // What is already here: completions made or harvested earlier, the ring, the pool.
            let n = self.ready.take(max - got, out);
            let h = if got + n < max {
                self.harvest(0, max - got - n, Some(Duration::ZERO), out)?
            } else {
                0
            };
            self.in_flight.fetch_sub(n + h, Ordering::SeqCst);
            got += n + h;
            if h > 0 && got < min {
                // The ring may hold more than one harvest takes: look again before waiting.
                continue;
            }
            if let Some(pool) = &self.pool {
                got += pool.reap(0, max - got, Some(Duration::ZERO), out)?;
            }
            if got >= min || got == max {
                return Ok(got);
            }
            // Room may have been made for requests the kernel refused as full.
            self.submit_plugged()?;
            let left = crate::deadline::left(deadline);
            if left == Some(Duration::ZERO) {
                return Ok(got);
            }
            let waited = if self.pool.is_some() {
                // Both sources signal the eventfd: wait on it, then look again. (Waiting in
                // io_getevents instead would miss the pool's completions, including those of
                // requests other threads queue meanwhile.)
                let mut fds =
                    [libc::pollfd { fd: self.efd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
                sys::fs::poll(&mut fds, left).map(|n| {
                    if n > 0 {
                        let _ = self.efd.read();
                    }
                })
            } else {
                self.harvest(min - got, max - got, left, out).map(|h| {
                    self.in_flight.fetch_sub(h, Ordering::SeqCst);
                    got += h;
                })
            };
            match waited {
                Err(e) if got == 0 => return Err(e),
                Err(_) => return Ok(got),
                Ok(()) => {}
            }
        }
    }

    fn wake(&self) {
        // A waiter polls the eventfd (the pool's completions and ours, `wait_ready`) or sits in
        // io_getevents.
        let _ = self.efd.write(1);
        self.wake_getevents(&mut self.state());
    }

    fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome> {
        let mut state = self.state();
        let found = state
            .table
            .iter()
            .find(|(_, e)| e.user_data == user_data)
            .map(|(k, e)| (k, e.iocb_ptr()));
        if let Some((key, ptr)) = found {
            if let Some(pos) = state.plugged.iter().position(|&k| k == key) {
                // Not submitted yet: it never runs.
                state.plugged.remove(pos);
                let entry = state.table.remove(key);
                self.ready.push([Completion::new(
                    user_data,
                    -i64::from(libc::ECANCELED),
                    entry.buf,
                )]);
                self.wake_getevents(&mut state);
                return Ok(CancelOutcome::Cancelled);
            }
            // SAFETY: the iocb is alive (its entry is in the table, which we hold locked) and is
            // the address the request was submitted from.
            return match unsafe { self.ctx.cancel(ptr) } {
                Ok(None) => Ok(CancelOutcome::Cancelled),
                Ok(Some(ev)) => {
                    let entry = state.table.remove(key);
                    self.ready.push([Completion::new(user_data, ev.res, entry.buf)]);
                    self.wake_getevents(&mut state);
                    Ok(CancelOutcome::Cancelled)
                }
                // File I/O cannot be cancelled once submitted.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(CancelOutcome::Running),
                Err(e) => Err(e),
            };
        }
        drop(state);
        match &self.pool {
            Some(pool) => pool.cancel(user_data),
            None => Ok(CancelOutcome::NotFound),
        }
    }

    fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
        if !self.signal_efd.swap(true, Ordering::SeqCst) && self.in_flight() > 0 {
            // Requests submitted before someone watched do not signal: wake the watcher once
            // so it reaps them.
            let _ = self.efd.write(1);
        }
        Ok(self.efd.as_fd())
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst) + self.pool.as_ref().map_or(0, |p| p.in_flight())
    }
}

impl Drop for KernelDriver {
    fn drop(&mut self) {
        // io_destroy waits until the kernel is done with every request; then the table's
        // buffers may go. If it fails, the kernel might still use them: leak them instead.
        if self.ctx.destroy_in_place().is_err() {
            let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
            std::mem::forget(std::mem::take(&mut state.table));
        }
    }
}
