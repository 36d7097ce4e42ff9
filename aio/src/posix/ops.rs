//! The nine operations of `<aio.h>`, taking the C structures by raw pointer and reporting
//! errors as `Err(`[`Errno`]`)`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::complete::{AfterUnlock, Reaper};
use super::notify::Notify;
use super::runtime::{current, runtime, FORK_STAMP, STATS};
use super::table::{AioOp, List};
#[cfg(doc)]
use super::AIO_MAX;
use super::{Errno, AIO_LISTIO_MAX};
use crate::deadline::deadline;
use crate::driver::CancelOutcome;
use crate::sys::posix::{self as abi, aiocb, sigevent, AiocbFields, AiocbRef};

/// The checks that refuse a request at once: `aio_reqprio` out of range (reads and writes;
/// glibc ignores it for fsync) and a bad `aio_sigevent`. Returns the notification to send.
fn check_request(cb: AiocbRef, f: &AiocbFields, kind: AioOp) -> Result<Notify, Errno> {
    if !matches!(kind, AioOp::Fsync | AioOp::Fdatasync)
        && (f.reqprio < 0 || f.reqprio > abi::AIO_PRIO_DELTA_MAX)
    {
        return Err(Errno::EINVAL);
    }
    Notify::parse(&cb.sigevent())
}

/// Submits one request (`aio_read`, `aio_write`, `aio_fsync`).
fn submit_one(cb: Option<AiocbRef>, kind: AioOp) -> Result<(), Errno> {
    let cb = cb.ok_or(Errno::EINVAL)?;
    let f = cb.fields();
    let engine = runtime()?;
    let notify = match check_request(cb, &f, kind) {
        Ok(n) => n,
        Err(e) => {
            STATS.refused();
            engine.refuse_locked(&engine.state(), cb, e);
            return Err(e);
        }
    };
    if matches!(kind, AioOp::Read | AioOp::Write) && engine.try_now(cb, &f, kind, notify) {
        // Served here; take what the engine finished meanwhile, so a program that only polls
        // between its submissions sees its other requests end without waiting for the helper.
        if engine.driver.in_flight() > 0 {
            engine.poll();
        }
        return Ok(());
    }
    // Submitting as the reaper, when no one else is: it starts the request and takes what is
    // ready in one go.
    let mut reaper = engine.reaper();
    let mut done = AfterUnlock::default();
    let (result, pending) = {
        let mut st = engine.state();
        let r =
            engine.submit_locked(&mut st, cb, &f, kind, notify, None, &mut done, reaper.as_mut());
        // Looked at now, while the aiocb is surely the program's still (a notification
        // delivered below may let it go).
        (r, st.in_flight(cb))
    };
    if result.is_ok() && !done.polled {
        // Not started yet (an fsync after writes, no room, or another thread reaping).
        done.flush = !reaper.as_mut().is_some_and(Reaper::flush_and_poll);
    }
    // Stop reaping before the notifications: a handler they run may call in.
    drop(reaper);
    done.finish_and_wake(engine);
    if result.is_ok() && (pending || notify.is_async()) {
        engine.need_helper(notify.is_async());
    }
    result
}

/// `aio_read`: queues a read of `aio_nbytes` bytes at `aio_offset` into `aio_buf`.
///
/// # Safety
///
/// `cb` must be null or point at a valid `aiocb` that, with its buffer, stays valid and
/// untouched until the request completes (as POSIX requires).
pub unsafe fn aio_read(cb: *mut aiocb) -> Result<(), Errno> {
    // SAFETY: the caller's promise.
    submit_one(unsafe { AiocbRef::new(cb) }, AioOp::Read)
}

/// `aio_write`: queues a write of `aio_buf` at `aio_offset` (at the end, if the descriptor has
/// `O_APPEND`).
///
/// # Safety
///
/// As for [`aio_read`].
pub unsafe fn aio_write(cb: *mut aiocb) -> Result<(), Errno> {
    // SAFETY: the caller's promise.
    submit_one(unsafe { AiocbRef::new(cb) }, AioOp::Write)
}

/// `aio_fsync`: `op` is `O_SYNC` (fsync) or `O_DSYNC` (fdatasync); it covers every write to
/// the descriptor queued before it.
///
/// # Safety
///
/// As for [`aio_read`].
pub unsafe fn aio_fsync(op: i32, cb: *mut aiocb) -> Result<(), Errno> {
    let kind = match op {
        libc::O_SYNC => AioOp::Fsync,
        libc::O_DSYNC => AioOp::Fdatasync,
        _ => return Err(Errno::EINVAL),
    };
    // SAFETY: the caller's promise.
    let cb = unsafe { AiocbRef::new(cb) }.ok_or(Errno::EINVAL)?;
    if !fd_is_open(cb.fildes()) {
        return Err(Errno::EBADF);
    }
    submit_one(Some(cb), kind)
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFL only asks about the descriptor; a closed one gives EBADF.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFL) } != -1
}

