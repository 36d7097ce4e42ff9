//! Signals a program handles itself: blocking some and waiting for them in one thread, and
//! removing temporary files when a signal ends the process.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value of this plain C struct; sigemptyset then
    // makes it the empty set.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t; sigaddset with an invalid signal number
    // fails with EINVAL and changes nothing.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// `pthread_sigmask(SIG_BLOCK)`: blocks `signals` in this thread (and in the threads it starts
/// later, which inherit its mask), so that one thread can wait for them with [`wait`].
#[doc(alias = "pthread_sigmask")]
pub fn block(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: `set` is an initialized sigset the call only reads; the old mask is not asked for.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// `sigwait`: waits for one of `signals` (blocked with [`block`]) and returns its number.
#[doc(alias = "sigwait")]
pub fn wait(signals: &[i32]) -> i32 {
    let set = sigset(signals);
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is initialized and `sig` writable for the call.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            return sig;
        }
    }
}

/// How many paths [`remove_on_signal`] can hold at once.
pub const REMOVE_ON_SIGNAL_SLOTS: usize = 8;

/// The registered paths: NUL-terminated strings from [`remove_on_signal`], or null. A string
/// is freed only by the guard that takes it back out of its slot; a handler that took it first
/// keeps it (the process is ending).
static PATHS: [AtomicPtr<libc::c_char>; REMOVE_ON_SIGNAL_SLOTS] =
    [const { AtomicPtr::new(null_mut()) }; REMOVE_ON_SIGNAL_SLOTS];
static INSTALL: Once = Once::new();

/// A path [`remove_on_signal`] registered; dropping it unregisters the path (the file itself is
/// left alone).
#[derive(Debug)]
pub struct RemoveOnSignal {
    slot: usize,
    ptr: *mut libc::c_char,
}

/// Removes `path` if `SIGINT`, `SIGTERM` or `SIGHUP` ends the process before the returned guard
/// is dropped: for temporary files a program would otherwise leave behind when interrupted.
/// The handler (installed with the first call) unlinks every registered path, then restores
/// the signal's default action and raises it again, so the process ends as the signal asks.
///
/// `None` if the path cannot be registered: [`REMOVE_ON_SIGNAL_SLOTS`] are taken, or the path
/// holds a NUL byte.
pub fn remove_on_signal(path: &Path) -> Option<RemoveOnSignal> {
    INSTALL.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installs a handler that only makes async-signal-safe calls (unlink,
            // signal, raise) and touches only atomics and the strings they point at.
            unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        }
    });
    let ptr = CString::new(path.as_os_str().as_bytes()).ok()?.into_raw();
    for (slot, p) in PATHS.iter().enumerate() {
        if p.compare_exchange(null_mut(), ptr, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return Some(RemoveOnSignal { slot, ptr });
        }
    }
    // SAFETY: `ptr` came from `CString::into_raw` just above and was never shared.
    drop(unsafe { CString::from_raw(ptr) });
    None
}

impl Drop for RemoveOnSignal {
    fn drop(&mut self) {
        // Taken back out of its slot, the string is no handler's: a handler swaps a path out
        // before it reads it, so it either took this one first (then the exchange fails and
        // the string stays, as the process ends) or can no longer see it.
        let taken = PATHS[self.slot].compare_exchange(
            self.ptr,
            null_mut(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        if taken.is_ok() {
            // SAFETY: `ptr` came from `CString::into_raw` in `remove_on_signal`, and the
            // exchange just removed the only other reference to it (its slot).
            drop(unsafe { CString::from_raw(self.ptr) });
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    for p in &PATHS {
        let path = p.swap(null_mut(), Ordering::SeqCst);
        if !path.is_null() {
            // SAFETY: a registered path is a NUL-terminated string, freed only by a guard that
            // takes it out of its slot first (this swap took it, so none will).
            unsafe { libc::unlink(path) };
        }
    }
    // SAFETY: restores the default action and raises the signal again, so the process ends as
    // the signal asks (both calls are async-signal-safe).
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_take_and_free_slots() {
        let dir = std::env::temp_dir();
        let guards: Vec<_> = (0..REMOVE_ON_SIGNAL_SLOTS)
            .map_while(|i| remove_on_signal(&dir.join(format!("aio-signal-test-{i}"))))
            .collect();
        // Every slot is taken now (another test of this process holds none).
        assert!(remove_on_signal(&dir.join("aio-signal-test-more")).is_none());
        assert!(remove_on_signal(Path::new("a\0b")).is_none());
        drop(guards);
        let again = remove_on_signal(&dir.join("aio-signal-test-again"));
        assert!(again.is_some());
    }
}
