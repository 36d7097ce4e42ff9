//! [`UringDriver`]: io_uring, on the `io-uring` crate.
//!
//! `queue` writes a submission queue entry; `flush` submits every entry written so far in one
//! `io_uring_enter`; `reap` flushes, takes completions from the completion queue, and waits in
//! the kernel (`IORING_ENTER_GETEVENTS`, with the timeout as an extended argument) when it needs
//! more. A full submission queue is submitted on the spot; `EBUSY` (completions the kernel could
//! not post yet) is handled by taking completions off the queue first.
//!
//! Options: registered buffers ([`UringOptions::fixed_buffers`], used automatically for reads
//! and writes whose memory lies in one — see [`UringDriver::fixed_buffer`]), a registered file
//! table ([`UringDriver::register_file`]), and a kernel submission thread
//! ([`UringOptions::sqpoll`]).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring};
use slab::Slab;

use super::inline::Inline;
use super::{
    Buf, CancelOutcome, Completion, Driver, InlineStats, Op, RawIo, RawQueued, Rejected, Request,
};
use crate::buf::{AlignedBuf, IoBuf, IoBufMut};
use crate::deadline::deadline;
use crate::EventFd;

/// Submission entries whose completions are cancellation results, not requests.
const CANCEL_TAG: u64 = 1 << 63;
/// Marks the `user_data` of a raw request's entry: its key in `Inner::raw`.
const RAW_TAG: u64 = 1 << 62;
/// The `user_data` of a no-op posted only to end a wait in the kernel (see `wake_waiters`).
const WAKE_TAG: u64 = 1 << 61;

/// Reads and writes of buffered files at least this long go to the kernel's workers
/// (`IOSQE_ASYNC`) instead of being copied inside the submitting system call, so that a submit
/// returns in about the same time whatever its size. Smaller ones are served inline when the
/// data is cached, which is faster than a trip to a worker.
pub const ASYNC_MIN_LEN: usize = 128 << 10;

/// How a [`UringDriver`] is set up.
#[derive(Debug, Clone)]
pub struct UringOptions {
    /// Submission queue entries.
    pub entries: u32,
    /// Completion queue entries, which bound the requests in flight at once (`None`: twice
    /// `entries`).
    pub cq_entries: Option<u32>,
    /// A kernel thread polls the submission queue, sleeping after this idle time (`SQPOLL`).
    pub sqpoll: Option<Duration>,
    /// Registers this many buffers of this size (`IORING_REGISTER_BUFFERS`), lent out by
    /// [`UringDriver::fixed_buffer`].
    pub fixed_buffers: Option<(usize, usize)>,
    /// Size of the registered file table (0: none), filled by [`UringDriver::register_file`].
    pub fixed_files: u32,
    /// Try small buffered reads and writes at submission, with `RWF_NOWAIT`, before the ring
    /// (see [`Driver::queue_now`]). On by default unless `AIO_INLINE=0`.
    pub inline: bool,
    /// Set the ring up with `IORING_SETUP_COOP_TASKRUN` (and `TASKRUN_FLAG`), as fio does: the
    /// kernel does not interrupt the program to post completions that need its task (O_DIRECT
    /// reads, for one); they are posted when the driver next enters the kernel, which `reap`
    /// and `poll` do when the kernel flags pending work. Cheaper for a program that only
    /// reaps; the driver then has no eventfd (nothing would post completions while a waiter
    /// sleeps on it). Falls back to a plain ring on kernels before 5.19.
    pub coop_taskrun: bool,
}

impl Default for UringOptions {
    fn default() -> UringOptions {
        UringOptions {
            entries: 256,
            cq_entries: None,
            inline: super::inline::enabled_by_default(),
            sqpoll: None,
            fixed_buffers: None,
            fixed_files: 0,
            coop_taskrun: false,
        }
    }
}

