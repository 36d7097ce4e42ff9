//! Waiting for completions: one thread waits in the driver, others sleep until it has
//! processed something, every wait with the caller's signal mask installed atomically; and the
//! helper thread that takes completions when no one else does.

use std::cell::OnceCell;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::complete::{Harvest, REAP_MAX};
use super::runtime::{lock, Runtime};
use super::Errno;
use crate::deadline::{deadline, left};
use crate::sys::posix::{self as abi, SignalsBlocked};
use crate::EventFd;

/// The helper thread: takes completions while requests that want a signal or a thread are in
/// flight (the program may call nothing meanwhile), and when asked by `aio_error` or
/// `aio_return` — which must not take completions themselves (a signal handler may call them)
/// — for a program that polls without waiting. It blocks every signal, runs while requests
/// are in flight, and exits [`HELPER_IDLE`] after the last one.
pub(super) struct Helper {
    /// Whether the thread runs; changed under `lock`.
    pub(super) alive: AtomicBool,
    pub(super) lock: Mutex<()>,
    /// Written to wake it (asked by a poller, or a notification is due).
    pub(super) kick: EventFd,
    /// Whether it sleeps waiting for a kick (so a kick is worth a write).
    pub(super) idle: AtomicBool,
}

/// How long the helper stays with no request in flight, before it exits.
pub(super) const HELPER_IDLE: Duration = Duration::from_secs(1);

/// How long a request may be seen in progress by `aio_error`/`aio_return`, with no thread
/// taking completions since, before the helper is asked to take them: a program that polls
/// and then waits or submits again (fio does: its submissions take the completions) never
/// needs it; one that only polls gets its completions this late at most.
pub(super) const POLL_GRACE_NS: u64 = 50_000;

/// How long the helper, asked by a poller, waits for a completion before it goes back to sleep.
pub(super) const HELPER_SLICE: Duration = Duration::from_millis(20);

/// How long a thread waits before it looks again after the driver failed to wait (which it
/// should not do): no wait is a busy loop.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(1);

impl Runtime {
    /// Waits until `ready()` or `deadline`: one thread waits in the driver, others sleep until
    /// it has processed something. `Err(EINTR)` if a signal arrives, `Err(EAGAIN)` on timeout.
    ///
    /// Every look happens with signals blocked, and every wait installs the caller's own mask
    /// atomically for its duration: a signal the program lets in either arrives during a wait
    /// (which ends with `EINTR`) or is pending when the next wait starts (which then ends at
    /// once) — it is never handled between a look and a wait that then goes on for good. The
    /// handler runs when the mask comes back, before this returns.
    pub(super) fn wait_until(
        &self,
        deadline: Option<Instant>,
        ready: impl Fn() -> bool,
    ) -> Result<(), Errno> {
        let blocked = SignalsBlocked::all();
        let mask = blocked.original();
        // Someone waits: a poller's request needs no helper (see `nudge`).
        self.polled_since.store(0, Ordering::Relaxed);
        loop {
            self.poll();
            // Loaded before looking: what is processed after the look moves it.
            let generation = self.generation.load(Ordering::SeqCst);
            if ready() {
                return Ok(());
            }
            let left = left(deadline);
            if left == Some(Duration::ZERO) {
                return Err(Errno::EAGAIN);
            }
            let waited = match self.reaper() {
                Some(mut reaper) => {
                    // Looked at again: the previous reaper may have processed what this
                    // thread waits for between its last look and taking over.
                    if ready() {
                        return Ok(());
                    }
                    let waited = self.driver.wait_ready(left, Some(mask));
                    if waited.is_ok() {
                        // Everything that is ready, not one batch: the wait may have reset
                        // the driver's readiness (the default `wait_ready` reads its
                        // eventfd), and completions a batch left behind would then not end
                        // the next wait — which, for requests that end no other way
                        // (cancelled pipe reads), would never end.
                        while let Ok(REAP_MAX) = self.progress(&mut reaper, Harvest::FlushReady) {}
                    }
                    waited
                }
                None => self.sleep(generation, left, mask),
            };
            match waited {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(Errno::EINTR),
                Err(_) => std::thread::sleep(RETRY_PAUSE),
                Ok(()) => {}
            }
        }
    }

