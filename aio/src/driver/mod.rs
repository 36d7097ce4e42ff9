//! The driver side: one contract for whatever serves asynchronous file requests.
//!
//! In the kernel a device's `file_operations` supply `aio_read`, `aio_write` and `aio_fsync`
//! (today `read_iter`/`write_iter` with a `kiocb`): the driver either completes a request at once
//! or queues it and completes it later through `ki_complete`. [`Driver`] is that contract in Rust,
//! and everything above it — POSIX AIO, the async API, the `aio` command — runs on any driver:
//!
//! | driver | file | what it is |
//! | --- | --- | --- |
//! | [`UringDriver`] | `uring.rs` | io_uring: the engine to use when the kernel allows it |
//! | [`KernelDriver`] | `kaio.rs` | native kernel AIO, for `O_DIRECT` files and block devices |
//! | [`PoolDriver`] | `pool.rs` | worker threads doing `preadv2`/`pwritev2`, as glibc does, minus its per-file queue |
//! | [`MemDriver`] | `mem.rs` | a RAM disk that completes inline: the model driver, read it first |
//! | [`FaultDriver`] | `fault.rs` | wraps any driver and injects errors, short transfers, latency, crashes |
//!
//! [`select`] picks one for a file at run time, probing what the kernel allows and saying why.
//!
//! # The contract
//!
//! - **Queue, then flush.** [`Driver::queue`] accepts a [`Request`] or rejects it at once, giving
//!   it back ([`Rejected`]): with `EAGAIN` when the driver is at capacity (reap, then try
//!   again), or with the error that makes it invalid. A driver may hold accepted requests until
//!   [`Driver::flush`] (the block layer calls this plugging), so many requests go to the kernel in
//!   one system call; it may also start them earlier, and it starts them on its own when its
//!   queue fills. [`Driver::reap`] flushes before it waits, so a waiter never waits for a request
//!   that was never started.
//! - **Exactly once.** Every accepted request completes exactly once, through [`Driver::reap`]:
//!   done, failed (an errno in [`Completion::res`]) or cancelled (`ECANCELED`). A request that
//!   fails when it is started (a bad descriptor found at flush time, say) completes with that
//!   error; it is not reported anywhere else.
//! - **Inline completion.** Any request may complete inside `queue` or `flush` (the memory driver
//!   always does; io_uring and kernel AIO do for buffered I/O on cached data). Its completion is
//!   still delivered by `reap`, like every other: there is one delivery path.
//! - **No ordering** holds between requests in flight at the same time: two writes to the same
//!   range, or a read and a write, may run in either order. An fsync or fdatasync covers the
//!   writes that completed (were reaped or were reapable) before it was queued, and nothing
//!   queued after it.
//! - **Short transfers are reported, not hidden.** A read at end of file returns fewer bytes (0
//!   past the end); a write may transfer fewer bytes than asked (no space left). `res` says how
//!   many; the driver does not retry. Callers who need all bytes retry the rest.
//! - **Buffers** belong to the request from `queue` until its completion hands them back in
//!   [`Completion::buf`]: the driver keeps them alive — and the program cannot touch them — while
//!   the kernel or a worker may use them.
//! - **Waiting.** `reap(min, max, timeout, out)` takes up to `max` completions, waiting until at
//!   least `min` are available or the timeout passes (`None`, or a timeout too large to reach:
//!   no limit; zero: do not wait). No wake-up is lost: a completion that another thread takes
//!   and sets aside, or that a wrapper makes itself ([`Driver::wake`]), ends a wait as a new one
//!   does. [`Driver::wait_ready`] waits without taking, with a signal mask installed for the
//!   wait (for callers that must not miss a signal). [`Driver::eventfd`] gives a descriptor that
//!   becomes readable when completions may be waiting, for epoll, tokio's `AsyncFd` or any event
//!   loop: read it to reset it, then reap without waiting.
//! - **Cancel** ([`Driver::cancel`]) is best effort and answers at once: [`CancelOutcome`]. A
//!   request reported cancelled moved no data: only requests not started, or waiting before
//!   transferring anything (a read of an empty pipe), are cancelled; one already moving data
//!   answers [`CancelOutcome::Running`] and completes normally.
//! - **Drop.** Dropping a driver cancels what it can, waits for what it started to finish, and
//!   only then frees the buffers; requests accepted but never started are dropped without I/O.
//!   Completions not reaped are dropped with the driver.
//! - Drivers are `Send + Sync`: any thread may queue, flush, reap and cancel.

