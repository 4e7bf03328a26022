//! The service made by [`CtxLayer`](super::CtxLayer): it gives each request
//! its context, and ends that context with the request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use ::http::{Method, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::ClientDisconnected;
use super::body::CtxBody;
use super::config::{self, Config};
use super::early::Early;
use super::trace::{Outcome, RequestTrace};
use crate::context::Context;
use crate::done::DoneOwned;
use crate::error::{Cause, Error};
use crate::handle::CancelHandle;
use crate::task::{TaskTracker, TrackerToken};

/// The service made by [`CtxLayer`](super::CtxLayer).
///
/// ```
/// use ctx_runtime::http::{CtxLayer, CtxService};
/// use tower_layer::Layer;
/// let service: CtxService<()> = CtxLayer::new(ctx_runtime::Context::background()).layer(());
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct CtxService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> CtxService<S> {
    pub(super) fn new(inner: S, config: Arc<Config>) -> Self {
        CtxService { inner, config }
    }
}

impl<S, B, ResB> Service<Request<B>> for CtxService<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    ResB: Body,
    // The layer's own answers say why in their body (`Bytes` and every
    // body type of axum, tonic and hyper qualify).
    ResB::Data: From<String>,
{
    type Response = Response<CtxBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let read = self.config.read(req.headers());
        let grpc = read.grpc;
        let early = |answer| ResponseFuture {
            state: State::Early { answer, grpc },
        };
        let budget = match self.config.budget(&read) {
            Ok(budget) => budget,
            Err(bad) => {
                let no_budget = config::Budget {
                    timeout: None,
                    source: config::Source::None,
                };
                RequestTrace::new(&req, no_budget).refused(&bad);
                return early(Early::BadTimeout(bad));
            }
        };
        let trace = RequestTrace::new(&req, budget);
        // Answered at once, without a timer tick: tonic's own grpc-timeout
        // handling would otherwise answer CANCELLED first.
        if budget.timeout.is_some_and(|t| t.is_zero()) {
            trace.expired_on_arrival();
            return early(Early::Deadline);
        }
        let root = &self.config.root;
        if root.is_done() {
            trace.ended_with(Outcome::ShuttingDown, root);
            return early(Early::Shutdown);
        }
        let (ctx, cancel) = match budget.timeout {
            Some(timeout) => root.with_timeout(timeout),
            None => root.with_cancel(),
        };
        req.extensions_mut().insert(ctx.clone());
        let method = req.method().clone();
        let guard = Guard {
            cancel: Some(cancel),
            _token: self.config.tracker.as_ref().map(TaskTracker::token),
            trace,
        };
        ResponseFuture {
            state: State::Running {
                guard,
                handler: self.inner.call(req),
                done: ctx.done_owned(),
                ctx,
                grpc,
                method,
            },
        }
    }
}

/// Owns a request's cancel handle: finishing it cancels plainly (the
/// request is over), dropping it first means the client went away.
pub(super) struct Guard {
    cancel: Option<CancelHandle>,
    _token: Option<TrackerToken>,
    trace: RequestTrace,
}

impl Guard {
    /// Ends the request's context: plainly when the request is over (Go:
    /// ServeHTTP returned), with [`ClientDisconnected`] when its client left.
    pub(super) fn finish(mut self, disconnected: bool) {
        self.end(disconnected);
    }

    fn end(&mut self, disconnected: bool) {
        if let Some(cancel) = self.cancel.take() {
            let before = self.trace.before(&cancel);
            if disconnected {
                cancel.cancel_with_cause(Cause::new(ClientDisconnected));
            } else {
                cancel.cancel();
            }
            self.trace.finished(&cancel, before, disconnected);
        }
    }

    /// The layer answers for the handler, because the context ended with
    /// `err`: one event saying so, then the context is released.
    fn answered(mut self, err: Error) {
        if let Some(cancel) = self.cancel.take() {
            self.trace.answered(err, &cancel);
        }
    }

    pub(super) fn trace(&self) -> &RequestTrace {
        &self.trace
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.end(true);
    }
}

