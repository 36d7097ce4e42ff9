//! Submission: a request enters the table (`submit_locked`), goes to the driver — or waits
//! behind the writes before it, or for room (`queue_locked`) — and is refused with the errno
//! glibc gives. The inline path (`try_now`) serves a small read or write of cached data in the
//! submitting thread without entering the table at all.

use std::sync::atomic::Ordering;

use super::complete::{AfterUnlock, Reaper, REAP_MAX};
use super::notify::Notify;
use super::ops::status_of;
use super::runtime::{Runtime, FORK_STAMP, STATS};
use super::table::{AioOp, Req, State};
use super::{Errno, AIO_MAX};
use crate::driver::{RawIo, Request};
use crate::flags::{IoClass, IoPriority};
use crate::sys::posix::{self as abi, AiocbFields, AiocbRef};

impl Runtime {
    /// Queues one request (the state lock held), its fields `f` as read from `cb`. With the
    /// reaper's role, starts it at once and processes the completions that are ready (see
    /// `queue_locked`). `Err(EAGAIN)` if there is no room; other failures complete the request
    /// with the error.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn submit_locked(
        &self,
        st: &mut State,
        cb: AiocbRef,
        f: &AiocbFields,
        kind: AioOp,
        notify: Notify,
        list: Option<usize>,
        done: &mut AfterUnlock,
        reaper: Option<&mut Reaper<'_>>,
    ) -> Result<(), Errno> {
        if st.in_flight(cb) {
            STATS.refused();
            return Err(Errno::EINVAL);
        }
        if st.reqs.len() >= AIO_MAX {
            STATS.refused();
            // Not in flight: its status is ours to set (as glibc does).
            cb.set_status(-1, libc::EAGAIN);
            return Err(Errno::EAGAIN);
        }
        st.seq += 1;
        let seq = st.seq;
        let key = st.reqs.insert(Req {
            cb,
            fd: f.fildes,
            kind,
            seq,
            notify,
            list,
            cancel_requested: false,
            stream: false,
        });
        // Ours to write from now until the request completes.
        cb.claim(key, FORK_STAMP.load(Ordering::Relaxed));
        if notify.is_async() {
            st.async_notify += 1;
        }
        if let Some(l) = list {
            st.lists[l].remaining += 1;
        }
        STATS.request(kind.stat_op(), false);
        cb.set_status(0, libc::EINPROGRESS);
        match kind {
            AioOp::Invalid => {
                self.finish_locked(st, key, -i64::from(libc::EINVAL), done);
                return Ok(());
            }
            AioOp::Write => {
                st.fds.entry(f.fildes).or_default().writes.insert(seq);
            }
            AioOp::Fsync | AioOp::Fdatasync => {
                let fd = st.fds.entry(f.fildes).or_default();
                if fd.writes.first().is_some_and(|&w| w < seq) {
                    // Earlier writes are in flight: sync after them.
                    fd.fsyncs.push((seq, key));
                    return Ok(());
                }
            }
            AioOp::Read => {}
        }
        self.queue_locked(st, key, f, done, reaper);
        Ok(())
    }

    /// Hands request `key` (its aiocb's fields `f`) to the driver, or to the backlog if the
    /// driver is full. With the reaper's role, in the same call to the driver it starts the
    /// request and takes the completions that are ready, and processes them: the status of a
    /// read of cached data is final when `aio_read` returns, for one lock and one system call.
    pub(super) fn queue_locked(
        &self,
        st: &mut State,
        key: usize,
        f: &abi::AiocbFields,
        done: &mut AfterUnlock,
        reaper: Option<&mut Reaper<'_>>,
    ) {
        let req = &st.reqs[key];
        if f.fildes < 0 {
            // No descriptor at all: what the kernel would answer, without asking any driver.
            self.finish_locked(st, key, -i64::from(libc::EBADF), done);
            return;
        }
        if matches!(req.kind, AioOp::Read | AioOp::Write) && f.nbytes > abi::MAX_RW_COUNT {
            // Longer than one transfer: the engines would shorten it before the kernel could
            // check the whole range (a bad one would become a valid transfer of its first
            // bytes, past the end of the program's buffer). The kernel's answer for the whole
            // range, as pread and pwrite give it: EFAULT, EINVAL, or go on (and be short).
            if let Err(errno) =
                abi::check_user_range(f.buf as usize, f.nbytes, req.kind == AioOp::Write)
            {
                self.finish_locked(st, key, -i64::from(errno), done);
                return;
            }
        }
        // Without a file position, the offset means nothing (glibc falls back to read and
        // write): 0 is what every engine takes for such a descriptor.
        let offset = if req.stream { 0 } else { f.offset as u64 };
        let ioprio = (f.reqprio > 0).then(|| {
            // A higher aio_reqprio means a lower priority: best-effort levels 5 to 7 (4, the
            // default, is what 0 gets).
            let level = 4 + (f.reqprio * 3 + abi::AIO_PRIO_DELTA_MAX - 1) / abi::AIO_PRIO_DELTA_MAX;
            IoPriority::new(IoClass::BestEffort, level.min(7) as u8)
        });
        let io = |write| RawIo {
            write,
            fd: f.fildes,
            ptr: f.buf.cast(),
            len: f.nbytes,
            offset,
            ioprio,
            user_data: key as u64,
        };
        let queued = match (req.kind, reaper) {
            (AioOp::Read | AioOp::Write, Some(reaper)) => {
                let io = io(req.kind == AioOp::Write);
                let out = reaper.raw_completions();
                out.clear();
                // SAFETY: the program promises the buffer stays valid until the request
                // completes (POSIX: the aiocb and its buffer must not be touched meanwhile).
                let reaped =
                    self.guarded(|| unsafe { self.driver.queue_raw_and_reap(io, REAP_MAX, out) });
                reaped.map(|queued| {
                    done.polled = true;
                    // Starting failed (no resources): flush again once the lock is released.
                    done.flush |= queued.start_error.is_some();
                    self.process_locked(st, out.iter().copied(), done);
                    out.clear();
                })
            }
            (kind, _) => {
                let request = match kind {
                    // SAFETY: as above.
                    AioOp::Read | AioOp::Write => unsafe {
                        io(kind == AioOp::Write).into_request()
                    },
                    AioOp::Fsync => Request::fsync(f.fildes, key as u64),
                    AioOp::Fdatasync => Request::fdatasync(f.fildes, key as u64),
                    AioOp::Invalid => unreachable!("completed at submission"),
                };
                self.guarded(|| self.driver.queue(request)).map_err(|r| r.error)
            }
        };
        match queued {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                st.backlog.push_back(key);
                self.backlogged.store(true, Ordering::Release);
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
                self.finish_locked(st, key, -i64::from(errno), done);
            }
        }
    }

    /// Queues request `key` again (released after the writes before it, waiting for room, or
    /// cancelled by the kernel without running), to be started by the flush after the lock.
    pub(super) fn requeue_locked(&self, st: &mut State, key: usize, done: &mut AfterUnlock) {
        let f = st.reqs[key].cb.fields();
        self.queue_locked(st, key, &f, done, None);
        done.flush = true;
    }

    /// The inline path (see [`Driver::queue_now`]): a small read or write of cached data is
    /// done here, in the submitting thread, without any lock of the engine's — the request
    /// never enters the table. True if it was done (its status is final, its notification
    /// sent); false if it must go the usual way (nothing was changed that it would not redo).
    pub(super) fn try_now(
        &self,
        cb: AiocbRef,
        f: &AiocbFields,
        kind: AioOp,
        notify: Notify,
    ) -> bool {
        if f.fildes < 0 || f.nbytes > abi::MAX_RW_COUNT || f.offset < 0 {
            return false;
        }
        // An aiocb still in flight is refused by the usual way (EINVAL), untouched.
        if matches!(status_of(cb), Some((libc::EINPROGRESS, _))) {
            return false;
        }
        let io = RawIo {
            write: kind == AioOp::Write,
            fd: f.fildes,
            ptr: f.buf.cast(),
            len: f.nbytes,
            offset: f.offset as u64,
            ioprio: None,
            user_data: 0,
        };
        // SAFETY: the program promises the buffer stays valid and untouched until the request
        // completes, which it does within this call if it is served.
        let Some(res) = (unsafe { self.driver.try_now_raw(&io) }) else { return false };
        STATS.request(kind.stat_op(), true);
        STATS.result(res);
        // Ours to write now (it is not in flight).
        cb.set_origin(FORK_STAMP.load(Ordering::Relaxed));
        cb.set_status(res as isize, 0);
        notify.deliver();
        true
    }

    /// Records a refusal in the aiocb (`-1` and the errno, as glibc does), unless it belongs to
    /// a request still in flight.
    pub(super) fn refuse_locked(&self, st: &State, cb: AiocbRef, errno: Errno) {
        if !st.in_flight(cb) {
            cb.set_status(-1, errno.raw());
        }
    }
}
