//! [`Buf`]: a request's memory, as a driver sees it — segments to read or write, and the owner
//! that keeps them alive.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::owner::Owner;

use crate::buf::{IoBuf, IoBufMut};

/// Most segments in one request (`IOV_MAX`).
pub(crate) const IOV_MAX: usize = 1024;

/// The memory of one request: up to `IOV_MAX` (1024) segments, and what owns them.
///
/// Built from owned buffers ([`IoBuf`], [`IoBufMut`]), it keeps them until the request's
/// completion gives the `Buf` back, where [`take`](Buf::take) returns them. Built from raw
/// memory ([`Buf::raw`], for C callers), the caller answers for its lifetime.
///
/// A read fills the segments in order; a write sends them in order.
pub struct Buf {
    segs: Segs,
    owner: Owner,
    /// Something else to keep alive until the request completes (the file it is for).
    keep: Option<Arc<dyn Any + Send + Sync>>,
}

/// The segments, and whether a read may fill them (kept beside the enum's tag, where it costs
/// no room: a `Buf` is 96 bytes).
enum Segs {
    None,
    One(libc::iovec, bool),
    Many(Box<[libc::iovec]>, bool),
}

// SAFETY: the segments point into memory owned by `owner` (which is Send) or, for raw buffers,
// memory whose owner promised it stays valid wherever the request goes; the iovecs themselves
// are plain data.
unsafe impl Send for Buf {}
// SAFETY: shared access only reads the segment list; the memory behind it is reached through
// `&mut self` (`scatter`) or read (`gather`).
unsafe impl Sync for Buf {}

fn iovec(ptr: *const u8, len: usize) -> libc::iovec {
    libc::iovec { iov_base: ptr.cast_mut().cast(), iov_len: len }
}

impl Buf {
    /// No memory (fsync).
    pub fn none() -> Buf {
        Buf { segs: Segs::None, owner: Owner::none(), keep: None }
    }

    /// A buffer to read into: its whole capacity ([`IoBuf::bytes_total`]).
    pub fn for_read<B: IoBufMut>(mut buf: B) -> Buf {
        let seg = iovec(buf.stable_mut_ptr(), buf.bytes_total());
        Buf { segs: Segs::One(seg, true), owner: Owner::new(buf), keep: None }
    }

    /// A buffer to write from: its data ([`IoBuf::bytes_init`]).
    pub fn for_write<B: IoBuf>(buf: B) -> Buf {
        let seg = iovec(buf.stable_ptr(), buf.bytes_init());
        Buf { segs: Segs::One(seg, false), owner: Owner::new(buf), keep: None }
    }

    /// Several buffers to read into, filled in order. [`take`](Buf::take) gives back the `Vec`.
    pub fn for_readv<B: IoBufMut>(mut bufs: Vec<B>) -> Buf {
        let segs = bufs.iter_mut().map(|b| iovec(b.stable_mut_ptr(), b.bytes_total())).collect();
        Buf { segs: Segs::Many(segs, true), owner: Owner::new(bufs), keep: None }
    }

    /// Several buffers to write, in order. [`take`](Buf::take) gives back the `Vec`.
    pub fn for_writev<B: IoBuf>(bufs: Vec<B>) -> Buf {
        let segs = bufs.iter().map(|b| iovec(b.stable_ptr(), b.bytes_init())).collect();
        Buf { segs: Segs::Many(segs, false), owner: Owner::new(bufs), keep: None }
    }

    /// Memory the caller owns: `len` bytes at `ptr`, writable if `writable`.
    ///
    /// # Safety
    ///
    /// The memory must stay valid — and, if writable, not be accessed by anyone else — until
    /// the request it goes into has completed (its completion was reaped or its driver dropped).
    pub unsafe fn raw(ptr: *mut u8, len: usize, writable: bool) -> Buf {
        Buf { segs: Segs::One(iovec(ptr, len), writable), owner: Owner::none(), keep: None }
    }

    /// Memory the caller owns, as an `iovec` array (copied; the array itself need not outlive
    /// the call).
    ///
    /// # Safety
    ///
    /// As for [`Buf::raw`], for every segment.
    pub unsafe fn raw_iov(iov: &[libc::iovec], writable: bool) -> Buf {
        Buf { segs: Segs::Many(iov.into(), writable), owner: Owner::none(), keep: None }
    }

    /// Adds an owner: something to keep alive with the request and give back with it
    /// ([`take`](Buf::take), [`into_owner`](Buf::into_owner)). An owner the `Buf` already had
    /// is not given back but kept alive as long as the `Buf`: its segments may point into it.
    pub fn with_owner(mut self, owner: Box<dyn Any + Send>) -> Buf {
        let old = std::mem::replace(&mut self.owner, Owner::from_box(owner));
        if old.is_some() {
            let kept: (Option<Arc<dyn Any + Send + Sync>>, Mutex<Owner>) =
                (self.keep.take(), Mutex::new(old));
            self.keep = Some(Arc::new(kept));
        }
        self
    }

