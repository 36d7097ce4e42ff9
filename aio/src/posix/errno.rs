//! [`Errno`], the error the POSIX functions report: the number the C library stores in `errno`.

use std::fmt;
use std::io;

/// An error number, as `<aio.h>`'s functions report it (`-1` and `errno` in C).
///
/// Converts to and from [`io::Error`] (an `io::Error` that carries no OS error becomes `EIO`),
/// and displays as the system's message for it.
///
/// ```
/// use aio::posix::Errno;
/// let e = Errno::EINVAL;
/// assert_eq!(e.raw(), libc::EINVAL);
/// assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::InvalidInput);
/// assert!(e.to_string().contains("nvalid argument"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

impl Errno {
    /// `EAGAIN`: no room (too many requests in flight) or a timeout.
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    /// `EBADF`: the descriptor is not open.
    pub const EBADF: Errno = Errno(libc::EBADF);
    /// `ECANCELED`: the request was cancelled.
    pub const ECANCELED: Errno = Errno(libc::ECANCELED);
    /// `EFAULT`: a buffer outside the address space.
    pub const EFAULT: Errno = Errno(libc::EFAULT);
    /// `EINTR`: a signal ended the wait.
    pub const EINTR: Errno = Errno(libc::EINTR);
    /// `EINVAL`: an argument the function refuses.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// `EINPROGRESS`: the request has not completed.
    pub const EINPROGRESS: Errno = Errno(libc::EINPROGRESS);
    /// `EIO`: some requests of a `lio_listio` list failed.
    pub const EIO: Errno = Errno(libc::EIO);
    /// `ENOMEM`: the engine could not be set up for lack of memory.
    pub const ENOMEM: Errno = Errno(libc::ENOMEM);

    /// The error numbered `raw` (positive, as in `errno`).
    pub const fn from_raw(raw: i32) -> Errno {
        Errno(raw)
    }

    /// The number, for `errno`.
    pub const fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&io::Error::from_raw_os_error(self.0), f)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = io::Error::from_raw_os_error(self.0).kind();
        write!(f, "Errno({}: {kind:?})", self.0)
    }
}

impl std::error::Error for Errno {}

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.0)
    }
}
