//! An eventfd: a counter in the kernel that requests bump when they complete
//! (`IOCB_FLAG_RESFD`), and that `epoll`, `poll` or an async runtime can watch.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys;

/// An eventfd opened non-blocking and close-on-exec. See eventfd(2).
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
    pub fn new() -> io::Result<EventFd> {
        Ok(EventFd { fd: sys::fs::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)? })
    }

    /// Takes the counter and resets it to 0: how many times it was signalled since the last
    /// read. Returns 0 at once if it was not signalled.
    pub fn read(&self) -> io::Result<u64> {
        match sys::fs::eventfd_read(self.fd.as_fd()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            r => r,
        }
    }

    /// Adds `n` to the counter, waking whoever watches it.
    pub fn write(&self, n: u64) -> io::Result<()> {
        sys::fs::eventfd_write(self.fd.as_fd(), n)
    }

    /// Waits until the counter is non-zero or `timeout` passes (`None`: no limit); returns
    /// whether it is non-zero. Does not reset it.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        Ok(sys::fs::poll_one(self.fd.as_fd(), libc::POLLIN, timeout)? & libc::POLLIN != 0)
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl IntoRawFd for EventFd {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl From<EventFd> for OwnedFd {
    fn from(e: EventFd) -> OwnedFd {
        e.fd
    }
}
