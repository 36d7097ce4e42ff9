//! Completion: the reaper role (one thread at a time takes completions from the driver and
//! processes every one, whoever it is for), a request's end (its status published, the fsyncs
//! held behind it released, its list counted down), and what is left to do once the state
//! lock is released (`AfterUnlock`: flushing and notifications).

use std::cell::UnsafeCell;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::notify::Notify;
use super::runtime::{Runtime, STATS};
use super::table::{AioOp, State};
use crate::driver::{Completion, Driver};

/// The role of the thread that takes completions from the driver (`Runtime::reaping`), held
/// while it lives.
pub(super) struct Reaper<'a>(&'a Runtime);

impl Reaper<'_> {
    /// Starts what was queued and takes the completions that are ready, in one call to the
    /// driver (an io_uring read of cached data completes in the submitting system call, so its
    /// status is final when `aio_read` returns). False if that failed: then flush.
    pub(super) fn flush_and_poll(&mut self) -> bool {
        let engine = self.0;
        engine.progress(self, Harvest::FlushReady).is_ok()
    }

    /// The vectors completions are taken into: the role's alone (see `Runtime::completions`).
    pub(super) fn vectors(&mut self) -> &mut ReaperVecs {
        // SAFETY: only the thread holding the role (this `Reaper`, borrowed mutably) touches
        // the vectors; they are not used across the notifications delivered after processing
        // (a handler they run cannot take the role while it is held).
        unsafe { &mut *self.0.completions.0.get() }
    }

    /// Completions as the driver gives them.
    pub(super) fn completions(&mut self) -> &mut Vec<Completion> {
        &mut self.vectors().completions
    }

    /// Completions of raw requests: `(user_data, res)`.
    pub(super) fn raw_completions(&mut self) -> &mut Vec<(u64, i64)> {
        &mut self.vectors().raw
    }
}

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        let engine = self.0;
        engine.reaping.store(false, Ordering::SeqCst);
        // Every completion ready until now was taken: a poller's grace counts from here (see
        // `nudge`), so a program that polls between submissions, which reap, never needs the
        // helper.
        if engine.polled_since.load(Ordering::Relaxed) != 0 {
            engine.polled_since.store(0, Ordering::Relaxed);
        }
        // Let a sleeper see what was processed, or take over the reaping. A sleeper counts
        // itself, then looks at `reaping` again before it sleeps (see `wait_until`): if it
        // counted itself too late to be seen here, it sees the role free.
        // (Looked at before it is cleared: a swap would write the line every time.)
        if (engine.completed.load(Ordering::Relaxed)
            && engine.completed.swap(false, Ordering::SeqCst))
            || engine.sleeping.load(Ordering::SeqCst) > 0
        {
            engine.bump();
        }
    }
}

/// What [`Runtime::progress`] takes from the driver.
#[derive(Clone, Copy)]
pub(super) enum Harvest {
    /// The completions that are ready (`Driver::poll`).
    Ready,
    /// Those, after starting what is queued (`Driver::reap` without waiting).
    FlushReady,
}

/// The reaper's vectors of completions (see `Runtime::completions`).
pub(super) struct ReaperVec(UnsafeCell<ReaperVecs>);

#[derive(Default)]
pub(super) struct ReaperVecs {
    pub(super) completions: Vec<Completion>,
    pub(super) raw: Vec<(u64, i64)>,
}

// SAFETY: the vectors are only touched by the one thread that holds the engine's `reaping` flag
// (taken with Acquire, given back with Release), so accesses never overlap and each sees the
// previous holder's writes; completions are handed between threads by the drivers already.
unsafe impl Sync for ReaperVec {}

impl ReaperVec {
    pub(super) fn new() -> ReaperVec {
        ReaperVec(UnsafeCell::new(ReaperVecs {
            completions: Vec::with_capacity(REAP_MAX),
            raw: Vec::with_capacity(REAP_MAX),
        }))
    }
}

/// Most completions taken from the driver in one call.
pub(super) const REAP_MAX: usize = 256;

/// What processing completions leaves to do once the state lock is released.
#[derive(Default)]
pub(super) struct AfterUnlock {
    pub(super) notes: Vec<Notify>,
    pub(super) flush: bool,
    /// Whether the reaper started the request and took what was ready (`queue_locked`).
    pub(super) polled: bool,
    /// Whether a request completed (its status changed): threads sleeping on `generation`
    /// must look.
    pub(super) completed: bool,
}

impl AfterUnlock {
    /// Flushes and notifies. Returns whether some request completed, for the caller to wake
    /// the threads sleeping on `generation` (`Runtime::bump`) — after it stops reaping, if it
    /// was reaping.
    #[must_use]
    pub(super) fn finish(self, engine: &Runtime) -> bool {
        if self.flush {
            let _ = engine.driver.flush();
        }
        for n in self.notes {
            n.deliver();
        }
        self.completed
    }

    /// [`finish`](Self::finish) for a thread that is not reaping: wakes the sleepers at once.
    pub(super) fn finish_and_wake(self, engine: &Runtime) {
        if self.finish(engine) {
            engine.bump();
        }
    }
}

