//! [`Context`]: the safe, owning native AIO context.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use slab::Slab;

use super::raw::{RawContext, ReapMode};
use super::request::{Bufs, Callback, Completion, Iocb, Op, RequestId, SubmitError};
use crate::buf::AlignedBuf;
use crate::sys::{self, io_event, iocb};

/// Most completions taken from the kernel in one go (a stack array of this many events).
const REAP_CHUNK: usize = 64;

/// Most spare iocb allocations kept for reuse.
const SPARE_IOCBS: usize = 1024;

/// Most buffers in one vectored request (`IOV_MAX`).
const IOV_MAX: usize = 1024;

/// A native AIO context whose requests own their buffers.
///
/// A request moves into the context when it is submitted and comes back, buffers and all, as a
/// [`Completion`] when it is reaped; so the kernel never writes into memory the program has freed
/// or can see. Dropping the context calls `io_destroy`, which waits for every request in flight
/// to finish; only then are their buffers dropped (and their callbacks with them, uncalled).
///
/// All methods take `&self`: one thread may submit while another reaps. Reaping calls are
/// serialized (the completion ring has one consumer); callbacks run on the reaping thread with no
/// lock held and may submit more requests.
///
/// `B` is the buffer type of every request of this context: `Vec<u8>`, `Box<[u8]>`,
/// [`AlignedBuf`] (the default, for `O_DIRECT`), a [`crate::buf::Slice`] of one, or any other
/// [`IoBuf`](crate::IoBuf).
pub struct Context<B = AlignedBuf> {
    raw: RawContext,
    table: Mutex<Table<B>>,
    /// Reaped completions without a callback, waiting for `get_events`.
    ready: Mutex<VecDeque<Completion<B>>>,
    /// Reaped completions whose callback has not run yet (a callback before them panicked).
    deferred: Mutex<VecDeque<(Completion<B>, Callback<B>)>>,
    seq: AtomicU64,
}

/// Whether a cancellation was started or finished at once. Either way the request's completion
/// is then reaped like any other, with its result (`ECANCELED`, or what it had done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelStatus {
    /// The kernel is cancelling it (`EINPROGRESS`, current kernels).
    InProgress,
    /// The kernel cancelled it and returned its completion at once (old kernels).
    Completed,
}

/// The requests in flight, and iocb allocations kept for reuse.
struct Table<B> {
    entries: Slab<Entry<B>>,
    #[allow(clippy::vec_box)] // the boxes are what is reused: their addresses go to the kernel
    spare: Vec<Box<IocbCell>>,
}

impl<B> Table<B> {
    /// Removes an entry, keeping its iocb allocation for the next request; returns the request
    /// and its sequence number.
    fn take(&mut self, key: usize) -> (Iocb<B>, u64) {
        let Entry { req, iocb, seq } = self.entries.remove(key);
        if self.spare.len() < SPARE_IOCBS {
            self.spare.push(iocb);
        }
        (req, seq)
    }

    /// Puts a request in the table with its iocb; returns its key and the iocb's address.
    fn insert(&mut self, req: Iocb<B>, seq: u64) -> (usize, *mut iocb) {
        let slot = self.entries.vacant_entry();
        let key = slot.key();
        let cb = build_iocb(&req, key as u64);
        let iocb = match self.spare.pop() {
            Some(mut spare) => {
                *spare.0.get_mut() = cb;
                spare
            }
            None => Box::new(IocbCell(UnsafeCell::new(cb))),
        };
        let entry = slot.insert(Entry { req, iocb, seq });
        (key, entry.iocb_ptr())
    }
}

/// A submitted request: its buffers and the iocb the kernel was given.
struct Entry<B> {
    req: Iocb<B>,
    iocb: Box<IocbCell>,
    seq: u64,
}

/// An iocb at a stable address. The kernel writes `aio_key` into it during `io_submit` and
/// `io_cancel` reads it; Rust code never forms a reference to it after submission.
struct IocbCell(UnsafeCell<iocb>);

// SAFETY: the iocb is plain data; it is written only by the kernel during io_submit (while the
// submitting thread holds no other access) and otherwise only read by the kernel.
unsafe impl Send for IocbCell {}
// SAFETY: as above.
unsafe impl Sync for IocbCell {}

impl<B> Entry<B> {
    fn iocb_ptr(&self) -> *mut iocb {
        self.iocb.0.get()
    }
}

