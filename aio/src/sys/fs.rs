//! The file and descriptor system calls the layers above need: statx for O_DIRECT alignment,
//! fstat, the block-size ioctl, fcntl, eventfd and poll.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN)`: the O_DIRECT alignment of an open file as
/// `(memory alignment, offset alignment)`, `Some((0, 0))` when the file does not support
/// O_DIRECT, or `None` when this kernel or filesystem does not report it (before Linux 6.1).
#[doc(alias = "statx")]
pub fn statx_dioalign(fd: BorrowedFd<'_>) -> io::Result<Option<(u32, u32)>> {
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is a NUL-terminated empty string, `stx` is writable, and AT_EMPTY_PATH
    // makes the call refer to `fd` itself.
    cvt(unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    })?;
    if stx.stx_mask & libc::STATX_DIOALIGN == 0 {
        return Ok(None);
    }
    Ok(Some((stx.stx_dio_mem_align, stx.stx_dio_offset_align)))
}

/// `fstat(fd)`.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// `ioctl(fd, BLKSSZGET)`: a block device's logical block size.
#[doc(alias = "BLKSSZGET")]
pub fn logical_block_size(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut size: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer, which is valid and writable.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::BLKSSZGET, &mut size as *mut libc::c_int) })?;
    Ok(size as u32)
}

/// `fcntl(fd, F_GETFL)`: the file status flags (`O_DIRECT`, `O_APPEND`, the access mode, …).
pub fn status_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// `fcntl(fd, F_GETFL)` on a descriptor number that may not be open (`EBADF` then): for
/// requests that name their file by number.
pub fn status_flags_of(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags; any number is
    // safe to ask about.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

/// The path a descriptor was opened with, as the kernel shows it in `/proc/self/fd/N`
/// (`None` if it cannot say: no `/proc`, a closed descriptor).
pub fn fd_path(fd: RawFd) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .and_then(|p| p.into_os_string().into_string().ok())
}

/// `eventfd(initval, flags)`.
pub fn eventfd(initval: u32, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = cvt(unsafe { libc::eventfd(initval, flags) })?;
    // SAFETY: `fd` was just returned by eventfd, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads an eventfd's 8-byte counter (which resets it, or decrements it in semaphore mode).
pub fn eventfd_read(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut value = 0u64;
    // SAFETY: `value` is 8 writable bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    match n {
        8 => Ok(value),
        n if n < 0 => Err(io::Error::last_os_error()),
        _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read from an eventfd")),
    }
}

/// Adds `value` to an eventfd's counter.
pub fn eventfd_write(fd: BorrowedFd<'_>, value: u64) -> io::Result<()> {
    // SAFETY: `value` is 8 readable bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&value as *const u64).cast(), 8) };
    match n {
        8 => Ok(()),
        n if n < 0 => Err(io::Error::last_os_error()),
        _ => Err(io::Error::new(io::ErrorKind::WriteZero, "short write to an eventfd")),
    }
}

/// `poll(2)` on one descriptor: waits until one of `events` is ready or `timeout` passes
/// (`None`: no limit). Returns the ready events, 0 on timeout.
#[doc(alias = "poll")]
pub fn poll_one(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<libc::c_short> {
    let ms = match timeout {
        None => -1,
        Some(d) => libc::c_int::try_from(d.as_millis()).unwrap_or(libc::c_int::MAX),
    };
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
    // SAFETY: `pfd` is one valid, writable pollfd.
    let n = cvt(unsafe { libc::poll(&mut pfd, 1, ms) })?;
    Ok(if n == 0 { 0 } else { pfd.revents })
}

/// `poll(2)` on several descriptors: waits until one is ready or `timeout` passes (`None`: no
/// limit). Returns how many are ready; their `revents` are filled in.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up, so a short timeout does not become a busy loop of zero-timeout polls.
        Some(d) => {
            libc::c_int::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
        }
    };
    // SAFETY: `fds` is a live, writable array of `fds.len()` pollfds.
    let n = cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) })?;
    Ok(n as usize)
}

/// `ppoll`: [`poll`] with `sigmask` (if given) installed as the thread's signal mask for the
/// duration of the wait, atomically: a signal that the mask lets through, pending or arriving,
/// ends the wait with `EINTR` — none is lost between a check made with signals blocked and
/// the wait. A timeout too large for a `timespec` is no timeout.
pub fn ppoll(
    fds: &mut [libc::pollfd],
    timeout: Option<Duration>,
    sigmask: Option<&libc::sigset_t>,
) -> io::Result<usize> {
    let ts = timeout.map(super::aio::timespec);
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    let mask = sigmask.map_or(std::ptr::null(), |m| m as *const libc::sigset_t);
    // SAFETY: `fds` is a live, writable array of `fds.len()` pollfds; the timeout and the mask
    // are null or live values the kernel only reads.
    let n = cvt(unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ts_ptr, mask) })?;
    Ok(n as usize)
}

/// `madvise(MADV_HUGEPAGE)` on `len` bytes at `ptr`: asks for transparent huge pages where the
/// range is not yet backed (a hint: the kernel may say no, or have THP off).
///
/// # Safety
///
/// `ptr` must be page-aligned and `len` bytes from it an allocation the caller owns.
pub unsafe fn madvise_hugepage(ptr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller's promise; MADV_HUGEPAGE changes no contents.
    let r = unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