/// What this kernel's io_uring supports, of what the driver uses.
#[derive(Debug, Clone)]
pub struct UringProbe {
    /// Each opcode the driver may use, and whether the kernel supports it.
    pub ops: Vec<(&'static str, bool)>,
    /// Waits with a timeout as an extended argument (Linux 5.11).
    pub ext_arg: bool,
    /// Completions are never dropped when the completion queue is full (Linux 5.5).
    pub nodrop: bool,
    /// Submission data is copied at submission (Linux 5.5).
    pub submit_stable: bool,
}

impl UringProbe {
    /// Whether the named opcode is supported.
    pub fn supports(&self, name: &str) -> bool {
        self.ops.iter().any(|&(n, ok)| n == name && ok)
    }
}

/// io_uring as a [`Driver`].
pub struct UringDriver {
    ring: IoUring,
    /// Everything user space shares: the submission and completion queues (reached through
    /// `submission_shared` and `completion_shared`, which this lock makes exclusive) and the
    /// table of requests in flight. Waiting in the kernel happens without it.
    inner: Mutex<Inner>,
    cancel_seq: AtomicU64,
    efd: OnceLock<EventFd>,
    efd_init: Mutex<()>,
    fixed: Option<Arc<FixedPool>>,
    files: Mutex<FileTable>,
    /// Whether any file is registered (so requests need not look in `files`).
    has_files: AtomicBool,
    probe: UringProbe,
    /// Completions needing this task are posted only when the ring is entered.
    coop: bool,
    /// Most requests in the kernel at once: the completion queue's size.
    capacity: usize,
    in_flight: AtomicUsize,
    /// Threads waiting in the kernel for completions (see `wake_waiters`); changed under
    /// `inner` before such a wait begins.
    waiters: AtomicUsize,
    inline: Inline,
}

struct Entry {
    buf: Buf,
    user_data: u64,
}

/// A request's fields other than its buffer and `user_data`, which go to the table.
struct Meta {
    op: Op,
    fd: RawFd,
    offset: u64,
    flags: super::RwFlags,
    ioprio: Option<super::IoPriority>,
}

/// `IOSQE_ASYNC` for a read or write of `len` bytes of `fd` that would copy a lot inside the
/// submitting system call: at least [`ASYNC_MIN_LEN`] bytes of a buffered regular file or block
/// device. (An `O_DIRECT` request is only started by that call, whatever its size.)
///
/// Never for a pipe, socket or FIFO: what those wait for is the other end, which the kernel
/// waits for by polling (and cancels there) when the request is submitted inline. Sent to a
/// worker instead, such a request could be missed by a cancellation (`ENOENT`) while the
/// worker moved it from its queue to a blocking read — and then wait for ever.
fn async_flag(fd: RawFd, len: usize) -> squeue::Flags {
    if len < ASYNC_MIN_LEN {
        return squeue::Flags::empty();
    }
    let file = matches!(crate::sys::io::file_type(fd), Some(libc::S_IFREG | libc::S_IFBLK));
    let direct = || crate::sys::fs::status_flags_of(fd).is_ok_and(|f| f & libc::O_DIRECT != 0);
    if file && !direct() {
        squeue::Flags::ASYNC
    } else {
        squeue::Flags::empty()
    }
}

/// Where [`UringDriver::harvest`] puts the completions it takes.
enum Sink<'a> {
    /// Into `parked`, for the next reap.
    Park,
    Out(&'a mut Vec<Completion>),
    /// `(user_data, res)` of raw requests; others are parked.
    Raw(&'a mut Vec<(u64, i64)>),
}

struct Inner {
    table: Slab<Entry>,
    /// Raw requests in the kernel: their `user_data` (they have no buffers to keep).
    raw: Slab<u64>,
    /// Completions taken off the completion queue while making room or waiting for a
    /// cancellation, not yet reaped.
    parked: VecDeque<Completion>,
    /// Results of cancellations, by tag.
    cancels: HashMap<u64, i32>,
}

#[derive(Default)]
struct FileTable {
    slots: HashMap<RawFd, u32>,
    free: Vec<u32>,
}

/// `opcode::OP::new(file, args…)` for the file `fd`: its registered slot when `slot` has one.
macro_rules! with_file {
    ($slot:expr, $fd:expr, $op:ident :: new ( $($arg:expr),* )) => {
        match $slot {
            Some(s) => opcode::$op::new(types::Fixed(s), $($arg),*),
            None => opcode::$op::new(types::Fd($fd), $($arg),*),
        }
    };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UringDriver {
    /// Sets up a ring (`io_uring_setup`) with these options and probes what it supports.
    ///
    /// Fails with a message saying why when io_uring is unavailable (disabled by
    /// `/proc/sys/kernel/io_uring_disabled`, refused by seccomp, not in this kernel, or short of
    /// locked memory) or lacks an operation the driver needs.
    pub fn new(opts: UringOptions) -> io::Result<UringDriver> {
        let entries = opts.entries.clamp(1, 32768).next_power_of_two();
        let cq_entries = opts.cq_entries.unwrap_or(entries * 2).clamp(entries, 1 << 20);
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq_entries);
        if let Some(idle) = opts.sqpoll {
            builder.setup_sqpoll(u32::try_from(idle.as_millis()).unwrap_or(u32::MAX));
        }
        let coop_ring = opts.coop_taskrun.then(|| {
            let mut coop = builder.clone();
            coop.setup_coop_taskrun().setup_taskrun_flag();
            coop.build(entries)
        });
        // Kernels before 5.19 refuse the flags (EINVAL): a plain ring, then.
        let (ring, coop) = match coop_ring {
            Some(Ok(ring)) => (ring, true),
            _ => (builder.build(entries).map_err(|e| setup_error(&e))?, false),
        };
        let probe = probe(&ring);
        if let Some((name, _)) = probe.ops.iter().take(7).find(|(_, ok)| !ok) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring: this kernel does not support {name}"),
            ));
        }
        let fixed = match opts.fixed_buffers {
            Some((count, size)) => Some(FixedPool::register(&ring, count, size)?),
            None => None,
        };
        let mut files = FileTable::default();
        if opts.fixed_files > 0 {
            ring.submitter().register_files_sparse(opts.fixed_files)?;
            files.free = (0..opts.fixed_files).rev().collect();
        }
        let capacity = ring.params().cq_entries() as usize;
        Ok(UringDriver {
            ring,
            inner: Mutex::new(Inner {
                table: Slab::with_capacity(capacity),
                raw: Slab::new(),
                parked: VecDeque::new(),
                cancels: HashMap::new(),
            }),
            cancel_seq: AtomicU64::new(0),
            efd: OnceLock::new(),
            efd_init: Mutex::new(()),
            fixed,
            files: Mutex::new(files),
            has_files: AtomicBool::new(false),
            probe,
            coop,
            capacity,
            in_flight: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            inline: Inline::new(opts.inline),
        })
    }

    /// What the kernel supports.
    pub fn probe(&self) -> &UringProbe {
        &self.probe
    }

    /// Whether a kernel thread polls the submission queue.
    pub fn is_sqpoll(&self) -> bool {
        self.ring.params().is_setup_sqpoll()
    }

    /// Lends out a free registered buffer ([`UringOptions::fixed_buffers`]); reads and writes
    /// into it use `READ_FIXED`/`WRITE_FIXED`. It goes back to the driver when dropped.
    pub fn fixed_buffer(&self) -> Option<FixedBuf> {
        let pool = self.fixed.as_ref()?;
        let index = lock(&pool.free).pop()?;
        Some(FixedBuf { pool: Arc::clone(pool), index, len: 0 })
    }

    /// Adds `fd` to the registered file table; requests on it then use the table's slot.
    /// Unregister it before closing it.
    pub fn register_file(&self, fd: impl AsFd) -> io::Result<()> {
        let fd = fd.as_fd().as_raw_fd();
        let mut files = lock(&self.files);
        if files.slots.contains_key(&fd) {
            return Ok(());
        }
        let Some(slot) = files.free.pop() else {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "io_uring: the registered file table is full (UringOptions::fixed_files)",
            ));
        };
        if let Err(e) = self.ring.submitter().register_files_update(slot, &[fd]) {
            files.free.push(slot);
            return Err(e);
        }
        files.slots.insert(fd, slot);
        self.has_files.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Removes `fd` from the registered file table.
    pub fn unregister_file(&self, fd: impl AsFd) -> io::Result<()> {
        let fd = fd.as_fd().as_raw_fd();
        let mut files = lock(&self.files);
        if let Some(slot) = files.slots.remove(&fd) {
            self.ring.submitter().register_files_update(slot, &[-1])?;
            files.free.push(slot);
        }
        Ok(())
    }

    /// The registered-file slot of `fd`, if it has one.
    fn file_slot(&self, fd: RawFd) -> Option<u32> {
        if self.has_files.load(Ordering::Relaxed) {
            lock(&self.files).slots.get(&fd).copied()
        } else {
            None
        }
    }

    /// The entry for a read or write of one buffer of file `fd` (registered in `slot`, if it
    /// is), from a registered buffer with the `_FIXED` opcodes.
    #[allow(clippy::too_many_arguments)]
    fn rw_entry(
        &self,
        slot: Option<u32>,
        write: bool,
        fd: RawFd,
        ptr: *mut u8,
        len: usize,
        offset: u64,
        flags: i32,
        prio: u16,
    ) -> squeue::Entry {
        let fixed = self.fixed.as_ref().and_then(|f| f.index_of(ptr, len));
        let flags_sq = async_flag(fd, len);
        // An entry says at most 4 GiB: beyond, the transfer is short (the kernel stops at 2 GiB
        // anyway, as for pread).
        let len = len.min(u32::MAX as usize) as u32;
        let entry = match (write, fixed) {
            (false, Some(i)) => with_file!(slot, fd, ReadFixed::new(ptr, len, i))
                .offset(offset)
                .rw_flags(flags)
                .ioprio(prio)
                .build(),
            (false, None) => with_file!(slot, fd, Read::new(ptr, len))
                .offset(offset)
                .rw_flags(flags)
                .ioprio(prio)
                .build(),
            (true, Some(i)) => with_file!(slot, fd, WriteFixed::new(ptr, len, i))
                .offset(offset)
                .rw_flags(flags)
                .ioprio(prio)
                .build(),
            (true, None) => with_file!(slot, fd, Write::new(ptr, len))
                .offset(offset)
                .rw_flags(flags)
                .ioprio(prio)
                .build(),
        };
        entry.flags(flags_sq)
    }

    /// The entry for request `req` whose buffer is `buf`: the one in the table, where it rests
    /// until the completion is taken, since the entry points into it (its `iovec` array, for
    /// the vectored operations).
    fn entry_for(&self, req: &Meta, buf: &Buf, key: u64) -> squeue::Entry {
        let slot = self.file_slot(req.fd);
        let prio = req.ioprio.map_or(0, |p| p.raw());
        let flags = req.flags.bits();
        let iov = buf.iovecs();
        let entry = match req.op {
            Op::Read | Op::Write => {
                let ptr = iov[0].iov_base.cast::<u8>();
                let write = req.op == Op::Write;
                self.rw_entry(slot, write, req.fd, ptr, iov[0].iov_len, req.offset, flags, prio)
            }
            Op::Readv => with_file!(slot, req.fd, Readv::new(iov.as_ptr(), iov.len() as u32))
                .offset(req.offset)
                .rw_flags(flags)
                .ioprio(prio)
                .build()
                .flags(async_flag(req.fd, buf.len())),
            Op::Writev => with_file!(slot, req.fd, Writev::new(iov.as_ptr(), iov.len() as u32))
                .offset(req.offset)
                .rw_flags(flags)
                .ioprio(prio)
                .build()
                .flags(async_flag(req.fd, buf.len())),
            Op::Fsync => with_file!(slot, req.fd, Fsync::new()).build(),
            Op::Fdatasync => {
                with_file!(slot, req.fd, Fsync::new()).flags(types::FsyncFlags::DATASYNC).build()
            }
        };
        entry.user_data(key)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Writes one entry to the submission queue, submitting first if it is full.
    ///
    /// # Safety
    ///
    /// Whatever the entry points at must stay valid until its completion is taken.
    unsafe fn push(&self, inner: &mut Inner, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: holding `inner` makes this the only handle to the submission queue.
            let mut sq = unsafe { self.ring.submission_shared() };
            // SAFETY: forwarded from the caller.
            if unsafe { sq.push(entry) }.is_ok() {
                sq.sync();
                return Ok(());
            }
            drop(sq);
            self.submit(inner)?;
        }
    }

    /// Submits what is in the submission queue, if anything (or if the kernel needs an enter
    /// to post overflowed completions or run task work).
    fn submit(&self, inner: &mut Inner) -> io::Result<()> {
        {
            // SAFETY: holding `inner` makes this the only handle to the submission queue.
            let sq = unsafe { self.ring.submission_shared() };
            if sq.is_empty() && !sq.cq_overflow() && !sq.taskrun() {
                return Ok(());
            }
        }
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                // Completions the kernel could not post yet: make room, then try again.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    if self.harvest(inner, usize::MAX, Sink::Park) == 0 {
                        std::thread::yield_now();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes entries off the completion queue: requests' completions into `sink`, up to `max`
    /// of them, cancellation results into `cancels`. Returns how many completions went to the
    /// sink.
    fn harvest(&self, inner: &mut Inner, max: usize, mut sink: Sink<'_>) -> usize {
        // SAFETY: holding `inner` makes this the only handle to the completion queue.
        let mut cq = unsafe { self.ring.completion_shared() };
        cq.sync();
        let mut got = 0;
        let parked_before = inner.parked.len();
        let mut cancel_results = false;
        while got < max {
            let Some(e) = cq.next() else { break };
            let (data, res) = (e.user_data(), i64::from(e.result()));
            if data == WAKE_TAG {
                continue;
            }
            if data & CANCEL_TAG != 0 {
                inner.cancels.insert(data, res as i32);
                cancel_results = true;
                continue;
            }
            if data & RAW_TAG != 0 {
                let Some(user_data) = inner.raw.try_remove((data & !RAW_TAG) as usize) else {
                    continue;
                };
                match &mut sink {
                    Sink::Raw(out) => out.push((user_data, res)),
                    Sink::Out(out) => out.push(Completion::new(user_data, res, Buf::none())),
                    Sink::Park => {
                        inner.parked.push_back(Completion::new(user_data, res, Buf::none()))
                    }
                }
                got += 1;
                continue;
            }
            let Some(Entry { buf, user_data }) = inner.table.try_remove(data as usize) else {
                continue;
            };
            if res > 0 && buf.is_writable() {
                // A read: memcheck cannot see the kernel fill it (nothing natively).
                crate::sys::valgrind::mark_iovecs_defined(buf.iovecs(), res as usize);
            }
            let c = Completion::new(user_data, res, buf);
            match &mut sink {
                Sink::Out(out) => out.push(c),
                Sink::Park => inner.parked.push_back(c),
                Sink::Raw(_) => {
                    // Its buffer is given back by a reap: not counted here.
                    inner.parked.push_back(c);
                    continue;
                }
            }
            got += 1;
        }
        drop(cq);
        if inner.parked.len() > parked_before || cancel_results {
            self.wake_waiters(inner);
        }
        got
    }

    /// Waits in the kernel for `want` completions, or until `timeout` (`None`, or too large to
    /// say: no limit), with `sigmask` (if given) as the signal mask during the wait.
    fn wait(
        &self,
        want: usize,
        timeout: Option<Duration>,
        sigmask: Option<&libc::sigset_t>,
    ) -> io::Result<()> {
        // A timeout the kernel's timespec cannot hold is no timeout.
        let timeout = timeout.filter(|t| i64::try_from(t.as_secs()).is_ok());
        let result = match (timeout, sigmask) {
            (None, None) => self.ring.submitter().submit_and_wait(want).map(drop),
            _ if self.probe.ext_arg => {
                let want = u32::try_from(want).unwrap_or(u32::MAX);
                crate::sys::uring::enter_wait(self.ring.as_raw_fd(), want, timeout, sigmask)
            }
            _ => {
                // Before Linux 5.11: the ring's descriptor is readable when completions wait.
                let mut fds =
                    [libc::pollfd { fd: self.ring.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
                crate::sys::fs::ppoll(&mut fds, timeout, sigmask).map(drop)
            }
        };
        match result {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EBUSY)) => Ok(()),
            r => r,
        }
    }

    /// Ends the waits of threads waiting in the kernel for completions (by posting a no-op's):
    /// called, with `inner` held, after completions went somewhere such a wait cannot see
    /// (`parked`), so none of them sleeps while completions are ready.
    fn wake_waiters(&self, inner: &mut Inner) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.post_wake(inner);
        }
    }

    /// Posts a no-op whose completion (which `harvest` drops) ends a wait in the kernel.
    fn post_wake(&self, inner: &mut Inner) {
        let nop = opcode::Nop::new().build().user_data(WAKE_TAG);
        // SAFETY: holding `inner` makes this the only handle to the submission queue; a no-op
        // points at no memory.
        let pushed = unsafe { self.ring.submission_shared().push(&nop) }.is_ok();
        if pushed {
            // SAFETY: as above.
            unsafe { self.ring.submission_shared() }.sync();
        }
        // A full submission queue is submitted here too: its entries may not be started yet.
        let _ = self.ring.submit();
        let _ = inner;
    }

    /// Requests in the kernel's hands (so many completions may come).
    fn submitted(inner: &Inner) -> usize {
        inner.table.len() + inner.raw.len()
    }

    /// Accepts a validated request: its entry goes to the submission queue (submitting what is
    /// there first if it is full) and its buffer to the table.
    fn queue_locked(&self, inner: &mut Inner, req: Request) -> Result<(), Rejected> {
        if Self::submitted(inner) >= self.capacity {
            return Err(Rejected::new(io::Error::from_raw_os_error(libc::EAGAIN), req));
        }
        let Request { op, fd, offset, buf, flags, ioprio, user_data, inline_tried } = req;
        let meta = Meta { op, fd, offset, flags, ioprio };
        let key = inner.table.insert(Entry { buf, user_data });
        let sqe = self.entry_for(&meta, &inner.table[key].buf, key as u64);
        // SAFETY: the entry points into the request's buffer (and iovec array) as it rests in
        // the table, which owns it until the completion for `key` is taken off the completion
        // queue.
        if let Err(e) = unsafe { self.push(inner, &sqe) } {
            let Entry { buf, user_data } = inner.table.remove(key);
            return Err(Rejected::new(
                e,
                Request { op, fd, offset, buf, flags, ioprio, user_data, inline_tried },
            ));
        }
        self.accepted();
        Ok(())
    }

    /// Submits what is queued, as a reap does: a failure for lack of resources is left for
    /// the next reap to retry, once completions free some.
    fn flush_for_reap(&self, inner: &mut Inner) -> io::Result<()> {
        match self.submit(inner) {
            Err(e) if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves parked completions and then those on the completion queue into `out`.
    fn take(&self, inner: &mut Inner, max: usize, out: &mut Vec<Completion>) -> usize {
        self.run_taskrun();
        let mut n = 0;
        if !inner.parked.is_empty() {
            n = inner.parked.len().min(max);
            out.extend(inner.parked.drain(..n));
        }
        n += self.harvest(inner, max - n, Sink::Out(out));
        self.reaped(n);
        n
    }

    /// With `coop`, enters the kernel if completions wait for this task to be posted.
    fn run_taskrun(&self) {
        // SAFETY: the caller holds `inner`, which makes this the only handle to the
        // submission queue.
        if self.coop && unsafe { self.ring.submission_shared() }.taskrun() {
            let _ = self.ring.submitter().submit();
        }
    }

    /// Counts one request as accepted (`inner` held).
    fn accepted(&self) {
        // Changed only under `inner`: a plain add, not a locked one.
        self.in_flight.store(self.in_flight.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Counts `n` completions as reaped (`inner` held).
    fn reaped(&self, n: usize) {
        // Changed only under `inner`: a plain subtraction.
        self.in_flight.store(self.in_flight.load(Ordering::Relaxed) - n, Ordering::Relaxed);
    }
}

// SAFETY: a request's buffer stays in the table from the moment its entry is written until its
// completion is taken off the completion queue, and Drop waits for every submitted request
// before the table is freed; byte counts are the kernel's.
unsafe impl Driver for UringDriver {
    fn name(&self) -> &str {
        "uring"
    }

    fn queue(&self, req: Request) -> Result<(), Rejected> {
        if let Some(c) = self.queue_now(req)? {
            // Served at once: its completion waits for a reap like any other.
            let mut inner = self.inner();
            self.accepted();
            inner.parked.push_back(c);
            self.wake_waiters(&mut inner);
            drop(inner);
            if let Some(efd) = self.efd.get() {
                let _ = efd.write(1);
            }
        }
        Ok(())
    }

    fn queue_now(&self, req: Request) -> Result<Option<Completion>, Rejected> {
        if let Err(e) = req.validate() {
            return Err(Rejected::new(e, req));
        }
        if let Some(res) = self.inline.try_request(&req) {
            return Ok(Some(Completion::new(req.user_data, res, req.buf)));
        }
        self.queue_locked(&mut self.inner(), req).map(|()| None)
    }

    fn try_now(&self, req: &mut Request) -> Option<i64> {
        self.inline.try_now(req)
    }

    unsafe fn try_now_raw(&self, io: &RawIo) -> Option<i64> {
        // SAFETY: forwarded from the caller.
        unsafe { self.inline.try_raw(io) }
    }

    fn inline_stats(&self) -> InlineStats {
        self.inline.stats()
    }

    fn flush(&self) -> io::Result<()> {
        self.submit(&mut self.inner())
    }

    unsafe fn queue_raw_and_reap(
        &self,
        io: RawIo,
        max: usize,
        out: &mut Vec<(u64, i64)>,
    ) -> io::Result<RawQueued> {
        super::check_offset(io.op(), io.offset)?;
        let prio = io.ioprio.map_or(0, |p| p.raw());
        let slot = self.file_slot(io.fd);
        let sqe = self.rw_entry(slot, io.write, io.fd, io.ptr, io.len, io.offset, 0, prio);
        let mut inner = self.inner();
        if Self::submitted(&inner) >= self.capacity {
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        let key = inner.raw.insert(io.user_data);
        // SAFETY: the entry points at the caller's memory, which the caller keeps valid until
        // the request completes (this function's contract).
        if let Err(e) = unsafe { self.push(&mut inner, &sqe.user_data(RAW_TAG | key as u64)) } {
            inner.raw.remove(key);
            return Err(e);
        }
        self.accepted();
        if let Err(e) = self.flush_for_reap(&mut inner) {
            return Ok(RawQueued { reaped: 0, start_error: Some(e) });
        }
        self.run_taskrun();
        let n = self.harvest(&mut inner, max, Sink::Raw(out));
        self.reaped(n);
        Ok(RawQueued { reaped: n, start_error: None })
    }

    fn reap(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize> {
        let min = min.min(max);
        let deadline = deadline(timeout);
        let mut got = 0;
        loop {
            let left = {
                let mut inner = self.inner();
                // What was queued (by any thread) goes to the kernel before the wait, which
                // submits nothing itself.
                self.flush_for_reap(&mut inner)?;
                got += self.take(&mut inner, max - got, out);
                if got >= min {
                    return Ok(got);
                }
                let left = crate::deadline::left(deadline);
                if left == Some(Duration::ZERO) {
                    return Ok(got);
                }
                // Counted before the lock goes: whoever parks completions from now on wakes
                // this wait (see `wake_waiters`).
                self.waiters.fetch_add(1, Ordering::SeqCst);
                left
            };
            let waited = self.wait(min - got, left, None);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            match waited {
                Err(e) if got == 0 => return Err(e),
                Err(_) => return Ok(got),
                Ok(()) => {}
            }
        }
    }

    fn wait_ready(
        &self,
        timeout: Option<Duration>,
        sigmask: Option<&libc::sigset_t>,
    ) -> io::Result<()> {
        {
            let mut inner = self.inner();
            // What others queued must be in the kernel before waiting for it: the wait
            // itself submits nothing.
            self.flush_for_reap(&mut inner)?;
            self.run_taskrun();
            // SAFETY: holding `inner` makes this the only handle to the completion queue.
            let ready =
                !inner.parked.is_empty() || !unsafe { self.ring.completion_shared() }.is_empty();
            if ready || timeout == Some(Duration::ZERO) {
                return Ok(());
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
        }
        let waited = self.wait(1, timeout, sigmask);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        waited
    }

    fn wake(&self) {
        // Sticky: a wait that starts after this finds the no-op's completion and ends.
        self.post_wake(&mut self.inner());
    }

    fn poll(&self, max: usize, out: &mut Vec<Completion>) -> io::Result<usize> {
        Ok(self.take(&mut self.inner(), max, out))
    }

    fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome> {
        let tag = CANCEL_TAG | self.cancel_seq.fetch_add(1, Ordering::Relaxed);
        {
            let mut inner = self.inner();
            let key = inner.table.iter().find(|(_, e)| e.user_data == user_data).map(|(k, _)| k);
            let raw = || inner.raw.iter().find(|&(_, &u)| u == user_data).map(|(k, _)| k);
            let target = match (key, raw()) {
                (Some(k), _) => k as u64,
                (None, Some(k)) => RAW_TAG | k as u64,
                (None, None) => return Ok(CancelOutcome::NotFound),
            };
            let entry = opcode::AsyncCancel::new(target).build().user_data(tag);
            // SAFETY: a cancellation entry points at no memory.
            unsafe { self.push(&mut inner, &entry) }?;
            self.submit(&mut inner)?;
        }
        loop {
            {
                let mut inner = self.inner();
                if let Some(res) = inner.cancels.remove(&tag) {
                    return Ok(match -res {
                        0 => CancelOutcome::Cancelled,
                        libc::EALREADY => CancelOutcome::Running,
                        libc::ENOENT => CancelOutcome::NotFound,
                        e => return Err(io::Error::from_raw_os_error(e)),
                    });
                }
                if self.harvest(&mut inner, usize::MAX, Sink::Park) > 0
                    || inner.cancels.contains_key(&tag)
                {
                    continue;
                }
                self.waiters.fetch_add(1, Ordering::SeqCst);
            }
            // Whoever takes the result wakes this wait; the slice is only insurance.
            let waited = self.wait(1, Some(Duration::from_millis(100)), None);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            waited?;
        }
    }

    fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
        if self.coop {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring set up with coop_taskrun posts completions only when the ring is \
                 entered: wait with reap, not on an eventfd",
            ));
        }
        let _init = lock(&self.efd_init);
        if self.efd.get().is_none() {
            let _inner = self.inner();
            let efd = EventFd::new()?;
            self.ring.submitter().register_eventfd(efd.as_raw_fd())?;
            // Completions that arrived before it was registered must still wake a watcher (as
            // must a wake made before).
            // SAFETY: holding `inner` makes this the only handle to the completion queue.
            let posted = !unsafe { self.ring.completion_shared() }.is_empty();
            if self.in_flight() > 0 || posted {
                let _ = efd.write(1);
            }
            let _ = self.efd.set(efd);
        }
        Ok(self.efd.get().expect("set above").as_fd())
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl Drop for UringDriver {
    fn drop(&mut self) {
        // Cancel what can be cancelled, then wait for every submitted request: the kernel may
        // write into their buffers until their completions arrive.
        {
            let mut inner = self.inner();
            let owned = inner.table.iter().map(|(k, _)| k as u64);
            let keys: Vec<u64> =
                owned.chain(inner.raw.iter().map(|(k, _)| RAW_TAG | k as u64)).collect();
            for key in keys {
                let entry = opcode::AsyncCancel::new(key).build().user_data(CANCEL_TAG);
                // SAFETY: a cancellation entry points at no memory.
                let _ = unsafe { self.push(&mut inner, &entry) };
            }
            let _ = self.submit(&mut inner);
        }
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let mut inner = self.inner();
                inner.parked.clear();
                if Self::submitted(&inner) == 0 {
                    break;
                }
                if self.harvest(&mut inner, usize::MAX, Sink::Park) > 0 {
                    continue;
                }
                if Instant::now() > give_up {
                    // Still in the kernel's hands: leak the buffers rather than free them.
                    std::mem::forget(std::mem::take(&mut inner.table));
                    inner.raw.clear();
                    break;
                }
            }
            let _ = self.wait(1, Some(Duration::from_millis(100)), None);
        }
    }
}

/// Registered buffers: allocated once, registered with the ring, lent out as [`FixedBuf`]s.
struct FixedPool {
    bufs: Vec<AlignedBuf>,
    /// Start addresses, sorted, with each buffer's index.
    starts: Vec<(usize, u16)>,
    size: usize,
    free: Mutex<Vec<u16>>,
}

// SAFETY: the pool's memory is reached through raw pointers by one FixedBuf at a time (the free
// list hands each index out once); the buffers themselves never move or change size.
unsafe impl Sync for FixedPool {}

impl FixedPool {
    fn register(ring: &IoUring, count: usize, size: usize) -> io::Result<Arc<FixedPool>> {
        let count = count.min(u16::MAX as usize);
        let bufs: Vec<AlignedBuf> = (0..count).map(|_| AlignedBuf::new(size, 4096)).collect();
        let iovecs: Vec<libc::iovec> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr().cast_mut().cast(),
                iov_len: b.capacity(),
            })
            .collect();
        // SAFETY: the buffers live in the returned pool, which the driver keeps (through its
        // Arc) as long as the ring, so they outlive the registration.
        unsafe { ring.submitter().register_buffers(&iovecs) }.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "io_uring: registering {count} buffers of {size} bytes: {e} (RLIMIT_MEMLOCK?)"
                ),
            )
        })?;
        let mut starts: Vec<(usize, u16)> =
            bufs.iter().enumerate().map(|(i, b)| (b.stable_ptr() as usize, i as u16)).collect();
        starts.sort_unstable();
        let size = bufs.first().map_or(size, |b| b.capacity());
        Ok(Arc::new(FixedPool {
            bufs,
            starts,
            size,
            free: Mutex::new((0..count as u16).rev().collect()),
        }))
    }

    /// The index of the registered buffer holding `[ptr, ptr + len)`, if one does.
    fn index_of(&self, ptr: *const u8, len: usize) -> Option<u16> {
        let addr = ptr as usize;
        let pos = self.starts.partition_point(|&(start, _)| start <= addr).checked_sub(1)?;
        let (start, index) = self.starts[pos];
        (addr + len <= start + self.size).then_some(index)
    }

    fn ptr(&self, index: u16) -> *mut u8 {
        self.bufs[index as usize].stable_ptr().cast_mut()
    }
}