impl<B: Send + 'static> Context<B> {
    /// `io_setup(max_events)`: a context with room for at least `max_events` requests in flight.
    ///
    /// Fails with a message naming `/proc/sys/fs/aio-max-nr` when the system-wide limit would be
    /// exceeded.
    #[doc(alias = "io_setup")]
    pub fn new(max_events: usize) -> io::Result<Context<B>> {
        Ok(Context {
            raw: RawContext::new(max_events)?,
            table: Mutex::new(Table {
                entries: Slab::with_capacity(max_events.min(4096)),
                spare: Vec::new(),
            }),
            ready: Mutex::new(VecDeque::new()),
            deferred: Mutex::new(VecDeque::new()),
            seq: AtomicU64::new(0),
        })
    }

    /// The underlying context (its id, ring and reaping mode).
    pub fn raw(&self) -> &RawContext {
        &self.raw
    }

    /// Chooses how completions are taken from the kernel (see [`ReapMode`]).
    pub fn set_reap_mode(&self, mode: ReapMode) {
        self.raw.set_reap_mode(mode)
    }

    /// How completions are taken now.
    pub fn reap_mode(&self) -> ReapMode {
        self.raw.reap_mode()
    }

    /// Iocbs submitted and not yet reaped.
    pub fn in_flight(&self) -> usize {
        self.table().entries.len()
    }

    /// `io_submit` of one request. On failure the request comes back with the error: the kernel's
    /// (`EBADF`, `EINVAL`, `EAGAIN` when the context is full, …) or ours for a request that
    /// cannot be valid (an offset beyond `i64::MAX`, too many buffers, a misaligned request with
    /// [`Iocb::check_alignment`]).
    #[doc(alias = "io_submit")]
    pub fn submit(&self, req: Iocb<B>) -> Result<RequestId, SubmitError<Iocb<B>>> {
        if let Err(e) = validate(&req) {
            return Err(SubmitError::new(e, req));
        }
        let (id, ptr) = self.insert(req);
        // SAFETY: the iocb and everything it points at (the request's buffers, its iovec array)
        // are owned by the table entry, which is removed only when the completion is reaped or
        // below if submission fails; dropping the context first waits for the kernel to finish
        // with every request (io_destroy).
        match unsafe { self.raw.submit(&[ptr]) } {
            Ok(1) => Ok(id),
            Ok(_) => {
                let req = self.remove(id.key);
                Err(SubmitError::new(io::Error::other("io_submit took none of 1 request"), req))
            }
            Err(e) => Err(SubmitError::new(e, self.remove(id.key))),
        }
    }

    /// `io_submit` of a batch: submits requests from the front of `reqs` in one system call, and
    /// removes from `reqs` the ones the kernel took, returning their ids in order. Those not
    /// taken stay in `reqs`, untouched. An error means none was taken: the first request was
    /// refused (and is still first in `reqs`).
    #[doc(alias = "io_submit")]
    pub fn submit_batch(&self, reqs: &mut Vec<Iocb<B>>) -> io::Result<Vec<RequestId>> {
        let valid = reqs.iter().take_while(|r| validate(r).is_ok()).count();
        if valid == 0 {
            return match reqs.first() {
                Some(first) => Err(validate(first).unwrap_err()),
                None => Ok(Vec::new()),
            };
        }
        let mut ids = Vec::with_capacity(valid);
        let mut ptrs = Vec::with_capacity(valid);
        for req in reqs.drain(..valid) {
            let (id, ptr) = self.insert(req);
            ids.push(id);
            ptrs.push(ptr);
        }
        // SAFETY: as in `submit`: every iocb and buffer is owned by its table entry until the
        // completion is reaped, and the entries of requests not taken are removed below.
        let result = unsafe { self.raw.submit(&ptrs) };
        let taken = *result.as_ref().unwrap_or(&0);
        if taken < ids.len() {
            let back: Vec<_> = ids[taken..].iter().map(|id| self.remove(id.key)).collect();
            reqs.splice(0..0, back);
            ids.truncate(taken);
        }
        match result {
            Err(e) => Err(e),
            Ok(_) => Ok(ids),
        }
    }

    /// Submits every request, waiting for room when the context is full: on `EAGAIN` or a
    /// partial submission it reaps completions (running their callbacks; others wait for
    /// [`get_events`](Self::get_events)) and tries again, until `timeout` passes. On error, the
    /// requests not submitted come back with it; those submitted complete as usual.
    pub fn submit_all(
        &self,
        reqs: impl IntoIterator<Item = Iocb<B>>,
        timeout: Duration,
    ) -> Result<Vec<RequestId>, SubmitError<Vec<Iocb<B>>>> {
        let deadline = crate::deadline::deadline(Some(timeout));
        let mut pending: Vec<Iocb<B>> = reqs.into_iter().collect();
        let mut ids = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            match self.submit_batch(&mut pending) {
                Ok(mut got) => ids.append(&mut got),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    let left = crate::deadline::left(deadline);
                    if left == Some(Duration::ZERO) {
                        return Err(SubmitError::new(e, pending));
                    }
                    if let Err(e) = self.run(1, left) {
                        if e.kind() != io::ErrorKind::Interrupted {
                            return Err(SubmitError::new(e, pending));
                        }
                    }
                }
                Err(e) => return Err(SubmitError::new(e, pending)),
            }
        }
        Ok(ids)
    }

    /// `io_getevents`: waits until at least `min_nr` completions are available or `timeout`
    /// passes (`None`: no limit; zero: do not wait) and returns up to `max_nr` of them. Fewer
    /// than `min_nr` means the timeout passed.
    ///
    /// Iocbs submitted with a callback ([`Iocb::on_complete`]) have it called here, as
    /// `io_queue_run` would, and are not returned or counted.
    ///
    /// A signal while waiting gives `ErrorKind::Interrupted` (`EINTR`) if nothing was taken yet;
    /// completions already taken are returned, never dropped.
    #[doc(alias = "io_getevents")]
    pub fn get_events(
        &self,
        min_nr: usize,
        max_nr: usize,
        timeout: Option<Duration>,
    ) -> io::Result<Vec<Completion<B>>> {
        self.pget_events(min_nr, max_nr, timeout, None)
    }

    /// `io_pgetevents`: [`get_events`](Self::get_events) with `sigmask` installed atomically for
    /// the wait.
    #[doc(alias = "io_pgetevents")]
    pub fn pget_events(
        &self,
        min_nr: usize,
        max_nr: usize,
        timeout: Option<Duration>,
        sigmask: Option<&libc::sigset_t>,
    ) -> io::Result<Vec<Completion<B>>> {
        let mut out = Vec::new();
        self.pget_events_into(min_nr, max_nr, timeout, sigmask, &mut out)?;
        Ok(out)
    }

    /// [`get_events`](Self::get_events) appending to `out`, so a reaping loop can reuse one
    /// vector; returns how many were appended.
    pub fn get_events_into(
        &self,
        min_nr: usize,
        max_nr: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion<B>>,
    ) -> io::Result<usize> {
        self.pget_events_into(min_nr, max_nr, timeout, None, out)
    }

    /// [`pget_events`](Self::pget_events) appending to `out`; returns how many were appended.
    pub fn pget_events_into(
        &self,
        min_nr: usize,
        max_nr: usize,
        timeout: Option<Duration>,
        sigmask: Option<&libc::sigset_t>,
        out: &mut Vec<Completion<B>>,
    ) -> io::Result<usize> {
        let base = out.len();
        let min_nr = min_nr.min(max_nr);
        let deadline = crate::deadline::deadline(timeout);
        let got = |out: &Vec<Completion<B>>| out.len() - base;
        self.take_ready(out, base + max_nr);
        while got(out) < max_nr {
            let need = min_nr.saturating_sub(got(out));
            // With enough in hand, only sweep up what is already there.
            let wait =
                if need == 0 { Some(Duration::ZERO) } else { crate::deadline::left(deadline) };
            let max = (max_nr - got(out)).min(REAP_CHUNK);
            let result = self.reap(need.min(max), max, wait, sigmask);
            self.take_ready(out, base + max_nr);
            match result {
                Err(e) if got(out) == 0 => return Err(e),
                Err(_) => break,
                // Done, timed out, or all reaped went to callbacks and there is time left.
                Ok(n)
                    if got(out) >= min_nr || n < need.min(max) || wait == Some(Duration::ZERO) =>
                {
                    break
                }
                Ok(_) => {}
            }
        }
        Ok(got(out))
    }

    /// `io_queue_run`, waiting: reaps until at least `min_nr` completions were taken or `timeout`
    /// passes, calling each request's callback; completions without one are kept for
    /// [`get_events`](Self::get_events). Returns how many were taken. `run(0, Some(ZERO))`
    /// handles what is ready without waiting, as `io_queue_run` does.
    #[doc(alias = "io_queue_run")]
    pub fn run(&self, min_nr: usize, timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = crate::deadline::deadline(timeout);
        let mut total = 0;
        loop {
            let need = min_nr.saturating_sub(total);
            let wait =
                if need == 0 { Some(Duration::ZERO) } else { crate::deadline::left(deadline) };
            match self.reap(need, REAP_CHUNK, wait, None) {
                Err(e) if total == 0 => return Err(e),
                Err(_) => return Ok(total),
                Ok(n) => {
                    total += n;
                    // Stop when the kernel had less than a chunk and we have enough, or when the
                    // wait timed out.
                    if (n < REAP_CHUNK && total >= min_nr) || n < need.min(REAP_CHUNK) {
                        return Ok(total);
                    }
                }
            }
        }
    }

    /// `io_cancel`: asks the kernel to cancel a request in flight.
    ///
    /// On current kernels only poll requests can be cancelled; file I/O gives `EINVAL`
    /// (`ErrorKind::InvalidInput`), as does a request that is not in flight. A successful
    /// cancellation still completes through [`get_events`](Self::get_events) (or the request's
    /// callback), exactly once.
    #[doc(alias = "io_cancel")]
    pub fn cancel(&self, id: RequestId) -> io::Result<CancelStatus> {
        let mut table = self.table();
        let ptr = match table.entries.get(id.key) {
            Some(e) if e.seq == id.seq => e.iocb_ptr(),
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        // SAFETY: the iocb is owned by the entry, which cannot be reaped and freed while we hold
        // the table lock; it is the address the request was submitted from.
        match unsafe { self.raw.cancel(ptr) }? {
            None => Ok(CancelStatus::InProgress),
            Some(event) => {
                // An old kernel handed the completion back here instead of through the ring.
                let done = finish(&mut table, &event);
                drop(table);
                if let Some((completion, callback)) = done {
                    match callback {
                        Some(cb) => self.invoke(VecDeque::from([(completion, cb)])),
                        None => self.ready_queue().push_back(completion),
                    }
                }
                Ok(CancelStatus::Completed)
            }
        }
    }

    /// Takes up to `max` events from the kernel, waiting for `min` until `timeout`, and sorts
    /// them: callbacks are run, other completions join the ready queue. Returns how many.
    fn reap(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        sigmask: Option<&libc::sigset_t>,
    ) -> io::Result<usize> {
        self.run_deferred();
        let mut events = [io_event::default(); REAP_CHUNK];
        let max = max.clamp(1, REAP_CHUNK);
        debug_assert!(min <= max);
        let n = self.raw.pget_events(min.min(max), &mut events[..max], timeout, sigmask)?;
        if n == 0 {
            return Ok(0);
        }
        let mut with_callback = VecDeque::new();
        {
            let mut table = self.table();
            let mut ready = self.ready_queue();
            for event in &events[..n] {
                match finish(&mut table, event) {
                    Some((c, Some(cb))) => with_callback.push_back((c, cb)),
                    Some((c, None)) => ready.push_back(c),
                    // Not one of ours: nothing owns it and nothing waits for it.
                    None => debug_assert!(false, "completion of an unknown request: {event:?}"),
                }
            }
        }
        self.invoke(with_callback);
        Ok(n)
    }

    /// Runs callbacks in order. If one panics, the rest are kept and run by the next reap.
    fn invoke(&self, list: VecDeque<(Completion<B>, Callback<B>)>) {
        struct Rest<'a, B: Send + 'static> {
            ctx: &'a Context<B>,
            list: VecDeque<(Completion<B>, Callback<B>)>,
        }
        impl<B: Send + 'static> Drop for Rest<'_, B> {
            fn drop(&mut self) {
                if !self.list.is_empty() {
                    lock(&self.ctx.deferred).extend(self.list.drain(..));
                }
            }
        }
        let mut rest = Rest { ctx: self, list };
        while let Some((completion, callback)) = rest.list.pop_front() {
            callback(self, completion);
        }
    }

    fn run_deferred(&self) {
        let list = std::mem::take(&mut *lock(&self.deferred));
        if !list.is_empty() {
            self.invoke(list);
        }
    }

    fn take_ready(&self, out: &mut Vec<Completion<B>>, max: usize) {
        let mut ready = self.ready_queue();
        let n = ready.len().min(max.saturating_sub(out.len()));
        out.extend(ready.drain(..n));
    }

    /// Puts a request in the table and builds its iocb there; returns its id and iocb address.
    fn insert(&self, req: Iocb<B>) -> (RequestId, *mut iocb) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (key, ptr) = self.table().insert(req, seq);
        (RequestId { key, seq }, ptr)
    }

    /// Takes back a request the kernel did not take.
    fn remove(&self, key: usize) -> Iocb<B> {
        self.table().take(key).0
    }

    fn table(&self) -> MutexGuard<'_, Table<B>> {
        lock(&self.table)
    }

    fn ready_queue(&self) -> MutexGuard<'_, VecDeque<Completion<B>>> {
        lock(&self.ready)
    }
}