mod buf;
mod fault;
mod inline;
mod kaio;
mod mem;
mod owner;
mod pool;
mod ready;
mod select;
mod uring;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

pub use buf::Buf;
pub use fault::{FaultConfig, FaultDriver};
pub use inline::{enabled_by_default as inline_enabled, InlineStats};
pub use kaio::{KernelDriver, KernelOptions};
pub use mem::MemDriver;
pub use pool::{PoolDriver, PoolOptions};
pub use select::{select, select_shared, select_with, Engine, SelectOptions, Selection};
pub use uring::{FixedBuf, UringDriver, UringOptions, UringProbe};

pub use crate::flags::{IoClass, IoPriority, RwFlags};

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read into the request's one buffer (`pread`).
    Read,
    /// Write the request's one buffer (`pwrite`).
    Write,
    /// Read into the request's buffers in order (`preadv`).
    Readv,
    /// Write the request's buffers in order (`pwritev`).
    Writev,
    /// `fsync`: data and metadata.
    Fsync,
    /// `fdatasync`: data, and the metadata needed to read it.
    Fdatasync,
}

impl Op {
    /// Whether the driver writes into the request's buffers.
    pub fn is_read(self) -> bool {
        matches!(self, Op::Read | Op::Readv)
    }

    /// Whether the request moves data from its buffers to the file.
    pub fn is_write(self) -> bool {
        matches!(self, Op::Write | Op::Writev)
    }

    /// The name of the operation, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Readv => "readv",
            Op::Writev => "writev",
            Op::Fsync => "fsync",
            Op::Fdatasync => "fdatasync",
        }
    }
}

/// One request to a driver: a read or write of a [`Buf`], or a sync.
///
/// Built only by the constructors, which pick the operation from the buffer (one segment: a
/// plain read or write; several: the vectored one), so an operation and a buffer that do not
/// match cannot reach a driver. The fields are private; drivers read them through the
/// accessors and take the buffer with [`into_buf`](Request::into_buf).
///
/// ```
/// use aio::driver::{Buf, Op, Request};
/// let one = Request::read(0, Buf::for_readv(vec![vec![0u8; 512]]), 0, 1);
/// assert_eq!(one.op(), Op::Read);
/// let two = Request::read(0, Buf::for_readv(vec![vec![0u8; 512], vec![0u8; 512]]), 0, 2);
/// assert_eq!(two.op(), Op::Readv);
/// ```
///
/// An operation cannot be paired with a buffer by hand:
///
/// ```compile_fail
/// use aio::driver::{Buf, Op, Request};
/// let r = Request::new(Op::Readv, 0, 0, Buf::for_read(vec![0u8; 512]), 0);
/// ```
///
/// ```compile_fail
/// use aio::driver::{Buf, Op, Request};
/// let r = Request { op: Op::Readv, ..Request::fsync(0, 0) };
/// ```
#[derive(Debug)]
pub struct Request {
    op: Op,
    fd: RawFd,
    offset: u64,
    buf: Buf,
    flags: RwFlags,
    ioprio: Option<IoPriority>,
    user_data: u64,
    /// [`Driver::try_now`] tried it on the inline path and could not serve it: the driver
    /// does not try again when it is queued.
    inline_tried: bool,
}

impl Request {
    fn new(op: Op, fd: RawFd, offset: u64, buf: Buf, user_data: u64) -> Request {
        Request {
            op,
            fd,
            offset,
            buf,
            flags: RwFlags::empty(),
            ioprio: None,
            user_data,
            inline_tried: false,
        }
    }

    /// A read into `buf` at `offset` (`pread` for one segment, `preadv` for several).
    pub fn read(fd: RawFd, buf: Buf, offset: u64, user_data: u64) -> Request {
        let op = if buf.segments() == 1 { Op::Read } else { Op::Readv };
        Request::new(op, fd, offset, buf, user_data)
    }

    /// A write of `buf` at `offset` (`pwrite` for one segment, `pwritev` for several).
    pub fn write(fd: RawFd, buf: Buf, offset: u64, user_data: u64) -> Request {
        let op = if buf.segments() == 1 { Op::Write } else { Op::Writev };
        Request::new(op, fd, offset, buf, user_data)
    }

    /// An fsync.
    pub fn fsync(fd: RawFd, user_data: u64) -> Request {
        Request::new(Op::Fsync, fd, 0, Buf::none(), user_data)
    }

