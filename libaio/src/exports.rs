//! The entry points of libaio.so.1, each exported at the C libaio's version.
//!
//! | symbol | version | here |
//! | --- | --- | --- |
//! | `io_setup`, `io_destroy`, `io_getevents`, `io_cancel`, `io_queue_wait` | LIBAIO_0.4 (default) | `*_0_4` |
//! | `io_submit`, `io_queue_init`, `io_queue_release`, `io_queue_run` | LIBAIO_0.1 (default) | |
//! | `io_getevents`, `io_cancel`, `io_queue_wait` | LIBAIO_0.1 (compat) | `*_0_1` |
//! | `io_pgetevents` | LIBAIO_0.5 (default) | |
//!
//! Every function returns what the C libaio returns for the same arguments: the kernel's result
//! or `-errno`, `errno` untouched. Pointers are passed to the kernel, which checks them; where
//! the C libaio dereferences a caller pointer itself (and crashes on a bad one), this library
//! first checks it ([`crate::ptr`]) and returns `-EFAULT` (or lets the kernel answer) instead.
//!
//! See io_setup(2), io_destroy(2), io_submit(2), io_cancel(2), io_getevents(2) and
//! io_pgetevents(2); `io_queue_*` are libaio's own (io_queue_init(3), io_queue_run(3)).

use libc::{c_int, c_long, timespec};

use aio::sys::{aio_context_t, io_event, iocb};

use crate::ptr::plausible;
use crate::reap::get_events;
use crate::registry;
use crate::symver::symver;
use crate::sys;

/// `io_callback_t`: `void (*)(io_context_t ctx, struct iocb *iocb, long res, long res2)`,
/// stored by `io_set_callback` in `iocb->data`. "C-unwind": a C++ callback that throws ends at
/// `io_queue_run`'s boundary with an abort instead of undefined behaviour.
type IoCallback = unsafe extern "C-unwind" fn(aio_context_t, *mut iocb, c_long, c_long);

/// The `{0, 0}` timeout `io_queue_run` polls with.
const NO_WAIT: timespec = timespec { tv_sec: 0, tv_nsec: 0 };

/// `int io_setup(int maxevents, io_context_t *ctxp)`: creates a context for `maxevents`
/// requests in flight; `*ctxp` must be 0 on entry.
///
/// # Safety
///
/// `ctxp` is passed to the kernel, which checks it: any value is allowed.
unsafe extern "C" fn io_setup_0_4(maxevents: c_int, ctxp: *mut aio_context_t) -> c_int {
    // SAFETY: the kernel checks `ctxp` and writes only the new context id there.
    let ret = unsafe { sys::io_setup(maxevents, ctxp) };
    crate::faults::stats_at_exit();
    if ret == 0 {
        // SAFETY: the kernel just wrote the id through `ctxp`, so it is readable.
        registry::register(unsafe { ctxp.read_unaligned() });
    }
    ret as c_int
}
symver!(io_setup_0_4 => "io_setup@@LIBAIO_0.4");

/// `int io_destroy(io_context_t ctx)`: waits for the context's requests and frees it.
///
/// # Safety
///
/// None beyond the C caller's: no pointer is taken. Destroying a context while
/// another thread uses it is the caller's race, as with the C libaio.
unsafe extern "C" fn io_destroy_0_4(ctx: aio_context_t) -> c_int {
    registry::unregister(ctx);
    sys::io_destroy(ctx) as c_int
}
symver!(io_destroy_0_4 => "io_destroy@@LIBAIO_0.4");

/// `int io_submit(io_context_t ctx, long nr, struct iocb *ios[])`: queues requests, returning
/// how many were taken (the first ones), or `-errno` if the first was refused.
///
/// # Safety
///
/// `ios` holds `nr` pointers to iocbs (the kernel checks them); every buffer an iocb names
/// stays valid, and untouched if it is read into, until its completion is reaped: the
/// io_submit(2) contract.
unsafe extern "C" fn io_submit(ctx: aio_context_t, nr: c_long, ios: *mut *mut iocb) -> c_int {
    if let Some(rules) = crate::faults::rules() {
        // SAFETY: the C caller's io_submit contract.
        return unsafe { crate::faults::submit(rules, ctx, nr, ios) as c_int };
    }
    // SAFETY: the C caller's io_submit contract; the kernel checks every pointer.
    let ret = unsafe { sys::io_submit(ctx, nr, ios) };
    if ret > 0 {
        // SAFETY: the kernel took the first `ret` iocbs: their pointers are readable.
        unsafe { crate::faults::count_submitted(ios, ret as usize) };
    } else if ret < 0 {
        crate::faults::STATS.refused();
    }
    ret as c_int
}
symver!(io_submit => "io_submit@@LIBAIO_0.1");

