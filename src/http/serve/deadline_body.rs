//! A request body with a deadline: past it, with data still missing, the handler's next
//! read fails and [`answer`](super::answer) turns the request into a `408`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::duration_ms;

pub(super) const BODY_READING: u8 = 0;
pub(super) const BODY_DONE: u8 = 1;
pub(super) const BODY_TIMED_OUT: u8 = 2;

/// A request body that fails once its deadline has passed with data still missing.
pub(super) struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
    /// [`BODY_READING`], [`BODY_DONE`] or [`BODY_TIMED_OUT`]; shared with [`answer`].
    pub(super) state: Arc<AtomicU8>,
}

impl<B: http_body::Body> DeadlineBody<B> {
    pub(super) fn new(inner: B, deadline: Instant, limit: Duration) -> Self {
        let state = if inner.is_end_stream() {
            BODY_DONE
        } else {
            BODY_READING
        };
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            limit,
            state: Arc::new(AtomicU8::new(state)),
        }
    }
}

/// The error a handler reads from a body past its deadline.
#[derive(Debug)]
pub(super) struct BodyTimeout(pub(super) Duration);

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} ms",
            duration_ms(self.0)
        )
    }
}

impl std::error::Error for BodyTimeout {}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.state.load(Ordering::Acquire) != BODY_READING {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.state.store(BODY_DONE, Ordering::Release);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                // The client's failure (a reset), not a timeout.
                this.state.store(BODY_DONE, Ordering::Release);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.state.store(BODY_DONE, Ordering::Release);
                Poll::Ready(None)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.state.store(BODY_TIMED_OUT, Ordering::Release);
                    tracing::debug!(
                        body_timeout_ms = duration_ms(this.limit),
                        "request body timeout: answered 408"
                    );
                    Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state.load(Ordering::Acquire) != BODY_READING || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
