//! What a request asks for when it completes: `aio_sigevent`, checked at submission and
//! delivered once its status is final (a signal to the process or a thread, or a new thread).

use super::Errno;
use crate::sys::posix::{self as abi, sigevent, sigval};

/// What to do when a request (or a `lio_listio` list) completes.
#[derive(Clone, Copy)]
pub(super) enum Notify {
    None,
    Signal {
        signo: i32,
        value: sigval,
    },
    ThreadId {
        signo: i32,
        value: sigval,
        tid: libc::pid_t,
    },
    Thread {
        function: unsafe extern "C" fn(sigval),
        value: sigval,
        attributes: *mut libc::pthread_attr_t,
    },
}

// SAFETY: the pointers are the program's (its sigev_value and thread attributes), carried to the
// thread that delivers the notification, as glibc does.
unsafe impl Send for Notify {}

impl Notify {
    /// Checks a `struct sigevent`.
    pub(super) fn parse(ev: &sigevent) -> Result<Notify, Errno> {
        Ok(match ev.sigev_notify {
            abi::SIGEV_NONE => Notify::None,
            abi::SIGEV_SIGNAL | abi::SIGEV_THREAD_ID => {
                if ev.sigev_signo < 0 || ev.sigev_signo > libc::SIGRTMAX() {
                    return Err(Errno::EINVAL);
                }
                // Signal 0 is no signal: a zeroed aiocb asks for nothing, as with glibc.
                if ev.sigev_signo == 0 {
                    return Ok(Notify::None);
                }
                if ev.sigev_notify == abi::SIGEV_SIGNAL {
                    Notify::Signal { signo: ev.sigev_signo, value: ev.sigev_value }
                } else {
                    let tid = ev.thread_id();
                    if tid <= 0 || !abi::is_own_thread(tid) {
                        return Err(Errno::EINVAL);
                    }
                    Notify::ThreadId { signo: ev.sigev_signo, value: ev.sigev_value, tid }
                }
            }
            abi::SIGEV_THREAD => {
                let t = ev.thread();
                match t.function {
                    Some(function) => {
                        Notify::Thread { function, value: ev.sigev_value, attributes: t.attributes }
                    }
                    None => return Err(Errno::EINVAL),
                }
            }
            _ => return Err(Errno::EINVAL),
        })
    }

    pub(super) fn is_async(&self) -> bool {
        !matches!(self, Notify::None)
    }

    /// Delivers the notification. Errors cannot be reported to anyone; they are ignored, as
    /// glibc ignores them.
    pub(super) fn deliver(self) {
        match self {
            Notify::None => {}
            Notify::Signal { signo, value } => {
                let _ = abi::queue_asyncio_signal(signo, value, None);
            }
            Notify::ThreadId { signo, value, tid } => {
                let _ = abi::queue_asyncio_signal(signo, value, Some(tid));
            }
            Notify::Thread { function, value, attributes } => {
                // SAFETY: the program gave this function and attributes for SIGEV_THREAD.
                let _ = unsafe { abi::start_notify_thread(function, value, attributes) };
            }
        }
    }
}