    /// Keeps `obj` alive until the request completes and its `Buf` is dropped — for instance
    /// the file a request is for, so its descriptor cannot close (and its number be reused)
    /// while a driver may still use it.
    pub fn keep_alive(mut self, obj: Arc<dyn Any + Send + Sync>) -> Buf {
        self.keep = Some(obj);
        self
    }

    /// The owned buffer back, if it is a `B` (a `Vec<B>` for `for_readv`/`for_writev`).
    pub fn take<B: 'static>(self) -> Option<B> {
        self.owner.take::<B>()
    }

    /// The buffer a read filled, if it is a `B`, with the first `filled` bytes recorded as data
    /// ([`IoBufMut::set_init`]): for a `Vec<u8>`, its length grows to cover them.
    ///
    /// # Safety
    ///
    /// This `Buf` must have been made by [`Buf::for_read`] from a `B`, and a read must have
    /// written `filled` bytes into it — as a [`Driver`](super::Driver)'s completion reports.
    pub unsafe fn take_filled<B: IoBufMut>(self, filled: usize) -> Option<B> {
        let mut buf: B = self.take()?;
        let filled = filled.min(buf.bytes_total());
        // SAFETY: the caller vouches that a read wrote the first `filled` bytes.
        unsafe { buf.set_init(filled) };
        Some(buf)
    }

    /// Like [`take_filled`](Buf::take_filled) for [`Buf::for_readv`]: the bytes are shared out
    /// over the buffers in order.
    ///
    /// # Safety
    ///
    /// This `Buf` must have been made by [`Buf::for_readv`] from a `Vec<B>`, and a read must
    /// have written `filled` bytes into it.
    pub unsafe fn take_filled_vec<B: IoBufMut>(self, filled: usize) -> Option<Vec<B>> {
        let mut bufs: Vec<B> = self.take()?;
        let mut left = filled;
        for b in &mut bufs {
            let n = left.min(b.bytes_total());
            left -= n;
            // SAFETY: the read filled the buffers in order; this one got `n` bytes.
            unsafe { b.set_init(n) };
        }
        Some(bufs)
    }

    /// The owner, whatever its type.
    pub fn into_owner(self) -> Option<Box<dyn Any + Send>> {
        self.owner.into_box()
    }

    /// Number of segments.
    pub fn segments(&self) -> usize {
        match &self.segs {
            Segs::None => 0,
            Segs::One(..) => 1,
            Segs::Many(v, _) => v.len(),
        }
    }

    /// The segments, as the kernel's `struct iovec`.
    pub fn iovecs(&self) -> &[libc::iovec] {
        match &self.segs {
            Segs::None => &[],
            Segs::One(v, _) => std::slice::from_ref(v),
            Segs::Many(v, _) => v,
        }
    }

    /// Total length of the segments.
    pub fn len(&self) -> usize {
        self.iovecs().iter().map(|v| v.iov_len).sum()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a read may fill it.
    pub fn is_writable(&self) -> bool {
        matches!(self.segs, Segs::One(_, true) | Segs::Many(_, true))
    }

    /// Shortens the segments so they hold at most `len` bytes (the owner keeps all its memory).
    pub fn truncate(&mut self, len: usize) {
        let mut left = len;
        let cut = |v: &mut libc::iovec, left: &mut usize| {
            v.iov_len = v.iov_len.min(*left);
            *left -= v.iov_len;
        };
        match &mut self.segs {
            Segs::None => {}
            Segs::One(v, _) => cut(v, &mut left),
            Segs::Many(vs, _) => vs.iter_mut().for_each(|v| cut(v, &mut left)),
        }
    }

    /// Copies `src` into the segments in order; returns how many bytes fit. Nothing is copied
    /// into a read-only buffer.
    pub fn scatter(&mut self, src: &[u8]) -> usize {
        if !self.is_writable() {
            return 0;
        }
        let mut done = 0;
        for v in self.iovecs() {
            if done == src.len() {
                break;
            }
            // An empty segment is skipped, as preadv skips it.
            let n = v.iov_len.min(src.len() - done);
            if n == 0 {
                continue;
            }
            // SAFETY: the segment is valid for writes of `iov_len` bytes while this Buf lives
            // (owned memory, or the `raw` constructor's promise), `&mut self` means no request
            // is using it, and `src` is a distinct borrow.
            unsafe { std::ptr::copy_nonoverlapping(src[done..].as_ptr(), v.iov_base.cast(), n) };
            done += n;
        }
        done
    }

    /// Copies the segments, in order, into `dst`; returns how many bytes.
    pub fn gather(&self, dst: &mut [u8]) -> usize {
        let mut done = 0;
        for v in self.iovecs() {
            if done == dst.len() {
                break;
            }
            // An empty segment is skipped, as pwritev skips it.
            let n = v.iov_len.min(dst.len() - done);
            if n == 0 {
                continue;
            }
            // SAFETY: the segment is valid for reads of `iov_len` bytes while this Buf lives;
            // `dst` is a distinct, exclusive borrow.
            unsafe {
                std::ptr::copy_nonoverlapping(v.iov_base.cast::<u8>(), dst[done..].as_mut_ptr(), n)
            };
            done += n;
        }
        done
    }
}

