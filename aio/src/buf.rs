//! Owned buffers for I/O the kernel performs after the call that starts it has returned.
//!
//! A request takes its buffer by value and gives it back with the result, so the memory stays
//! alive — and is not touched by the program — until the kernel is done with it. [`IoBuf`] is
//! what a write reads from, [`IoBufMut`] what a read fills; both are implemented for `Vec<u8>`,
//! `Box<[u8]>`, [`AlignedBuf`] (for `O_DIRECT`) and [`Slice`]s of them.

use std::alloc::{self, Layout};
use std::fmt;
use std::io;
use std::ops::{Bound, Deref, DerefMut, RangeBounds};
use std::ptr::NonNull;

/// A buffer whose bytes the kernel may read after the call that submitted it returns.
///
/// # Safety
///
/// An implementation promises that `stable_ptr` is valid for reads of `bytes_init` bytes, and
/// that both the pointer and the memory behind it stay valid and unchanged when the value is
/// moved, for as long as the value is not dropped or mutated (heap storage, not inline arrays).
pub unsafe trait IoBuf: Send + 'static {
    /// The address of the first byte.
    fn stable_ptr(&self) -> *const u8;
    /// How many bytes, from the start, hold data: what a write sends.
    fn bytes_init(&self) -> usize;
    /// How many bytes the buffer can hold: what a read may fill.
    fn bytes_total(&self) -> usize;

    /// A view of `range` of this buffer (within `bytes_total`) that owns the buffer; reads and
    /// writes through it touch only that range. [`Slice::into_inner`] gives the buffer back.
    ///
    /// # Panics
    ///
    /// If the range is out of bounds or decreasing.
    fn slice(self, range: impl RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => self.bytes_total(),
        };
        assert!(begin <= end, "slice range {begin}..{end} is decreasing");
        assert!(
            end <= self.bytes_total(),
            "slice end {end} beyond capacity {}",
            self.bytes_total()
        );
        Slice { buf: self, begin, end }
    }
}

/// A buffer the kernel may write into after the call that submitted it returns.
///
/// # Safety
///
/// As for [`IoBuf`], and `stable_mut_ptr` is valid for writes of `bytes_total` bytes.
pub unsafe trait IoBufMut: IoBuf {
    /// The address of the first byte, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Records that the first `len` bytes now hold data (a read filled them). The buffer's
    /// length grows to `len` if it was shorter and never shrinks: the byte count a read returns
    /// is what tells how much it filled.
    ///
    /// # Safety
    ///
    /// The first `len` bytes must have been initialized, and `len <= bytes_total()`.
    unsafe fn set_init(&mut self, len: usize);
}

// SAFETY: a Vec's heap storage does not move when the Vec is moved; `as_ptr` is valid for `len`
// reads, and for `capacity` writes through `as_mut_ptr`.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: see the `IoBuf` impl.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        if self.len() < len {
            // SAFETY: the caller guarantees the first `len <= capacity` bytes are initialized.
            unsafe { self.set_len(len) };
        }
    }
}

// SAFETY: a boxed slice's storage does not move when the box is moved; it is all initialized.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: see the `IoBuf` impl.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _len: usize) {}
}

// SAFETY: static memory never moves or goes away; only reads are offered.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

/// An owned range of a buffer, made by [`IoBuf::slice`].
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B> Slice<B> {
    /// The whole buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
    /// The buffer the range is of.
    pub fn get_ref(&self) -> &B {
        &self.buf
    }
    /// Where the range starts in the buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }
    /// Where the range ends in the buffer.
    pub fn end(&self) -> usize {
        self.end
    }
}

// SAFETY: the range lies within the underlying buffer's `bytes_total`, whose storage is stable
// by the underlying impl's promise; only its initialized part is offered for reading.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr().wrapping_add(self.begin)
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().min(self.end).saturating_sub(self.begin)
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: as for the `IoBuf` impl; writes stay within `begin..end`.
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr().wrapping_add(self.begin)
    }
    unsafe fn set_init(&mut self, len: usize) {
        // Bytes before `begin` count as initialized only if the buffer says so already.
        if self.buf.bytes_init() >= self.begin {
            // SAFETY: bytes `..begin` were initialized and the caller vouches for the next `len`.
            unsafe { self.buf.set_init(self.begin + len) };
        }
    }
}

/// The size of an x86_64 transparent huge page: what [`AlignedBuf::huge`] aligns to.
const HUGE_PAGE: usize = 2 << 20;

/// What the `try_` constructors of [`AlignedBuf`] return when the allocator refuses.
fn out_of_memory() -> io::Error {
    io::Error::from(io::ErrorKind::OutOfMemory)
}