impl<B> Drop for Context<B> {
    fn drop(&mut self) {
        // io_destroy waits until the kernel is done with every request; then the buffers in the
        // table may go. If it fails, the kernel might still use them: leak them instead.
        if self.raw.destroy_in_place().is_err() {
            let table = self.table.get_mut().unwrap_or_else(PoisonError::into_inner);
            std::mem::forget(std::mem::take(&mut table.entries));
        }
    }
}

impl<B> fmt::Debug for Context<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &format_args!("{:#x}", self.raw.id()))
            .field("reap_mode", &self.raw.reap_mode())
            .field("in_flight", &lock(&self.table).entries.len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks what the kernel would accept but cannot be meant, or what the caller asked us to
/// check (alignment).
fn validate<B>(req: &Iocb<B>) -> io::Result<()> {
    let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    if req.offset > i64::MAX as u64 {
        return invalid(format!(
            "{}: offset {} is beyond the largest file offset",
            req.op.name(),
            req.offset
        ));
    }
    if req.iovecs.len() > IOV_MAX {
        return invalid(format!(
            "{}: {} buffers, more than IOV_MAX ({IOV_MAX})",
            req.op.name(),
            req.iovecs.len()
        ));
    }
    if let Some(align) = req.check {
        match req.op {
            Op::Pread | Op::Pwrite => {
                align.check(req.addr as usize, req.len as usize, req.offset)?
            }
            Op::Preadv | Op::Pwritev => {
                for v in req.iovecs.iter() {
                    align.check(v.0.iov_base as usize, v.0.iov_len, req.offset)?;
                }
            }
            Op::Fsync | Op::Fdsync | Op::Poll(_) => {}
        }
    }
    Ok(())
}

fn build_iocb<B>(req: &Iocb<B>, data: u64) -> iocb {
    let (buf, nbytes) = match req.op {
        Op::Pread | Op::Pwrite => (req.addr, req.len),
        Op::Preadv | Op::Pwritev => (req.iovecs.as_ptr() as u64, req.iovecs.len() as u64),
        Op::Fsync | Op::Fdsync => (0, 0),
        Op::Poll(events) => (u64::from(events.bits()), 0),
    };
    let mut cb = iocb::rw(req.op.opcode(), req.fd, buf, nbytes, req.offset as i64);
    cb.aio_data = data;
    cb.aio_rw_flags = req.rw_flags.bits();
    if let Some(prio) = req.ioprio {
        cb.aio_flags |= sys::IOCB_FLAG_IOPRIO;
        cb.aio_reqprio = prio.raw() as i16;
    }
    if let Some(fd) = req.resfd {
        cb = cb.with_resfd(fd);
    }
    cb
}

/// Turns a kernel event into the completion of its table entry, recording how much a read
/// filled. `None` if the event is not for a request in the table.
fn finish<B>(
    table: &mut Table<B>,
    event: &io_event,
) -> Option<(Completion<B>, Option<Callback<B>>)> {
    let key = usize::try_from(event.data).ok()?;
    if table.entries.get(key)?.iocb_ptr() as u64 != event.obj {
        return None;
    }
    let (mut req, seq) = table.take(key);
    if let (Some(set_init), true) = (req.set_init, event.res > 0) {
        let mut left = event.res as usize;
        let mut record = |buf: &mut B, room: usize| {
            let filled = left.min(room);
            left -= filled;
            // SAFETY: the kernel reported `event.res` bytes read into the request's buffers in
            // order; this buffer's share, `filled`, is at most its length given to the kernel.
            unsafe { set_init(buf, filled) };
        };
        match &mut req.bufs {
            Bufs::One(buf) => record(buf, req.len as usize),
            Bufs::Many(bufs) => {
                for (buf, v) in bufs.iter_mut().zip(req.iovecs.iter()) {
                    record(buf, v.0.iov_len);
                }
            }
            Bufs::None => {}
        }
    }
    let completion = Completion {
        id: RequestId { key, seq },
        op: req.op,
        user_data: req.user_data,
        res: event.res,
        res2: event.res2,
        bufs: std::mem::replace(&mut req.bufs, Bufs::None),
    };
    Some((completion, req.callback.take()))
}
