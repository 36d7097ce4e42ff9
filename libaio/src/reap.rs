//! `io_getevents` and `io_pgetevents`: from the ring in user space when possible, from the
//! kernel otherwise, with the kernel's semantics either way.
//!
//! The order of the checks follows the C libaio, so the same calls get the same answers:
//!
//! 1. libaio's own shortcut, before any argument check: for a context with a valid ring, a
//!    zero timeout and an empty ring return 0 at once, with no system call (even for arguments
//!    the kernel would refuse).
//! 2. User-space reaping, only when the kernel would accept the call (`0 <= min_nr <= nr`, an
//!    `events` array and a timeout this library may touch, see [`crate::ptr`]), when no signal
//!    mask is to be applied (`io_pgetevents` with a mask always enters the kernel: the mask must
//!    be in force while a pending signal can be delivered, as the kernel does even when events
//!    are ready), and when no other thread is inside the system call on this context (see
//!    [`crate::registry`]). Up to `nr` completions are taken from the ring. With at least
//!    `min_nr` of them, or a zero timeout, that is the answer.
//! 3. Otherwise the system call, for what is still missing: `min_nr - taken` more, up to
//!    `nr - taken`, into the rest of the array, with the caller's timeout. If it fails (a signal,
//!    `EINTR`) after completions were taken from the ring, those are returned: a completion
//!    taken is never dropped.
//!
//! So the call returns at least `min_nr` events unless the timeout passes or a signal arrives,
//! and at most `nr`, as the kernel's does.

use libc::{c_long, timespec};

use aio::sys::{aio_context_t, io_event};

use crate::ptr::plausible;
use crate::registry::{self, CtxState};
use crate::sys;

/// What the caller's timeout pointer says, as far as this library may look.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Timeout {
    /// Null: wait as long as needed.
    Forever,
    /// `{0, 0}`: do not wait.
    Zero,
    /// Any other value (negative ones included: the kernel treats them as already expired).
    Finite,
    /// A pointer this library must not read: only the kernel may look at it.
    Unreadable,
}

/// Reads the caller's timeout if [`plausible`].
///
/// # Safety
///
/// A plausible non-null `timeout` must point at a readable `timespec` (the C API's contract;
/// libaio reads it too).
unsafe fn classify(timeout: *const timespec) -> Timeout {
    if timeout.is_null() {
        return Timeout::Forever;
    }
    if !plausible(timeout, std::mem::size_of::<timespec>(), std::mem::align_of::<timespec>()) {
        return Timeout::Unreadable;
    }
    // SAFETY: plausible, aligned, and readable by the caller's contract.
    let ts = unsafe { timeout.read() };
    if ts.tv_sec == 0 && ts.tv_nsec == 0 {
        Timeout::Zero
    } else {
        Timeout::Finite
    }
}

/// The system call: `io_pgetevents` when `sigmask` is `Some` (whose pointer may be null), else
/// `io_getevents`. Counted in the context's state, if it has one, while it runs.
///
/// # Safety
///
/// As for [`sys::io_getevents`].
unsafe fn syscall(
    state: Option<&CtxState>,
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
    sigmask: Option<*const libc::sigset_t>,
) -> c_long {
    let _counted = state.map(CtxState::enter_syscall);
    match sigmask {
        // SAFETY: forwarded from the caller.
        None => unsafe { sys::io_getevents(ctx, min_nr, nr, events, timeout) },
        // SAFETY: forwarded from the caller.
        Some(mask) => unsafe { sys::io_pgetevents(ctx, min_nr, nr, events, timeout, mask) },
    }
}