/// A heap buffer whose address and capacity are multiples of a chosen alignment, as `O_DIRECT`
/// requires (see [`crate::align::DioAlign`] for finding a file's alignment).
///
/// Its memory is zeroed at allocation, so every byte up to the capacity is always initialized;
/// the length says how many of them hold data.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared references only read.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `capacity` bytes (rounded up to a multiple of `align`) at an address
    /// that is a multiple of `align`, with length 0.
    ///
    /// # Panics
    ///
    /// If `align` is not a power of two or the size overflows; aborts if allocation fails.
    pub fn new(capacity: usize, align: usize) -> AlignedBuf {
        let layout = Self::layout(capacity, align);
        Self::alloc_new(layout).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    }

    /// Like [`new`](Self::new), but an allocation the system refuses is an error
    /// ([`io::ErrorKind::OutOfMemory`]) instead of an abort: for buffers whose size comes from
    /// the user (a queue depth times a block size).
    ///
    /// # Panics
    ///
    /// If `align` is not a power of two or the size overflows.
    pub fn try_new(capacity: usize, align: usize) -> io::Result<AlignedBuf> {
        Self::alloc_new(Self::layout(capacity, align)).ok_or_else(out_of_memory)
    }

    fn layout(capacity: usize, align: usize) -> Layout {
        assert!(align.is_power_of_two(), "alignment {align} is not a power of two");
        let size = capacity.checked_next_multiple_of(align).expect("buffer size overflows");
        Layout::from_size_align(size.max(align), align).expect("bad buffer layout")
    }

    fn alloc_new(layout: Layout) -> Option<AlignedBuf> {
        // SAFETY: the layout has a non-zero size (at least `align` >= 1).
        let ptr = NonNull::new(unsafe { alloc::alloc_zeroed(layout) })?;
        Some(AlignedBuf { ptr, len: 0, layout })
    }

    /// Like [`new`](Self::new), for large `O_DIRECT` buffers: the capacity rounded up to 2 MiB,
    /// the address 2 MiB-aligned, and transparent huge pages asked for (`MADV_HUGEPAGE`) before
    /// the memory is first touched. Devices take a request in a limited number of DMA segments
    /// — a 4 KiB page each when pages are scattered — and split larger ones (254 segments, about
    /// 1 MiB, on a virtio disk); from huge pages a 4 MiB request is two segments and goes whole.
    /// Where the kernel gives no huge pages it is an ordinary aligned buffer.
    pub fn huge(capacity: usize) -> AlignedBuf {
        let layout = Self::huge_layout(capacity);
        Self::alloc_huge(layout).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    }

    /// Like [`huge`](Self::huge), but an allocation the system refuses is an error
    /// ([`io::ErrorKind::OutOfMemory`]) instead of an abort.
    pub fn try_huge(capacity: usize) -> io::Result<AlignedBuf> {
        Self::alloc_huge(Self::huge_layout(capacity)).ok_or_else(out_of_memory)
    }

    fn huge_layout(capacity: usize) -> Layout {
        let size =
            capacity.max(1).checked_next_multiple_of(HUGE_PAGE).expect("buffer size overflows");
        Layout::from_size_align(size, HUGE_PAGE).expect("bad buffer layout")
    }

    fn alloc_huge(layout: Layout) -> Option<AlignedBuf> {
        let size = layout.size();
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc::alloc(layout) })?;
        // SAFETY: 2 MiB-aligned (so page-aligned), `size` bytes we own. A refusal leaves 4 KiB
        // pages: nothing to undo.
        let _ = unsafe { crate::sys::fs::madvise_hugepage(ptr.as_ptr(), size) };
        // SAFETY: `size` bytes we own; zeroed so every byte is initialized, as `new` promises.
        unsafe { ptr.as_ptr().write_bytes(0, size) };
        Some(AlignedBuf { ptr, len: 0, layout })
    }

    /// A buffer for requests of `capacity` bytes: [`huge`](Self::huge) from 2 MiB up (when
    /// `align` allows), where huge pages spare the device splitting each request, otherwise
    /// [`new`](Self::new).
    pub fn for_io(capacity: usize, align: usize) -> AlignedBuf {
        if Self::is_huge(capacity, align) {
            AlignedBuf::huge(capacity)
        } else {
            AlignedBuf::new(capacity, align)
        }
    }

    /// Like [`for_io`](Self::for_io), but an allocation the system refuses is an error
    /// ([`io::ErrorKind::OutOfMemory`]) instead of an abort.
    pub fn try_for_io(capacity: usize, align: usize) -> io::Result<AlignedBuf> {
        if Self::is_huge(capacity, align) {
            AlignedBuf::try_huge(capacity)
        } else {
            AlignedBuf::try_new(capacity, align)
        }
    }

    /// The bytes [`for_io`](Self::for_io) allocates for a buffer of `capacity` bytes aligned
    /// to `align` (its capacity rounded up to the alignment, or to 2 MiB for huge pages).
    pub fn for_io_size(capacity: usize, align: usize) -> usize {
        if Self::is_huge(capacity, align) {
            Self::huge_layout(capacity).size()
        } else {
            Self::layout(capacity, align).size()
        }
    }

    fn is_huge(capacity: usize, align: usize) -> bool {
        capacity >= HUGE_PAGE && align <= HUGE_PAGE
    }

    /// A buffer holding a copy of `data`, aligned to `align`.
    pub fn from_slice(data: &[u8], align: usize) -> AlignedBuf {
        let mut buf = AlignedBuf::new(data.len(), align);
        buf.extend_from_slice(data);
        buf
    }

    /// The alignment of the address and capacity.
    pub fn align(&self) -> usize {
        self.layout.align()
    }

    /// How many bytes it can hold.
    /// (A zero-capacity request still gets one alignment unit.)
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// How many bytes hold data.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte holds data.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets the length. Bytes past the old length keep what they held (zero, or earlier data).
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.capacity(), "length {len} beyond capacity {}", self.capacity());
        self.len = len;
    }

    /// Sets the length to 0.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Sets the length to `len`, filling new bytes with `value`.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    pub fn resize(&mut self, len: usize, value: u8) {
        let old = self.len;
        self.set_len(len);
        if len > old {
            self[old..len].fill(value);
        }
    }

    /// Appends `data`.
    ///
    /// # Panics
    ///
    /// If it does not fit in the capacity.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let old = self.len;
        self.set_len(old + data.len());
        self[old..].copy_from_slice(data);
    }

    /// All `capacity` bytes, whatever the length.
    pub fn as_full_slice(&self) -> &[u8] {
        // SAFETY: the allocation holds `capacity` initialized bytes (zeroed at allocation).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.capacity()) }
    }

    /// All `capacity` bytes, mutably, whatever the length.
    pub fn as_full_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_full_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated with exactly this layout and is freed once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.as_full_slice()[..self.len]
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.as_full_mut_slice()[..len]
    }
}