/// `int io_cancel(io_context_t ctx, struct iocb *iocb, struct io_event *evt)`: current kernels
/// answer `-EINPROGRESS` when cancellation started (the completion arrives through the ring) and
/// `-EINVAL` when the request cannot be cancelled.
///
/// # Safety
///
/// `iocb` and `evt` are passed to the kernel, which checks them.
unsafe extern "C" fn io_cancel_0_4(
    ctx: aio_context_t,
    iocb: *mut iocb,
    evt: *mut io_event,
) -> c_int {
    // SAFETY: the kernel checks both pointers; `evt` is the caller's to receive an event.
    let ret = unsafe { sys::io_cancel(ctx, iocb, evt) };
    if ret == 0 || ret == -c_long::from(libc::EINPROGRESS) {
        crate::faults::STATS.cancelled(1);
    }
    ret as c_int
}
symver!(io_cancel_0_4 => "io_cancel@@LIBAIO_0.4");

/// LIBAIO_0.1 `int io_cancel(io_context_t ctx, struct iocb *iocb)`: the old two-argument form.
///
/// # Safety
///
/// As for `io_cancel` (LIBAIO_0.4).
unsafe extern "C" fn io_cancel_0_1(ctx: aio_context_t, iocb: *mut iocb) -> c_int {
    let mut event = io_event::default();
    // SAFETY: `event` is a local the kernel may fill; the kernel checks `iocb`.
    unsafe { io_cancel_0_4(ctx, iocb, &mut event) }
}
symver!(io_cancel_0_1 => "io_cancel@LIBAIO_0.1");

/// `int io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
/// struct timespec *timeout)`: see [`crate::reap`].
///
/// # Safety
///
/// A plausible `events` pointer has room for `nr` events, a plausible non-null `timeout` is
/// readable (the C API's contract); anything else goes to the kernel, which checks it.
unsafe extern "C" fn io_getevents_0_4(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
) -> c_int {
    // SAFETY: the C caller's io_getevents contract.
    unsafe { get_events(ctx, min_nr, nr, events, timeout, None) as c_int }
}
symver!(io_getevents_0_4 => "io_getevents@@LIBAIO_0.4");

/// LIBAIO_0.1 `int io_getevents(io_context_t ctx, long nr, struct io_event *events,
/// const struct timespec *timeout)`: the old form, waiting for at least one event.
///
/// # Safety
///
/// As for `io_getevents` (LIBAIO_0.4).
unsafe extern "C" fn io_getevents_0_1(
    ctx: aio_context_t,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
) -> c_int {
    // SAFETY: the C caller's io_getevents contract.
    unsafe { get_events(ctx, 1, nr, events, timeout, None) as c_int }
}
symver!(io_getevents_0_1 => "io_getevents@LIBAIO_0.1");

/// `int io_pgetevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
/// struct timespec *timeout, sigset_t *sigmask)`: `io_getevents` with `sigmask` (unless null)
/// installed atomically for the wait.
///
/// # Safety
///
/// As for `io_getevents`; `sigmask` is null or a `sigset_t` (the kernel checks it).
unsafe extern "C" fn io_pgetevents(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: the C caller's io_pgetevents contract; the kernel checks `sigmask`.
    unsafe { get_events(ctx, min_nr, nr, events, timeout, Some(sigmask)) as c_int }
}
symver!(io_pgetevents => "io_pgetevents@@LIBAIO_0.5");

