//! A small value kept in the entry's own slot: what lets a hit on an entry whose value is
//! at most two words (an `Arc<T>`, an id, a small enum) read its value from the line it
//! already read, rather than from the value's own allocation (one cache miss less per hit:
//! with 10 000 entries read at random, that miss was the largest cost of a hit).
//!
//! The entry keeps its value as an `Arc<dyn Any>` for everything else; the first hit that
//! wants a `T: Clone` small enough stores a clone of it here, and later hits clone from
//! this copy. The copy is an owned `T` (dropped with the entry), so the two are equal for
//! as long as the entry lives: a cached value is never mutated in place (readers get
//! clones; `T: Sync` values with interior mutability are shared state the cache hands out
//! as is, and a clone of them is what a hit returned before this copy existed too).

use std::any::TypeId;
use std::mem::{ManuallyDrop, MaybeUninit, align_of, size_of};

/// The storage: two words.
type Words = [MaybeUninit<usize>; 2];

/// An owned value of some `T: Send + Sync + 'static` of at most two words, inline.
pub(super) struct Inline {
    words: Words,
    /// `TypeId::of::<T>`.
    type_id: fn() -> TypeId,
    /// Drops the `T` in `words`.
    drop: unsafe fn(*mut Words),
}

// SAFETY: an `Inline` owns a `T` that is `Send + Sync` (required by `new`); sending or
// sharing the `Inline` sends or shares that `T`.
unsafe impl Send for Inline {}
// SAFETY: as above.
unsafe impl Sync for Inline {}

/// Drops the `T` at the start of `words`.
///
/// # Safety
/// `words` holds a valid `T`, written by [`Inline::new`], not dropped before.
unsafe fn drop_as<T>(words: *mut Words) {
    // SAFETY: the caller promises a live `T` there; `Words` is aligned for it (checked
    // by `new`).
    unsafe { std::ptr::drop_in_place(words.cast::<T>()) }
}

impl Inline {
    /// `value` inline, if it fits in two words with at most a word's alignment.
    pub(super) fn new<T: Send + Sync + 'static>(value: T) -> Option<Self> {
        if size_of::<T>() > size_of::<Words>() || align_of::<T>() > align_of::<Words>() {
            return None;
        }
        let mut words: Words = [MaybeUninit::uninit(); 2];
        let value = ManuallyDrop::new(value);
        // SAFETY: `T` fits in `words` and is aligned for it (checked above); `value` is
        // moved in (its `ManuallyDrop` is never dropped), so it is owned once.
        unsafe {
            std::ptr::write(
                words.as_mut_ptr().cast::<T>(),
                ManuallyDrop::into_inner(value),
            )
        };
        Some(Inline {
            words,
            type_id: TypeId::of::<T>,
            drop: drop_as::<T>,
        })
    }

    /// The value, if it is a `T`.
    #[inline]
    pub(super) fn get<T: 'static>(&self) -> Option<&T> {
        if (self.type_id)() != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: the type id says `words` holds the `T` `new` wrote, alive until drop.
        Some(unsafe { &*self.words.as_ptr().cast::<T>() })
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        // SAFETY: `words` holds the `T` written by `new`, dropped only here, once.
        unsafe { (self.drop)(&mut self.words) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn holds_small_values_and_drops_them_once() {
        let shared = Arc::new(String::from("song"));
        let inline = Inline::new(Arc::clone(&shared)).unwrap();
        assert_eq!(Arc::strong_count(&shared), 2);
        assert_eq!(
            inline.get::<Arc<String>>().map(|s| s.as_str()),
            Some("song")
        );
        assert!(inline.get::<Arc<str>>().is_none(), "another type");
        // Moved (as a map slot is when its table grows): still one owner.
        let moved = vec![inline];
        assert_eq!(Arc::strong_count(&shared), 2);
        drop(moved);
        assert_eq!(Arc::strong_count(&shared), 1, "dropped once");

        assert_eq!(Inline::new(7_u8).unwrap().get::<u8>(), Some(&7));
        assert_eq!(
            Inline::new((1_u64, 2_u64)).unwrap().get::<(u64, u64)>(),
            Some(&(1, 2))
        );
        assert!(Inline::new([0_u64; 3]).is_none(), "three words do not fit");
        assert!(Inline::new(0_u128).is_none() || align_of::<u128>() <= align_of::<usize>());
        assert!(
            Inline::new(String::new()).is_none(),
            "a String is three words"
        );
    }
}
