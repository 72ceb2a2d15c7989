//! A count of the task-local and thread-local scopes a read must look for — a
//! [`bypass`](crate::bypass), a forced warming run's refresh, an entry's computation — open
//! anywhere in the process. A hit reads it with one relaxed load and, while it is zero,
//! skips the scopes' own checks (each a task-local read through tokio's context, and a
//! thread-local one). The count is conservative: a scope is counted from before it is
//! entered until after it is left, so a zero proves no scope is open on this task or
//! thread. While one is open anywhere, every read looks, as it always did.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Scopes open in the process, on any task or thread.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Whether any scope may be open (on any task or thread): when `false`, none is open here.
#[inline]
pub(crate) fn any_open() -> bool {
    OPEN.load(Ordering::Relaxed) != 0
}

/// Counts an open scope while alive: created before the scope is entered, dropped after it
/// is left.
pub(crate) struct Open(());

impl Open {
    pub(crate) fn enter() -> Self {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Open(())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_while_alive() {
        let open = Open::enter();
        assert!(any_open());
        let nested = Open::enter();
        drop(open);
        assert!(any_open(), "the nested scope is still open");
        drop(nested);
        // Other tests may hold scopes of their own: only the count's own balance is sure.
    }
}
