//! The sync bridge and querycache's I/O runtime: waiting for the cache from synchronous code
//! (Diesel's sync API, `#[cached_query]` on a plain `fn`, and the Diesel instrumentation,
//! which runs on the thread of the statement), and the runtime that drives Redis I/O.
//!
//! The cache is async inside (the Redis store is redis-rs on tokio). Synchronous callers
//! reach it through [`Bridge`], chosen by where the calling thread is:
//!
//! | calling thread | how it waits |
//! | --- | --- |
//! | outside any tokio runtime (a plain thread, `main` of a sync app, r2d2 workers) | on querycache's own runtime: a lazily started multi-thread runtime with one worker thread named `querycache-io`, which also drives the Redis connections made from such threads |
//! | a multi-thread runtime's worker, or its `block_on` thread | [`tokio::task::block_in_place`]: the worker's other tasks move to another worker while this thread waits |
//! | a `spawn_blocking` thread of a multi-thread runtime | waits on that runtime directly |
//! | any thread of a current-thread runtime (tokio does not let a library tell its `block_on` thread from its `spawn_blocking` threads) | [`Bridge::Detached`]: each cache operation runs on querycache's own runtime while the thread waits for its result; single-flight is skipped |
//!
//! No case panics, and none waits on a task that its own thread would have to run.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

/// How a synchronous caller on this thread waits for the cache.
#[derive(Debug)]
pub(crate) enum Bridge {
    /// Poll the cache's futures on this thread.
    Here(Here),
    /// This thread belongs to a current-thread runtime: blocking it blocks every task of
    /// that runtime. Cache operations run on querycache's own runtime (they must be `Send`)
    /// and the thread waits for each result; the computation runs here, between them.
    /// Waiting for another caller's computation of the same key (single-flight) is skipped:
    /// that caller may be a task of this very runtime, which cannot run while we wait.
    Detached,
}

/// Polling on the calling thread, inside `block_on` of a runtime that drives timers and
/// I/O meanwhile.
#[derive(Debug)]
pub(crate) struct Here {
    handle: Handle,
    /// Whether to leave the worker first (`block_in_place`).
    in_place: bool,
}

impl Bridge {
    /// The bridge for the calling thread.
    pub(crate) fn current() -> Bridge {
        match Handle::try_current() {
            Err(_) => Bridge::Here(Here {
                handle: own_runtime().handle().clone(),
                in_place: false,
            }),
            Ok(handle) => match handle.runtime_flavor() {
                RuntimeFlavor::CurrentThread => Bridge::Detached,
                // Multi-thread (and any future flavor that allows it): `block_in_place` is
                // allowed on its workers, its `block_on` thread and its blocking threads.
                _ => Bridge::Here(Here {
                    handle,
                    in_place: true,
                }),
            },
        }
    }

    /// Runs `future` to completion: on this thread, or on querycache's runtime for a
    /// detached bridge (hence `Send + 'static`).
    pub(crate) fn wait<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Bridge::Here(here) => here.wait(future),
            Bridge::Detached => run_detached(future),
        }
    }
}

impl Here {
    /// Runs `future`, which may borrow from this thread and need not be `Send`, on this
    /// thread.
    pub(crate) fn wait<F: Future>(&self, future: F) -> F::Output {
        if self.in_place {
            tokio::task::block_in_place(|| self.handle.block_on(future))
        } else {
            self.handle.block_on(future)
        }
    }
}

/// querycache's own runtime, for callers outside any tokio runtime. Started on first use.
///
/// One worker: it only drives timers and the Redis connections made from outside tokio
/// (and runs the operations of detached bridges); other futures are polled on the calling
/// threads.
fn own_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("querycache-io")
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            // Fails only when the OS refuses a thread or an I/O driver (epoll), at the first
            // synchronous call or Redis connection: then no tokio runtime can run at all, and
            // neither can querycache. Say so plainly rather than limp on.
            #[allow(clippy::panic)]
            Err(error) => panic!("querycache could not start its I/O runtime: {error}"),
        }
    })
}

/// The handle of querycache's own runtime: background tasks (the invalidation subscriber,
/// the breaker's probe, a cluster's connection, the single server's shared connection) run
/// there, independent of the runtimes their callers are on. (A runtime that uses a single
/// server gets a connection of its own, driven by itself: `store::redis::conns`.)
#[cfg(feature = "redis")]
pub(crate) fn io_handle() -> Handle {
    own_runtime().handle().clone()
}

/// Runs `future` in the background on querycache's own runtime, without waiting: for work
/// that must not block its caller (a `Drop`, which may run on an async worker) and must not
/// depend on the caller's runtime staying alive. It runs in the caller's current span.
#[cfg_attr(not(any(feature = "diesel", feature = "sea-orm")), allow(dead_code))]
pub(crate) fn spawn_detached<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    drop(own_runtime().spawn(tracing::Instrument::in_current_span(future)));
}

/// Runs a `Send` future on querycache's runtime and waits for it, parked. A panic in the
/// future is resumed here, on the caller's thread.
fn run_detached<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // The caller's span goes along: a lookup records `cache.hit` on it, and the events of
    // the work are its children.
    match park_on(own_runtime().spawn(tracing::Instrument::in_current_span(future))) {
        Ok(output) => output,
        Err(error) => match error.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            // Cancelled: only if the runtime shut down, which it never does (it lives in a
            // static). The task's output is gone; so is this call.
            Err(error) => std::panic::resume_unwind(Box::new(error.to_string())),
        },
    }
}

/// Polls `future` on this thread, parking between wake-ups: enough for a `JoinHandle`,
/// whose task runs elsewhere. Tokio allows a plain park on any thread.
fn park_on<F: Future>(future: F) -> F::Output {
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_tokio_runs_on_querycache_s_runtime() {
        let Bridge::Here(here) = Bridge::current() else {
            panic!("outside tokio, the bridge polls here");
        };
        let value = here.wait(async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            7
        });
        assert_eq!(value, 7);
        let local = std::rc::Rc::new(3);
        assert_eq!(here.wait(async { *local }), 3);
    }

    #[test]
    fn on_a_multi_thread_worker_it_leaves_the_worker() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let value = runtime.block_on(async {
            tokio::spawn(async {
                let bridge = Bridge::current();
                assert!(matches!(bridge, Bridge::Here(Here { in_place: true, .. })));
                bridge.wait(async {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    5
                })
            })
            .await
            .unwrap()
        });
        assert_eq!(value, 5);
    }

    #[test]
    fn on_a_current_thread_runtime_it_detaches() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let bridge = Bridge::current();
            assert!(matches!(bridge, Bridge::Detached));
            let value = bridge.wait(async {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                9
            });
            assert_eq!(value, 9);
        });
    }
}
