//! The map's shard locks: reader-writer locks whose readers write only lines of their own
//! thread's [stripe](crate::stripes), so that two threads hitting the same shard at once
//! do not pass a line back and forth (a `parking_lot` read lock writes its lock word: with
//! two threads reading random keys, about every other hit found that word in the other
//! core's cache).
//!
//! Each stripe has one line of reader counts, one count per shard. A reader adds one to its
//! stripe's count for the shard, then looks at the shard's `writing` flag: clear, it reads,
//! and takes its one back when done; set, it takes its one back at once and waits for the
//! writer (on the writer's mutex), then tries again. A writer takes the shard's mutex (one
//! writer at a time), sets `writing`, and waits until every stripe's count for the shard is
//! zero before it writes. Both sides write first and read second, with sequentially
//! consistent operations (Dekker's pattern): whichever of a reader's count and a writer's
//! flag comes second in that order sees the other, so a reader and a writer are never both
//! in. Writers are rare (a miss's insert, a removal, an eviction), each waits at most for
//! the readers already in, and readers that arrive meanwhile wait for it: no writer starves.
//!
//! A thread that reads a shard while already reading it (a value's `Clone` that reads the
//! cache) does not wait for a writer when its stripe is its own: its first read is still
//! in, so no writer is past its wait.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard};

use crate::stripes::{STRIPES, stripe};

/// The most shards a [`Sharded`] holds: one stripe's counts fill one cache line.
pub(super) const MAX_SHARDS: usize = 16;

/// Spins a waiting writer makes before it yields its thread between looks.
const SPINS: u32 = 64;
/// Yields a waiting writer makes after its spins, before it sleeps between looks.
const YIELDS: u32 = 32;
/// A waiting writer's sleep between looks once it has spun and yielded: a long read (the
/// versions' pruning visits every entry of a shard) costs the writer time, not a core.
const NAP: std::time::Duration = std::time::Duration::from_micros(20);

/// A stripe's reader counts, one per shard, on lines no other stripe writes (128 bytes:
/// adjacent-line prefetching pairs lines on x86).
#[repr(align(128))]
struct Readers([AtomicU32; MAX_SHARDS]);

/// One shard: its value, the flag readers look at, and the mutex writers take.
#[repr(align(128))]
struct Shard<T> {
    writing: AtomicBool,
    writer: Mutex<()>,
    value: UnsafeCell<T>,
}

/// Up to [`MAX_SHARDS`] values, each behind its own lock. See the module docs.
pub(super) struct Sharded<T> {
    shards: Box<[Shard<T>]>,
    /// `shards.len() - 1`: the count is a power of two.
    mask: usize,
    readers: Box<[Readers; STRIPES]>,
}

// SAFETY: a `Sharded` hands out `&T` to readers on any thread and `&mut T` to one writer at
// a time (the module docs' protocol excludes the two), as `RwLock<T>` does: it is `Sync`
// when `T` is `Send + Sync`, and `Send` when `T` is `Send`.
unsafe impl<T: Send + Sync> Sync for Sharded<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Sharded<T> {}

/// A shard read: `&T` until dropped.
pub(super) struct ReadGuard<'a, T> {
    shard: &'a Shard<T>,
    count: &'a AtomicU32,
}

/// A shard written: `&mut T` until dropped.
pub(super) struct WriteGuard<'a, T> {
    shard: &'a Shard<T>,
    _writer: MutexGuard<'a, ()>,
}

impl<T> Sharded<T> {
    /// `count` shards (rounded up to a power of two, from 1 to [`MAX_SHARDS`]), each
    /// holding what `make` returns.
    pub(super) fn new(count: usize, mut make: impl FnMut() -> T) -> Self {
        let count = count.clamp(1, MAX_SHARDS).next_power_of_two();
        Sharded {
            shards: (0..count)
                .map(|_| Shard {
                    writing: AtomicBool::new(false),
                    writer: Mutex::new(()),
                    value: UnsafeCell::new(make()),
                })
                .collect(),
            mask: count - 1,
            readers: Box::new(std::array::from_fn(|_| {
                Readers(std::array::from_fn(|_| AtomicU32::new(0)))
            })),
        }
    }

    /// How many shards.
    pub(super) fn len(&self) -> usize {
        self.shards.len()
    }

    /// The shard `index` names (its low bits), and that index.
    #[inline]
    fn shard(&self, index: usize) -> (&Shard<T>, usize) {
        // Below `MAX_SHARDS` however the mask was built: no bounds check on the counts.
        let index = index & self.mask & (MAX_SHARDS - 1);
        (&self.shards[index], index)
    }