impl fmt::Debug for Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buf")
            .field("segments", &self.segments())
            .field("len", &self.len())
            .field("writable", &self.is_writable())
            .field("owned", &self.owner.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AlignedBuf;

    /// Requests and completions carry a `Buf` through every layer by value: at 128 bytes or
    /// less, a move is a few vector stores, not a `memcpy` call.
    #[test]
    fn small_enough_to_move_cheaply() {
        use std::mem::size_of;
        assert_eq!(size_of::<Buf>(), 96);
        assert!(size_of::<super::super::Completion>() <= 112);
        assert!(size_of::<super::super::Request>() <= 128);
    }

    #[test]
    fn scatter_gather_and_take_back() {
        let mut b = Buf::for_readv(vec![Vec::<u8>::with_capacity(3), Vec::with_capacity(5)]);
        assert_eq!(b.len(), 8);
        assert_eq!(b.scatter(b"abcdefghij"), 8);
        let mut out = [0u8; 8];
        assert_eq!(b.gather(&mut out), 8);
        assert_eq!(&out, b"abcdefgh");
        let bufs: Vec<Vec<u8>> = b.take().unwrap();
        assert_eq!(bufs.len(), 2);

        let w = Buf::for_write(AlignedBuf::from_slice(b"xyz", 512));
        assert!(!w.is_writable());
        assert_eq!(w.len(), 3);
        assert!(w.take::<Vec<u8>>().is_none(), "wrong type gives nothing");
    }

    /// Adding an owner keeps the one the segments point into alive until the `Buf` is dropped
    /// (it used to drop it at once, and a read then wrote into freed memory).
    #[test]
    fn with_owner_keeps_the_first_owner_alive() {
        use std::sync::atomic::{AtomicBool, Ordering};
        struct Flagged(Vec<u8>, Arc<AtomicBool>);
        // SAFETY: a Vec's heap storage, whatever wraps it.
        unsafe impl IoBuf for Flagged {
            fn stable_ptr(&self) -> *const u8 {
                self.0.stable_ptr()
            }
            fn bytes_init(&self) -> usize {
                self.0.bytes_init()
            }
            fn bytes_total(&self) -> usize {
                self.0.bytes_total()
            }
        }
        // SAFETY: as above.
        unsafe impl IoBufMut for Flagged {
            fn stable_mut_ptr(&mut self) -> *mut u8 {
                self.0.stable_mut_ptr()
            }
            unsafe fn set_init(&mut self, len: usize) {
                // SAFETY: forwarded.
                unsafe { self.0.set_init(len) }
            }
        }
        impl Drop for Flagged {
            fn drop(&mut self) {
                self.1.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let mut b = Buf::for_read(Flagged(vec![0u8; 4096], Arc::clone(&dropped)))
            .with_owner(Box::new(7u32));
        assert!(!dropped.load(Ordering::SeqCst), "the memory the segments point into is alive");
        assert_eq!(b.scatter(&[9u8; 4096]), 4096);
        let mut back = [0u8; 4096];
        assert_eq!(b.gather(&mut back), 4096);
        assert_eq!(back, [9u8; 4096]);
        assert_eq!(b.take::<u32>(), Some(7), "the new owner is what comes back");
        assert!(dropped.load(Ordering::SeqCst), "the first owner goes with the Buf");
    }

    /// Empty segments are skipped, as `preadv` and `pwritev` skip them: they do not end the
    /// copy (a read of `[0, 87]` bytes from a RAM disk used to return 0 bytes, as at end of
    /// file).
    #[test]
    fn empty_segments_are_skipped() {
        let mut r = Buf::for_readv(vec![
            Vec::<u8>::with_capacity(0),
            Vec::with_capacity(3),
            Vec::with_capacity(0),
            Vec::with_capacity(2),
        ]);
        assert_eq!(r.len(), 5);
        assert_eq!(r.scatter(b"abcdefg"), 5);
        let mut out = [0u8; 8];
        assert_eq!(r.gather(&mut out), 5);
        assert_eq!(&out[..5], b"abcde");
        let w = Buf::for_writev(vec![Vec::new(), b"xy".to_vec(), Vec::new(), b"z".to_vec()]);
        let mut out = [0u8; 2];
        assert_eq!(w.gather(&mut out), 2, "as much as fits");
        assert_eq!(&out, b"xy");
        let mut none = [0u8; 0];
        assert_eq!(w.gather(&mut none), 0);
    }

    #[test]
    fn truncate_shortens_in_order() {
        let mut b = Buf::for_readv(vec![AlignedBuf::new(512, 512), AlignedBuf::new(512, 512)]);
        b.truncate(700);
        assert_eq!(b.iovecs().iter().map(|v| v.iov_len).collect::<Vec<_>>(), [512, 188]);
        let mut w = Buf::for_write(b"hello".to_vec());
        assert_eq!(w.scatter(b"no"), 0, "read-only");
        w.truncate(2);
        assert_eq!(w.len(), 2);
    }
}