impl Clone for AlignedBuf {
    fn clone(&self) -> Self {
        let mut copy = AlignedBuf::new(self.capacity(), self.align());
        copy.as_full_mut_slice().copy_from_slice(self.as_full_slice());
        copy.len = self.len;
        copy
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("align", &self.align())
            .finish()
    }
}

// SAFETY: the heap allocation does not move with the value; all `capacity` bytes are
// initialized, `len` of them are offered for reading.
unsafe impl IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as above; the whole capacity is writable.
unsafe impl IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        if self.len < len {
            self.len = len.min(self.capacity());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buf_is_aligned_and_zeroed() {
        for align in [512, 4096, 65536] {
            let b = AlignedBuf::new(1000, align);
            assert_eq!(b.stable_ptr() as usize % align, 0);
            assert_eq!(b.capacity(), align.max(1000usize.next_multiple_of(align)));
            assert!(b.as_full_slice().iter().all(|&x| x == 0));
            assert_eq!(b.len(), 0);
        }
    }

    #[test]
    fn refused_allocations_are_errors_with_try() {
        let b = AlignedBuf::try_for_io(3 << 20, 4096).unwrap();
        assert_eq!(b.capacity(), AlignedBuf::for_io_size(3 << 20, 4096));
        assert_eq!(b.capacity(), 4 << 20);
        assert_eq!(AlignedBuf::try_new(1000, 512).unwrap().capacity(), 1024);
        // 64 TiB: more than any machine this runs on has. Only the heuristic and strict
        // overcommit modes refuse it at once (mode 1 hands out any amount of address space).
        let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
        if mode.trim() == "1" {
            aio_testkit::skip(
                "refused_allocations_are_errors_with_try",
                "vm.overcommit_memory = 1",
            );
            return;
        }
        let e = AlignedBuf::try_new(1 << 46, 4096).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
        assert_eq!(e.to_string(), "out of memory");
        let e = AlignedBuf::try_huge(1 << 46).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn aligned_buf_len_and_clone() {
        let mut b = AlignedBuf::from_slice(b"hello", 512);
        assert_eq!(&b[..], b"hello");
        b.resize(8, b'!');
        assert_eq!(&b[..], b"hello!!!");
        let c = b.clone();
        assert_eq!(&c[..], b"hello!!!");
        assert_ne!(c.stable_ptr(), b.stable_ptr());
    }

    #[test]
    fn slice_ranges() {
        let v: Vec<u8> = (0..100).collect();
        let s = v.slice(10..20);
        assert_eq!(s.bytes_init(), 10);
        assert_eq!(s.bytes_total(), 10);
        // SAFETY: reading 10 initialized bytes within the slice.
        let bytes = unsafe { std::slice::from_raw_parts(s.stable_ptr(), s.bytes_init()) };
        assert_eq!(bytes, &(10..20).collect::<Vec<u8>>()[..]);
        let v = s.into_inner();
        let s = v.slice(95..);
        assert_eq!(s.bytes_init(), 5);
    }

    #[test]
    fn vec_set_init_only_grows() {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&[1, 2, 3, 4]);
        // SAFETY: the first 2 bytes are initialized.
        unsafe { v.set_init(2) };
        assert_eq!(v.len(), 4);
    }
}
