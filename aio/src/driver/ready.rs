//! [`Ready`]: completions waiting to be reaped, for drivers that produce them in user space
//! (memory, thread pool, fault injection): a queue, a condition variable for blocking reapers
//! and an eventfd for event loops.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::Completion;
use crate::EventFd;

#[derive(Default)]
pub(crate) struct Ready {
    queue: Mutex<VecDeque<Completion>>,
    cond: Condvar,
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
            self.cond.notify_all();
            self.signal();
        }
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
    /// `deadline` passes (`None`: no limit).
    pub(crate) fn wait(
        &self,
        min: usize,
        max: usize,
        deadline: Option<Instant>,
        out: &mut Vec<Completion>,
    ) -> usize {
        let min = min.min(max);
        let mut q = self.lock();
        while q.len() < min {
            q = match deadline {
                None => self.cond.wait(q).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let Some(left) = d.checked_duration_since(Instant::now()) else { break };
                    self.cond.wait_timeout(q, left).unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        n
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

/// A deadline `timeout` from now (`None`: none).
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}