/// `int io_queue_init(int maxevents, io_context_t *ctxp)`: `io_setup` after zeroing `*ctxp`;
/// `-EINVAL` for `maxevents <= 0`. (The C libaio writes `*ctxp` unchecked and crashes on a bad
/// pointer; here an implausible one gets `-EFAULT`, what `io_setup` answers for it.)
///
/// # Safety
///
/// `ctxp` is a writable `io_context_t` (an implausible pointer gets `-EFAULT`).
unsafe extern "C" fn io_queue_init(maxevents: c_int, ctxp: *mut aio_context_t) -> c_int {
    if maxevents <= 0 {
        return -libc::EINVAL;
    }
    if !plausible(ctxp, std::mem::size_of::<aio_context_t>(), 1) {
        return -libc::EFAULT;
    }
    // SAFETY: plausible, and the caller's contract makes it writable; unaligned is allowed,
    // as the kernel allows it.
    unsafe { ctxp.write_unaligned(0) };
    // SAFETY: as for io_setup.
    unsafe { io_setup_0_4(maxevents, ctxp) }
}
symver!(io_queue_init => "io_queue_init@@LIBAIO_0.1");

/// `int io_queue_release(io_context_t ctx)`: `io_destroy`.
///
/// # Safety
///
/// As for `io_destroy`.
unsafe extern "C" fn io_queue_release(ctx: aio_context_t) -> c_int {
    // SAFETY: io_destroy takes no pointer.
    unsafe { io_destroy_0_4(ctx) }
}
symver!(io_queue_release => "io_queue_release@@LIBAIO_0.1");

/// `int io_queue_run(io_context_t ctx)`: takes completions one at a time without waiting and
/// calls each one's callback, `((io_callback_t)event.data)(ctx, event.obj, event.res,
/// event.res2)`, until none is left. Returns 0, or `-errno` if reaping failed — as the C
/// libaio, which returns the result of its last `io_getevents`, not a count.
///
/// One at a time, like libaio, so a callback may submit, reap or destroy the context. An event
/// without a callback (`data` null) ends the run with `-EFAULT`, where the C libaio calls a null
/// pointer and crashes; that event is consumed.
///
/// # Safety
///
/// Every completion of `ctx` carries, in `data`, a function of type `io_callback_t` stored by
/// `io_set_callback` (or null): this calls it, as the C libaio does.
unsafe extern "C" fn io_queue_run(ctx: aio_context_t) -> c_int {
    loop {
        let mut event = io_event::default();
        // SAFETY: `event` is a writable local for one event; NO_WAIT is a readable timespec.
        let ret = unsafe { get_events(ctx, 0, 1, &mut event, &NO_WAIT, None) };
        if ret != 1 {
            return ret as c_int;
        }
        if event.data == 0 {
            return -libc::EFAULT;
        }
        // SAFETY: `data` is what the caller stored with io_set_callback: a function pointer of
        // type io_callback_t (non-null, checked above), the contract of io_queue_run.
        let callback: IoCallback = unsafe { std::mem::transmute(event.data as usize) };
        // SAFETY: calling the caller's callback with the arguments libaio passes.
        unsafe { callback(ctx, event.obj as *mut iocb, event.res as c_long, event.res2 as c_long) };
    }
}
symver!(io_queue_run => "io_queue_run@@LIBAIO_0.1");

/// `int io_queue_wait(io_context_t ctx, struct timespec *timeout)`: as in the C libaio,
/// `io_getevents(ctx, 0, 0, NULL, timeout)` — it checks the context and the timeout and returns
/// 0 at once; it does not wait.
///
/// # Safety
///
/// `timeout` is null or a readable `timespec`.
unsafe extern "C" fn io_queue_wait_0_4(ctx: aio_context_t, timeout: *const timespec) -> c_int {
    // SAFETY: no events are stored (nr is 0); the timeout is the caller's.
    unsafe { get_events(ctx, 0, 0, std::ptr::null_mut(), timeout, None) as c_int }
}
symver!(io_queue_wait_0_4 => "io_queue_wait@@LIBAIO_0.4");

/// LIBAIO_0.1 `io_queue_wait`: the same.
///
/// # Safety
///
/// As for `io_queue_wait` (LIBAIO_0.4).
unsafe extern "C" fn io_queue_wait_0_1(ctx: aio_context_t, timeout: *const timespec) -> c_int {
    // SAFETY: as above.
    unsafe { io_queue_wait_0_4(ctx, timeout) }
}
symver!(io_queue_wait_0_1 => "io_queue_wait@LIBAIO_0.1");