    /// Reads shard `index` (its low bits: the index modulo the shard count).
    #[inline]
    pub(super) fn read(&self, index: usize) -> ReadGuard<'_, T> {
        let (shard, index) = self.shard(index);
        let (stripe, owned) = stripe();
        let count = &self.readers[stripe % STRIPES].0[index];
        loop {
            let before = count.fetch_add(1, Ordering::SeqCst);
            if !shard.writing.load(Ordering::SeqCst) || (owned && before > 0) {
                return ReadGuard { shard, count };
            }
            count.fetch_sub(1, Ordering::Release);
            wait_for_writer(shard);
        }
    }

    /// Writes shard `index` (its low bits, as [`read`](Self::read)).
    pub(super) fn write(&self, index: usize) -> WriteGuard<'_, T> {
        let (shard, index) = self.shard(index);
        let writer = shard.writer.lock();
        shard.writing.store(true, Ordering::SeqCst);
        for readers in self.readers.iter() {
            let count = &readers.0[index];
            let mut looks = 0_u32;
            while count.load(Ordering::SeqCst) != 0 {
                looks = looks.saturating_add(1);
                if looks <= SPINS {
                    std::hint::spin_loop();
                } else if looks <= SPINS + YIELDS {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(NAP);
                }
            }
        }
        WriteGuard {
            shard,
            _writer: writer,
        }
    }
}

/// Waits until the writer of `shard` is done (it holds the mutex while it writes).
#[cold]
fn wait_for_writer<T>(shard: &Shard<T>) {
    drop(shard.writer.lock());
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this reader's count is in and it saw no writer after adding it: no
        // writer gets `&mut T` until the count is taken back (the module docs).
        unsafe { &*self.shard.value.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Release);
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the writer holds the shard's mutex and every reader count of the shard
        // was zero after `writing` was set: no other reference to the value exists.
        unsafe { &*self.shard.value.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only use of the guard.
        unsafe { &mut *self.shard.value.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // Before the mutex is released (the guard's field, dropped after this): readers
        // that saw the flag wait on the mutex, then look again.
        self.shard.writing.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[test]
    fn readers_and_writers_exclude_each_other() {
        // Each shard holds a pair a writer keeps equal; readers must never see it torn.
        let sharded = Sharded::new(4, || (AtomicU64::new(0), AtomicU64::new(0)));
        let torn = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for thread in 0..4_usize {
                let (sharded, torn) = (&sharded, &torn);
                scope.spawn(move || {
                    for n in 0..2_000_usize {
                        let index = (thread + n) % 4;
                        if n % 8 == thread % 8 {
                            let pair = sharded.write(index);
                            let next = pair.0.load(Ordering::Relaxed) + 1;
                            pair.0.store(next, Ordering::Relaxed);
                            std::thread::yield_now();
                            pair.1.store(next, Ordering::Relaxed);
                        } else {
                            let pair = sharded.read(index);
                            let first = pair.0.load(Ordering::Relaxed);
                            let second = pair.1.load(Ordering::Relaxed);
                            if first != second {
                                torn.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(
            torn.load(Ordering::Relaxed),
            0,
            "a read saw a write half done"
        );
        let total: u64 = (0..4)
            .map(|index| sharded.read(index).0.load(Ordering::Relaxed))
            .sum();
        assert_eq!(total, 4 * 250, "every write landed");
    }

    /// Waits (30 s at most) until a writer of shard `index` has raised its flag.
    fn wait_for_flag<T>(sharded: &Sharded<T>, index: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !sharded.shards[index].writing.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never came"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_nested_read_does_not_wait_for_a_waiting_writer() {
        let sharded = Sharded::new(1, || 0_u32);
        let outer = sharded.read(0);
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| *sharded.write(0) += 1);
            // Until the writer has raised its flag (it cannot finish while `outer` reads).
            wait_for_flag(&sharded, 0);
            assert_eq!(*sharded.read(0), 0, "read inside the outer read");
            drop(outer);
            writer.join().expect("the writer");
        });
        assert_eq!(*sharded.read(0), 1);
    }

    #[test]
    fn a_writer_waits_out_a_long_read() {
        let sharded = Sharded::new(2, || 0_u32);
        let read = sharded.read(1);
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                *sharded.write(1) += 1;
                done.store(true, Ordering::SeqCst);
            });
            // The other shard is free meanwhile.
            *sharded.write(0) += 1;
            // Once the writer has raised its flag it is past its mutex, waiting on the
            // read's count: it must stay there, however long the read lasts.
            wait_for_flag(&sharded, 1);
            std::thread::sleep(std::time::Duration::from_millis(5));
            assert!(!done.load(Ordering::SeqCst), "the write waits for the read");
            assert_eq!(*read, 0);
            drop(read);
            writer.join().expect("the writer");
        });
        assert!(done.load(Ordering::SeqCst));
        assert_eq!((*sharded.read(0), *sharded.read(1)), (1, 1));
    }

    #[test]
    fn mutable_access_and_values() {
        let sharded = Sharded::new(2, String::new);
        assert_eq!(sharded.len(), 2);
        assert_eq!(Sharded::new(3, || ()).len(), 4, "a power of two");
        assert_eq!(Sharded::new(99, || ()).len(), MAX_SHARDS);
        assert_eq!(Sharded::new(0, || ()).len(), 1);
        sharded.write(1).push('b');
        sharded.write(1).push('!');
        assert_eq!(sharded.read(1).as_str(), "b!");
        assert_eq!(sharded.read(3).as_str(), "b!", "taken modulo the count");
    }
}
