//! A small value kept in the entry's own slot: what lets a hit on an entry whose value is
//! one word (an `Arc<T>`, a `Box<T>`, an id, a small enum) read its value from the line it
//! already read, rather than from the value's own allocation behind the entry's cold part
//! (with 10 000 entries read at random, those misses were the largest cost of a hit).
//!
//! The entry keeps its value as an `Arc<dyn Any>` for everything else; the first hit that
//! wants a `T: Clone` small enough stores a clone of it here, and later hits clone from
//! this copy. The copy is an owned `T` (dropped with the entry), so the two are equal for
//! as long as the entry lives: a cached value is never mutated in place (readers get
//! clones; `T: Sync` values with interior mutability are shared state the cache hands out
//! as is, and a clone of them is what a hit returned before this copy existed too).
//!
//! Filled at most once, by whichever reader gets there first, while others read the slot
//! under the same read lock: the filler claims it (a compare-and-swap of the type's pointer
//! to a "busy" mark), writes the word, and publishes the type with a release store; a
//! reader reads the word only after an acquire load of the published type.

use std::any::TypeId;
use std::cell::UnsafeCell;
use std::mem::{ManuallyDrop, MaybeUninit, align_of, size_of};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The storage: one word.
type Word = MaybeUninit<usize>;

/// What an [`Inline`] knows of the type it holds.
struct Ops {
    /// `TypeId::of::<T>`.
    type_id: fn() -> TypeId,
    /// Drops the `T` in the word.
    drop: unsafe fn(*mut Word),
}

/// The mark of a copy being written (never read as a type).
static BUSY: Ops = Ops {
    type_id: TypeId::of::<()>,
    drop: drop_nothing,
};

/// [`BUSY`]'s drop: there is nothing to drop.
///
/// # Safety
/// Always safe; `unsafe` for the field's type.
unsafe fn drop_nothing(_: *mut Word) {}

/// Drops the `T` in `word`.
///
/// # Safety
/// `word` holds a valid `T`, written by [`Inline::fill`], not dropped before.
unsafe fn drop_as<T>(word: *mut Word) {
    // SAFETY: the caller promises a live `T` there; `Word` is aligned for it (checked by
    // `fill`).
    unsafe { ptr::drop_in_place(word.cast::<T>()) }
}

/// An owned value of some `T: Send + Sync + 'static` of at most one word, inline, set at
/// most once. Two words: the value's and its type's.
pub(super) struct Inline {
    word: UnsafeCell<Word>,
    /// Null while empty, [`BUSY`] while being filled, then the `T`'s [`Ops`].
    ops: AtomicPtr<Ops>,
}

// SAFETY: an `Inline` owns a `T` that is `Send + Sync` (required by `fill`); sending or
// sharing the `Inline` sends or shares that `T`. Its word is written once, by the one
// thread whose compare-and-swap claimed it, before the release store that lets others
// read it (see the module docs).
unsafe impl Send for Inline {}
// SAFETY: as above.
unsafe impl Sync for Inline {}

impl Inline {
    /// An empty one.
    pub(super) const fn empty() -> Self {
        Inline {
            word: UnsafeCell::new(MaybeUninit::uninit()),
            ops: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Whether a `T` fits.
    pub(super) const fn fits<T>() -> bool {
        size_of::<T>() <= size_of::<Word>() && align_of::<T>() <= align_of::<Word>()
    }

    /// Whether nothing was stored (nor is being stored) yet.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.ops.load(Ordering::Relaxed).is_null()
    }

    /// Keeps `value`, if it fits in a word with at most a word's alignment and nothing was
    /// kept before (else `value` is dropped). Whether it was kept.
    pub(super) fn fill<T: Send + Sync + 'static>(&self, value: T) -> bool {
        if !Self::fits::<T>() {
            return false;
        }
        let busy = ptr::from_ref(&BUSY).cast_mut();
        if self
            .ops
            .compare_exchange(ptr::null_mut(), busy, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let value = ManuallyDrop::new(value);
        // SAFETY: the compare-and-swap above made this thread the only writer, and no
        // reader reads the word before the release store below; `T` fits in the word and
        // is aligned for it (checked above); `value` is moved in (its `ManuallyDrop` is
        // never dropped), so it is owned once.
        unsafe { ptr::write(self.word.get().cast::<T>(), ManuallyDrop::into_inner(value)) };
        let ops: &'static Ops = const {
            &Ops {
                type_id: TypeId::of::<T>,
                drop: drop_as::<T>,
            }
        };
        self.ops
            .store(ptr::from_ref(ops).cast_mut(), Ordering::Release);
        true
    }

    /// The value, if it is a `T`.
    #[inline]
    pub(super) fn get<T: 'static>(&self) -> Option<&T> {
        let ops = self.ops.load(Ordering::Acquire);
        if ops.is_null() || ptr::eq(ops, &BUSY) {
            return None;
        }
        // SAFETY: a published pointer is one of `fill`'s `&'static Ops`.
        let ops = unsafe { &*ops };
        if (ops.type_id)() != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: the type says the word holds the `T` `fill` wrote (before the release
        // store this load acquired), never written again, alive until drop.
        Some(unsafe { &*self.word.get().cast::<T>() })
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        let ops = *self.ops.get_mut();
        if ops.is_null() {
            return;
        }
        // SAFETY: a non-null pointer is `BUSY` or one of `fill`'s `&'static Ops`; with
        // `&mut self` no fill is under way, so it is the latter, and the word holds its
        // `T`, dropped only here, once (`BUSY`'s drop does nothing).
        unsafe { ((*ops).drop)(self.word.get()) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn holds_small_values_and_drops_them_once() {
        let shared = Arc::new(String::from("song"));
        let inline = Inline::empty();
        assert!(inline.is_empty());
        assert!(inline.get::<Arc<String>>().is_none(), "empty");
        assert!(inline.fill(Arc::clone(&shared)));
        assert!(!inline.is_empty());
        assert_eq!(Arc::strong_count(&shared), 2);
        assert_eq!(
            inline.get::<Arc<String>>().map(|s| s.as_str()),
            Some("song")
        );
        assert!(inline.get::<Arc<str>>().is_none(), "another type");
        assert!(!inline.fill(Arc::clone(&shared)), "filled once");
        assert_eq!(Arc::strong_count(&shared), 2, "the refused copy dropped");
        // Moved (as a map slot is when its table grows): still one owner.
        let moved = vec![inline];
        assert_eq!(Arc::strong_count(&shared), 2);
        drop(moved);
        assert_eq!(Arc::strong_count(&shared), 1, "dropped once");

        let small = Inline::empty();
        assert!(small.fill(7_u8));
        assert_eq!(small.get::<u8>(), Some(&7));
        assert!(
            !Inline::empty().fill((1_u64, 2_u64)),
            "two words do not fit"
        );
        assert!(
            !Inline::empty().fill(String::new()),
            "a String is three words"
        );
        assert!(
            Inline::empty().fill(Some(Box::new(5_u32))),
            "dropped with it"
        );
    }

    #[test]
    fn concurrent_fills_keep_one_copy() {
        let shared = Arc::new(1_u64);
        let inline = Inline::empty();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        inline.fill(Arc::clone(&shared));
                        if let Some(value) = inline.get::<Arc<u64>>() {
                            assert_eq!(**value, 1);
                        }
                    }
                });
            }
        });
        assert_eq!(
            Arc::strong_count(&shared),
            2,
            "one copy kept, the rest dropped"
        );
        drop(inline);
        assert_eq!(Arc::strong_count(&shared), 1);
    }
}