/// A registered buffer lent out by [`UringDriver::fixed_buffer`]; back to the driver on drop.
/// Reads and writes whose memory lies in it use `READ_FIXED`/`WRITE_FIXED`.
pub struct FixedBuf {
    pool: Arc<FixedPool>,
    index: u16,
    len: usize,
}

impl FixedBuf {
    /// The buffer's index in the registration.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Sets how many bytes hold data (what a write sends).
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.pool.size, "length {len} beyond capacity {}", self.pool.size);
        self.len = len;
    }

    /// The data.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the memory is the pool's, alive while `self.pool` is, initialized (zeroed at
        // allocation), and lent to this FixedBuf alone.
        unsafe { std::slice::from_raw_parts(self.pool.ptr(self.index), self.len) }
    }

    /// The whole capacity, mutably.
    pub fn as_full_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.pool.ptr(self.index), self.pool.size) }
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        lock(&self.pool.free).push(self.index);
    }
}

// SAFETY: the memory belongs to the pool (kept alive by the Arc), does not move, and is lent
// to one FixedBuf at a time; all of it is initialized.
unsafe impl IoBuf for FixedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.pool.ptr(self.index)
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.pool.size
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for FixedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.pool.ptr(self.index)
    }
    unsafe fn set_init(&mut self, len: usize) {
        self.len = self.len.max(len.min(self.pool.size));
    }
}

