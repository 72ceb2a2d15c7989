//! Which stripe the calling thread writes: what lets code that runs on every hit keep its
//! writes on cache lines no other thread writes (the statistics' lookup counters, the
//! memory store's reader counts), each figure being the sum over the stripes.
//!
//! A thread owns a stripe while it lives (the first [`OWNED`] threads that ask at once:
//! tokio's workers, in practice) and may bump its counters with a plain load and store; the
//! stripe goes back to the pool when the thread ends, and the thread that takes it next
//! sees its counts (the pool's lock orders the two). Threads beyond those share the last
//! stripe, whose counters they change with atomic read-modify-writes.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

/// Stripes owned by one thread at a time.
const OWNED: usize = 15;
/// All stripes: the owned ones and the shared one.
pub(crate) const STRIPES: usize = OWNED + 1;

/// The stripes no live thread owns.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// How many stripes were ever handed out (those below it not in `FREE` are owned).
static HANDED: Mutex<usize> = Mutex::new(0);

/// A thread's stripe: given back to the pool when the thread ends.
struct Owned(usize);

impl Drop for Owned {
    fn drop(&mut self) {
        if self.0 < OWNED {
            FREE.lock().push(self.0);
        }
    }
}

/// Takes a stripe for this thread: a free one, a new one, or the shared one.
fn take_stripe() -> usize {
    if let Some(free) = FREE.lock().pop() {
        return free;
    }
    let mut handed = HANDED.lock();
    if *handed < OWNED {
        *handed += 1;
        return *handed - 1;
    }
    OWNED
}

thread_local! {
    static MINE: Owned = Owned(take_stripe());
    // Its index, readable without the destructor's registration check.
    static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The stripe of the calling thread, and whether it owns it. Inline everywhere: one
/// thread-local load on every hit, where it is read twice (the map's lock, the counters).
#[inline(always)]
pub(crate) fn stripe() -> (usize, bool) {
    let mut index = INDEX.get();
    if index == usize::MAX {
        index = first_stripe();
    }
    (index, index < OWNED)
}

/// The calling thread's first look at its stripe: takes one, and remembers its index.
#[cold]
#[inline(never)]
fn first_stripe() -> usize {
    // The shared stripe if the thread is being torn down.
    let taken = MINE.try_with(|mine| mine.0).unwrap_or(OWNED);
    INDEX.set(taken);
    taken
}

/// Adds one to `counter` of a stripe: a plain load and store when the thread owns it.
#[inline]
pub(crate) fn bump(counter: &AtomicU64, owned: bool) {
    if owned {
        counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
    } else {
        counter.fetch_add(1, Relaxed);
    }
}
