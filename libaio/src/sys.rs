//! The native AIO system calls in their raw C form.
//!
//! [`aio::sys::aio`] has one safe-typed wrapper per system call (slices, `Duration`s,
//! `io::Result`). A C ABI needs the other form: the caller's pointers go to the kernel as they
//! are — the kernel checks user pointers and answers `EFAULT`, where building a slice or reading
//! a `timespec` here would crash or be undefined behaviour on bad input — and the result comes
//! back as the kernel gave it. So these functions take raw pointers and `c_long` counts, return
//! the kernel's value or `-errno`, and leave `errno` as they found it, as the C libaio does.
//!
//! They are `unsafe` only because the kernel may write through the pointers they pass: each
//! says what it writes.

use libc::{c_long, c_void, timespec};

use aio::sys::{aio_context_t, io_event, iocb, KERNEL_SIGSET_SIZE, SYS_IO_PGETEVENTS};

/// The kernel's `struct __aio_sigset` as `io_pgetevents` reads it. Unlike
/// [`aio::sys::aio_sigset`], the mask pointer may be null or bad: the kernel checks it.
#[repr(C)]
struct SigsetArg {
    sigmask: *const c_void,
    sigsetsize: usize,
}

/// Runs `f` (one `syscall(2)`), turning its `-1`/`errno` into `-errno` and restoring the
/// caller's `errno`.
#[inline]
fn syscall_result(f: impl FnOnce() -> c_long) -> c_long {
    // SAFETY: __errno_location returns the calling thread's errno slot, valid for the thread's
    // lifetime.
    let slot = unsafe { libc::__errno_location() };
    // SAFETY: as above, a valid aligned int.
    let saved = unsafe { *slot };
    let ret = f();
    if ret < 0 {
        // SAFETY: as above.
        let err = unsafe { *slot };
        // SAFETY: as above.
        unsafe { *slot = saved };
        -c_long::from(err)
    } else {
        ret
    }
}

/// `io_setup(nr_events, ctxp)`. The kernel reads `*ctxp` (it must be 0) and writes the new
/// context's id there.
///
/// # Safety
///
/// If `ctxp` points into this process's memory, the kernel writes 8 bytes there on success.
pub(crate) unsafe fn io_setup(nr_events: libc::c_int, ctxp: *mut aio_context_t) -> c_long {
    syscall_result(|| {
        // SAFETY: the kernel checks `ctxp` and writes only an aio_context_t there; the caller
        // accepts that write.
        unsafe { libc::syscall(libc::SYS_io_setup, c_long::from(nr_events), ctxp) }
    })
}

/// `io_destroy(ctx)`: waits for the context's requests, then unmaps its ring.
pub(crate) fn io_destroy(ctx: aio_context_t) -> c_long {
    syscall_result(|| {
        // SAFETY: io_destroy takes no pointer; an unknown `ctx` gives EINVAL.
        unsafe { libc::syscall(libc::SYS_io_destroy, ctx) }
    })
}

/// `io_submit(ctx, nr, iocbpp)`. The kernel reads the pointer array and the iocbs, writes each
/// accepted iocb's `aio_key`, and from then on reads and writes the memory the requests name.
///
/// # Safety
///
/// The caller's contract for `io_submit(2)`: every buffer a request names stays valid until its
/// completion is reaped or the context destroyed.
pub(crate) unsafe fn io_submit(ctx: aio_context_t, nr: c_long, iocbpp: *mut *mut iocb) -> c_long {
    syscall_result(|| {
        // SAFETY: forwarded from the caller; the kernel checks every pointer it reads.
        unsafe { libc::syscall(libc::SYS_io_submit, ctx, nr, iocbpp) }
    })
}

/// `io_cancel(ctx, iocb, result)`. Current kernels do not write `result` (the completion goes
/// to the ring); old ones filled it.
///
/// # Safety
///
/// `result`, if it points into this process's memory, may receive one `io_event`.
pub(crate) unsafe fn io_cancel(
    ctx: aio_context_t,
    iocb: *mut iocb,
    result: *mut io_event,
) -> c_long {
    syscall_result(|| {
        // SAFETY: the kernel checks both pointers; the caller accepts the write to `result`.
        unsafe { libc::syscall(libc::SYS_io_cancel, ctx, iocb, result) }
    })
}

/// `io_getevents(ctx, min_nr, nr, events, timeout)`. The kernel reads `*timeout` and writes up
/// to `nr` events at `events`.
///
/// # Safety
///
/// `events`, if it points into this process's memory, may receive up to `nr` events.
pub(crate) unsafe fn io_getevents(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
) -> c_long {
    syscall_result(|| {
        // SAFETY: the kernel checks the pointers; the caller accepts the writes to `events`.
        unsafe { libc::syscall(libc::SYS_io_getevents, ctx, min_nr, nr, events, timeout) }
    })
}

/// `io_pgetevents(ctx, min_nr, nr, events, timeout, {sigmask, 8})`: [`io_getevents`] with the
/// signal mask `sigmask` (null: unchanged) installed atomically for the wait.
///
/// # Safety
///
/// As for [`io_getevents`].
pub(crate) unsafe fn io_pgetevents(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
    sigmask: *const libc::sigset_t,
) -> c_long {
    let sig = SigsetArg { sigmask: sigmask.cast(), sigsetsize: KERNEL_SIGSET_SIZE };
    syscall_result(|| {
        // SAFETY: `sig` lives across the call; the kernel checks every pointer, including the
        // mask inside `sig`; the caller accepts the writes to `events`.
        unsafe {
            libc::syscall(
                SYS_IO_PGETEVENTS,
                ctx,
                min_nr,
                nr,
                events,
                timeout,
                &sig as *const SigsetArg,
            )
        }
    })
}
