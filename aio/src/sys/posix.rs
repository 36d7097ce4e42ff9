//! glibc's `<aio.h>` ABI on x86_64 (`struct aiocb`, `struct sigevent`, `struct aioinit` and
//! the constants), and the system calls POSIX AIO notification needs: queueing a signal with
//! `SI_ASYNCIO`, starting a notification thread, signal masks, and futex waits.
//!
//! The layouts are glibc's exactly (asserted below, and checked against the system header by a
//! C program in the tests). `aiocb64` is the same structure on 64-bit targets.

#![allow(non_camel_case_types)]

use std::io;
use std::mem::{align_of, offset_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// `LIO_READ`.
pub const LIO_READ: i32 = 0;
/// `LIO_WRITE`.
pub const LIO_WRITE: i32 = 1;
/// `LIO_NOP`.
pub const LIO_NOP: i32 = 2;
/// `LIO_WAIT`.
pub const LIO_WAIT: i32 = 0;
/// `LIO_NOWAIT`.
pub const LIO_NOWAIT: i32 = 1;
/// `AIO_CANCELED`.
pub const AIO_CANCELED: i32 = 0;
/// `AIO_NOTCANCELED`.
pub const AIO_NOTCANCELED: i32 = 1;
/// `AIO_ALLDONE`.
pub const AIO_ALLDONE: i32 = 2;
/// `AIO_PRIO_DELTA_MAX`: the largest `aio_reqprio`.
pub const AIO_PRIO_DELTA_MAX: i32 = 20;
/// `SIGEV_SIGNAL`.
pub const SIGEV_SIGNAL: i32 = 0;
/// `SIGEV_NONE`.
pub const SIGEV_NONE: i32 = 1;
/// `SIGEV_THREAD`.
pub const SIGEV_THREAD: i32 = 2;
/// `SIGEV_THREAD_ID` (Linux).
pub const SIGEV_THREAD_ID: i32 = 4;
/// `SI_ASYNCIO`: the `si_code` of a signal sent for a completed asynchronous I/O request.
pub const SI_ASYNCIO: i32 = -4;

/// `union sigval`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union sigval {
    /// `sival_int`.
    pub sival_int: i32,
    /// `sival_ptr`.
    pub sival_ptr: *mut libc::c_void,
}

/// `struct sigevent` (64 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sigevent {
    /// Passed to the handler or the thread function.
    pub sigev_value: sigval,
    /// The signal for `SIGEV_SIGNAL` and `SIGEV_THREAD_ID`.
    pub sigev_signo: i32,
    /// `SIGEV_NONE`, `SIGEV_SIGNAL`, `SIGEV_THREAD` or `SIGEV_THREAD_ID`.
    pub sigev_notify: i32,
    /// `_sigev_un`: `_tid` for `SIGEV_THREAD_ID`, or the function and attributes for
    /// `SIGEV_THREAD`.
    pub sigev_un: sigev_un,
}

impl sigevent {
    /// `_tid`: the thread `SIGEV_THREAD_ID` names (meaningless for the other kinds).
    pub fn thread_id(&self) -> libc::pid_t {
        // SAFETY: every bit pattern of the union's first 4 bytes is a valid `pid_t`.
        unsafe { self.sigev_un.tid }
    }

    /// `_sigev_thread`: what `SIGEV_THREAD` runs (meaningless for the other kinds).
    pub fn thread(&self) -> sigev_thread {
        // SAFETY: every bit pattern is valid for both fields: null is `None`, any other value
        // a function pointer (called only through `start_notify_thread`, whose caller
        // vouches for it), and the attributes pointer is only passed on.
        unsafe { self.sigev_un.thread }
    }
}

/// The union at the end of `struct sigevent`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union sigev_un {
    /// `_pad`.
    pub pad: [i32; 12],
    /// `_tid`: the thread for `SIGEV_THREAD_ID`.
    pub tid: libc::pid_t,
    /// `_sigev_thread`.
    pub thread: sigev_thread,
}

