//! The chain A -> B -> C over plain HTTP: each hop is an axum server with
//! [`CtxLayer`], which turns the incoming `x-request-timeout` into the
//! request context's deadline, and calls the next hop with reqwest's
//! [`send_ctx`](ctx_runtime::reqwest::RequestBuilderExt::send_ctx), which
//! sends what is left. When A's client leaves, A's context is cancelled, its
//! call to B is dropped (HTTP/1.1: the connection closes; HTTP/2: the stream
//! is reset), so B's context is cancelled, and so on down to C.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::get;
use ctx_runtime::http::CtxLayer;
use ctx_runtime::reqwest::RequestBuilderExt;
use ctx_runtime::{Context, Instant, request_timeout};
use tokio::net::TcpListener;

use super::{Log, StopLog};

/// The path every hop serves: `GET /hop?work_ms=N&hold_last=1`.
pub const PATH: &str = "/hop";

/// Which HTTP the hops (and their callers) speak to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1: a call that is given up closes its connection.
    Http1,
    /// HTTP/2 without TLS (prior knowledge): a call that is given up resets
    /// its stream, and the connection stays.
    Http2,
}

/// A reqwest client that speaks `protocol`.
pub fn client(protocol: Protocol) -> reqwest::Client {
    let builder = reqwest::Client::builder();
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_prior_knowledge(),
    };
    builder.build().expect("a client without TLS")
}

/// What a hop is asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Milliseconds of work per hop before calling the next.
    pub work_ms: u32,
    /// The last hop, instead of answering, waits until its context ends.
    pub hold_last: bool,
}

impl Work {
    fn query(self) -> String {
        format!(
            "work_ms={}&hold_last={}",
            self.work_ms,
            u8::from(self.hold_last)
        )
    }

    /// Reads `work_ms` and `hold_last` from a query string; missing or
    /// malformed parts are zero.
    fn from_query(query: &str) -> Work {
        let mut work = Work::default();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("work_ms", ms)) => work.work_ms = ms.parse().unwrap_or(0),
                Some(("hold_last", hold)) => work.hold_last = hold == "1",
                _ => {}
            }
        }
        work
    }
}

struct Hop {
    name: String,
    /// `http://addr` of the next hop.
    next: Option<String>,
    client: reqwest::Client,
    log: Log,
}

type Failure = (StatusCode, String);

/// One hop: work, then call the next under the request's context; reply
/// with a line per hop, this one first.
async fn hop(
    State(hop): State<Arc<Hop>>,
    ctx: Context,
    headers: HeaderMap,
    uri: Uri,
) -> Result<String, Failure> {
    let start = Instant::now();
    let received = headers
        .get(request_timeout::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let work = Work::from_query(uri.query().unwrap_or_default());
    let shown = if received.is_empty() {
        "none"
    } else {
        &received
    };
    hop.log.line(
        &hop.name,
        format!(
            "received x-request-timeout {shown}, works {} ms",
            work.work_ms
        ),
    );
    hop.log.started(&hop.name, &received, &ctx);
    // CtxLayer drops this handler when its context ends: say so.
    let _stopped = StopLog::new(&hop.log, &hop.name, &ctx);
    let worked = ctx
        .run(tokio::time::sleep(Duration::from_millis(
            work.work_ms.into(),
        )))
        .await;
    worked.map_err(|err| (StatusCode::GATEWAY_TIMEOUT, err.to_string()))?;
    let spent = start.elapsed();
    let line = format!(
        "{}: received {shown}, worked {:.1} ms",
        hop.name,
        spent.as_secs_f64() * 1000.0
    );
    let Some(next) = &hop.next else {
        if work.hold_last {
            hop.log.line(&hop.name, "holds until its context ends");
            let err = ctx.done().await;
            return Err((StatusCode::GATEWAY_TIMEOUT, err.to_string()));
        }
        hop.log.line(&hop.name, "done, answers");
        return Ok(line + "\n");
    };
    hop.log.line(&hop.name, "calls on");
    let url = format!("{next}{PATH}?{}", work.query());
    let response = hop.client.get(url).send_ctx(&ctx).await.map_err(|err| {
        hop.log.line(&hop.name, format!("call failed: {err}"));
        let status = match err.context_error() {
            Some(err) if err.is_timeout() => StatusCode::GATEWAY_TIMEOUT,
            Some(_) => StatusCode::SERVICE_UNAVAILABLE,
            None => StatusCode::BAD_GATEWAY,
        };
        (status, err.to_string())
    })?;
    let status = response.status();
    let rest = ctx
        .run(response.text())
        .await
        .map_err(|err| (StatusCode::GATEWAY_TIMEOUT, err.to_string()))?
        .map_err(|err| (StatusCode::BAD_GATEWAY, err.to_string()))?;
    if !status.is_success() {
        hop.log
            .line(&hop.name, format!("next hop answered {status}"));
        return Err((status, rest));
    }
    Ok(format!("{line}\n{rest}"))
}

/// Starts hop `name` on 127.0.0.1 (an ephemeral port), calling `next` if
/// given, over `protocol`. Its server (HTTP/1.1 and HTTP/2) has
/// [`CtxLayer`]; it runs until the runtime stops.
pub async fn start(
    name: &str,
    next: Option<SocketAddr>,
    protocol: Protocol,
    log: Log,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(Hop {
        name: name.to_owned(),
        next: next.map(|addr| format!("http://{addr}")),
        client: client(protocol),
        log,
    });
    let (root, shutdown) = Context::background().with_cancel();
    let app = Router::new()
        .route(PATH, get(hop))
        .with_state(state)
        .layer(CtxLayer::new(root));
    tokio::spawn(async move {
        let _shutdown = shutdown; // the server's root lives as long as the server
        axum::serve(listener, app).await
    });
    Ok(addr)
}

/// Starts the chain A -> B -> C and returns A's address.
pub async fn start_chain(protocol: Protocol, log: Log) -> io::Result<SocketAddr> {
    let c = start("C", None, protocol, log.clone()).await?;
    let b = start("B", Some(c), protocol, log.clone()).await?;
    start("A", Some(b), protocol, log).await
}

/// Calls the chain at `first` under `ctx` (its remaining time is the
/// chain's budget) with `client`: the status and body of A's answer.
pub async fn call_chain(
    ctx: &Context,
    client: &reqwest::Client,
    first: SocketAddr,
    work: Work,
) -> Result<(StatusCode, String), ctx_runtime::reqwest::SendError> {
    let url = format!("http://{first}{PATH}?{}", work.query());
    let response = client.get(url).send_ctx(ctx).await?;
    let status = response.status();
    let body = ctx.run(response.text()).await??;
    Ok((status, body))
}
