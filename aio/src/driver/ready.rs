//! [`Ready`]: completions waiting to be reaped, for drivers that produce them in user space
//! (memory, thread pool, fault injection): a queue, a futex word for blocking reapers (a futex
//! wait, unlike a condition variable, ends with `EINTR` when a signal arrives) and an eventfd
//! for event loops.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::Completion;
use crate::EventFd;

/// How long a reaper looks for a completion before it sleeps.
const SPIN: Duration = Duration::from_micros(10);

#[derive(Default)]
pub(crate) struct Ready {
    queue: Mutex<VecDeque<Completion>>,
    /// Bumped on every push; blocked reapers sleep on it.
    seq: AtomicU32,
    /// Reapers asleep on `seq`.
    sleepers: AtomicU32,
    efd: OnceLock<Arc<EventFd>>,
}

impl Ready {
    /// A queue that signals `efd` (shared with another source of completions) on every push.
    pub(crate) fn with_eventfd(efd: Arc<EventFd>) -> Ready {
        let ready = Ready::default();
        let _ = ready.efd.set(efd);
        ready
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Completion>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds completions and wakes whoever waits.
    pub(crate) fn push(&self, items: impl IntoIterator<Item = Completion>) {
        let mut q = self.lock();
        let before = q.len();
        q.extend(items);
        let added = q.len() - before;
        drop(q);
        if added > 0 {
            self.seq.fetch_add(1, Ordering::SeqCst);
            if self.sleepers.load(Ordering::SeqCst) > 0 {
                crate::sys::posix::futex_wake_all(&self.seq);
            }
            self.signal();
        }
    }

    /// Makes waiters look again: a reaper asleep in [`wait`](Self::wait) re-checks the queue,
    /// and a `ppoll` on the eventfd returns. Sticky for the eventfd: a wait that starts after
    /// this returns at once.
    pub(crate) fn wake(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            crate::sys::posix::futex_wake_all(&self.seq);
        }
        self.signal();
    }

    /// Signals the eventfd, if anyone asked for it.
    pub(crate) fn signal(&self) {
        if let Some(efd) = self.efd.get() {
            // A full counter (2^64 - 2 signals unread) is the only error: it is readable anyway.
            let _ = efd.write(1);
        }
    }

    /// Completions waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Moves up to `max` completions into `out` without waiting.
    pub(crate) fn take(&self, max: usize, out: &mut Vec<Completion>) -> usize {
        let mut q = self.lock();
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        n
    }

    /// Moves up to `max` completions into `out`, waiting until at least `min` have arrived or
    /// `deadline` passes (`None`: no limit). A signal while waiting ends the wait with
    /// `ErrorKind::Interrupted` if nothing was moved. With `look`, it looks for a completion
    /// for a few microseconds before it sleeps (worth it when completions come quickly).
    pub(crate) fn wait(
        &self,
        min: usize,
        max: usize,
        deadline: Option<Instant>,
        out: &mut Vec<Completion>,
        look: bool,
    ) -> io::Result<usize> {
        let min = min.min(max);
        loop {
            let seen = self.seq.load(Ordering::SeqCst);
            {
                let mut q = self.lock();
                if q.len() >= min {
                    let n = q.len().min(max);
                    out.extend(q.drain(..n));
                    return Ok(n);
                }
            }
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(self.take(max, out)),
                },
            };
            // Completions often follow each other closely: look a little before sleeping.
            let until = Instant::now() + if look { SPIN } else { Duration::ZERO };
            while self.seq.load(Ordering::Relaxed) == seen && Instant::now() < until {
                // Yield rather than spin: the thread that will push may need this CPU.
                std::thread::yield_now();
            }
            if self.seq.load(Ordering::SeqCst) != seen {
                continue;
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let r = crate::sys::posix::futex_wait(&self.seq, seen, left);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            if let Err(e) = r {
                if e.kind() == io::ErrorKind::Interrupted {
                    let n = self.take(max, out);
                    return if n > 0 { Ok(n) } else { Err(e) };
                }
            }
        }
    }

    /// The eventfd, created on first use; readable if completions already wait.
    pub(crate) fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
        if self.efd.get().is_none() {
            let efd = Arc::new(EventFd::new()?);
            if self.efd.set(efd).is_ok() && self.len() > 0 {
                self.signal();
            }
        }
        Ok(self.efd.get().expect("set above").as_fd())
    }
}