    /// An fdatasync.
    pub fn fdatasync(fd: RawFd, user_data: u64) -> Request {
        Request::new(Op::Fdatasync, fd, 0, Buf::none(), user_data)
    }

    /// With these `RWF_*` flags.
    pub fn with_flags(mut self, flags: RwFlags) -> Request {
        self.flags = flags;
        self
    }

    /// With this I/O priority.
    pub fn with_ioprio(mut self, prio: IoPriority) -> Request {
        self.ioprio = Some(prio);
        self
    }

    /// What it does.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The file. Drivers that are devices themselves (the memory driver) ignore it.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The file offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The buffers (none for a sync).
    pub fn buf(&self) -> &Buf {
        &self.buf
    }

    /// `RWF_*` flags for reads and writes.
    pub fn flags(&self) -> RwFlags {
        self.flags
    }

    /// The I/O priority, if one was asked for.
    pub fn ioprio(&self) -> Option<IoPriority> {
        self.ioprio
    }

    /// The caller's value, returned in the completion; also the key for [`Driver::cancel`].
    pub fn user_data(&self) -> u64 {
        self.user_data
    }

    /// Replaces the caller's value.
    pub fn set_user_data(&mut self, user_data: u64) {
        self.user_data = user_data;
    }

    /// Copies `src` into the buffers, in order, as a read that completes at once does; returns
    /// how many bytes fit (none into a read-only buffer).
    pub fn scatter(&mut self, src: &[u8]) -> usize {
        self.buf.scatter(src)
    }

    /// Shortens the buffers to at most `len` bytes (the request then transfers no more).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Keeps `obj` alive until the request completes and its buffers are dropped — for
    /// instance the file it is for, so its descriptor cannot close (and its number be reused)
    /// while a driver may still use it. See [`Buf::keep_alive`].
    pub fn keep_alive(mut self, obj: std::sync::Arc<dyn std::any::Any + Send + Sync>) -> Request {
        self.buf = self.buf.keep_alive(obj);
        self
    }

    /// The buffers, given back (for a completion, or a request that will not run).
    pub fn into_buf(self) -> Buf {
        self.buf
    }

    /// Checks what every driver requires: an offset the kernel accepts, buffers that match the
    /// operation. Drivers call this in `queue`.
    pub fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        check_offset(self.op, self.offset)?;
        let segs = self.buf.segments();
        match self.op {
            Op::Read | Op::Write if segs != 1 => {
                invalid(format!("{}: needs exactly one buffer, got {segs}", self.op.name()))
            }
            Op::Readv | Op::Writev if segs > buf::IOV_MAX => invalid(format!(
                "{}: {segs} buffers, more than IOV_MAX ({})",
                self.op.name(),
                buf::IOV_MAX
            )),
            Op::Fsync | Op::Fdatasync if segs != 0 => {
                invalid(format!("{}: takes no buffer", self.op.name()))
            }
            _ if self.op.is_read() && !self.buf.is_writable() => {
                invalid(format!("{}: the buffer is read-only", self.op.name()))
            }
            _ => Ok(()),
        }
    }
}

/// Refuses an offset beyond the largest file offset (`i64::MAX`), as the kernel would.
pub(crate) fn check_offset(op: Op, offset: u64) -> io::Result<()> {
    if offset > i64::MAX as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: offset {offset} is beyond the largest file offset", op.name()),
        ));
    }
    Ok(())
}

/// What [`Driver::queue_raw_and_reap`] did with a request it accepted.
#[derive(Debug)]
#[must_use = "a start error means the request waits for a later flush"]
pub struct RawQueued {
    /// How many completions it moved into `out`.
    pub reaped: usize,
    /// Why starting the queued requests failed (no resources in the kernel, …), if it did: the
    /// request stays accepted and queued, and a later [`Driver::flush`] or
    /// [`Driver::reap`] starts it.
    pub start_error: Option<io::Error>,
}

impl RawQueued {
    /// `reaped`, or the start error.
    pub fn into_result(self) -> io::Result<usize> {
        match self.start_error {
            Some(e) => Err(e),
            None => Ok(self.reaped),
        }
    }
}

