//! The response body: the handler's, which keeps the request in flight until
//! its end has gone out, or the layer's own short message.

use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::service::Guard;

pin_project! {
    /// The response body of [`CtxService`](super::CtxService): the handler's
    /// body, which keeps the request's context alive until it has been sent,
    /// or the layer's own short message.
    ///
    /// The request is over, and its context cancelled, when the body has
    /// been delivered in full: it ended, or it sent every byte of its
    /// `Content-Length` (hyper then drops it without polling its end), or
    /// the response has no body on the wire at all (HEAD, 204, 304, a 2xx
    /// to CONNECT). Dropped before that (the client went away in the middle
    /// of a streaming response), the context is cancelled with
    /// [`ClientDisconnected`](super::ClientDisconnected).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ctx_runtime::Context;
    /// use ctx_runtime::http::CtxLayer;
    /// use std::convert::Infallible;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// # #[derive(Clone)] struct Hello(tokio::sync::mpsc::UnboundedSender<Context>);
    /// # impl Service<http::Request<()>> for Hello {
    /// #     type Response = http::Response<String>;
    /// #     type Error = Infallible;
    /// #     type Future = std::future::Ready<Result<http::Response<String>, Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> { std::task::Poll::Ready(Ok(())) }
    /// #     fn call(&mut self, req: http::Request<()>) -> Self::Future {
    /// #         self.0.send(req.extensions().get::<Context>().unwrap().clone()).unwrap();
    /// #         std::future::ready(Ok(http::Response::new("hello".to_owned())))
    /// #     }
    /// # }
    /// let (tx, mut contexts) = tokio::sync::mpsc::unbounded_channel();
    /// // `Hello` hands its request's context over and answers "hello".
    /// let mut service = CtxLayer::new(Context::background()).layer(Hello(tx));
    /// let response = service.call(http::Request::new(())).await.unwrap();
    /// let ctx = contexts.recv().await.unwrap();
    /// let mut body = response.into_body(); // a CtxBody<String>
    /// assert!(!ctx.is_done(), "alive while the body is unsent");
    /// let frame = std::future::poll_fn(|cx| http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)).await;
    /// assert_eq!(frame.unwrap().unwrap().into_data().unwrap(), "hello");
    /// assert!(ctx.is_done(), "the whole body went out: the request is over");
    /// # }
    /// ```
    pub struct CtxBody<B: Body> {
        #[pin]
        kind: Kind<B>,
    }

    impl<B: Body> PinnedDrop for CtxBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let KindProj::Handler { inner, request } = this.project().kind.project()
                && let Some(request) = request.take()
            {
                let delivered = inner.is_end_stream() || request.remaining == Some(0);
                request.guard.finish(!delivered);
            }
        }
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        /// The handler's body. `request` is `None` once the request is over
        /// (or was over when the handler answered).
        Handler {
            #[pin]
            inner: B,
            request: Option<InFlight>,
        },
        /// The layer's own answer: one chunk, or none.
        Message { data: Option<B::Data> },
    }
}

/// A request whose response body is still going out.
struct InFlight {
    guard: Guard,
    /// Bytes left to send when the response's length is known.
    remaining: Option<u64>,
}

impl<B: Body> CtxBody<B> {
    /// The handler's body, holding the request in flight until it has been
    /// delivered; `length` is what the response promised (its exact size
    /// hint, else its `Content-Length`).
    pub(super) fn streaming(inner: B, guard: Guard, length: Option<u64>) -> Self {
        CtxBody {
            kind: Kind::Handler {
                inner,
                request: Some(InFlight {
                    guard,
                    remaining: length,
                }),
            },
        }
    }

    /// The handler's body, of a request already over.
    pub(super) fn done(inner: B) -> Self {
        CtxBody {
            kind: Kind::Handler {
                inner,
                request: None,
            },
        }
    }

    /// The layer's own answer.
    pub(super) fn message(data: Option<B::Data>) -> Self {
        CtxBody {
            kind: Kind::Message { data },
        }
    }
}

impl<B: Body> Body for CtxBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let (mut inner, request) = match self.project().kind.project() {
            KindProj::Message { data } => {
                return Poll::Ready(data.take().map(|data| Ok(Frame::data(data))));
            }
            KindProj::Handler { inner, request } => (inner, request),
        };
        let polled = {
            let _span = request.as_ref().map(|r| r.guard.trace().enter());
            inner.as_mut().poll_frame(cx)
        };
        let ended = match &polled {
            Poll::Pending => false,
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(InFlight { remaining, .. })) =
                    (frame.data_ref(), request.as_mut())
                {
                    *remaining = remaining.map(|left| left.saturating_sub(data.remaining() as u64));
                }
                inner.is_end_stream()
            }
        };
        if ended && let Some(request) = request.take() {
            request.guard.finish(false);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Handler { inner, .. } => inner.is_end_stream(),
            Kind::Message { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Handler { inner, .. } => inner.size_hint(),
            Kind::Message { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.remaining() as u64))
            }
        }
    }
}

impl<B: Body> fmt::Debug for CtxBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("CtxBody");
        match &self.kind {
            Kind::Handler { request, .. } => out
                .field("in_flight", &request.is_some())
                .field("remaining", &request.as_ref().and_then(|r| r.remaining)),
            Kind::Message { data } => out.field("message", &data.is_some()),
        };
        out.finish_non_exhaustive()
    }
}
