//! [`Owner`]: a value of any type kept with a request until it completes — stored inline when
//! it is small, as the buffer types requests usually own are, and boxed otherwise — so that
//! handing a buffer to a driver costs no allocation.

use std::any::{Any, TypeId};
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};

/// Words of inline storage: enough for a `Vec`, a boxed slice, an `AlignedBuf` or a slice of
/// one.
const WORDS: usize = 6;

/// A type-erased owned value: the value itself when it fits in `data` (or nothing), else a
/// `Box<dyn Any + Send>` stored there; `vt` says which, and how to drop it. With no enum tag
/// and one pointer for the type's functions, an `Owner` is 56 bytes, so a `Buf` and the
/// requests and completions carrying one stay small enough to move without a `memcpy` call.
pub(crate) struct Owner {
    data: MaybeUninit<[u64; WORDS]>,
    vt: &'static VTable,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing is stored.
    Empty,
    /// `data` holds a value of the type `type_id` names.
    Inline,
    /// `data` holds a `Box<dyn Any + Send>`.
    Boxed,
}

/// What an `Owner` needs to know of the type it stores: one static table per type.
struct VTable {
    kind: Kind,
    type_id: fn() -> TypeId,
    drop: unsafe fn(*mut u8),
    boxed: unsafe fn(*mut u8) -> Box<dyn Any + Send>,
}

impl VTable {
    const fn of<T: Any + Send>(kind: Kind) -> VTable {
        VTable { kind, type_id: TypeId::of::<T>, drop: drop_value::<T>, boxed: box_value::<T> }
    }
}

static EMPTY: VTable = VTable::of::<()>(Kind::Empty);
static BOXED: VTable = VTable {
    kind: Kind::Boxed,
    type_id: TypeId::of::<Box<dyn Any + Send>>,
    drop: drop_value::<Box<dyn Any + Send>>,
    boxed: unbox_value,
};

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

/// # Safety
///
/// `p` points at a live `Box<dyn Any + Send>` that is not used again.
unsafe fn unbox_value(p: *mut u8) -> Box<dyn Any + Send> {
    // SAFETY: forwarded from the caller; the box moves out.
    unsafe { p.cast::<Box<dyn Any + Send>>().read() }
}

impl Owner {
    pub(crate) fn none() -> Owner {
        Owner { data: MaybeUninit::uninit(), vt: &EMPTY }
    }

    pub(crate) fn new<T: Any + Send>(value: T) -> Owner {
        if size_of::<T>() <= size_of::<[u64; WORDS]>() && align_of::<T>() <= align_of::<u64>() {
            let mut data = MaybeUninit::<[u64; WORDS]>::uninit();
            // SAFETY: the storage is large enough and aligned enough for a T (checked above).
            unsafe { data.as_mut_ptr().cast::<T>().write(value) };
            Owner { data, vt: const { &VTable::of::<T>(Kind::Inline) } }
        } else {
            Owner::from_box(Box::new(value))
        }
    }

    pub(crate) fn from_box(value: Box<dyn Any + Send>) -> Owner {
        let mut data = MaybeUninit::<[u64; WORDS]>::uninit();
        // SAFETY: a box (two words) fits the storage, which is aligned for pointers.
        unsafe { data.as_mut_ptr().cast::<Box<dyn Any + Send>>().write(value) };
        Owner { data, vt: &BOXED }
    }

    pub(crate) fn is_some(&self) -> bool {
        self.vt.kind != Kind::Empty
    }

    /// The value, if it is a `T` (otherwise it is dropped).
    pub(crate) fn take<T: Any>(self) -> Option<T> {
        let mut this = ManuallyDrop::new(self);
        let p = this.data.as_mut_ptr().cast::<u8>();
        match this.vt.kind {
            Kind::Empty => None,
            // SAFETY: the storage holds a live box, moved out once (`this` is never dropped).
            Kind::Boxed => unsafe { unbox_value(p) }.downcast::<T>().ok().map(|b| *b),
            Kind::Inline if (this.vt.type_id)() == TypeId::of::<T>() => {
                // SAFETY: the storage holds a live T (its type id says so); it is read once and
                // `this` is never dropped.
                Some(unsafe { p.cast::<T>().read() })
            }
            Kind::Inline => {
                // SAFETY: the storage holds a live value of the type `vt.drop` was made for,
                // dropped once (`this` is never dropped).
                unsafe { (this.vt.drop)(p) };
                None
            }
        }
    }

    /// The value, boxed.
    pub(crate) fn into_box(self) -> Option<Box<dyn Any + Send>> {
        let mut this = ManuallyDrop::new(self);
        match this.vt.kind {
            Kind::Empty => None,
            // SAFETY: the storage holds a live value of the type `vt.boxed` was made for (a
            // box, for `Boxed`); it moves out once and `this` is never dropped.
            _ => Some(unsafe { (this.vt.boxed)(this.data.as_mut_ptr().cast()) }),
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.vt.kind != Kind::Empty {
            // SAFETY: the storage holds a live value of the type `vt.drop` was made for (a
            // box, for `Boxed`), dropped once, here.
            unsafe { (self.vt.drop)(self.data.as_mut_ptr().cast()) };
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
        // A box given as the owner: taken back by its content's type.
        let o = Owner::from_box(Box::new(Counted(Arc::clone(&drops))));
        assert!(o.take::<Counted>().is_some());
        assert_eq!(drops.load(Ordering::SeqCst), 5);
        drop(Owner::from_box(Box::new(Counted(Arc::clone(&drops)))));
        assert_eq!(drops.load(Ordering::SeqCst), 6);
        assert!(!Owner::none().is_some());
        assert!(Owner::none().take::<()>().is_none());
        assert_eq!(size_of::<Owner>(), 56);
    }
}
