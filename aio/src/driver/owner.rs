//! [`Owner`]: a value of any type kept with a request until it completes — stored inline when
//! it is small, as the buffer types requests usually own are, and boxed otherwise — so that
//! handing a buffer to a driver costs no allocation.

use std::any::{Any, TypeId};
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};

/// Words of inline storage: enough for a `Vec`, a boxed slice, an `AlignedBuf` or a slice of
/// one.
const WORDS: usize = 6;

/// A type-erased owned value.
pub(crate) struct Owner(Repr);

enum Repr {
    Empty,
    Inline(Inline),
    Boxed(Box<dyn Any + Send>),
}

struct Inline {
    data: MaybeUninit<[u64; WORDS]>,
    type_id: TypeId,
    drop: unsafe fn(*mut u8),
    boxed: unsafe fn(*mut u8) -> Box<dyn Any + Send>,
}

// SAFETY: an Owner only ever holds a `T: Send` (see `new`), inline or boxed.
unsafe impl Send for Owner {}
// SAFETY: a shared Owner gives no access to the value (only `is_some`).
unsafe impl Sync for Owner {}

/// # Safety
///
/// `p` points at a live `T` that is not used again.
unsafe fn drop_value<T>(p: *mut u8) {
    // SAFETY: forwarded from the caller.
    unsafe { p.cast::<T>().drop_in_place() }
}

/// # Safety
///
/// `p` points at a live `T` that is not used again.
unsafe fn box_value<T: Any + Send>(p: *mut u8) -> Box<dyn Any + Send> {
    // SAFETY: forwarded from the caller; the value moves into the box.
    Box::new(unsafe { p.cast::<T>().read() })
}

impl Owner {
    pub(crate) fn none() -> Owner {
        Owner(Repr::Empty)
    }

    pub(crate) fn new<T: Any + Send>(value: T) -> Owner {
        if size_of::<T>() <= size_of::<[u64; WORDS]>() && align_of::<T>() <= align_of::<u64>() {
            let mut data = MaybeUninit::<[u64; WORDS]>::uninit();
            // SAFETY: the storage is large enough and aligned enough for a T (checked above).
            unsafe { data.as_mut_ptr().cast::<T>().write(value) };
            Owner(Repr::Inline(Inline {
                data,
                type_id: TypeId::of::<T>(),
                drop: drop_value::<T>,
                boxed: box_value::<T>,
            }))
        } else {
            Owner(Repr::Boxed(Box::new(value)))
        }
    }

    pub(crate) fn from_box(value: Box<dyn Any + Send>) -> Owner {
        Owner(Repr::Boxed(value))
    }

    pub(crate) fn is_some(&self) -> bool {
        !matches!(self.0, Repr::Empty)
    }

    /// The value, if it is a `T` (otherwise it is dropped).
    pub(crate) fn take<T: Any>(self) -> Option<T> {
        let mut this = ManuallyDrop::new(self);
        match std::mem::replace(&mut this.0, Repr::Empty) {
            Repr::Empty => None,
            Repr::Boxed(b) => b.downcast::<T>().ok().map(|b| *b),
            Repr::Inline(mut i) if i.type_id == TypeId::of::<T>() => {
                // SAFETY: the storage holds a live T (its type id says so); it is read once and
                // the Inline, which has no drop of its own, is forgotten with `this`.
                Some(unsafe { i.data.as_mut_ptr().cast::<T>().read() })
            }
            Repr::Inline(mut i) => {
                // SAFETY: the storage holds a live value of the type `i.drop` was made for.
                unsafe { (i.drop)(i.data.as_mut_ptr().cast()) };
                None
            }
        }
    }

    /// The value, boxed.
    pub(crate) fn into_box(self) -> Option<Box<dyn Any + Send>> {
        let mut this = ManuallyDrop::new(self);
        match std::mem::replace(&mut this.0, Repr::Empty) {
            Repr::Empty => None,
            Repr::Boxed(b) => Some(b),
            // SAFETY: the storage holds a live value of the type `i.boxed` was made for; it
            // moves into the box and is not used again.
            Repr::Inline(mut i) => Some(unsafe { (i.boxed)(i.data.as_mut_ptr().cast()) }),
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Repr::Inline(i) = &mut self.0 {
            // SAFETY: the storage holds a live value of the type `i.drop` was made for, dropped
            // once, here.
            unsafe { (i.drop)(i.data.as_mut_ptr().cast()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn inline_and_boxed_values_come_back_or_drop_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let o = Owner::new(Counted(Arc::clone(&drops)));
        assert!(o.is_some());
        let back: Counted = o.take().expect("same type");
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(back);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // Wrong type: dropped once.
        assert!(Owner::new(Counted(Arc::clone(&drops))).take::<u32>().is_none());
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        // Dropped unclaimed: once.
        drop(Owner::new(Counted(Arc::clone(&drops))));
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        // Too big for inline storage: boxed, same behaviour.
        let big = Owner::new(([0u64; 16], Counted(Arc::clone(&drops))));
        let b = big.into_box().unwrap();
        assert!(b.downcast_ref::<([u64; 16], Counted)>().is_some());
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
        let v: Vec<u8> = Owner::new(vec![1u8, 2, 3])
            .into_box()
            .unwrap()
            .downcast::<Vec<u8>>()
            .map(|b| *b)
            .unwrap();
        assert_eq!(v, [1, 2, 3]);
    }
}
