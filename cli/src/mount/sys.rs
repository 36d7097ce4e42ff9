//! The system calls the mirror makes on the backing directory, each behind a safe wrapper in
//! the library's raw layer: the `*at` family on `O_PATH` descriptors (one per inode the kernel
//! knows), and the calls that need a path reach the file through `/proc/self/fd/N`
//! ([`aio::sys::fsops`]); the process-wide ones (umask, descriptor limit, signals) are
//! [`aio::sys::proc`] and [`aio::sys::signal`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

pub use aio::sys::fs::fallocate;
pub use aio::sys::fsops::*;

/// Where the file `fd` is now, as `/proc/self/fd/N` says.
pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Sets this process's umask (the mirror creates files with the modes the kernel passes).
pub fn set_umask(mask: u32) {
    aio::sys::proc::set_umask(mask);
}

/// Raises the soft limit on open descriptors to the hard limit (one `O_PATH` descriptor per
/// inode the kernel remembers); failure leaves the old limit.
pub fn raise_nofile() {
    let _ = aio::sys::proc::raise_nofile_limit();
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    aio::sys::proc::euid() == 0
}

/// Blocks `signals` in this thread (and in the threads it starts later), so one thread can
/// wait for them with [`wait_signal`].
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    aio::sys::signal::block(signals)
}

/// Waits for one of `signals` (blocked with [`block_signals`]); returns its number.
pub fn wait_signal(signals: &[i32]) -> i32 {
    aio::sys::signal::wait(signals)
}

/// The name of the signal `sig` (`SIGTERM`).
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}
