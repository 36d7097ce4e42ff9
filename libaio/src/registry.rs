//! Per-context state, process-wide: what makes user-space reaping safe for C callers.
//!
//! C programs may call `io_getevents` on one context from several threads at once, and the
//! kernel's `io_getevents` moves the ring's `head` under a lock user space cannot take. So a
//! thread may reap from the ring in user space only when no thread of this process is inside an
//! `io_getevents`/`io_pgetevents` system call on that context, and only one user-space reaper
//! may run at a time. Each context created through this library ([`register`], from `io_setup`
//! and `io_queue_init`) has a [`CtxState`]:
//!
//! - a mutex ([`CtxState::lock`]) held while reaping from the ring, also serializing the check
//!   below and `io_destroy` (which marks the state dead under it, so the ring is never read
//!   after it is unmapped);
//! - a count of threads inside the system call on this context, raised under that mutex
//!   ([`CtxState::enter_syscall`]) and lowered after the call returns; a reaper takes from the
//!   ring only when, holding the mutex, it sees the count at zero.
//!
//! A context this library did not create (made with the raw system call) has no state and is
//! always served by the system call, which is always correct.
//!
//! After `fork` the child has none of the parent's contexts (the kernel does not inherit them),
//! yet would inherit this map and the mapping of their rings: a `pthread_atfork` child handler
//! drops the map (leaking it: another thread of the parent may have held its lock at the fork),
//! so in the child every call goes to the kernel, which answers `EINVAL`, as with the C libaio.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use aio::sys::aio_context_t;
use aio::sys::ring::Ring;

/// One context's reaping state.
#[derive(Debug)]
pub(crate) struct CtxState {
    /// The completion ring, when its header is one [`Ring`] understands; `None`: system calls
    /// only.
    pub(crate) ring: Option<Ring>,
    reaper: Mutex<Reaper>,
    in_syscall: AtomicUsize,
}

/// What the reaping mutex protects.
#[derive(Debug, Default)]
pub(crate) struct Reaper {
    /// Set by `io_destroy` before the ring is unmapped: the ring must not be touched again.
    pub(crate) dead: bool,
}

impl CtxState {
    /// Takes the reaping mutex. Nothing panics while holding it, so poisoning cannot happen;
    /// it is ignored all the same.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Reaper> {
        self.reaper.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a thread is inside the system call on this context; read under [`lock`](Self::lock).
    pub(crate) fn syscall_in_progress(&self) -> bool {
        self.in_syscall.load(Ordering::Acquire) != 0
    }

    /// Counts the calling thread as inside the system call until the returned guard drops.
    /// Raised under the mutex, so a reaper holding it sees either the count or, if it got the
    /// mutex first, finishes its reap before the system call starts.
    pub(crate) fn enter_syscall(&self) -> InSyscall<'_> {
        let _turn = self.lock();
        self.in_syscall.fetch_add(1, Ordering::Relaxed);
        InSyscall(self)
    }
}

/// A thread counted as inside the system call; see [`CtxState::enter_syscall`].
pub(crate) struct InSyscall<'a>(&'a CtxState);

impl Drop for InSyscall<'_> {
    fn drop(&mut self) {
        // Release: a reaper that then sees the count at zero (acquire) also sees every ring
        // update the kernel made during the call.
        self.0.in_syscall.fetch_sub(1, Ordering::Release);
    }
}

/// Context ids are addresses of page-aligned mappings: a multiplicative hash of the page number
/// spreads them well enough, much faster than SipHash.
#[derive(Default)]
struct CtxHasher(u64);

impl Hasher for CtxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Map = HashMap<aio_context_t, Arc<CtxState>, BuildHasherDefault<CtxHasher>>;

#[derive(Default)]
struct Registry {
    contexts: RwLock<Map>,
}

/// The live registry; null until the first context is registered, and again in a forked child.
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(std::ptr::null_mut());
static ATFORK_INSTALLED: AtomicBool = AtomicBool::new(false);

fn current() -> Option<&'static Registry> {
    let p = REGISTRY.load(Ordering::Acquire);
    // SAFETY: a non-null REGISTRY points at a leaked Box<Registry>, never freed.
    unsafe { p.as_ref() }
}

fn current_or_new() -> &'static Registry {
    if !ATFORK_INSTALLED.swap(true, Ordering::AcqRel) {
        // SAFETY: the handler is a plain function that only stores to an atomic, which is
        // allowed in a forked child. pthread_atfork can only fail with ENOMEM; without the
        // handler a forked child would reap its parent's ring, so then it is tried again later.
        if unsafe { libc::pthread_atfork(None, None, Some(forget_after_fork)) } != 0 {
            ATFORK_INSTALLED.store(false, Ordering::Release);
        }
    }
    loop {
        if let Some(r) = current() {
            return r;
        }
        let new = Box::into_raw(Box::<Registry>::default());
        match REGISTRY.compare_exchange(
            std::ptr::null_mut(),
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just leaked, never freed.
            Ok(_) => return unsafe { &*new },
            // SAFETY: `new` lost the race and was never shared.
            Err(_) => drop(unsafe { Box::from_raw(new) }),
        }
    }
}

/// `pthread_atfork` child handler: the child starts with no known contexts.
extern "C" fn forget_after_fork() {
    REGISTRY.store(std::ptr::null_mut(), Ordering::Release);
}

/// Records a context `io_setup` just created, with its ring if the header is valid.
pub(crate) fn register(ctx: aio_context_t) {
    // SAFETY: `ctx` was just returned by io_setup in this process; the Ring is used only while
    // the state is not dead, and io_destroy marks it dead (under its lock) before unmapping.
    let ring = unsafe { Ring::new(ctx) };
    let state =
        Arc::new(CtxState { ring, reaper: Mutex::default(), in_syscall: AtomicUsize::new(0) });
    let old = current_or_new()
        .contexts
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(ctx, state);
    // A stale entry: its context was destroyed behind our back (raw system call) and the kernel
    // reused the address. Its ring is gone.
    if let Some(old) = old {
        old.lock().dead = true;
    }
}

/// The state of `ctx`, if this library created it.
pub(crate) fn get(ctx: aio_context_t) -> Option<Arc<CtxState>> {
    current()?.contexts.read().unwrap_or_else(PoisonError::into_inner).get(&ctx).cloned()
}

/// Forgets `ctx` before `io_destroy`: waits for a user-space reaper in progress, then marks the
/// state dead so no thread touches the ring again.
pub(crate) fn unregister(ctx: aio_context_t) {
    let Some(registry) = current() else { return };
    let state = registry.contexts.write().unwrap_or_else(PoisonError::into_inner).remove(&ctx);
    if let Some(state) = state {
        state.lock().dead = true;
    }
}
