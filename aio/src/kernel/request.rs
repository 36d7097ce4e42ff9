//! Iocbs, as libaio's `io_prep_*` helpers build them, and their completions.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use bitflags::bitflags;

use super::Context;
use crate::align::DioAlign;
use crate::buf::{IoBuf, IoBufMut};
pub use crate::flags::{IoClass, IoPriority, RwFlags};
use crate::sys;

bitflags! {
    /// Poll events for [`Iocb::poll`] (`POLLIN`, … as in poll(2)).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct PollFlags: u16 {
        /// `POLLIN`: readable.
        const IN = libc::POLLIN as u16;
        /// `POLLPRI`: urgent data.
        const PRI = libc::POLLPRI as u16;
        /// `POLLOUT`: writable.
        const OUT = libc::POLLOUT as u16;
        /// `POLLERR`: error (always reported).
        const ERR = libc::POLLERR as u16;
        /// `POLLHUP`: hang-up (always reported).
        const HUP = libc::POLLHUP as u16;
        /// `POLLRDHUP`: the peer closed its writing end.
        const RDHUP = libc::POLLRDHUP as u16;
        /// `POLLRDNORM`.
        const RDNORM = libc::POLLRDNORM as u16;
        /// `POLLWRNORM`.
        const WRNORM = libc::POLLWRNORM as u16;
    }
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `IOCB_CMD_PREAD`.
    Pread,
    /// `IOCB_CMD_PWRITE`.
    Pwrite,
    /// `IOCB_CMD_PREADV`.
    Preadv,
    /// `IOCB_CMD_PWRITEV`.
    Pwritev,
    /// `IOCB_CMD_FSYNC`.
    Fsync,
    /// `IOCB_CMD_FDSYNC`.
    Fdsync,
    /// `IOCB_CMD_POLL` with these events.
    Poll(PollFlags),
}

impl Op {
    pub(crate) fn opcode(self) -> u16 {
        match self {
            Op::Pread => sys::IOCB_CMD_PREAD,
            Op::Pwrite => sys::IOCB_CMD_PWRITE,
            Op::Preadv => sys::IOCB_CMD_PREADV,
            Op::Pwritev => sys::IOCB_CMD_PWRITEV,
            Op::Fsync => sys::IOCB_CMD_FSYNC,
            Op::Fdsync => sys::IOCB_CMD_FDSYNC,
            Op::Poll(_) => sys::IOCB_CMD_POLL,
        }
    }

    /// Whether the kernel writes into the request's buffers.
    pub fn is_read(self) -> bool {
        matches!(self, Op::Pread | Op::Preadv)
    }

    /// The C name of the operation, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Pread => "pread",
            Op::Pwrite => "pwrite",
            Op::Preadv => "preadv",
            Op::Pwritev => "pwritev",
            Op::Fsync => "fsync",
            Op::Fdsync => "fdsync",
            Op::Poll(_) => "poll",
        }
    }
}

/// The buffers a request owns.
#[derive(Debug)]
pub(crate) enum Bufs<B> {
    None,
    One(B),
    Many(Vec<B>),
}

impl<B> Bufs<B> {
    fn one(&self) -> Option<&B> {
        match self {
            Bufs::One(b) => Some(b),
            _ => None,
        }
    }

    fn into_one(self) -> Option<B> {
        match self {
            Bufs::One(b) => Some(b),
            _ => None,
        }
    }

    fn into_vec(self) -> Vec<B> {
        match self {
            Bufs::None => Vec::new(),
            Bufs::One(b) => vec![b],
            Bufs::Many(v) => v,
        }
    }
}

/// A function called with a request's completion when it is reaped: what `io_set_callback`
/// does in libaio. It runs on the thread that reaps, and may submit more requests.
pub type Callback<B> = Box<dyn FnOnce(&Context<B>, Completion<B>) + Send>;

/// One request, built like libaio's `io_prep_*` helpers, owning its buffers until completion.
///
/// ```no_run
/// # use aio::kernel::{Context, Iocb};
/// # use aio::AlignedBuf;
/// # fn main() -> std::io::Result<()> {
/// let file = std::fs::File::open("/etc/hostname")?;
/// let ctx = Context::<Vec<u8>>::new(8)?;
/// ctx.submit(Iocb::pread(&file, Vec::with_capacity(4096), 0).user_data(1))?;
/// let done = ctx.get_events(1, 1, None)?;
/// println!("read {} bytes", done[0].result()?);
/// # Ok(()) }
/// ```
pub struct Iocb<B> {
    pub(crate) op: Op,
    pub(crate) fd: RawFd,
    pub(crate) offset: u64,
    pub(crate) bufs: Bufs<B>,
    /// Address and length of the single buffer (pread, pwrite).
    pub(crate) addr: u64,
    pub(crate) len: u64,
    /// The buffers of a vectored request, as the kernel reads them.
    pub(crate) iovecs: Box<[IoVec]>,
    /// For reads: records how many bytes the kernel filled (`IoBufMut::set_init`).
    pub(crate) set_init: Option<unsafe fn(&mut B, usize)>,
    pub(crate) rw_flags: RwFlags,
    pub(crate) ioprio: Option<IoPriority>,
    pub(crate) resfd: Option<RawFd>,
    pub(crate) user_data: u64,
    pub(crate) callback: Option<Callback<B>>,
    pub(crate) check: Option<DioAlign>,
}

