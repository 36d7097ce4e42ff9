//! Reaping completions from a context's mmapped ring, in user space, without a system call.
//!
//! The kernel maps the ring at the `aio_context_t` address: an [`aio_ring`] header, then `nr`
//! [`io_event`] slots. `aio_complete` writes the event at `tail`, issues a write barrier, then
//! advances `tail`. A reader loads `tail` with acquire ordering, copies the events from `head`
//! up to it, then stores the new `head` with release ordering, so the kernel never sees a slot
//! as free before the copy is done. The kernel's own `io_getevents` moves `head` under a lock
//! user space cannot take, so a user-space reader must never run at the same time as an
//! `io_getevents` on the same context, nor as another user-space reader.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::abi::{aio_context_t, aio_ring, io_event, AIO_RING_INCOMPAT_FEATURES, AIO_RING_MAGIC};

/// A context's completion ring whose header was found valid.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    hdr: NonNull<aio_ring>,
    events: NonNull<io_event>,
    nr: u32,
}

// SAFETY: the ring is memory shared with the kernel, accessed only through atomics and volatile
// reads; which thread holds the pointer does not matter. Exclusive reaping is the caller's
// contract on `reap`.
unsafe impl Send for Ring {}
// SAFETY: as above; every `&self` method only reads the header atomically.
unsafe impl Sync for Ring {}

impl Ring {
    /// Looks at the ring of `ctx` and returns it if its header is one this reader understands
    /// (magic, no unknown incompatible features, the expected header length, a non-zero size).
    ///
    /// # Safety
    ///
    /// `ctx` must be a context this process created with `io_setup` and has not destroyed, and the
    /// returned `Ring` must not be used once it is destroyed (`io_destroy` unmaps the ring).
    pub unsafe fn new(ctx: aio_context_t) -> Option<Ring> {
        let hdr = NonNull::new(ctx as *mut aio_ring)?;
        if !(hdr.as_ptr() as usize).is_multiple_of(std::mem::align_of::<aio_ring>()) {
            return None;
        }
        // SAFETY: the caller guarantees `ctx` is a live context, so its ring header is mapped and
        // readable; volatile because the kernel shares this memory.
        let h = unsafe { std::ptr::read_volatile(hdr.as_ptr()) };
        if h.magic != AIO_RING_MAGIC
            || h.incompat_features & !AIO_RING_INCOMPAT_FEATURES != 0
            || h.header_length as usize != std::mem::size_of::<aio_ring>()
            || h.nr == 0
        {
            return None;
        }
        // SAFETY: the events start `header_length` bytes after the header, inside the mapping.
        let events = unsafe { hdr.cast::<u8>().add(h.header_length as usize).cast::<io_event>() };
        Some(Ring { hdr, events, nr: h.nr })
    }

    /// Number of event slots.
    pub fn capacity(&self) -> u32 {
        self.nr
    }

    fn head(&self) -> &AtomicU32 {
        // SAFETY: `head` is an aligned u32 inside the live mapping (see `new`), and every access
        // to it, ours and the kernel's, is a single aligned 32-bit load or store.
        unsafe { AtomicU32::from_ptr(&raw mut (*self.hdr.as_ptr()).head) }
    }

    fn tail(&self) -> &AtomicU32 {
        // SAFETY: as for `head`.
        unsafe { AtomicU32::from_ptr(&raw mut (*self.hdr.as_ptr()).tail) }
    }

    /// How many completions are waiting in the ring, or `None` if `head` or `tail` is out of
    /// range (the header was overwritten: fall back to `io_getevents`).
    pub fn pending(&self) -> Option<u32> {
        let head = self.head().load(Ordering::Relaxed);
        let tail = self.tail().load(Ordering::Acquire);
        if head >= self.nr || tail >= self.nr {
            return None;
        }
        Some(if tail >= head { tail - head } else { self.nr - head + tail })
    }

    /// Moves up to `out.len()` completions from the ring into `out`, returning how many, or
    /// `None` if `head` or `tail` is out of range (nothing was taken).
    ///
    /// # Safety
    ///
    /// The context must still be alive, and no other reader may run at the same time: neither
    /// another `reap` on this context nor an `io_getevents`/`io_pgetevents` on it.
    pub unsafe fn reap(&self, out: &mut [io_event]) -> Option<usize> {
        let mut head = self.head().load(Ordering::Relaxed);
        let tail = self.tail().load(Ordering::Acquire);
        if head >= self.nr || tail >= self.nr {
            return None;
        }
        let mut n = 0;
        while n < out.len() && head != tail {
            // SAFETY: `head < nr`, so the slot lies inside the mapped event array; the acquire
            // load of `tail` orders this read after the kernel's write of the slot.
            out[n] = unsafe { std::ptr::read_volatile(self.events.as_ptr().add(head as usize)) };
            head = (head + 1) % self.nr;
            n += 1;
        }
        if n > 0 {
            self.head().store(head, Ordering::Release);
        }
        Some(n)
    }
}