/// A read or write of one buffer of memory the caller answers for, and nothing for the driver
/// to give back: how C callers (the POSIX engine) submit, through
/// [`Driver::queue_raw_and_reap`]. Plain data, so a refusal loses nothing.
#[derive(Debug, Clone, Copy)]
pub struct RawIo {
    /// A write (from `ptr`) rather than a read (into it).
    pub write: bool,
    /// The file.
    pub fd: RawFd,
    /// The memory.
    pub ptr: *mut u8,
    /// Its length in bytes.
    pub len: usize,
    /// The file offset.
    pub offset: u64,
    /// An I/O priority, where the driver can apply one.
    pub ioprio: Option<IoPriority>,
    /// The caller's value, returned with the result; also the key for [`Driver::cancel`].
    pub user_data: u64,
}

impl RawIo {
    /// `Op::Write` or `Op::Read`.
    pub fn op(&self) -> Op {
        if self.write {
            Op::Write
        } else {
            Op::Read
        }
    }

    /// As a [`Request`] (its buffer a [`Buf::raw`]).
    ///
    /// # Safety
    ///
    /// As for [`Buf::raw`]: the memory stays valid, and untouched by others if it is read
    /// into, until the request completes.
    pub unsafe fn into_request(self) -> Request {
        // SAFETY: forwarded from the caller.
        let buf = unsafe { Buf::raw(self.ptr, self.len, !self.write) };
        Request {
            op: self.op(),
            fd: self.fd,
            offset: self.offset,
            buf,
            flags: RwFlags::empty(),
            ioprio: self.ioprio,
            user_data: self.user_data,
            inline_tried: false,
        }
    }
}

/// A finished request.
#[derive(Debug)]
pub struct Completion {
    /// The request's `user_data`.
    pub user_data: u64,
    /// Bytes transferred (0 for fsync), or a negated errno.
    pub res: i64,
    /// The request's buffers, given back.
    pub buf: Buf,
}

impl Completion {
    /// A completion with this result.
    pub fn new(user_data: u64, res: i64, buf: Buf) -> Completion {
        Completion { user_data, res, buf }
    }

    /// A completion with an `io::Error` (its errno, or `EIO` when it has none).
    pub fn failed(user_data: u64, error: &io::Error, buf: Buf) -> Completion {
        Completion::new(user_data, -i64::from(error.raw_os_error().unwrap_or(libc::EIO)), buf)
    }

    /// Bytes transferred, or the request's error.
    pub fn result(&self) -> io::Result<usize> {
        if self.res < 0 {
            Err(io::Error::from_raw_os_error(-self.res as i32))
        } else {
            Ok(self.res as usize)
        }
    }
}

/// A request the driver did not accept, given back with the reason.
pub struct Rejected {
    /// Why: `EAGAIN` when the driver is at capacity, otherwise what is wrong with the request.
    pub error: io::Error,
    /// The request, buffers and all.
    pub request: Box<Request>,
}

impl Rejected {
    /// A rejection of `request` for `error`.
    pub fn new(error: io::Error, request: Request) -> Rejected {
        Rejected { error, request: Box::new(request) }
    }

    /// Whether the driver was only full: reap, then queue again.
    pub fn is_full(&self) -> bool {
        self.error.raw_os_error() == Some(libc::EAGAIN)
    }

    /// The request's buffers, given back.
    pub fn into_buf(self) -> Buf {
        self.request.into_buf()
    }
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .field("op", &self.request.op)
            .field("user_data", &self.request.user_data)
            .finish()
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} refused: {}", self.request.op.name(), self.error)
    }
}

impl std::error::Error for Rejected {}

impl From<Rejected> for io::Error {
    fn from(r: Rejected) -> io::Error {
        r.error
    }
}

/// The answer to a cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The request will not run (or was stopped): its completion, with `ECANCELED`, is reaped
    /// as usual.
    Cancelled,
    /// It is running and cannot be stopped: it completes normally.
    Running,
    /// No request with that `user_data` is in flight (it completed, or never existed).
    NotFound,
}

/// A driver: something that serves [`Request`]s asynchronously. See the module documentation
/// for the contract every implementation keeps.
///
/// # Safety
///
/// Callers rely on two promises to hand memory to a driver: it keeps each request's buffers
/// alive and untouched by anyone else until it gives them back in the completion, and a read's
/// completion never reports more bytes than were written into its buffers (callers mark that
/// many bytes as initialized).
pub unsafe trait Driver: Send + Sync {
    /// A short name: `uring`, `kernel`, `pool`, `mem`, `fault(…)`.
    fn name(&self) -> &str;

    /// Accepts a request, or gives it back with the reason. Accepted requests complete exactly
    /// once, through [`reap`](Self::reap).
    fn queue(&self, req: Request) -> Result<(), Rejected>;

