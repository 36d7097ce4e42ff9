//! The io_uring system call the `io-uring` crate does not make as the driver needs it: a wait
//! with a signal mask and a timeout (`IORING_ENTER_EXT_ARG`). The crate passes the C library's
//! `sizeof(sigset_t)` (128 bytes) as the mask's size, which the kernel refuses (`EINVAL`): it
//! takes its own, 8 bytes.

use std::io;
use std::mem::size_of;
use std::os::fd::RawFd;
use std::time::Duration;

/// `IORING_ENTER_GETEVENTS`.
const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
/// `IORING_ENTER_EXT_ARG`.
const IORING_ENTER_EXT_ARG: u32 = 1 << 3;
/// The kernel's `sigset_t`: `_NSIG` (64) bits.
const KERNEL_SIGSET_SIZE: u32 = 8;

/// `struct io_uring_getevents_arg`.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `struct __kernel_timespec`.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

const _: () = assert!(size_of::<GeteventsArg>() == 24);

/// `io_uring_enter(fd, 0, min_complete, GETEVENTS | EXT_ARG, {sigmask, timeout})`: waits until
/// the completion queue holds `min_complete` entries, `timeout` passes (`ETIME`; `None`, or
/// one too long to say: no limit), or a signal arrives (`EINTR`) — with `sigmask`, if given,
/// as the thread's signal mask for the wait, installed and removed atomically. Submits
/// nothing. Linux 5.11 and later.
pub fn enter_wait(
    fd: RawFd,
    min_complete: u32,
    timeout: Option<Duration>,
    sigmask: Option<&libc::sigset_t>,
) -> io::Result<()> {
    let ts = timeout.and_then(|t| {
        Some(KernelTimespec {
            tv_sec: i64::try_from(t.as_secs()).ok()?,
            tv_nsec: t.subsec_nanos().into(),
        })
    });
    let arg = GeteventsArg {
        sigmask: sigmask.map_or(0, |m| m as *const libc::sigset_t as u64),
        sigmask_sz: if sigmask.is_some() { KERNEL_SIGSET_SIZE } else { 0 },
        min_wait_usec: 0,
        ts: ts.as_ref().map_or(0, |t| t as *const KernelTimespec as u64),
    };
    // SAFETY: the argument block, the mask and the timespec are live for the call and only
    // read by the kernel; the first 8 bytes of a C library sigset_t are the kernel's.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd,
            0u32,
            min_complete,
            IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
            &arg as *const GeteventsArg,
            size_of::<GeteventsArg>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