    /// Sleeps until `generation` moves from `seen` (another thread processed completions, or
    /// stopped reaping), `timeout`, or a signal the thread's own `mask` lets in. Each sleeping
    /// thread waits on a wake descriptor of its own, written by `bump`, with `ppoll` and the
    /// mask installed atomically.
    pub(super) fn sleep(
        &self,
        seen: u32,
        timeout: Option<Duration>,
        mask: &libc::sigset_t,
    ) -> io::Result<()> {
        thread_local! {
            static WAKE: OnceCell<Option<EventFd>> = const { OnceCell::new() };
        }
        WAKE.with(|wake| {
            let Some(efd) = wake.get_or_init(|| EventFd::new().ok()) else {
                // No descriptor to spare: look again soon rather than sleep blind.
                std::thread::sleep(RETRY_PAUSE);
                return Ok(());
            };
            let fd = efd.as_raw_fd();
            lock(&self.sleepers).push(fd);
            self.sleeping.fetch_add(1, Ordering::SeqCst);
            // Registered first, then looked: a bump from now on writes this descriptor.
            let moved = self.generation.load(Ordering::SeqCst) != seen;
            let r = if moved || !self.reaping.load(Ordering::SeqCst) {
                // Processed meanwhile, or the reaper left before it could see this thread:
                // look again (and take over).
                Ok(0)
            } else {
                let mut fds = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
                crate::sys::fs::ppoll(&mut fds, timeout, Some(mask))
            };
            self.sleeping.fetch_sub(1, Ordering::SeqCst);
            {
                let mut sleepers = lock(&self.sleepers);
                if let Some(pos) = sleepers.iter().position(|&f| f == fd) {
                    sleepers.swap_remove(pos);
                }
            }
            let _ = efd.read();
            r.map(drop)
        })
    }

    /// Tells the threads asleep in `sleep` that something changed.
    pub(super) fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            for &fd in lock(&self.sleepers).iter() {
                // SAFETY: a sleeper's descriptor stays open while it is in the list (it leaves
                // the list before its thread can exit and close it).
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let _ = crate::sys::fs::eventfd_write(fd, 1);
            }
        }
    }

    /// Called by `aio_error` and `aio_return` when they see a request in progress; must be
    /// async-signal-safe (no lock, no allocation): atomics, the clock and one `write`. When
    /// the program has been polling for a while ([`POLL_GRACE_NS`]) and no thread took
    /// completions meanwhile (each that does restarts the clock), asks the helper to take them.
    pub(super) fn nudge(&self) {
        if self.reaping.load(Ordering::Relaxed) {
            return;
        }
        let now = abi::monotonic_ns().max(1);
        let since = self.polled_since.load(Ordering::Relaxed);
        if since == 0 {
            let _ =
                self.polled_since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            return;
        }
        if now.saturating_sub(since) >= POLL_GRACE_NS {
            self.kick_helper();
        }
    }

    /// Wakes the helper if it sleeps (async-signal-safe).
    pub(super) fn kick_helper(&self) {
        if self.helper.idle.swap(false, Ordering::AcqRel) {
            let _ = self.helper.kick.write(1);
        }
    }

    /// Makes sure the helper runs, after a request was accepted that did not complete at once:
    /// a poller may need it, and a notification (`notify`) will. Decided under the helper's
    /// lock, as its exit is: a request counted before this call is seen by the helper, or the
    /// helper is gone and this starts another.
    pub(super) fn need_helper(&'static self, notify: bool) {
        // Always under the lock (uncontended: one atomic exchange): a helper deciding to exit
        // looks at the requests under it too, so it either sees this one or is gone before
        // this looks.
        let _lock = lock(&self.helper.lock);
        if self.helper.alive.load(Ordering::Acquire) {
            if notify {
                self.kick_helper();
            }
            return;
        }
        // Started with every signal blocked, so it never takes the program's signals.
        let spawned = abi::with_signals_blocked(|| {
            std::thread::Builder::new().name("aio-notify".into()).spawn(move || self.helper_loop())
        });
        if spawned.is_ok() {
            self.helper.alive.store(true, Ordering::Release);
        }
    }

    /// The helper (see [`Helper`]).
    pub(super) fn helper_loop(&self) {
        let mut idle_since = Instant::now();
        loop {
            if self.state().async_notify > 0 {
                idle_since = Instant::now();
                let until = deadline(Some(Duration::from_millis(200)));
                let _ = self.wait_until(until, || self.state().async_notify == 0);
                continue;
            }
            // Sleep until kicked: by a poller (take completions for it) or a submitter whose
            // request wants a notification.
            self.helper.idle.store(true, Ordering::SeqCst);
            let kicked = if self.state().async_notify > 0 {
                true
            } else {
                let wait = HELPER_IDLE.saturating_sub(idle_since.elapsed()).max(RETRY_PAUSE);
                self.helper.kick.wait(Some(wait)).unwrap_or(false)
            };
            self.helper.idle.store(false, Ordering::SeqCst);
            if kicked {
                let _ = self.helper.kick.read();
                idle_since = Instant::now();
                let seen = self.generation.load(Ordering::SeqCst);
                let until = deadline(Some(HELPER_SLICE));
                let _ = self.wait_until(until, || self.generation.load(Ordering::SeqCst) != seen);
                continue;
            }
            let busy = { !self.state().reqs.is_empty() };
            if busy {
                idle_since = Instant::now();
                continue;
            }
            if idle_since.elapsed() >= HELPER_IDLE {
                // Decided under the helper's lock (see `need_helper`).
                let _lock = lock(&self.helper.lock);
                if self.state().reqs.is_empty() {
                    self.helper.alive.store(false, Ordering::Release);
                    return;
                }
            }
        }
    }
}
