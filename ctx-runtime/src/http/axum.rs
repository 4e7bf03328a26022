//! axum extractors for the [`Context`] that [`CtxLayer`](super::CtxLayer) inserted.

use std::convert::Infallible;
use std::fmt;

use ::http::StatusCode;
use ::http::request::Parts;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};

use crate::context::Context;

/// `ctx: Context` as an axum handler argument: the request's context from
/// [`CtxLayer`](super::CtxLayer). Without the layer, the request is refused
/// with [`MissingContext`] (500); take `Option<Context>` to allow that.
///
/// ```
/// use axum::{Router, routing::get};
/// use ctx_runtime::{Context, Error};
/// use ctx_runtime::http::CtxLayer;
///
/// async fn report(ctx: Context) -> Result<String, (http::StatusCode, String)> {
///     let slow = tokio::time::sleep(std::time::Duration::from_millis(10));
///     ctx.run(slow).await.map_err(|e: Error| (http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
///     Ok(format!("{:?} left", ctx.remaining()))
/// }
///
/// async fn maybe(ctx: Option<Context>) -> &'static str {
///     if ctx.is_some() { "with a context" } else { "without" }
/// }
///
/// let (root, _shutdown) = Context::background().with_cancel();
/// let app: Router = Router::new()
///     .route("/report", get(report))
///     .route("/maybe", get(maybe))
///     .layer(CtxLayer::new(root));
/// # drop(app);
/// ```
impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = MissingContext;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, MissingContext> {
        parts
            .extensions
            .get::<Context>()
            .cloned()
            .ok_or(MissingContext)
    }
}

/// `ctx: Option<Context>`: `None` when no [`CtxLayer`](super::CtxLayer) ran.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Context {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Context>().cloned())
    }
}

/// The rejection of the `Context` extractor when the request has none: the
/// router lacks [`CtxLayer`](super::CtxLayer). Answers 500 with a message
/// that says so.
///
/// ```
/// use axum_core::response::IntoResponse;
/// let response = ctx_runtime::http::MissingContext.into_response();
/// assert_eq!(response.status(), 500);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MissingContext;

impl fmt::Display for MissingContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no ctx_runtime::Context in the request: add `.layer(ctx_runtime::http::CtxLayer::new(root))` to the router",
        )
    }
}

impl std::error::Error for MissingContext {}

impl IntoResponse for MissingContext {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
