//! `libposixaio.so`: the `<aio.h>` functions over glibc's exact ABI, on the `aio` crate's POSIX
//! AIO engine (io_uring when the kernel allows it). Load it in front of glibc to make an
//! unmodified program use it:
//!
//! ```text
//! LD_PRELOAD=target/dist/lib/libposixaio.so ./program
//! ```
//!
//! Every function checks its arguments before touching memory it was not given, reports
//! errors as glibc does (`-1` and `errno`), and never unwinds into C: a panic aborts (Rust
//! aborts when a panic would leave an `extern "C"` function).
//!
//! The `*64` names are the same functions: on 64-bit targets `struct aiocb64` is `struct aiocb`.

use std::ffi::{c_char, c_int};

use aio::posix::{self, Errno};
use aio::sys::posix::{aiocb, aioinit, sigevent};

fn set_errno(e: Errno) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() = e.raw() };
}

fn ret(r: Result<(), Errno>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// `aio_read(3)`.
///
/// # Safety
///
/// `cb` is null or a valid aiocb that, with its buffer, stays valid until the read completes.
#[no_mangle]
pub unsafe extern "C" fn aio_read(cb: *mut aiocb) -> c_int {
    // SAFETY: forwarded from the caller.
    ret(unsafe { posix::aio_read(cb) })
}

/// `aio_write(3)`.
///
/// # Safety
///
/// As for [`aio_read`].
#[no_mangle]
pub unsafe extern "C" fn aio_write(cb: *mut aiocb) -> c_int {
    // SAFETY: forwarded from the caller.
    ret(unsafe { posix::aio_write(cb) })
}

/// `aio_fsync(3)`.
///
/// # Safety
///
/// As for [`aio_read`].
#[no_mangle]
pub unsafe extern "C" fn aio_fsync(op: c_int, cb: *mut aiocb) -> c_int {
    // SAFETY: forwarded from the caller.
    ret(unsafe { posix::aio_fsync(op, cb) })
}

/// `aio_error(3)`.
///
/// # Safety
///
/// `cb` is null or a readable aiocb.
#[no_mangle]
pub unsafe extern "C" fn aio_error(cb: *const aiocb) -> c_int {
    // SAFETY: forwarded from the caller.
    match unsafe { posix::aio_error(cb) } {
        Ok(e) => e,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// `aio_return(3)`.
///
/// # Safety
///
/// As for [`aio_error`].
#[no_mangle]
pub unsafe extern "C" fn aio_return(cb: *mut aiocb) -> isize {
    // SAFETY: forwarded from the caller.
    match unsafe { posix::aio_return(cb) } {
        Ok(r) => r,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// `aio_suspend(3)`.
///
/// # Safety
///
/// `list` is null or holds `nent` pointers, each null or a readable aiocb; `timeout` is null or
/// a readable timespec.
#[no_mangle]
pub unsafe extern "C" fn aio_suspend(
    list: *const *const aiocb,
    nent: c_int,
    timeout: *const libc::timespec,
) -> c_int {
    if nent < 0 || (list.is_null() && nent > 0) {
        set_errno(Errno::EINVAL);
        return -1;
    }
    let list = if nent == 0 {
        &[][..]
    } else {
        // SAFETY: non-null with `nent` readable entries (the caller's promise).
        unsafe { std::slice::from_raw_parts(list, nent as usize) }
    };
    // SAFETY: forwarded from the caller.
    ret(unsafe { posix::aio_suspend_timespec(list, timeout) })
}

/// `aio_cancel(3)`.
///
/// # Safety
///
/// `cb` is null or a valid aiocb.
#[no_mangle]
pub unsafe extern "C" fn aio_cancel(fd: c_int, cb: *mut aiocb) -> c_int {
    // SAFETY: forwarded from the caller.
    match unsafe { posix::aio_cancel(fd, cb) } {
        Ok(r) => r,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// `lio_listio(3)`.
///
/// # Safety
///
/// `list` is null or holds `nent` pointers, each null or a valid aiocb that, with its buffer,
/// stays valid until its request completes; `sig` is null or readable.
#[no_mangle]
pub unsafe extern "C" fn lio_listio(
    mode: c_int,
    list: *const *mut aiocb,
    nent: c_int,
    sig: *mut sigevent,
) -> c_int {
    if nent < 0 || (list.is_null() && nent > 0) {
        set_errno(Errno::EINVAL);
        return -1;
    }
    let list = if nent == 0 {
        &[][..]
    } else {
        // SAFETY: non-null with `nent` readable entries (the caller's promise).
        unsafe { std::slice::from_raw_parts(list, nent as usize) }
    };
    // SAFETY: forwarded from the caller.
    ret(unsafe { posix::lio_listio(mode, list, sig) })
}

/// `aio_init(3)`: sizing hints for the engine, before the first request.
///
/// # Safety
///
/// `init` is null or a readable `struct aioinit`.
#[no_mangle]
pub unsafe extern "C" fn aio_init(init: *const aioinit) {
    if !init.is_null() {
        // SAFETY: non-null and readable (the caller's promise).
        posix::aio_init(unsafe { &*init });
    }
}

/// Which engine serves the requests, and why: a static, NUL-terminated string such as
/// `"uring"` or `"kernel; not uring: …"`. An extension of this library, not POSIX.
#[no_mangle]
pub extern "C" fn posixaio_engine() -> *const c_char {
    static NAME: std::sync::OnceLock<std::ffi::CString> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let text = match posix::engine_selection() {
            Ok(sel) => sel.to_string(),
            Err(e) => format!("none: {e}"),
        };
        std::ffi::CString::new(text.replace('\0', " ")).unwrap_or_default()
    })
    .as_ptr()
}

macro_rules! alias64 {
    ($($name64:ident => $name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty;)*) => {$(
        #[doc = concat!("`", stringify!($name64), "`: the same as [`", stringify!($name), "`] (64-bit offsets are the default here).")]
        ///
        /// # Safety
        ///
        #[doc = concat!("As for [`", stringify!($name), "`].")]
        #[no_mangle]
        pub unsafe extern "C" fn $name64($($arg: $ty),*) -> $ret {
            // SAFETY: forwarded from the caller.
            unsafe { $name($($arg),*) }
        }
    )*};
}

alias64! {
    aio_read64 => aio_read(cb: *mut aiocb) -> c_int;
    aio_write64 => aio_write(cb: *mut aiocb) -> c_int;
    aio_fsync64 => aio_fsync(op: c_int, cb: *mut aiocb) -> c_int;
    aio_error64 => aio_error(cb: *const aiocb) -> c_int;
    aio_return64 => aio_return(cb: *mut aiocb) -> isize;
    aio_suspend64 => aio_suspend(list: *const *const aiocb, nent: c_int, timeout: *const libc::timespec) -> c_int;
    aio_cancel64 => aio_cancel(fd: c_int, cb: *mut aiocb) -> c_int;
    lio_listio64 => lio_listio(mode: c_int, list: *const *mut aiocb, nent: c_int, sig: *mut sigevent) -> c_int;
}