fn probe(ring: &IoUring) -> UringProbe {
    let mut p = io_uring::Probe::new();
    let known = ring.submitter().register_probe(&mut p).is_ok();
    let ops = [
        ("read", opcode::Read::CODE),
        ("write", opcode::Write::CODE),
        ("readv", opcode::Readv::CODE),
        ("writev", opcode::Writev::CODE),
        ("fsync", opcode::Fsync::CODE),
        ("async_cancel", opcode::AsyncCancel::CODE),
        ("nop", opcode::Nop::CODE),
        ("read_fixed", opcode::ReadFixed::CODE),
        ("write_fixed", opcode::WriteFixed::CODE),
    ];
    let params = ring.params();
    UringProbe {
        ops: ops.iter().map(|&(name, code)| (name, known && p.is_supported(code))).collect(),
        ext_arg: params.is_feature_ext_arg(),
        nodrop: params.is_feature_nodrop(),
        submit_stable: params.is_feature_submit_stable(),
    }
}

/// Explains an `io_uring_setup` failure.
pub(crate) fn setup_error(e: &io::Error) -> io::Error {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_string());
    let why = match (e.raw_os_error(), disabled.as_deref()) {
        (Some(libc::ENOSYS), _) => {
            "this kernel has no io_uring (built without CONFIG_IO_URING)".to_string()
        }
        (Some(libc::EPERM), Some("2")) => {
            "io_uring is disabled: /proc/sys/kernel/io_uring_disabled is 2".to_string()
        }
        (Some(libc::EPERM), Some("1")) => {
            "io_uring is restricted: /proc/sys/kernel/io_uring_disabled \
             is 1 and this process is not in kernel.io_uring_group"
                .to_string()
        }
        (Some(libc::EPERM), _) => {
            "io_uring_setup is not permitted (a seccomp filter or container policy)".to_string()
        }
        (Some(libc::ENOMEM), _) => {
            "not enough locked memory for the rings (raise RLIMIT_MEMLOCK: ulimit -l)".to_string()
        }
        _ => e.to_string(),
    };
    io::Error::new(e.kind(), format!("io_uring_setup: {why} ({e})"))
}
