//! The six native AIO system calls, one function each. Nothing else in the project issues them.
//!
//! Each returns `io::Result`: the kernel's negated errno becomes an [`io::Error`] carrying it.
//! See io_setup(2), io_destroy(2), io_submit(2), io_cancel(2), io_getevents(2).

use std::io;
use std::time::Duration;

use super::abi::{
    aio_context_t, aio_sigset, io_event, iocb, KERNEL_SIGSET_SIZE, SYS_IO_PGETEVENTS,
};

/// Turns a raw `syscall(2)` return into `io::Result`.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A `Duration` as the kernel's `timespec`, saturating at the largest representable value.
pub fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos().into(),
    }
}

/// `io_setup(nr_events, &ctx)`: creates a context able to hold at least `nr_events` requests.
///
/// `EAGAIN` means the system-wide limit in `/proc/sys/fs/aio-max-nr` would be exceeded.
pub fn io_setup(nr_events: u32) -> io::Result<aio_context_t> {
    let mut ctx: aio_context_t = 0;
    // SAFETY: `ctx` is a valid, writable `aio_context_t` that the kernel requires to be zero on
    // entry; the kernel writes the new context's address into it.
    cvt(unsafe { libc::syscall(libc::SYS_io_setup, nr_events, &mut ctx as *mut aio_context_t) })?;
    Ok(ctx)
}

/// `io_destroy(ctx)`: cancels what can be cancelled, waits for every request of the context to
/// complete, and unmaps its ring. After it returns, the kernel no longer touches any buffer of
/// a request submitted to `ctx`.
pub fn io_destroy(ctx: aio_context_t) -> io::Result<()> {
    // SAFETY: io_destroy takes no pointers; an unknown `ctx` gives EINVAL.
    cvt(unsafe { libc::syscall(libc::SYS_io_destroy, ctx) }).map(drop)
}

/// `io_submit(ctx, nr, iocbpp)`: queues the requests, returning how many the kernel took (the
/// first ones, in order). An error means the first request was refused and none was taken.
///
/// # Safety
///
/// Every pointer in `iocbs` must point at a valid, writable `iocb` (the kernel writes its
/// `aio_key`). Every buffer or `iovec` array an iocb names must stay valid — and, for reads,
/// unaliased — until that request's completion has been reaped or the context destroyed; an
/// eventfd it names must stay open until then.
pub unsafe fn io_submit(ctx: aio_context_t, iocbs: &[*mut iocb]) -> io::Result<usize> {
    // SAFETY: the caller guarantees the iocbs and what they point at; `iocbs` is a live slice of
    // `iocbs.len()` pointers.
    let n = cvt(unsafe {
        libc::syscall(libc::SYS_io_submit, ctx, iocbs.len() as libc::c_long, iocbs.as_ptr())
    })?;
    Ok(n as usize)
}

/// `io_cancel(ctx, iocb, result)`: asks the kernel to cancel the request submitted at the address
/// `iocb`.
///
/// On current kernels only cancellable requests (poll) can be cancelled: success is reported as
/// `EINPROGRESS` and the completion arrives through the ring as usual. `EINVAL` means the request
/// cannot be cancelled or is not in flight. Old kernels returned 0 and filled `result`.
///
/// # Safety
///
/// `iocb` must point at a readable `iocb`, the same address the request was submitted from.
pub unsafe fn io_cancel(
    ctx: aio_context_t,
    iocb: *const iocb,
    result: &mut io_event,
) -> io::Result<()> {
    // SAFETY: the caller guarantees `iocb` is readable; `result` is a valid, writable io_event.
    cvt(unsafe { libc::syscall(libc::SYS_io_cancel, ctx, iocb, result as *mut io_event) }).map(drop)
}

/// `io_getevents(ctx, min_nr, events.len(), events, timeout)`: waits until at least `min_nr`
/// completions are available or `timeout` passes (`None`: no limit; zero: do not wait), and
/// moves up to `events.len()` of them into `events`. Returns how many it moved. A signal while
/// waiting with nothing moved gives `EINTR`.
pub fn io_getevents(
    ctx: aio_context_t,
    min_nr: usize,
    events: &mut [io_event],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let ts = timeout.map(timespec);
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `events` is a writable array of `events.len()` io_events; `ts_ptr` is null or points
    // at a live timespec.
    let n = cvt(unsafe {
        libc::syscall(
            libc::SYS_io_getevents,
            ctx,
            min_nr as libc::c_long,
            events.len() as libc::c_long,
            events.as_mut_ptr(),
            ts_ptr,
        )
    })?;
    Ok(n as usize)
}

/// `io_pgetevents`: [`io_getevents`] with `sigmask` applied atomically while waiting, as
/// `ppoll(2)` does for `poll(2)`. `None` leaves the mask unchanged.
pub fn io_pgetevents(
    ctx: aio_context_t,
    min_nr: usize,
    events: &mut [io_event],
    timeout: Option<Duration>,
    sigmask: Option<&libc::sigset_t>,
) -> io::Result<usize> {
    let ts = timeout.map(timespec);
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    let sig = sigmask.map(|m| aio_sigset {
        sigmask: m as *const libc::sigset_t,
        sigsetsize: KERNEL_SIGSET_SIZE,
    });
    let sig_ptr = sig.as_ref().map_or(std::ptr::null(), |s| s as *const aio_sigset);
    // SAFETY: as for io_getevents; `sig_ptr` is null or points at a live `__aio_sigset` whose mask
    // pointer refers to a live sigset_t (at least KERNEL_SIGSET_SIZE bytes).
    let n = cvt(unsafe {
        libc::syscall(
            SYS_IO_PGETEVENTS,
            ctx,
            min_nr as libc::c_long,
            events.len() as libc::c_long,
            events.as_mut_ptr(),
            ts_ptr,
            sig_ptr,
        )
    })?;
    Ok(n as usize)
}