pin_project! {
    /// The response future of [`CtxService`].
    ///
    /// Dropping it before it completes cancels the request's context with
    /// [`ClientDisconnected`]: hyper drops it when the client goes away.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::http::{ClientDisconnected, CtxLayer};
    /// use std::convert::Infallible;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// # #[derive(Clone)] struct Never(tokio::sync::mpsc::UnboundedSender<Context>);
    /// # impl Service<http::Request<()>> for Never {
    /// #     type Response = http::Response<String>;
    /// #     type Error = Infallible;
    /// #     type Future = std::future::Pending<Result<http::Response<String>, Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> { std::task::Poll::Ready(Ok(())) }
    /// #     fn call(&mut self, req: http::Request<()>) -> Self::Future {
    /// #         self.0.send(req.extensions().get::<Context>().unwrap().clone()).unwrap();
    /// #         std::future::pending()
    /// #     }
    /// # }
    /// let (tx, mut contexts) = tokio::sync::mpsc::unbounded_channel();
    /// // `Never` hands its request's context over and never answers.
    /// let mut service = CtxLayer::new(Context::background()).layer(Never(tx));
    /// let response = service.call(http::Request::new(()));
    /// let ctx = contexts.recv().await.unwrap();
    /// drop(response); // the client went away
    /// assert!(ctx.cause().unwrap().is::<ClientDisconnected>());
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateOwned]
    enum State<F> {
        /// The layer answers without calling the handler.
        Early { answer: Early, grpc: bool },
        /// The handler runs under the request's context.
        Running {
            // Declared first so that it drops first: a handler dropped because
            // its client left already sees its context cancelled.
            guard: Guard,
            #[pin]
            handler: F,
            // Biased like `Context::run`: checked before the handler.
            ctx: Context,
            done: DoneOwned,
            grpc: bool,
            // With the status, says whether the response has a body.
            method: Method,
        },
        /// Answered; polled again by mistake.
        Finished,
    }
}

impl<F, ResB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    ResB: Body,
    ResB::Data: From<String>,
{
    type Output = Result<Response<CtxBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let next = match state.as_mut().project() {
            StateProj::Finished => return Poll::Pending,
            StateProj::Early { .. } => Next::Early,
            StateProj::Running {
                guard,
                handler,
                ctx,
                done,
                ..
            } => match ctx.err() {
                Some(err) => Next::Ended(err),
                None => {
                    let polled = {
                        let _span = guard.trace().enter();
                        handler.poll(cx)
                    };
                    match polled {
                        Poll::Ready(result) => Next::Answered(result),
                        Poll::Pending => match Pin::new(done).poll(cx) {
                            Poll::Ready(err) => Next::Ended(err),
                            Poll::Pending => return Poll::Pending,
                        },
                    }
                }
            },
        };
        // Whatever happens now, the handler (and whatever it awaits) is
        // dropped here, before the response goes out.
        let answer = match (state.project_replace(State::Finished), next) {
            (StateOwned::Early { answer, grpc }, _) => Ok(answer.response(grpc)),
            (StateOwned::Running { guard, method, .. }, Next::Answered(result)) => {
                answered(guard, &method, result)
            }
            (StateOwned::Running { guard, grpc, .. }, Next::Ended(err)) => {
                guard.answered(err);
                let answer = match err {
                    Error::DeadlineExceeded => Early::Deadline,
                    Error::Canceled => Early::Shutdown,
                };
                Ok(answer.response(grpc))
            }
            // `next` was read from the same state: no other pairs occur.
            (StateOwned::Running { .. } | StateOwned::Finished, _) => return Poll::Pending,
        };
        Poll::Ready(answer)
    }
}

/// What polling a [`ResponseFuture`] found.
enum Next<T> {
    /// The layer answers by itself.
    Early,
    /// The handler answered.
    Answered(T),
    /// The request's context ended first.
    Ended(Error),
}

/// The handler answered: its response goes out with a body that holds the
/// request in flight until it has been delivered.
fn answered<ResB: Body, E>(
    guard: Guard,
    method: &Method,
    result: Result<Response<ResB>, E>,
) -> Result<Response<CtxBody<ResB>>, E> {
    let response = match result {
        Ok(response) => response,
        Err(err) => {
            guard.finish(false);
            return Err(err);
        }
    };
    // What the response promised: hyper trusts the body's exact size over
    // the header, and stops polling once that many bytes went out.
    let length = response
        .body()
        .size_hint()
        .exact()
        .or_else(|| config::content_length(response.headers()));
    if !config::carries_body(method, response.status())
        || response.body().is_end_stream()
        || length == Some(0)
    {
        // hyper sends no body: the request is over now.
        guard.finish(false);
        return Ok(response.map(CtxBody::done));
    }
    Ok(response.map(|body| CtxBody::streaming(body, guard, length)))
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("ResponseFuture");
        match &self.state {
            State::Early { answer, .. } => out.field("answer", answer),
            State::Running { ctx, .. } => out.field("ctx", ctx),
            State::Finished => out.field("finished", &true),
        };
        out.finish_non_exhaustive()
    }
}
