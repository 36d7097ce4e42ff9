//! Blocking file I/O on raw memory, for the drivers that run it on worker threads:
//! `preadv2`, `pwritev2`, `fsync`, `fdatasync`, and the per-thread I/O priority.

use std::io;
use std::os::fd::RawFd;

fn cvt(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// The `preadv2`/`pwritev2` system call, made directly: glibc's wrappers add a cancellation
/// point and a fallback for kernels without the calls (before 4.6), about 80 instructions a
/// call — a tenth of a cached 4 KiB read's whole cost in user space. `offset` -1: the
/// descriptor's position.
///
/// # Safety
///
/// As for [`preadv2`] (`nr` is `SYS_preadv2`) or [`pwritev2`] (`SYS_pwritev2`).
unsafe fn rw2(
    nr: libc::c_long,
    fd: RawFd,
    iov: &[libc::iovec],
    offset: i64,
    flags: libc::c_int,
) -> io::Result<usize> {
    let cnt =
        libc::c_int::try_from(iov.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `iov` is a live array of `cnt` iovecs; the caller vouches for the memory they
    // name. On 64-bit targets the offset is passed whole in its low half (the high half is 0).
    let r = unsafe { libc::syscall(nr, fd, iov.as_ptr(), cnt, offset, 0 as libc::c_long, flags) };
    cvt(r as libc::ssize_t)
}

/// `preadv2(fd, iov, offset, flags)`: reads into the segments in order.
///
/// # Safety
///
/// Every segment must be valid for writes of its length for the duration of the call, and not
/// accessed by anyone else meanwhile.
pub unsafe fn preadv2(
    fd: RawFd,
    iov: &[libc::iovec],
    offset: u64,
    flags: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: forwarded from the caller.
    unsafe { rw2(libc::SYS_preadv2, fd, iov, offset as i64, flags) }
}

/// `pwritev2(fd, iov, offset, flags)`: writes the segments in order.
///
/// # Safety
///
/// Every segment must be valid for reads of its length for the duration of the call.
pub unsafe fn pwritev2(
    fd: RawFd,
    iov: &[libc::iovec],
    offset: u64,
    flags: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: forwarded from the caller.
    unsafe { rw2(libc::SYS_pwritev2, fd, iov, offset as i64, flags) }
}

/// `readv(fd, iov)`: reads at the descriptor's position (for pipes and sockets).
///
/// # Safety
///
/// As for [`preadv2`].
pub unsafe fn readv(fd: RawFd, iov: &[libc::iovec]) -> io::Result<usize> {
    let cnt =
        libc::c_int::try_from(iov.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: as for preadv2.
    cvt(unsafe { libc::readv(fd, iov.as_ptr(), cnt) })
}

/// `writev(fd, iov)`: writes at the descriptor's position (for pipes and sockets).
///
/// # Safety
///
/// As for [`pwritev2`].
pub unsafe fn writev(fd: RawFd, iov: &[libc::iovec]) -> io::Result<usize> {
    let cnt =
        libc::c_int::try_from(iov.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: as for pwritev2.
    cvt(unsafe { libc::writev(fd, iov.as_ptr(), cnt) })
}

/// `preadv2(fd, iov, -1, flags)`: reads at the descriptor's position, with `RWF_*` flags (for
/// pipes and sockets, `RWF_NOWAIT`: `EAGAIN` rather than wait for data).
///
/// # Safety
///
/// As for [`preadv2`].
pub unsafe fn readv2(fd: RawFd, iov: &[libc::iovec], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: forwarded from the caller; offset -1 means the descriptor's position.
    unsafe { rw2(libc::SYS_preadv2, fd, iov, -1, flags) }
}

/// `pwritev2(fd, iov, -1, flags)`: writes at the descriptor's position, with `RWF_*` flags.
///
/// # Safety
///
/// As for [`pwritev2`].
pub unsafe fn writev2(fd: RawFd, iov: &[libc::iovec], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: forwarded from the caller; offset -1 means the descriptor's position.
    unsafe { rw2(libc::SYS_pwritev2, fd, iov, -1, flags) }
}

/// The type of file `fd` is (`S_IFREG`, `S_IFIFO`, `S_IFSOCK`, …: `st_mode & S_IFMT`), or
/// `None` if `fstat` fails (not a descriptor).
pub fn file_type(fd: RawFd) -> Option<libc::mode_t> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat; any descriptor number may be asked about.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return None;
    }
    Some(st.st_mode & libc::S_IFMT)
}

/// `fsync(fd)`.
pub fn fsync(fd: RawFd) -> io::Result<()> {
    // SAFETY: fsync takes no pointers; a bad descriptor gives EBADF.
    if unsafe { libc::fsync(fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `fdatasync(fd)`.
pub fn fdatasync(fd: RawFd) -> io::Result<()> {
    // SAFETY: fdatasync takes no pointers; a bad descriptor gives EBADF.
    if unsafe { libc::fdatasync(fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, prio)`: the I/O priority of the calling thread.
pub fn set_thread_ioprio(prio: u16) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set takes no pointers; who 0 is the calling thread.
    if unsafe {
        libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, libc::c_int::from(prio))
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
