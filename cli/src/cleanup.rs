//! Temporary files removed when the process is interrupted (`SIGINT`, `SIGTERM`, `SIGHUP`):
//! `aio bench`'s data file and `aio cp`'s half-made copy. The handler unlinks the registered
//! paths, then lets the signal take its usual course (the process ends with that signal).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

/// How many paths can be registered at once.
const SLOTS: usize = 8;

static PATHS: [AtomicPtr<libc::c_char>; SLOTS] = [const { AtomicPtr::new(null_mut()) }; SLOTS];
static INSTALL: Once = Once::new();

/// A registered path; dropping it unregisters the path (the file itself is left alone).
pub struct Registered {
    slot: usize,
    ptr: *mut libc::c_char,
}

/// Removes `path` if a signal ends the process before the returned guard is dropped. `None`
/// if the path cannot be registered (no free slot, or a NUL byte in it).
pub fn remove_on_signal(path: &Path) -> Option<Registered> {
    INSTALL.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installs a handler that only uses async-signal-safe calls (unlink,
            // signal, raise) and atomics.
            unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        }
    });
    let ptr = CString::new(path.as_os_str().as_bytes()).ok()?.into_raw();
    for (slot, p) in PATHS.iter().enumerate() {
        if p.compare_exchange(null_mut(), ptr, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return Some(Registered { slot, ptr });
        }
    }
    // SAFETY: `ptr` came from `CString::into_raw` just above and was not shared.
    drop(unsafe { CString::from_raw(ptr) });
    None
}

impl Drop for Registered {
    fn drop(&mut self) {
        // The string is leaked, not freed: a handler on another thread may be reading it.
        let _ = PATHS[self.slot].compare_exchange(
            self.ptr,
            null_mut(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    for p in &PATHS {
        let path = p.swap(null_mut(), Ordering::SeqCst);
        if !path.is_null() {
            // SAFETY: registered paths are NUL-terminated strings that are never freed.
            unsafe { libc::unlink(path) };
        }
    }
    // SAFETY: restores the default action and re-raises, so the process ends as the signal
    // asks (both are async-signal-safe).
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}
