//! File operations on `O_PATH` descriptors, as a filesystem that mirrors a directory makes them
//! (`aio mount`'s FUSE mirror): the `*at` family relative to a directory descriptor, the
//! descriptor's own file with `AT_EMPTY_PATH`, and the calls that only take a path (`chmod`,
//! `utimensat`, the extended attributes, …) reach the file through `/proc/self/fd/N`, which
//! follows it across renames.
//!
//! Allocation is [`super::fs::fallocate`].

use std::ffi::{CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name contains a NUL byte"))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The path through which `/proc` reaches an open descriptor (`/proc/self/fd/N`).
pub fn proc_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}

/// `openat(dir, name, flags, mode)`.
pub fn openat(dir: BorrowedFd<'_>, name: &OsStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let name = cstr(name)?;
    // SAFETY: `name` is a NUL-terminated string alive for the call; `dir` is an open
    // descriptor borrowed for the call. A returned descriptor is new and ours alone.
    let fd = check(unsafe {
        libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC, mode)
    })?;
    // SAFETY: `fd` was just returned by openat and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reopens the file `fd` (an `O_PATH` descriptor) for I/O with `flags`, through `/proc`.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let path = proc_path(fd);
    // SAFETY: `path` is NUL-terminated and alive for the call; the result is a new descriptor.
    let r = check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: `r` was just returned by open and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// `fstatat(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: the attributes of the file `fd`
/// refers to (an `O_PATH` descriptor of a symbolic link gives the link's own).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: the empty path is a valid C string; `st` is writable memory for one stat, which
    // the call fills on success.
    check(unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            st.as_mut_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so it initialized `st`.
    Ok(unsafe { st.assume_init() })
}

/// `mkdirat`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let name = cstr(name)?;
    // SAFETY: a valid C string and an open descriptor, for the duration of the call.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

/// `mknodat`.
pub fn mknodat(dir: BorrowedFd<'_>, name: &OsStr, mode: u32, rdev: u64) -> io::Result<()> {
    let name = cstr(name)?;
    // SAFETY: a valid C string and an open descriptor, for the duration of the call.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, rdev) }).map(drop)
}

/// `unlinkat` (`AT_REMOVEDIR` for a directory).
pub fn unlinkat(dir: BorrowedFd<'_>, name: &OsStr, rmdir: bool) -> io::Result<()> {
    let name = cstr(name)?;
    let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: a valid C string and an open descriptor, for the duration of the call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// `renameat2`.
pub fn renameat2(
    from_dir: BorrowedFd<'_>,
    from: &OsStr,
    to_dir: BorrowedFd<'_>,
    to: &OsStr,
    flags: u32,
) -> io::Result<()> {
    let (from, to) = (cstr(from)?, cstr(to)?);
    // SAFETY: valid C strings and open descriptors, for the duration of the call.
    check(unsafe {
        libc::renameat2(from_dir.as_raw_fd(), from.as_ptr(), to_dir.as_raw_fd(), to.as_ptr(), flags)
    })
    .map(drop)
}

/// `symlinkat(target, dir, name)`.
pub fn symlinkat(target: &OsStr, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let (target, name) = (cstr(target)?, cstr(name)?);
    // SAFETY: valid C strings and an open descriptor, for the duration of the call.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// `readlinkat(fd, "")`: the target of the symbolic link `fd` (an `O_PATH` descriptor).
pub fn readlink(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: the empty path is a valid C string; `buf` is writable for its length.
    let n = unsafe {
        libc::readlinkat(fd.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// A hard link to the file `fd` (an `O_PATH` descriptor) at `dir/name`.
pub fn linkat(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let name = cstr(name)?;
    let path = proc_path(fd);
    // SAFETY: valid C strings and open descriptors, for the duration of the call. Following the
    // /proc link reaches the file itself (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            path.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// `chmod` of the file `fd`, through `/proc`.
pub fn chmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let path = proc_path(fd);
    // SAFETY: a valid C string for the duration of the call.
    check(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

/// `fchownat(fd, "", AT_EMPTY_PATH)`; `u32::MAX` leaves an id unchanged.
pub fn chown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: the empty path is a valid C string; `fd` is open for the call.
    check(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// A timestamp for [`utimens`]: a time, now, or unchanged.
#[derive(Debug, Clone, Copy)]
pub enum Time {
    /// This time.
    At(libc::timespec),
    /// The current time.
    Now,
    /// Leave it.
    Omit,
}

impl Time {
    fn spec(&self) -> libc::timespec {
        match self {
            Time::At(t) => *t,
            Time::Now => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
            Time::Omit => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        }
    }
}

/// `utimensat` on the file `fd`, through `/proc`.
pub fn utimens(fd: BorrowedFd<'_>, atime: Time, mtime: Time) -> io::Result<()> {
    let path = proc_path(fd);
    let times = [atime.spec(), mtime.spec()];
    // SAFETY: a valid C string and an array of two timespecs, alive for the call.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

/// `ftruncate`.
pub fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let size = i64::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: `fd` is open for the call.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), size) }).map(drop)
}

/// `fstatvfs`.
pub fn statvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    let path = proc_path(fd);
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a valid C string; `st` is writable memory for one statvfs, filled on success.
    check(unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: statvfs succeeded, so it initialized `st`.
    Ok(unsafe { st.assume_init() })
}

/// `fsync` or `fdatasync`, waiting.
pub fn fsync(fd: BorrowedFd<'_>, datasync: bool) -> io::Result<()> {
    // SAFETY: `fd` is open for the call.
    check(unsafe {
        if datasync {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    })
    .map(drop)
}

/// `getxattr` of the file `fd` through `/proc` into `buf` (empty: only the size).
pub fn getxattr(fd: BorrowedFd<'_>, name: &OsStr, buf: &mut [u8]) -> io::Result<usize> {
    let (path, name) = (proc_path(fd), cstr(name)?);
    // SAFETY: valid C strings; `buf` is writable for its length (with length 0 the kernel
    // writes nothing and returns the size).
    let n =
        unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `listxattr` of the file `fd` through `/proc` into `buf` (empty: only the size).
pub fn listxattr(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let path = proc_path(fd);
    // SAFETY: a valid C string; `buf` is writable for its length.
    let n = unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `setxattr` of the file `fd` through `/proc`.
pub fn setxattr(fd: BorrowedFd<'_>, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
    let (path, name) = (proc_path(fd), cstr(name)?);
    // SAFETY: valid C strings and a readable value, for the duration of the call.
    check(unsafe {
        libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), flags)
    })
    .map(drop)
}

/// `removexattr` of the file `fd` through `/proc`.
pub fn removexattr(fd: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let (path, name) = (proc_path(fd), cstr(name)?);
    // SAFETY: valid C strings for the duration of the call.
    check(unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) }).map(drop)
}

/// `access` of the file `fd` through `/proc`.
pub fn access(fd: BorrowedFd<'_>, mask: i32) -> io::Result<()> {
    let path = proc_path(fd);
    // SAFETY: a valid C string for the duration of the call.
    check(unsafe { libc::access(path.as_ptr(), mask) }).map(drop)
}

/// `pwrite` all of `data` at `offset` (retrying short writes), waiting.
pub fn pwrite_all(fd: BorrowedFd<'_>, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is readable for its length; `fd` is open for the call.
        let n = unsafe {
            libc::pwrite(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), offset as i64)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        data = &data[n as usize..];
        offset += n as u64;
    }
    Ok(())
}