impl Runtime {
    /// Records a completion: the aiocb's status, the fd's write ordering, the list, and the
    /// notifications to deliver once the lock is released.
    pub(super) fn finish_locked(
        &self,
        st: &mut State,
        key: usize,
        res: i64,
        done: &mut AfterUnlock,
    ) {
        done.completed = true;
        let Some(req) = st.reqs.try_remove(key) else { return };
        STATS.done(res);
        if req.cancel_requested && res == -i64::from(libc::ECANCELED) && st.cancelling > 0 {
            st.cancelled.push(req.seq);
        }
        let (ret, err) = if res < 0 { (-1, (-res) as i32) } else { (res as isize, 0) };
        if req.kind == AioOp::Read && res > 0 {
            // memcheck cannot see the kernel fill the buffer through a ring (nothing natively).
            crate::sys::valgrind::mark_defined(req.cb.fields().buf.cast(), res as usize);
        }
        req.cb.set_status(ret, err);
        if req.notify.is_async() {
            st.async_notify -= 1;
            done.notes.push(req.notify);
        }
        if let Some(l) = req.list {
            self.list_member_done(st, l, done);
        }
        if req.kind == AioOp::Write {
            let mut release = Vec::new();
            if let Some(fd) = st.fds.get_mut(&req.fd) {
                fd.writes.remove(&req.seq);
                let first = fd.writes.first().copied().unwrap_or(u64::MAX);
                fd.fsyncs.retain(|&(seq, k)| {
                    if seq < first {
                        release.push(k);
                        false
                    } else {
                        true
                    }
                });
                if fd.writes.is_empty() && fd.fsyncs.is_empty() {
                    st.fds.remove(&req.fd);
                }
            }
            for k in release {
                self.requeue_locked(st, k, done);
            }
        }
    }

    pub(super) fn list_member_done(&self, st: &mut State, l: usize, done: &mut AfterUnlock) {
        let list = &mut st.lists[l];
        list.remaining -= 1;
        if list.remaining == 0 {
            let list = st.lists.remove(l);
            if list.notify.is_async() {
                st.async_notify -= 1;
                done.notes.push(list.notify);
            }
        }
    }

    /// Takes completions from the driver as `take` says and processes them, up to
    /// [`REAP_MAX`]. Returns how many. Only the thread reaping calls it (it holds `reaper`).
    pub(super) fn progress(&self, reaper: &mut Reaper<'_>, take: Harvest) -> io::Result<usize> {
        let completions = reaper.completions();
        completions.clear();
        let n = match take {
            Harvest::Ready => self.driver.poll(REAP_MAX, completions)?,
            Harvest::FlushReady => {
                self.driver.reap(0, REAP_MAX, Some(Duration::ZERO), completions)?
            }
        };
        if n == 0 && !self.backlogged.load(Ordering::Acquire) {
            return Ok(0);
        }
        let mut done = AfterUnlock::default();
        self.process_locked(
            &mut self.state(),
            completions.iter().map(|c| (c.user_data, c.res)),
            &mut done,
        );
        completions.clear();
        // The reaper wakes the sleepers when it stops reaping.
        if done.finish(self) {
            self.completed.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }

    /// Processes completions taken from the driver, then queues what waited for room.
    pub(super) fn process_locked(
        &self,
        st: &mut State,
        completions: impl Iterator<Item = (u64, i64)>,
        done: &mut AfterUnlock,
    ) {
        for (user_data, res) in completions {
            let key = user_data as usize;
            let uncalled = st.reqs.get(key).is_some_and(|r| !r.cancel_requested);
            if res == -i64::from(libc::ECANCELED) && uncalled {
                // Cancelled by no one here: io_uring cancels the requests a thread submitted
                // when that thread exits (any thread's io_uring_enter submits what others
                // queued, too). The request never ran: submit it again, from this thread, so
                // it outlives its submitter as POSIX requires.
                self.requeue_locked(st, key, done);
                continue;
            }
            if res == -i64::from(libc::ESPIPE) {
                if let Some(req) = st.reqs.get_mut(key).filter(|r| !r.stream) {
                    if matches!(req.kind, AioOp::Read | AioOp::Write) {
                        if req.cancel_requested {
                            // aio_cancel waits for this request's end, and nothing moved:
                            // cancelled, rather than run again unseen by the cancellation.
                            self.finish_locked(st, key, -i64::from(libc::ECANCELED), done);
                            continue;
                        }
                        // A descriptor without file positions (a socket): nothing moved. Again
                        // without the offset, as glibc's read/write fallback does.
                        req.stream = true;
                        self.requeue_locked(st, key, done);
                        continue;
                    }
                }
            }
            self.finish_locked(st, key, res, done);
        }
        if !self.backlogged.load(Ordering::Acquire) {
            return;
        }
        // Room was made: queue what waited for it.
        while let Some(key) = st.backlog.pop_front() {
            let before = st.backlog.len();
            self.requeue_locked(st, key, done);
            if st.backlog.len() > before {
                break;
            }
        }
        self.backlogged.store(!st.backlog.is_empty(), Ordering::Release);
    }

    /// Becomes the thread that reaps, unless another one is (`None`). Dropping the role wakes
    /// the sleepers, so one of them can take it over.
    pub(super) fn reaper(&self) -> Option<Reaper<'_>> {
        // (`then`, not `then_some`: a Reaper made and dropped for nothing would give up the
        // role of the thread that holds it.)
        (!self.reaping.swap(true, Ordering::AcqRel)).then(|| Reaper(self))
    }

    /// Takes the completions that are ready, unless another thread is reaping (it will).
    pub(super) fn poll(&self) {
        if let Some(mut reaper) = self.reaper() {
            let _ = self.progress(&mut reaper, Harvest::Ready);
        }
    }
}