/// The status of `cb` as this process sees it: `None` if this library never submitted it here.
/// A request still marked in progress in an aiocb that is not the one submitted (a copy of
/// it) is not a request here either. One submitted by a parent before a `fork` never completes
/// in the child: it reads as cancelled (`ECANCELED`, return value -1), so the child's wait
/// loops end. Async-signal-safe: only reads.
pub(super) fn status_of(cb: AiocbRef) -> Option<(i32, isize)> {
    let status = cb.status()?;
    if status.0 != libc::EINPROGRESS {
        return Some(status);
    }
    if cb.is_copy() {
        return None;
    }
    if cb.stamp() != FORK_STAMP.load(Ordering::Relaxed) {
        return Some((libc::ECANCELED, -1));
    }
    Some(status)
}

/// Lets the engine know a request was seen in progress (see `Runtime::nudge`).
fn nudge() {
    if let Some(rt) = current() {
        rt.nudge();
    }
}

/// `aio_error`: `EINPROGRESS`, 0, or the request's errno; `Err(EINVAL)` for an aiocb never
/// submitted here. Async-signal-safe, as POSIX requires: it reads the status and takes no
/// lock; completions are taken by the threads that wait, or by the helper thread for a
/// program that only polls.
///
/// # Safety
///
/// `cb` must be null or point at a readable `aiocb`.
pub unsafe fn aio_error(cb: *const aiocb) -> Result<i32, Errno> {
    // SAFETY: the caller's promise.
    let cb = unsafe { AiocbRef::new(cb) }.ok_or(Errno::EINVAL)?;
    match status_of(cb) {
        Some((libc::EINPROGRESS, _)) => {
            nudge();
            Ok(libc::EINPROGRESS)
        }
        Some((error, _)) => Ok(error),
        None => Err(Errno::EINVAL),
    }
}

/// `aio_return`: the request's return value (bytes, or -1 with its errno in `aio_error`).
/// `Err(EINPROGRESS)` before it completes, `Err(EINVAL)` for an aiocb never submitted here.
/// Async-signal-safe, as [`aio_error`].
///
/// # Safety
///
/// As for [`aio_error`].
pub unsafe fn aio_return(cb: *mut aiocb) -> Result<isize, Errno> {
    // SAFETY: the caller's promise.
    let cb = unsafe { AiocbRef::new(cb) }.ok_or(Errno::EINVAL)?;
    match status_of(cb) {
        None => Err(Errno::EINVAL),
        Some((libc::EINPROGRESS, _)) => {
            nudge();
            Err(Errno::EINPROGRESS)
        }
        Some((_, ret)) => Ok(ret),
    }
}

/// `aio_suspend`: waits until one of `list` (null entries ignored) has completed, or `timeout`
/// (relative; one too large to reach is none) passes: `Err(EAGAIN)`; a signal: `Err(EINTR)`.
/// Returns at once if one is done.
///
/// # Safety
///
/// Every non-null entry must point at a readable `aiocb`.
pub unsafe fn aio_suspend(list: &[*const aiocb], timeout: Option<Duration>) -> Result<(), Errno> {
    // SAFETY: forwarded from the caller.
    unsafe { suspend(list, || Ok(timeout)) }
}

/// [`aio_suspend`] with the C library's `timespec` (null: none), checked only when there is
/// something to wait for — as glibc does: a bad timeout with a request already done is no
/// error. A negative or malformed one gives `EINVAL`.
///
/// # Safety
///
/// As for [`aio_suspend`]; `timeout` must be null or readable.
pub unsafe fn aio_suspend_timespec(
    list: &[*const aiocb],
    timeout: *const libc::timespec,
) -> Result<(), Errno> {
    let timeout = || {
        if timeout.is_null() {
            return Ok(None);
        }
        // SAFETY: non-null and readable (the caller's promise).
        let ts = unsafe { *timeout };
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Ok(Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)))
    };
    // SAFETY: forwarded from the caller.
    unsafe { suspend(list, timeout) }
}

/// # Safety
///
/// As for [`aio_suspend`].
unsafe fn suspend(
    list: &[*const aiocb],
    timeout: impl FnOnce() -> Result<Option<Duration>, Errno>,
) -> Result<(), Errno> {
    // SAFETY: non-null entries are readable (the caller's promise).
    let entries = || list.iter().filter_map(|&cb| unsafe { AiocbRef::new(cb) });
    // Nothing to wait for (every entry null) counts as done, as in glibc.
    if entries().next().is_none() {
        return Ok(());
    }
    // Done: an entry whose request has completed, or which this library is not running: never
    // submitted here, a copy of one in flight, or the parent's before a fork — waiting for it
    // would never end; glibc does not wait for those either.
    let any_done = || entries().any(|cb| !matches!(status_of(cb), Some((libc::EINPROGRESS, _))));
    if any_done() {
        return Ok(());
    }
    let timeout = timeout()?;
    let engine = runtime()?;
    // Looked at once: a request of ours leaves the table only as it completes.
    if entries().any(|cb| !engine.state().in_flight(cb)) {
        return Ok(());
    }
    engine.wait_until(deadline(timeout), any_done)
}