/// `_sigev_thread`: what `SIGEV_THREAD` runs.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sigev_thread {
    /// `sigev_notify_function`.
    pub function: Option<unsafe extern "C" fn(sigval)>,
    /// `sigev_notify_attributes`.
    pub attributes: *mut libc::pthread_attr_t,
}

/// glibc's `struct aiocb` (168 bytes on x86_64), the same as `struct aiocb64` there.
#[repr(C)]
pub struct aiocb {
    /// File descriptor.
    pub aio_fildes: i32,
    /// `LIO_READ`, `LIO_WRITE` or `LIO_NOP`, for `lio_listio`.
    pub aio_lio_opcode: i32,
    /// Request priority offset, 0 to `AIO_PRIO_DELTA_MAX`.
    pub aio_reqprio: i32,
    /// The buffer.
    pub aio_buf: *mut libc::c_void,
    /// Its length.
    pub aio_nbytes: usize,
    /// How to notify completion.
    pub aio_sigevent: sigevent,
    /// glibc-internal: request list link.
    pub __next_prio: *mut aiocb,
    /// glibc-internal: absolute priority.
    pub __abs_prio: i32,
    /// glibc-internal: scheduling policy.
    pub __policy: i32,
    /// The request's error status: `EINPROGRESS`, 0 or an errno.
    pub __error_code: i32,
    /// The request's return value.
    pub __return_value: isize,
    /// File offset.
    pub aio_offset: i64,
    /// Reserved.
    pub __glibc_reserved: [u8; 32],
}

/// glibc's `struct aioinit`, for `aio_init`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct aioinit {
    /// Most threads.
    pub aio_threads: i32,
    /// Expected simultaneous requests.
    pub aio_num: i32,
    /// Unused.
    pub aio_locks: i32,
    /// Unused.
    pub aio_usedba: i32,
    /// Unused.
    pub aio_debug: i32,
    /// Unused.
    pub aio_numusers: i32,
    /// Seconds before an idle thread exits.
    pub aio_idle_time: i32,
    /// Reserved.
    pub aio_reserved: i32,
}

#[cfg(target_arch = "x86_64")]
const _: () = {
    assert!(size_of::<sigevent>() == 64);
    assert!(offset_of!(sigevent, sigev_signo) == 8);
    assert!(offset_of!(sigevent, sigev_notify) == 12);
    assert!(offset_of!(sigevent, sigev_un) == 16);
    assert!(offset_of!(sigev_thread, attributes) == 8);
    assert!(size_of::<aiocb>() == 168);
    assert!(offset_of!(aiocb, aio_fildes) == 0);
    assert!(offset_of!(aiocb, aio_lio_opcode) == 4);
    assert!(offset_of!(aiocb, aio_reqprio) == 8);
    assert!(offset_of!(aiocb, aio_buf) == 16);
    assert!(offset_of!(aiocb, aio_nbytes) == 24);
    assert!(offset_of!(aiocb, aio_sigevent) == 32);
    assert!(offset_of!(aiocb, __next_prio) == 96);
    assert!(offset_of!(aiocb, __abs_prio) == 104);
    assert!(offset_of!(aiocb, __policy) == 108);
    assert!(offset_of!(aiocb, __error_code) == 112);
    assert!(offset_of!(aiocb, __return_value) == 120);
    assert!(offset_of!(aiocb, aio_offset) == 128);
    assert!(offset_of!(aiocb, __glibc_reserved) == 136);
    assert!(size_of::<aioinit>() == 32);
};

/// The kernel's `siginfo_t` for a queued signal (128 bytes): the `_rt` member.
#[repr(C)]
struct siginfo_rt {
    si_signo: i32,
    si_errno: i32,
    si_code: i32,
    _pad0: i32,
    si_pid: libc::pid_t,
    si_uid: libc::uid_t,
    si_value: sigval,
    _rest: [u8; 128 - 32],
}

const _: () = assert!(size_of::<siginfo_rt>() == 128);