    /// Starts every request accepted so far.
    fn flush(&self) -> io::Result<()>;

    /// Queues `req` as [`queue`](Self::queue) does, except that a request served at once by
    /// the inline path (see below) comes back here, finished: `Ok(Some(completion))` — it was
    /// never in flight and no reap gives it. `Ok(None)`: accepted, it completes through
    /// [`reap`](Self::reap). For callers that can use a result at once (a future ready on its
    /// first poll).
    ///
    /// The inline path: a small buffered read or write is first tried with `RWF_NOWAIT`, which
    /// the kernel serves when it need not wait (data in the page cache); what would wait goes to
    /// the engine. Drivers without one (the default) always queue.
    fn queue_now(&self, req: Request) -> Result<Option<Completion>, Rejected> {
        self.queue(req).map(|()| None)
    }

    /// Tries `req` on the inline path (see [`queue_now`](Self::queue_now)) without accepting
    /// it: `Some(res)` if it was served whole at once (it is done: the caller keeps the request
    /// and its buffers, and the driver knows nothing of it); `None` if not — queue it with
    /// [`queue`](Self::queue) or [`queue_now`](Self::queue_now), which do not try it again (the
    /// request remembers the attempt). For callers that would otherwise
    /// set up a request's bookkeeping for nothing (a future's slot in a table). An invalid
    /// request is never served: `queue` then refuses it. Drivers without an inline path (the
    /// default) always answer `None`.
    fn try_now(&self, req: &mut Request) -> Option<i64> {
        let _ = req;
        None
    }

    /// Tries a raw read or write on the inline path (see [`queue_now`](Self::queue_now)),
    /// without accepting it: `Some(res)` if it was served whole at once (it is then done, and
    /// the driver knows nothing of it); `None` if not (queue it: nothing is changed that the
    /// request would not do again).
    ///
    /// # Safety
    ///
    /// As for [`Buf::raw`]: `io`'s memory is valid for the call, and untouched by others if it
    /// is read into.
    unsafe fn try_now_raw(&self, io: &RawIo) -> Option<i64> {
        let _ = io;
        None
    }

    /// How the inline path has served requests so far (zeros for drivers without one).
    fn inline_stats(&self) -> InlineStats {
        InlineStats::default()
    }