impl<B> Iocb<B> {
    fn new(op: Op, fd: impl AsFd, offset: u64, bufs: Bufs<B>) -> Iocb<B> {
        Iocb {
            op,
            fd: fd.as_fd().as_raw_fd(),
            offset,
            bufs,
            addr: 0,
            len: 0,
            iovecs: Box::default(),
            set_init: None,
            rw_flags: RwFlags::empty(),
            ioprio: None,
            resfd: None,
            user_data: 0,
            callback: None,
            check: None,
        }
    }

    /// `io_prep_pread`: read into `buf` (up to its capacity) at `offset`.
    pub fn pread(fd: impl AsFd, mut buf: B, offset: u64) -> Iocb<B>
    where
        B: IoBufMut,
    {
        let (addr, len) = (buf.stable_mut_ptr() as u64, buf.bytes_total() as u64);
        Iocb {
            addr,
            len,
            set_init: Some(set_init::<B>),
            ..Iocb::new(Op::Pread, fd, offset, Bufs::One(buf))
        }
    }

    /// `io_prep_pwrite`: write `buf` (its initialized bytes) at `offset`.
    pub fn pwrite(fd: impl AsFd, buf: B, offset: u64) -> Iocb<B>
    where
        B: IoBuf,
    {
        let (addr, len) = (buf.stable_ptr() as u64, buf.bytes_init() as u64);
        Iocb { addr, len, ..Iocb::new(Op::Pwrite, fd, offset, Bufs::One(buf)) }
    }

    /// `io_prep_preadv`: read at `offset` into `bufs`, filling each before the next.
    pub fn preadv(fd: impl AsFd, mut bufs: Vec<B>, offset: u64) -> Iocb<B>
    where
        B: IoBufMut,
    {
        let iovecs =
            bufs.iter_mut().map(|b| IoVec::new(b.stable_mut_ptr(), b.bytes_total())).collect();
        Iocb {
            iovecs,
            set_init: Some(set_init::<B>),
            ..Iocb::new(Op::Preadv, fd, offset, Bufs::Many(bufs))
        }
    }

    /// `io_prep_pwritev`: write `bufs`, one after another, at `offset`.
    pub fn pwritev(fd: impl AsFd, bufs: Vec<B>, offset: u64) -> Iocb<B>
    where
        B: IoBuf,
    {
        let iovecs =
            bufs.iter().map(|b| IoVec::new(b.stable_ptr().cast_mut(), b.bytes_init())).collect();
        Iocb { iovecs, ..Iocb::new(Op::Pwritev, fd, offset, Bufs::Many(bufs)) }
    }

    /// `io_prep_fsync`: flush the file's data and metadata.
    pub fn fsync(fd: impl AsFd) -> Iocb<B> {
        Iocb::new(Op::Fsync, fd, 0, Bufs::None)
    }

    /// `io_prep_fdsync`: flush the file's data (and the metadata needed to read it).
    pub fn fdsync(fd: impl AsFd) -> Iocb<B> {
        Iocb::new(Op::Fdsync, fd, 0, Bufs::None)
    }

    /// `io_prep_poll`: complete when one of `events` is ready on `fd`; the result is the ready
    /// mask ([`Completion::poll_events`]). Poll requests can be cancelled.
    pub fn poll(fd: impl AsFd, events: PollFlags) -> Iocb<B> {
        Iocb::new(Op::Poll(events), fd, 0, Bufs::None)
    }

    /// A value of the caller's returned with the completion.
    pub fn user_data(mut self, data: u64) -> Self {
        self.user_data = data;
        self
    }

    /// `RWF_*` flags for a read or write (`aio_rw_flags`).
    pub fn rw_flags(mut self, flags: RwFlags) -> Self {
        self.rw_flags = flags;
        self
    }

    /// An I/O priority (`IOCB_FLAG_IOPRIO`).
    pub fn ioprio(mut self, prio: IoPriority) -> Self {
        self.ioprio = Some(prio);
        self
    }

    /// `io_set_eventfd`: signal this eventfd when the request completes (`IOCB_FLAG_RESFD`).
    /// The kernel takes its own reference at submission.
    pub fn resfd(mut self, eventfd: impl AsFd) -> Self {
        self.resfd = Some(eventfd.as_fd().as_raw_fd());
        self
    }

    /// `io_set_callback`: call `f` with the completion when it is reaped, instead of returning it
    /// from `get_events`.
    pub fn on_complete(
        mut self,
        f: impl FnOnce(&Context<B>, Completion<B>) + Send + 'static,
    ) -> Self {
        self.callback = Some(Box::new(f));
        self
    }