/// `io_getevents(ctx, min_nr, nr, events, timeout)` (`sigmask: None`) or
/// `io_pgetevents(…, sigmask)` (`Some`, the pointer possibly null), as the C libaio answers
/// them: the number of events stored at `events`, or `-errno`.
///
/// # Safety
///
/// The C API's contract: a plausible `events` pointer has room for `nr` events, a plausible
/// non-null `timeout` is readable. Anything else is passed to the kernel, which checks it.
pub(crate) unsafe fn get_events(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
    sigmask: Option<*const libc::sigset_t>,
) -> c_long {
    if crate::faults::rules().is_some() {
        // SAFETY: forwarded from the caller.
        return unsafe { crate::faults::get_events(ctx, min_nr, nr, events, timeout, sigmask) };
    }
    // SAFETY: forwarded from the caller.
    let got = unsafe { get_events_plain(ctx, min_nr, nr, events, timeout, sigmask) };
    if got > 0 {
        // SAFETY: the first `got` events were just written there.
        unsafe { crate::faults::count_reaped_at(events, got as usize) };
    }
    got
}

/// [`get_events`] without faults: the ring in user space when that is safe, else the system
/// call.
///
/// # Safety
///
/// As for [`get_events`].
unsafe fn get_events_plain(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
    sigmask: Option<*const libc::sigset_t>,
) -> c_long {
    let state = registry::get(ctx);
    // Under valgrind, always the system call: memcheck learns what a read filled from
    // io_getevents, not from the ring read here.
    let ring = |s: &CtxState| s.ring.filter(|_| !aio::sys::valgrind::running());
    let Some((state, ring)) = state.as_deref().and_then(|s| Some((s, ring(s)?))) else {
        // Not ours, or no usable ring: the kernel does everything.
        // SAFETY: forwarded from the caller.
        return unsafe { syscall(state.as_deref(), ctx, min_nr, nr, events, timeout, sigmask) };
    };
    // SAFETY: forwarded from the caller.
    let wait = unsafe { classify(timeout) };
    let event_size = std::mem::size_of::<io_event>();
    let args_valid = 0 <= min_nr
        && min_nr <= nr
        && wait != Timeout::Unreadable
        && (nr == 0
            || usize::try_from(nr)
                .ok()
                .and_then(|n| n.checked_mul(event_size))
                .is_some_and(|len| plausible(events, len, std::mem::align_of::<io_event>())));
    let user_space_ok = args_valid && sigmask.is_none_or(|m| m.is_null());

    let taken = {
        let reaper = state.lock();
        if reaper.dead {
            // io_destroy is under way: the ring may already be unmapped.
            drop(reaper);
            // SAFETY: forwarded from the caller.
            return unsafe { syscall(None, ctx, min_nr, nr, events, timeout, sigmask) };
        }
        // 1. libaio's shortcut.
        if wait == Timeout::Zero && ring.pending() == Some(0) {
            return 0;
        }
        // 2. User-space reaping.
        let pending = ring.pending();
        match pending {
            Some(pending) if user_space_ok && !state.syscall_in_progress() => {
                let want = (nr as usize).min(pending as usize);
                let out: &mut [io_event] = if want == 0 {
                    &mut []
                } else {
                    // SAFETY: `events` is plausible and aligned for `nr >= want` events, which
                    // the caller's contract makes writable; nothing else aliases them here.
                    unsafe { std::slice::from_raw_parts_mut(events, want) }
                };
                // SAFETY: the context is alive (the state is not dead, and io_destroy marks it
                // dead under this lock before unmapping), and holding the lock with no thread in
                // the system call makes this the only reader of the ring.
                unsafe { ring.reap(out) }
            }
            _ => None,
        }
    };
    let Some(taken) = taken else {
        // Arguments for the kernel to judge, a mask to apply, another thread in the kernel, or
        // a ring header out of range.
        // SAFETY: forwarded from the caller.
        return unsafe { syscall(Some(state), ctx, min_nr, nr, events, timeout, sigmask) };
    };
    let got = taken as c_long;
    if got >= min_nr || wait == Timeout::Zero {
        return got;
    }
    // 3. Wait in the kernel for the rest.
    // SAFETY: `events` has room for `nr` events and `got < min_nr <= nr`, so the rest of the
    // array starts inside it.
    let rest = unsafe { events.add(taken) };
    // SAFETY: forwarded from the caller, for the rest of the array.
    let more = unsafe { syscall(Some(state), ctx, min_nr - got, nr - got, rest, timeout, sigmask) };
    if more < 0 {
        if got > 0 {
            got
        } else {
            more
        }
    } else {
        got + more
    }
}