    /// Flushes, then moves up to `max` completions into `out`, waiting until at least `min` are
    /// available or `timeout` passes (`None`: no limit; zero: do not wait). Returns how many it
    /// moved. A signal while waiting gives `ErrorKind::Interrupted` if it moved none.
    fn reap(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize>;

    /// Moves up to `max` completions that are already available into `out`, without waiting
    /// and — unlike [`reap`](Self::reap) — without flushing, so a caller that only looks does
    /// not break up the batch others are queueing. The default is `reap` with a zero timeout.
    fn poll(&self, max: usize, out: &mut Vec<Completion>) -> io::Result<usize> {
        self.reap(0, max, Some(Duration::ZERO), out)
    }

    /// Queues a [`RawIo`], then does what `reap(0, max, Some(Duration::ZERO), _)` does —
    /// starts everything queued and takes the completions that are ready — in one step, for a
    /// caller that submits one request and wants its inline completion at once (a read of
    /// cached data through io_uring is done when the system call that starts it returns).
    ///
    /// Completions go to `out` as `(user_data, res)`, for raw requests only: others may own
    /// buffers, which only `reap` can give back, so the driver keeps them for the next one. A
    /// request queued this way completes exactly once, here or through a later `reap` (with a
    /// buffer that owns nothing). `Err` only when the request was refused (`EAGAIN`: the
    /// driver is full; or invalid): nothing else happened then. Once accepted, the request
    /// stays accepted even if starting it failed ([`RawQueued::start_error`]).
    ///
    /// The default queues a [`Request`] and flushes, taking nothing; io_uring takes the
    /// request without building one, and reaps, under one lock.
    ///
    /// # Safety
    ///
    /// As for [`Buf::raw`]: `io`'s memory stays valid, and untouched by others if it is read
    /// into, until the request completes.
    unsafe fn queue_raw_and_reap(
        &self,
        io: RawIo,
        max: usize,
        out: &mut Vec<(u64, i64)>,
    ) -> io::Result<RawQueued> {
        let _ = (max, out);
        // SAFETY: forwarded from the caller.
        self.queue(unsafe { io.into_request() }).map_err(|r| r.error)?;
        Ok(RawQueued { reaped: 0, start_error: self.flush().err() })
    }

    /// Waits until completions may be ready to reap, `timeout` passes (`None`: no limit), or
    /// a signal arrives (`ErrorKind::Interrupted`), with `sigmask` — if given — as the thread's
    /// signal mask for the duration of the wait, installed atomically as `ppoll` does: a
    /// caller that checks its condition with signals blocked and then waits here loses no
    /// signal. Takes nothing ([`reap`](Self::reap) or [`poll`](Self::poll) afterwards) and may
    /// return early. A completion another thread made or set aside for reaping while this
    /// thread waits ends the wait ([`wake`](Self::wake)).
    ///
    /// Like `reap`, it first starts what was queued: a wait for requests never started would
    /// not end. The default then waits on [`eventfd`](Self::eventfd) with `ppoll`, and resets
    /// it: completions that were ready then no longer end a wait, so after it returns the
    /// caller takes everything ready (reaps until fewer than `max` come back) before it waits
    /// again.
    fn wait_ready(
        &self,
        timeout: Option<Duration>,
        sigmask: Option<&libc::sigset_t>,
    ) -> io::Result<()> {
        self.flush()?;
        let efd = self.eventfd()?;
        let mut fds = [libc::pollfd { fd: efd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        if crate::sys::fs::ppoll(&mut fds, timeout, sigmask)? > 0 {
            let _ = crate::sys::fs::eventfd_read(efd);
        }
        Ok(())
    }

    /// Ends, soon, the waits of threads blocked in [`reap`](Self::reap) or
    /// [`wait_ready`](Self::wait_ready) (they return with what is ready, maybe nothing): for
    /// wrappers that make completions of their own, which the wrapped driver's wait cannot
    /// see. Does nothing when no one waits.
    fn wake(&self);

    /// Tries to cancel the request in flight with this `user_data`.
    fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome>;

    /// A descriptor that becomes readable when completions may be waiting. Reading 8 bytes
    /// from it resets it; then [`reap`](Self::reap) with a zero timeout. Created on first use.
    fn eventfd(&self) -> io::Result<BorrowedFd<'_>>;

    /// Requests accepted and not yet reaped.
    fn in_flight(&self) -> usize;
}

/// `Driver` for smart pointers to a driver: every method forwards.
macro_rules! forward_driver {
    ($($ptr:ident)::+) => {
        // SAFETY: forwards to a driver that keeps the promises.
        unsafe impl<D: Driver + ?Sized> Driver for $($ptr)::+<D> {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn queue(&self, req: Request) -> Result<(), Rejected> {
                (**self).queue(req)
            }
            fn flush(&self) -> io::Result<()> {
                (**self).flush()
            }
            fn queue_now(&self, req: Request) -> Result<Option<Completion>, Rejected> {
                (**self).queue_now(req)
            }
            fn try_now(&self, req: &mut Request) -> Option<i64> {
                (**self).try_now(req)
            }
            unsafe fn try_now_raw(&self, io: &RawIo) -> Option<i64> {
                // SAFETY: forwarded from the caller.
                unsafe { (**self).try_now_raw(io) }
            }
            fn inline_stats(&self) -> InlineStats {
                (**self).inline_stats()
            }
            fn reap(
                &self,
                min: usize,
                max: usize,
                timeout: Option<Duration>,
                out: &mut Vec<Completion>,
            ) -> io::Result<usize> {
                (**self).reap(min, max, timeout, out)
            }
            fn poll(&self, max: usize, out: &mut Vec<Completion>) -> io::Result<usize> {
                (**self).poll(max, out)
            }
            unsafe fn queue_raw_and_reap(
                &self,
                io: RawIo,
                max: usize,
                out: &mut Vec<(u64, i64)>,
            ) -> io::Result<RawQueued> {
                // SAFETY: forwarded from the caller.
                unsafe { (**self).queue_raw_and_reap(io, max, out) }
            }
            fn wait_ready(
                &self,
                timeout: Option<Duration>,
                sigmask: Option<&libc::sigset_t>,
            ) -> io::Result<()> {
                (**self).wait_ready(timeout, sigmask)
            }
            fn wake(&self) {
                (**self).wake()
            }
            fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome> {
                (**self).cancel(user_data)
            }
            fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
                (**self).eventfd()
            }
            fn in_flight(&self) -> usize {
                (**self).in_flight()
            }
        }
    };
}

forward_driver!(Box);
forward_driver!(std::sync::Arc);
