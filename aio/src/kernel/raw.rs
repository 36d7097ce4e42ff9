//! [`RawContext`]: a kernel AIO context without buffer ownership, for callers that manage
//! request memory themselves (the safe [`Context`](super::Context) is built on it).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::sys::ring::Ring;
use crate::sys::{self, aio_context_t, io_event, iocb};

/// How completions are taken from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapMode {
    /// From the mmapped ring in user space when its header is valid, with `io_getevents` only
    /// to wait; the default.
    Ring,
    /// Always with the `io_getevents` system call.
    Syscall,
}

/// A native AIO context (`io_setup`), destroyed on drop (`io_destroy`).
///
/// It does not know what memory its requests use: submitting and cancelling are `unsafe`, and
/// the caller keeps every buffer alive until its completion is reaped or the context is
/// dropped. Reaping (`get_events`) is safe and may be called from several threads; calls are
/// serialized, because the ring has one consumer.
#[derive(Debug)]
pub struct RawContext {
    id: aio_context_t,
    ring: Option<Ring>,
    syscall_only: AtomicBool,
    reaper: Gate,
    destroyed: bool,
}

impl RawContext {
    /// `io_setup(max_events)`: a context for at least `max_events` requests in flight.
    ///
    /// The kernel counts `max_events` against `/proc/sys/fs/aio-max-nr` for the whole system;
    /// when that would be exceeded the error says so.
    #[doc(alias = "io_setup")]
    pub fn new(max_events: usize) -> io::Result<RawContext> {
        let nr = u32::try_from(max_events).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("io_setup: {max_events} events is more than a context can hold"),
            )
        })?;
        let id = sys::aio::io_setup(nr).map_err(|e| setup_error(e, max_events))?;
        // SAFETY: `id` was just created by io_setup in this process and is destroyed only by
        // our Drop, after which the Ring is never used.
        let ring = unsafe { Ring::new(id) };
        Ok(RawContext {
            id,
            ring,
            syscall_only: AtomicBool::new(false),
            reaper: Gate::default(),
            destroyed: false,
        })
    }

    /// The kernel's handle (`aio_context_t`), as libaio's `io_context_t` holds it.
    pub fn id(&self) -> aio_context_t {
        self.id
    }

    /// Chooses how completions are taken; [`ReapMode::Ring`] falls back to system calls when the
    /// ring header is not valid.
    pub fn set_reap_mode(&self, mode: ReapMode) {
        self.syscall_only.store(mode == ReapMode::Syscall, Ordering::Relaxed);
    }

    /// How completions are taken now: `Ring` only if it was asked for and the header is valid
    /// — and not under valgrind, whose memcheck learns what a read filled only from
    /// `io_getevents` (see [`crate::sys::valgrind`]).
    pub fn reap_mode(&self) -> ReapMode {
        if self.ring.is_some()
            && !self.syscall_only.load(Ordering::Relaxed)
            && !crate::sys::valgrind::running()
        {
            ReapMode::Ring
        } else {
            ReapMode::Syscall
        }
    }

    /// Number of event slots in the completion ring, when its header is valid.
    pub fn ring_capacity(&self) -> Option<u32> {
        self.ring.map(|r| r.capacity())
    }

    /// `io_submit`: queues the requests and returns how many the kernel took (the first ones).
    /// An error means none was taken.
    ///
    /// # Safety
    ///
    /// As for [`sys::aio::io_submit`]: each iocb is valid and writable during the call, and every
    /// buffer, `iovec` array and eventfd it names stays valid until its completion has been
    /// reaped from this context or the context has been dropped.
    #[doc(alias = "io_submit")]
    pub unsafe fn submit(&self, iocbs: &[*mut iocb]) -> io::Result<usize> {
        if iocbs.is_empty() {
            return Ok(0);
        }
        // SAFETY: forwarded from the caller.
        unsafe { sys::aio::io_submit(self.id, iocbs) }
    }

    /// `io_cancel`: asks the kernel to cancel the request submitted from address `iocb`.
    ///
    /// `Ok(None)`: cancellation started (current kernels report it as `EINPROGRESS`); the
    /// request's completion will be reaped as usual. `Ok(Some(event))`: an old kernel cancelled
    /// it and returned its completion here instead of through the ring. `EINVAL`: the request
    /// cannot be cancelled (file I/O on current kernels) or is not in flight.
    ///
    /// # Safety
    ///
    /// `iocb` must be readable: the address a request of this context was submitted from.
    #[doc(alias = "io_cancel")]
    pub unsafe fn cancel(&self, iocb: *const iocb) -> io::Result<Option<io_event>> {
        let mut event = io_event::default();
        // SAFETY: forwarded from the caller; `event` is writable.
        match unsafe { sys::aio::io_cancel(self.id, iocb, &mut event) } {
            Ok(()) => Ok(Some(event)),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `io_getevents`: waits until at least `min_nr` completions are available or `timeout`
    /// passes (`None`: no limit; zero: do not wait), and moves up to `events.len()` of them into
    /// `events`. Returns how many; fewer than `min_nr` means the timeout passed.
    ///
    /// With [`ReapMode::Ring`], completions already in the ring are taken without a system call,
    /// and a zero timeout with an empty ring returns 0 with no system call at all.
    ///
    /// A signal while waiting gives `EINTR` (`ErrorKind::Interrupted`) if nothing was taken yet;
    /// completions already taken are always returned, never dropped.
    #[doc(alias = "io_getevents")]
    pub fn get_events(
        &self,
        min_nr: usize,
        events: &mut [io_event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.pget_events(min_nr, events, timeout, None)
    }

    /// `io_pgetevents`: [`get_events`](Self::get_events) with `sigmask` installed atomically for
    /// the duration of the wait (`None`: the thread's mask is left alone).
    #[doc(alias = "io_pgetevents")]
    pub fn pget_events(
        &self,
        min_nr: usize,
        events: &mut [io_event],
        timeout: Option<Duration>,
        sigmask: Option<&libc::sigset_t>,
    ) -> io::Result<usize> {
        let min_nr = min_nr.min(events.len());
        let deadline = crate::deadline::deadline(timeout);
        let Some(_turn) = self.reaper.enter(deadline) else {
            return Ok(0);
        };
        let mut taken = 0;
        if self.reap_mode() == ReapMode::Ring {
            if let Some(ring) = &self.ring {
                // SAFETY: the context is alive (we hold &self), and holding the reaper turn makes
                // this the only reader of the ring: every io_getevents of this context is issued
                // below, under the same turn.
                taken = unsafe { ring.reap(events) }.unwrap_or(0);
                if taken >= min_nr.max(1) || taken == events.len() {
                    return Ok(taken);
                }
                // The ring is empty: with nothing to wait for, do not enter the kernel.
                if min_nr == 0 || timeout == Some(Duration::ZERO) {
                    return Ok(taken);
                }
            }
        }
        let remaining = crate::deadline::left(deadline);
        let rest = &mut events[taken..];
        let want = min_nr.saturating_sub(taken);
        let got = match sigmask {
            None => sys::aio::io_getevents(self.id, want, rest, remaining),
            Some(mask) => sys::aio::io_pgetevents(self.id, want, rest, remaining, Some(mask)),
        };
        match got {
            Ok(n) => Ok(taken + n),
            Err(_) if taken > 0 => Ok(taken),
            Err(e) => Err(e),
        }
    }

    /// How many completions wait in the ring (without taking them), when its header is valid.
    pub fn ring_pending(&self) -> Option<u32> {
        self.ring.and_then(|r| r.pending())
    }

    /// `io_destroy` now, reporting its error. The kernel waits for every request in flight to
    /// complete; afterwards it no longer touches their buffers.
    pub fn destroy(mut self) -> io::Result<()> {
        self.destroy_in_place()
    }

    pub(crate) fn destroy_in_place(&mut self) -> io::Result<()> {
        if self.destroyed {
            return Ok(());
        }
        self.destroyed = true;
        self.ring = None;
        sys::aio::io_destroy(self.id)
    }
}

impl Drop for RawContext {
    fn drop(&mut self) {
        // An error here (EINVAL: the context is not this process's, as after fork) leaves
        // nothing to clean up.
        let _ = self.destroy_in_place();
    }
}

fn setup_error(e: io::Error, max_events: usize) -> io::Error {
    let read = |p: &str| {
        std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into())
    };
    match e.raw_os_error() {
        Some(libc::EAGAIN) => io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "io_setup({max_events}): the system-wide limit on AIO events would be exceeded \
                 (/proc/sys/fs/aio-max-nr is {}, /proc/sys/fs/aio-nr is {}): raise \
                 /proc/sys/fs/aio-max-nr or ask for fewer events",
                read("/proc/sys/fs/aio-max-nr"),
                read("/proc/sys/fs/aio-nr")
            ),
        ),
        Some(libc::ENOSYS) => io::Error::new(
            io::ErrorKind::Unsupported,
            "io_setup: this kernel has no native AIO (built without CONFIG_AIO)",
        ),
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("io_setup({max_events}): invalid number of events"),
        ),
        _ => io::Error::new(e.kind(), format!("io_setup({max_events}): {e}")),
    }
}

/// One reaper at a time, with a deadline on the wait for one's turn.
#[derive(Debug, Default)]
struct Gate {
    busy: Mutex<bool>,
    freed: Condvar,
}

struct Turn<'a>(&'a Gate);

impl Gate {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the turn until `deadline` (`None`: no limit); `None` if it passed first.
    fn enter(&self, deadline: Option<Instant>) -> Option<Turn<'_>> {
        let mut busy = self.lock();
        while *busy {
            busy = match deadline {
                None => self.freed.wait(busy).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let left = d.checked_duration_since(Instant::now())?;
                    self.freed.wait_timeout(busy, left).unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
        *busy = true;
        Some(Turn(self))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.lock() = false;
        self.0.freed.notify_one();
    }
}