/// `aio_cancel`: cancels the request of `cb`, or every request on `fd` when `cb` is null.
/// `AIO_CANCELED` if all were cancelled, `AIO_NOTCANCELED` if some are running and cannot be,
/// `AIO_ALLDONE` if none was in flight. `Err(EBADF)` for a closed descriptor, `Err(EINVAL)` if
/// `cb`'s descriptor is not `fd`.
///
/// # Safety
///
/// `cb` must be null or point at a valid `aiocb`.
pub unsafe fn aio_cancel(fd: i32, cb: *mut aiocb) -> Result<i32, Errno> {
    if !fd_is_open(fd) {
        return Err(Errno::EBADF);
    }
    // SAFETY: the caller's promise.
    let cb = unsafe { AiocbRef::new(cb) };
    if cb.is_some_and(|cb| cb.fildes() != fd) {
        return Err(Errno::EINVAL);
    }
    let engine = runtime()?;
    let mut done = AfterUnlock::default();
    // Requests at the driver, to ask it: (key, sequence).
    let mut at_driver: Vec<(usize, u64)> = Vec::new();
    let mut cancelled = false;
    {
        let mut st = engine.state();
        let targets: Vec<usize> = match cb {
            Some(cb) => st.key_of(cb).into_iter().collect(),
            None => st.reqs.iter().filter(|(_, r)| r.fd == fd).map(|(k, _)| k).collect(),
        };
        for key in targets {
            // Held fsyncs and backlogged requests never reached the driver.
            let held = st.fds.get_mut(&fd).and_then(|f| {
                let pos = f.fsyncs.iter().position(|&(_, k)| k == key)?;
                Some(f.fsyncs.remove(pos))
            });
            let backlogged =
                st.backlog.iter().position(|&k| k == key).map(|p| st.backlog.remove(p));
            if held.is_some() || backlogged.is_some() {
                engine.finish_locked(&mut st, key, -i64::from(libc::ECANCELED), &mut done);
                cancelled = true;
                STATS.cancelled(1);
                continue;
            }
            // From now on an ECANCELED completion is this request's end, not a loss to retry.
            st.reqs[key].cancel_requested = true;
            at_driver.push((key, st.reqs[key].seq));
        }
        st.cancelling += 1;
    }
    done.finish_and_wake(engine);
    // Asked without the state lock: the driver may wait in the kernel for its answer, and
    // completions must go on meanwhile.
    let mut running = false;
    let mut settling: Vec<(usize, u64)> = Vec::with_capacity(at_driver.len());
    for (key, seq) in at_driver {
        match engine.driver.cancel(key as u64) {
            Ok(CancelOutcome::Cancelled) => settling.push((key, seq)),
            Ok(CancelOutcome::Running) => {
                running = true;
                // It runs to its end: an ECANCELED from its submitter's exit is a loss to
                // submit again, not this cancellation's doing.
                let mut st = engine.state();
                if let Some(r) = st.reqs.get_mut(key).filter(|r| r.seq == seq) {
                    r.cancel_requested = false;
                }
            }
            // Not found (completing now) or not asked: its completion is coming, and this
            // call waits for it. It stays marked: if that completion is one that would make
            // it run again (ESPIPE, or ECANCELED from its submitter's exit) — nothing moved —
            // it ends cancelled instead, rather than run again unseen by this wait.
            _ => settling.push((key, seq)),
        }
    }
    // Every status this answer speaks for is final when it is given: wait until those
    // completions are processed, however long that takes and whatever signals come (the
    // handlers run; aio_cancel cannot fail with EINTR).
    let gone = |targets: &[(usize, u64)]| {
        let st = engine.state();
        targets.iter().all(|&(k, seq)| st.reqs.get(k).is_none_or(|r| r.seq != seq))
    };
    while !gone(&settling) {
        match engine.wait_until(None, || gone(&settling)) {
            Ok(()) => break,
            Err(_) => continue,
        }
    }
    // What happened to each (one cancelled "in time" may have completed first).
    {
        let mut st = engine.state();
        st.cancelled.retain(|seq| {
            let mine = settling.iter().any(|&(_, s)| s == *seq);
            if mine {
                cancelled = true;
                STATS.cancelled(1);
            }
            !mine
        });
        st.cancelling -= 1;
        if st.cancelling == 0 {
            st.cancelled.clear();
        }
    }
    Ok(if running {
        abi::AIO_NOTCANCELED
    } else if cancelled {
        abi::AIO_CANCELED
    } else {
        abi::AIO_ALLDONE
    })
}

