//! The layer's `tracing` events (feature `tracing`): per request a span that
//! records the deadline the layer set, and one event when the request ends
//! other than by completing. Without the feature, every item here is an
//! empty type or an empty inline function: nothing is emitted or compiled in.

use ::http::Request;

use super::config::{BadTimeout, Budget};
use crate::context::Context;
use crate::error::Error;
use crate::handle::CancelHandle;

/// How a request ended, when it did not complete.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The client went away before the response was complete.
    ClientDisconnected,
    /// The request's deadline passed.
    DeadlineExceeded,
    /// The server's root context was cancelled.
    ShuttingDown,
}

impl Outcome {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Outcome::ClientDisconnected => "client disconnected",
            Outcome::DeadlineExceeded => "deadline exceeded",
            Outcome::ShuttingDown => "shutting down",
        }
    }
}

#[cfg(feature = "tracing")]
pub(super) use self::on::RequestTrace;

#[cfg(not(feature = "tracing"))]
pub(super) use self::off::RequestTrace;

#[cfg(feature = "tracing")]
mod on {
    use super::*;
    use crate::http::ClientDisconnected;
    use std::fmt;
    use tracing::field;

    /// A request's span, and what its outcome event reports.
    pub(crate) struct RequestTrace {
        span: tracing::Span,
        budget: Budget,
        start: std::time::Instant,
    }

    impl RequestTrace {
        /// Opens the request's span, with the deadline the layer set.
        pub(crate) fn new<B>(request: &Request<B>, budget: Budget) -> RequestTrace {
            let span = tracing::info_span!(
                target: "ctx_runtime::http",
                "request",
                method = %request.method(),
                path = request.uri().path(),
                timeout_ms = field::Empty,
                timeout_from = budget.source.as_str(),
            );
            if let Some(timeout) = budget.timeout {
                span.record("timeout_ms", millis(timeout));
            }
            RequestTrace {
                span,
                budget,
                start: std::time::Instant::now(),
            }
        }

        /// Makes the span current while the handler or its body is polled.
        pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
            self.span.enter()
        }

        /// The one event of a request that did not complete.
        fn ended(&self, outcome: Outcome, cause: &dyn fmt::Display) {
            let elapsed_ms = millis(self.start.elapsed());
            let timeout_ms = self.budget.timeout.map(millis);
            macro_rules! event {
                ($level:expr) => {
                    tracing::event!(
                        target: "ctx_runtime::http",
                        parent: &self.span,
                        $level,
                        outcome = outcome.as_str(),
                        cause = %cause,
                        timeout_ms,
                        elapsed_ms,
                        "request ended early: {}",
                        outcome.as_str(),
                    )
                };
            }
            // A client that leaves is routine; a deadline or a shutdown
            // is worth seeing at the default level.
            match outcome {
                Outcome::ClientDisconnected => event!(tracing::Level::DEBUG),
                Outcome::DeadlineExceeded | Outcome::ShuttingDown => {
                    event!(tracing::Level::INFO)
                }
            }
        }

        /// The request's timeout was zero: answered at once.
        pub(crate) fn expired_on_arrival(&self) {
            self.ended(Outcome::DeadlineExceeded, &"timeout of zero");
        }

        /// The layer answers for the handler, because the request's context
        /// (which `cancel` cancels) ended with `err`.
        pub(crate) fn answered(&self, err: Error, cancel: &CancelHandle) {
            let outcome = match err {
                Error::DeadlineExceeded => Outcome::DeadlineExceeded,
                Error::Canceled => Outcome::ShuttingDown,
            };
            self.ended_with(outcome, &cancel.context());
        }

        /// The request ended with `outcome`, which `ctx` (the request's, or
        /// the root's) says more about.
        pub(crate) fn ended_with(&self, outcome: Outcome, ctx: &Context) {
            match ctx.cause() {
                Some(cause) => self.ended(outcome, &cause),
                None => self.ended(outcome, &outcome.as_str()),
            }
        }

        /// The layer refused the request's timeout header (400).
        pub(crate) fn refused(&self, bad: &BadTimeout) {
            tracing::debug!(
                target: "ctx_runtime::http",
                parent: &self.span,
                outcome = "malformed timeout header",
                header = %bad.header,
                reason = bad.reason,
                "request refused: {bad}",
            );
        }

        /// How the request's context stands before the layer cancels it.
        pub(crate) fn before(&self, cancel: &CancelHandle) -> Before {
            cancel.context().err()
        }

        /// The layer has just cancelled the request's context, because the
        /// client left (`disconnected`) or the response was complete: one
        /// event if the request ended otherwise than by completing.
        pub(crate) fn finished(&self, cancel: &CancelHandle, before: Before, disconnected: bool) {
            let ctx = cancel.context();
            let outcome = if disconnected {
                // Ours, unless the context had already ended (or ended in
                // between): then that is the news.
                match ctx.cause() {
                    Some(cause) if cause.is::<ClientDisconnected>() => Outcome::ClientDisconnected,
                    _ => outcome_of(ctx.err()),
                }
            } else {
                match before {
                    None => return, // completed
                    Some(err) => outcome_of(Some(err)),
                }
            };
            self.ended_with(outcome, &ctx);
        }
    }

    /// A request context that was not ended by the layer ended by its
    /// deadline, or by its root (shutdown).
    fn outcome_of(err: Option<Error>) -> Outcome {
        match err {
            Some(Error::DeadlineExceeded) => Outcome::DeadlineExceeded,
            _ => Outcome::ShuttingDown,
        }
    }

    /// The request context's error before the layer cancels it.
    pub(crate) type Before = Option<Error>;

    fn millis(d: std::time::Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    impl fmt::Debug for RequestTrace {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RequestTrace")
                .field("span", &self.span)
                .finish_non_exhaustive()
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    use super::*;

    /// Nothing: the `tracing` feature is off.
    #[derive(Debug)]
    pub(crate) struct RequestTrace;

    /// Nothing to keep (a unit struct rather than `()`, so that the callers'
    /// `let` bindings read the same with the feature on and off).
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Nothing;

    impl RequestTrace {
        #[inline(always)]
        pub(crate) fn new<B>(_: &Request<B>, _: Budget) -> RequestTrace {
            RequestTrace
        }

        #[inline(always)]
        pub(crate) fn enter(&self) -> Nothing {
            Nothing
        }

        #[inline(always)]
        pub(crate) fn expired_on_arrival(&self) {}

        #[inline(always)]
        pub(crate) fn answered(&self, _: Error, _: &CancelHandle) {}

        #[inline(always)]
        pub(crate) fn ended_with(&self, _: Outcome, _: &Context) {}

        #[inline(always)]
        pub(crate) fn refused(&self, _: &BadTimeout) {}

        #[inline(always)]
        pub(crate) fn before(&self, _: &CancelHandle) -> Before {
            Nothing
        }

        #[inline(always)]
        pub(crate) fn finished(&self, _: &CancelHandle, _: Before, _: bool) {}
    }

    /// Nothing: the `tracing` feature is off.
    pub(crate) type Before = Nothing;
}
