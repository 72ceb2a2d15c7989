//! Writes that outlive their caller: a future that, when dropped half-way, finishes in the
//! background instead of stopping.
//!
//! A write's invalidation must follow the write whatever happens to the caller. When the
//! caller's future is dropped — `tokio::time::timeout`, `select!`, an axum handler whose
//! client went away, `JoinHandle::abort` — after the statement (or COMMIT) was sent, the
//! database still runs it, but the invalidation that was to follow its `.await` would never
//! run. Invalidating at the moment of the drop is not enough either: the database may commit
//! the write *after* that moment, and a reader in between would store the old rows under the
//! new tag versions. So the write and its invalidation run as one future that, if dropped
//! after its first poll, is handed to the runtime and runs to the end: the invalidation then
//! comes after the database answered, as it does for a caller who waits.
//!
//! A future dropped before its first poll sent nothing and is simply dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::Cache;

type Work<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A write and what must follow it, finished in the background if the caller stops waiting.
pub(super) struct Detached<T: Send + 'static> {
    work: Option<Work<T>>,
    started: bool,
    /// Whose health counts the write while it finishes in the background.
    cache: Cache,
}

impl<T: Send + 'static> Detached<T> {
    /// Wraps `work`, which must own everything it uses.
    pub(super) fn new(cache: &Cache, work: impl Future<Output = T> + Send + 'static) -> Self {
        Detached {
            work: Some(Box::pin(work)),
            started: false,
            cache: cache.clone(),
        }
    }
}

impl<T: Send + 'static> Future for Detached<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.started = true;
        let Some(work) = self.work.as_mut() else {
            // Polled after completion: a contract violation of the caller's executor. Stay
            // pending rather than panic; nothing is lost, the work already ran.
            return Poll::Pending;
        };
        match work.as_mut().poll(cx) {
            Poll::Ready(output) => {
                self.work = None;
                Poll::Ready(output)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        if !self.started {
            return;
        }
        let counted = self.cache.background_write();
        tracing::debug!(
            "a write's caller stopped waiting: finishing it and its invalidation in the background"
        );
        let finish = async move {
            let _output = work.await;
            drop(counted);
        };
        // On the caller's runtime: the connection's I/O is registered with its driver.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(tracing::Instrument::in_current_span(finish))),
            Err(_) => crate::runtime::spawn_detached(finish),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_dropped_write_finishes_in_the_background() {
        let cache = Cache::new();
        let done = Arc::new(AtomicBool::new(false));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let flag = Arc::clone(&done);
        let write = Detached::new(&cache, async move {
            let _ = wait.await;
            flag.store(true, Ordering::SeqCst);
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(1), write)
                .await
                .is_err()
        );
        assert_eq!(cache.health().await.writes_in_flight, 1);
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while cache.health().await.writes_in_flight > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the background write finishes");
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_write_never_polled_is_not_run() {
        let cache = Cache::new();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        drop(Detached::new(&cache, async move {
            flag.store(true, Ordering::SeqCst);
        }));
        tokio::task::yield_now().await;
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(cache.health().await.writes_in_flight, 0);
    }
}