/// Queues `signo` with `si_code = SI_ASYNCIO` and `value`, to this process, or to thread `tid`
/// of it (`SIGEV_THREAD_ID`), as glibc's POSIX AIO does (`rt_sigqueueinfo`,
/// `rt_tgsigqueueinfo`).
pub fn queue_asyncio_signal(signo: i32, value: sigval, tid: Option<libc::pid_t>) -> io::Result<()> {
    // SAFETY: getpid and getuid cannot fail and take no pointers.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    let info = siginfo_rt {
        si_signo: signo,
        si_errno: 0,
        si_code: SI_ASYNCIO,
        _pad0: 0,
        si_pid: pid,
        si_uid: uid,
        si_value: value,
        _rest: [0; 96],
    };
    // SAFETY: `info` is a complete, initialized 128-byte siginfo the kernel copies in.
    let r = unsafe {
        match tid {
            None => {
                libc::syscall(libc::SYS_rt_sigqueueinfo, pid, signo, &info as *const siginfo_rt)
            }
            Some(t) => libc::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                pid,
                t,
                signo,
                &info as *const siginfo_rt,
            ),
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

struct ThreadStart {
    function: unsafe extern "C" fn(sigval),
    value: sigval,
}

extern "C" fn notify_thread(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the Box<ThreadStart> leaked by `start_notify_thread`, taken back once.
    let start = unsafe { Box::from_raw(arg.cast::<ThreadStart>()) };
    // The function runs with no signal blocked, as glibc's notification threads do, whatever
    // the mask of the thread that happened to process the completion.
    // SAFETY: an empty set, initialized by sigemptyset, installed for this thread only.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    // SAFETY: the program supplied this function for SIGEV_THREAD, to be called with its value.
    unsafe { (start.function)(start.value) };
    std::ptr::null_mut()
}

/// Starts a thread running `function(value)` with the program's thread attributes, or — with
/// none — detached, as glibc does for `SIGEV_THREAD`.
///
/// # Safety
///
/// `attributes` must be null or point at an initialized `pthread_attr_t`, and `function` must
/// be safe to call with `value` on a new thread.
pub unsafe fn start_notify_thread(
    function: unsafe extern "C" fn(sigval),
    value: sigval,
    attributes: *const libc::pthread_attr_t,
) -> io::Result<()> {
    let start = Box::into_raw(Box::new(ThreadStart { function, value }));
    // SAFETY: a zeroed pthread_attr_t is only passed to pthread_attr_init before use.
    let mut own: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    let attr = if attributes.is_null() {
        // SAFETY: `own` is writable; init then set-detached on it are the documented sequence.
        unsafe {
            libc::pthread_attr_init(&mut own);
            libc::pthread_attr_setdetachstate(&mut own, libc::PTHREAD_CREATE_DETACHED);
        }
        &own as *const libc::pthread_attr_t
    } else {
        attributes
    };
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `attr` is initialized (ours or the caller's), the start routine matches the
    // pthread signature and takes ownership of `start`.
    let r = unsafe { libc::pthread_create(&mut thread, attr, notify_thread, start.cast()) };
    if attributes.is_null() {
        // SAFETY: `own` was initialized above and is destroyed once.
        unsafe { libc::pthread_attr_destroy(&mut own) };
    }
    if r != 0 {
        // SAFETY: the thread was not created, so `start` is still ours.
        drop(unsafe { Box::from_raw(start) });
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Runs `f` with every signal blocked in the calling thread (glibc keeps its own two, for
/// thread cancellation and set*id, unblocked), then restores the mask. Threads started by `f`
/// inherit the full mask, so they never take the program's signals — as glibc's AIO helper
/// threads block them all.
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: both sets are initialized before use (sigfillset, pthread_sigmask filling `old`);
    // the mask is per thread and restored before returning.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let r = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

/// `FUTEX_WAIT_PRIVATE`: sleeps while `*word == expected`, until woken, `timeout`, or a signal
/// (`EINTR`). Returns at once (`EAGAIN`) if the word already differs.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(super::aio::timespec);
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32; the timeout is null or a live timespec.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `FUTEX_WAKE_PRIVATE`: wakes every thread sleeping on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE reads nothing else.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// The public fields of an aiocb, as read at submission.
#[derive(Clone, Copy)]
pub struct AiocbFields {
    /// `aio_fildes`.
    pub fildes: i32,
    /// `aio_lio_opcode`.
    pub lio_opcode: i32,
    /// `aio_reqprio`.
    pub reqprio: i32,
    /// `aio_buf`.
    pub buf: *mut libc::c_void,
    /// `aio_nbytes`.
    pub nbytes: usize,
    /// `aio_offset`.
    pub offset: i64,
}

/// Marks an aiocb as submitted through this library (in `__glibc_reserved`, which glibc leaves
/// unused), so `aio_error` can tell a never-submitted one.
const SUBMITTED_WORD: u64 = u64::from_ne_bytes(*b"aio-rs\0\x01");

// What this library keeps in `__glibc_reserved` — the submitted mark (bytes 0 to 8), the key
// (8 to 16), the fork stamp (16 to 20) and the aiocb's own address (24 to 32) — is read and
// written atomically, as the status fields are: the mark is rewritten with every status, from
// the thread that processes a completion, while other threads may poll (`aio_error`), and a
// program may poll an aiocb from one thread while another submits it again.
const _: () =
    assert!(offset_of!(aiocb, __glibc_reserved).is_multiple_of(8) && align_of::<aiocb>() >= 8);

/// The 8 bytes at `offset` (a multiple of 8, below 32) in `__glibc_reserved`, as an atomic.
///
/// # Safety
///
/// `cb` must point at an `aiocb` (aligned, as every `struct aiocb` is) valid for `'a`.
unsafe fn reserved_u64<'a>(cb: *mut aiocb, offset: usize) -> &'a AtomicU64 {
    debug_assert!(offset.is_multiple_of(8) && offset + 8 <= 32);
    // SAFETY: inside the caller's aiocb, 8-aligned (asserted above); every access to these
    // bytes goes through an atomic of the same size.
    unsafe {
        AtomicU64::from_ptr((&raw mut (*cb).__glibc_reserved).cast::<u8>().add(offset).cast())
    }
}

/// The 4 bytes at `offset` (a multiple of 4, below 32) in `__glibc_reserved`, as an atomic.
///
/// # Safety
///
/// As for [`reserved_u64`].
unsafe fn reserved_u32<'a>(cb: *mut aiocb, offset: usize) -> &'a AtomicU32 {
    debug_assert!(offset.is_multiple_of(4) && offset + 4 <= 32);
    // SAFETY: as for `reserved_u64`, 4-aligned.
    unsafe {
        AtomicU32::from_ptr((&raw mut (*cb).__glibc_reserved).cast::<u8>().add(offset).cast())
    }
}

/// A program's `struct aiocb`, seen through the only door this library uses: every read of its
/// fields and every write of the status and bookkeeping this library keeps in it goes through
/// this view, so the path of one request reads top to bottom in the POSIX engine.
///
/// What the library keeps in the aiocb (besides the status fields glibc uses too) lives in
/// `__glibc_reserved`, which glibc leaves unused: a mark saying this library submitted it, the
/// key of its request, the fork generation that submitted it, and the aiocb's own address (so a
/// copy of an aiocb in flight is told from the original). Those words and the status are read
/// and written atomically; the program's own fields are only read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AiocbRef(NonNull<aiocb>);

// SAFETY: a view is an address; what it reaches is either only read (the program's fields,
// which the program must not change while a request is in flight) or accessed atomically.
unsafe impl Send for AiocbRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for AiocbRef {}

impl AiocbRef {
    /// A view of `cb`, or `None` if it is null.
    ///
    /// # Safety
    ///
    /// A non-null `cb` must point at an `aiocb` that stays readable for as long as the view (or
    /// a copy) is used, and writable whenever a method that writes is called: the POSIX
    /// contract for an aiocb handed to `aio_read` and the others, valid until its request has
    /// completed and its status been taken.
    pub unsafe fn new(cb: *const aiocb) -> Option<AiocbRef> {
        NonNull::new(cb.cast_mut()).map(AiocbRef)
    }

    /// The aiocb's address.
    pub fn as_ptr(self) -> *mut aiocb {
        self.0.as_ptr()
    }

    /// Reads the program's fields, as at submission.
    pub fn fields(self) -> AiocbFields {
        let cb = self.as_ptr();
        // SAFETY: readable (the constructor's contract); these fields belong to the program
        // and are never written here.
        unsafe {
            AiocbFields {
                fildes: (*cb).aio_fildes,
                lio_opcode: (*cb).aio_lio_opcode,
                reqprio: (*cb).aio_reqprio,
                buf: (*cb).aio_buf,
                nbytes: (*cb).aio_nbytes,
                offset: (*cb).aio_offset,
            }
        }
    }

    /// `aio_fildes`.
    pub fn fildes(self) -> i32 {
        // SAFETY: readable (the constructor's contract); a field of the program's.
        unsafe { (*self.as_ptr()).aio_fildes }
    }

    /// A copy of `aio_sigevent`, how the program asks to be told of completion.
    pub fn sigevent(self) -> sigevent {
        // SAFETY: readable (the constructor's contract); a field of the program's.
        unsafe { (*self.as_ptr()).aio_sigevent }
    }

    /// The 8 bytes at `offset` of `__glibc_reserved`.
    fn word(self, offset: usize) -> &'static AtomicU64 {
        // SAFETY: a valid aiocb (the constructor's contract). The `'static` does not leave this
        // type: every caller uses the atomic within the call.
        unsafe { reserved_u64(self.as_ptr(), offset) }
    }

    /// Publishes a request's status: the return value first, then the error code with release
    /// ordering, so a reader that sees the error code (acquire) sees the return value too. Also
    /// marks the aiocb as submitted here.
    pub fn set_status(self, ret: isize, error: i32) {
        use std::sync::atomic::{AtomicI32, AtomicIsize};
        let cb = self.as_ptr();
        self.word(0).store(SUBMITTED_WORD, Ordering::Relaxed);
        // SAFETY: aligned fields inside a writable aiocb (the constructor's contract); every
        // reader loads them atomically (`status`).
        unsafe {
            AtomicIsize::from_ptr(&raw mut (*cb).__return_value).store(ret, Ordering::Relaxed);
            AtomicI32::from_ptr(&raw mut (*cb).__error_code).store(error, Ordering::Release);
        }
    }

    /// The status as stored: `(error code, return value)`, or `None` if this library never
    /// submitted the aiocb. Takes no lock and allocates nothing (`aio_error` and `aio_return`
    /// are async-signal-safe through it).
    pub fn status(self) -> Option<(i32, isize)> {
        use std::sync::atomic::{AtomicI32, AtomicIsize};
        if self.word(0).load(Ordering::Relaxed) != SUBMITTED_WORD {
            return None;
        }
        let cb = self.as_ptr();
        // SAFETY: as for `set_status`; only loads.
        unsafe {
            let error = AtomicI32::from_ptr(&raw mut (*cb).__error_code).load(Ordering::Acquire);
            let ret = AtomicIsize::from_ptr(&raw mut (*cb).__return_value).load(Ordering::Relaxed);
            Some((error, ret))
        }
    }

    /// Records, as a request is accepted, its key (bytes 8 to 16, so the aiocb leads to its
    /// request without a search), then [`AiocbRef::set_origin`].
    pub fn claim(self, key: usize, stamp: u32) {
        self.word(8).store(key as u64, Ordering::Relaxed);
        self.set_origin(stamp);
    }

    /// The key stored by [`AiocbRef::claim`]: garbage if none was, and a copy of the aiocb
    /// carries it too, so the caller checks it against its table.
    pub fn key(self) -> usize {
        self.word(8).load(Ordering::Relaxed) as usize
    }

    /// Records the fork generation of the submitting process (bytes 16 to 20) and the aiocb's
    /// own address (bytes 24 to 32).
    pub fn set_origin(self, stamp: u32) {
        // SAFETY: a writable aiocb (the constructor's contract), 4-aligned offset.
        unsafe { reserved_u32(self.as_ptr(), 16) }.store(stamp, Ordering::Relaxed);
        self.word(24).store(self.as_ptr() as u64, Ordering::Relaxed);
    }

    /// The fork generation stored by [`AiocbRef::set_origin`].
    pub fn stamp(self) -> u32 {
        // SAFETY: a readable aiocb (the constructor's contract); only loads.
        unsafe { reserved_u32(self.as_ptr(), 16) }.load(Ordering::Relaxed)
    }

    /// Whether this is a copy of an aiocb this library stamped (by memcpy, elsewhere), not the
    /// aiocb itself.
    pub fn is_copy(self) -> bool {
        self.word(24).load(Ordering::Relaxed) != self.as_ptr() as u64
    }
}

/// Whether `tid` is a thread of this process (`tgkill(getpid(), tid, 0)`), for
/// `SIGEV_THREAD_ID`.
pub fn is_own_thread(tid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the thread exists; no pointers.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) == 0 }
}

/// The calling thread's signal mask, replaced by one blocking every signal until this is
/// dropped (which puts the old mask back). While the library looks at its state with signals
/// blocked, and then waits with [`SignalsBlocked::original`] installed atomically for the wait
/// (`ppoll`, `io_uring_enter`), a signal cannot slip in between the look and the wait.
pub struct SignalsBlocked {
    old: libc::sigset_t,
}

impl SignalsBlocked {
    /// Blocks every signal in the calling thread.
    pub fn all() -> SignalsBlocked {
        // SAFETY: both sets are initialized before use (sigfillset; pthread_sigmask fills
        // `old`); the mask is the calling thread's own.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            SignalsBlocked { old }
        }
    }

    /// The mask the thread had: what a wait installs, so that signals the program lets in
    /// end the wait.
    pub fn original(&self) -> &libc::sigset_t {
        &self.old
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: `old` is the mask pthread_sigmask returned; a pending signal it unblocks is
        // delivered now, in this thread.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// The monotonic clock in nanoseconds (`clock_gettime(CLOCK_MONOTONIC)`, which is
/// async-signal-safe).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// The most bytes one read or write transfers (`MAX_RW_COUNT`: `INT_MAX` rounded down to a
/// page): the kernel shortens longer requests to this, once it has checked the whole range.
pub const MAX_RW_COUNT: usize = 0x7fff_f000;

/// Whether the kernel would accept `len` bytes at `addr` for a `pread` (`write`: for a
/// `pwrite`): the range must lie in the process's address space (`EFAULT` otherwise), and
/// `len` must fit a `ssize_t` (`EINVAL`). The kernel's own answer, got from `/dev/null`, which
/// checks the range as every file does but never touches the memory. For requests longer
/// than [`MAX_RW_COUNT`], which the asynchronous engines cannot express whole: shortened
/// without this check, a bad range would become a valid transfer of its first bytes.
pub fn check_user_range(addr: usize, len: usize, write: bool) -> Result<(), i32> {
    // An address to check, never dereferenced here.
    let buf = addr as *mut libc::c_void;
    const DEV_NULL: &std::ffi::CStr = c"/dev/null";
    // SAFETY: a constant path; the descriptor is closed below.
    let fd = unsafe { libc::open(DEV_NULL.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        // No /dev/null (a bare chroot): the one case decided without the kernel.
        return if len > isize::MAX as usize { Err(libc::EFAULT) } else { Ok(()) };
    }
    // The raw system calls, not libc's wrappers: a wrapper interposed by a sanitizer or
    // valgrind takes a write of `len` bytes for a read of that much memory, and would report
    // (or itself touch) a range the kernel never reads here.
    let call = if write { libc::SYS_write } else { libc::SYS_read };
    // SAFETY: /dev/null neither reads nor writes the memory (a read returns 0 bytes, a write
    // takes them unread); the kernel only checks the range, as for any file.
    let r = unsafe { libc::syscall(call, fd, buf, len) };
    let err = if r < 0 { Some(io::Error::last_os_error()) } else { None };
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    match err {
        Some(e) => Err(e.raw_os_error().unwrap_or(libc::EINVAL)),
        None => Ok(()),
    }
}