/// `lio_listio`: queues every entry of `list` (null entries and `LIO_NOP` skipped) in one
/// submission, each with its own `aio_sigevent` (as glibc does since 2.4).
///
/// An entry refused at once — a bad opcode, `aio_reqprio` or sigevent — gets `-1` and `EINVAL`
/// in its status; one refused for lack of room (more than [`AIO_MAX`] in flight) gets `EAGAIN`;
/// the others run. `LIO_WAIT` waits for all that run, then fails with `EAGAIN` if some entry
/// could not be queued, with `EIO` if some entry failed (the entries' statuses say which), or
/// with `EINTR` if a signal arrives first (the requests go on). `LIO_NOWAIT` returns at once
/// (`EAGAIN` or `EIO` if some entry was refused) and notifies `sig` when all that run are
/// done. More than [`AIO_LISTIO_MAX`] entries, or a bad mode or `sig`: `EINVAL`, nothing
/// queued.
///
/// # Safety
///
/// Every non-null entry must point at a valid `aiocb` that, with its buffer, stays valid until
/// its request completes; `sig` must be null or readable.
pub unsafe fn lio_listio(
    mode: i32,
    list: &[*mut aiocb],
    sig: *const sigevent,
) -> Result<(), Errno> {
    if mode != abi::LIO_WAIT && mode != abi::LIO_NOWAIT {
        return Err(Errno::EINVAL);
    }
    if list.len() > AIO_LISTIO_MAX {
        return Err(Errno::EINVAL);
    }
    let notify = if mode == abi::LIO_NOWAIT && !sig.is_null() {
        // SAFETY: non-null and readable (the caller's promise).
        Notify::parse(unsafe { &*sig })?
    } else {
        Notify::None
    };
    let engine = runtime()?;
    let mut done = AfterUnlock::default();
    let mut again = false;
    let mut invalid = false;
    let mut refused = false;
    let mut wants_notifier = notify.is_async();
    let mut queued: Vec<AiocbRef> = Vec::with_capacity(list.len());
    let pending;
    {
        let mut st = engine.state();
        let l = st.lists.insert(List { remaining: 1, notify });
        if notify.is_async() {
            st.async_notify += 1;
        }
        // SAFETY: non-null entries are valid (the caller's promise).
        for cb in list.iter().filter_map(|&cb| unsafe { AiocbRef::new(cb) }) {
            let f = cb.fields();
            let kind = match f.lio_opcode {
                abi::LIO_NOP => continue,
                abi::LIO_READ => AioOp::Read,
                abi::LIO_WRITE => AioOp::Write,
                _ => AioOp::Invalid,
            };
            let entry_notify = match check_request(cb, &f, kind) {
                Ok(n) => n,
                Err(e) => {
                    STATS.refused();
                    engine.refuse_locked(&st, cb, e);
                    invalid = true;
                    continue;
                }
            };
            let submitted =
                engine.submit_locked(&mut st, cb, &f, kind, entry_notify, Some(l), &mut done, None);
            match submitted {
                Ok(()) => {
                    queued.push(cb);
                    wants_notifier |= entry_notify.is_async();
                }
                // Its status says EAGAIN.
                Err(Errno::EAGAIN) => again = true,
                // Still in flight from an earlier submission: its status is that request's.
                Err(_) => refused = true,
            }
        }
        engine.list_member_done(&mut st, l, &mut done);
        // Looked at now, while the aiocbs are surely the program's (see `submit_one`).
        pending = queued.iter().any(|&cb| st.in_flight(cb));
    }
    done.flush = !engine.reaper().is_some_and(|mut r| r.flush_and_poll());
    done.finish_and_wake(engine);
    if pending || wants_notifier {
        engine.need_helper(wants_notifier);
    }
    if mode == abi::LIO_NOWAIT {
        return match (again, invalid || refused) {
            (true, _) => Err(Errno::EAGAIN),
            (_, true) => Err(Errno::EIO),
            _ => Ok(()),
        };
    }
    let all_done = || queued.iter().all(|&cb| !matches!(cb.status(), Some((libc::EINPROGRESS, _))));
    engine.wait_until(None, all_done)?;
    if again {
        return Err(Errno::EAGAIN);
    }
    let failed = queued.iter().any(|&cb| matches!(cb.status(), Some((e, _)) if e != 0));
    if failed || invalid || refused {
        Err(Errno::EIO)
    } else {
        Ok(())
    }
}