    /// Checks buffer addresses, lengths and the offset against `align` at submission, refusing a
    /// misaligned `O_DIRECT` request with an error that says what is wrong, instead of the
    /// kernel's bare `EINVAL` in the completion.
    pub fn check_alignment(mut self, align: DioAlign) -> Self {
        self.check = Some(align);
        self
    }

    /// What the request does.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The file offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The caller's value.
    pub fn get_user_data(&self) -> u64 {
        self.user_data
    }

    /// The buffer, for single-buffer requests.
    pub fn buf(&self) -> Option<&B> {
        self.bufs.one()
    }

    /// Takes the request apart, giving back its buffers (empty for fsync and poll).
    pub fn into_bufs(self) -> Vec<B> {
        self.bufs.into_vec()
    }
}

impl<B> fmt::Debug for Iocb<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iocb")
            .field("op", &self.op)
            .field("fd", &self.fd)
            .field("offset", &self.offset)
            .field("rw_flags", &self.rw_flags)
            .field("ioprio", &self.ioprio)
            .field("resfd", &self.resfd)
            .field("user_data", &self.user_data)
            .field("callback", &self.callback.is_some())
            .finish_non_exhaustive()
    }
}

/// `IoBufMut::set_init` as a plain function, so a request can record a read's length without
/// its buffer type carrying the bound.
///
/// # Safety
///
/// As for `IoBufMut::set_init`.
unsafe fn set_init<B: IoBufMut>(buf: &mut B, len: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { buf.set_init(len) }
}

/// One `struct iovec`, owned by a request whose buffers it points into.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoVec(pub(crate) libc::iovec);

// SAFETY: the pointer refers to a buffer owned by the same request, which moves between threads
// with it; the iovec itself is plain data.
unsafe impl Send for IoVec {}
// SAFETY: as above; it is only read.
unsafe impl Sync for IoVec {}

impl IoVec {
    fn new(base: *mut u8, len: usize) -> IoVec {
        IoVec(libc::iovec { iov_base: base.cast(), iov_len: len })
    }
}

/// Identifies a request in flight, for [`Context::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    pub(crate) key: usize,
    pub(crate) seq: u64,
}

/// A finished request: its result and its buffers, given back.
pub struct Completion<B> {
    pub(crate) id: RequestId,
    pub(crate) op: Op,
    pub(crate) user_data: u64,
    pub(crate) res: i64,
    pub(crate) res2: i64,
    pub(crate) bufs: Bufs<B>,
}

impl<B> Completion<B> {
    /// The id [`Context::submit`] returned for it.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// What the request did.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The value given to [`Iocb::user_data`].
    pub fn user_data(&self) -> u64 {
        self.user_data
    }

    /// Bytes transferred (or the ready mask, for poll), or the request's error. A read may
    /// transfer fewer bytes than asked (end of file); so may a write (no space left).
    pub fn result(&self) -> io::Result<usize> {
        if self.res < 0 {
            Err(io::Error::from_raw_os_error(-self.res as i32))
        } else {
            Ok(self.res as usize)
        }
    }

    /// The kernel's `res`: bytes, poll mask or negated errno.
    pub fn res(&self) -> i64 {
        self.res
    }

    /// The kernel's `res2` (0 on current kernels).
    pub fn res2(&self) -> i64 {
        self.res2
    }

    /// For a poll request that succeeded, the events that were ready.
    pub fn poll_events(&self) -> Option<PollFlags> {
        match self.op {
            Op::Poll(_) if self.res >= 0 => Some(PollFlags::from_bits_retain(self.res as u16)),
            _ => None,
        }
    }

    /// The buffer of a single-buffer request.
    pub fn buf(&self) -> Option<&B> {
        self.bufs.one()
    }

    /// Takes the buffer of a single-buffer request back.
    pub fn into_buf(self) -> Option<B> {
        self.bufs.into_one()
    }

    /// Takes all buffers back (one for pread/pwrite, all for preadv/pwritev, none otherwise).
    pub fn into_bufs(self) -> Vec<B> {
        self.bufs.into_vec()
    }
}

impl<B> fmt::Debug for Completion<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("id", &self.id)
            .field("op", &self.op)
            .field("user_data", &self.user_data)
            .field("res", &self.res)
            .field("res2", &self.res2)
            .finish_non_exhaustive()
    }
}

/// A submission that failed, with what was submitted given back, so no buffer is lost.
pub struct SubmitError<T> {
    error: io::Error,
    request: Box<T>,
}

impl<T> SubmitError<T> {
    pub(crate) fn new(error: io::Error, request: T) -> Self {
        SubmitError { error, request: Box::new(request) }
    }

    /// The error.
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// What was not submitted.
    pub fn into_request(self) -> T {
        *self.request
    }

    /// Both.
    pub fn into_parts(self) -> (io::Error, T) {
        (self.error, *self.request)
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitError").field("error", &self.error).finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<T> std::error::Error for SubmitError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<SubmitError<T>> for io::Error {
    fn from(e: SubmitError<T>) -> io::Error {
        e.error
    }
}
