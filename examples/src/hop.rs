//! One gRPC service, `demo.Hop/Call`, that works a while and then calls the
//! next service of a chain: A -> B -> C.
//!
//! Each hop's server has [`CtxLayer`], which turns the incoming
//! `grpc-timeout` into the request context's deadline; each hop's client
//! sends what is left with [`ctx_runtime::tonic::request`]. So the deadline
//! shrinks hop by hop, and when it runs out every hop stops together.
//!
//! The messages are written by hand with prost's derive, and the service
//! code by hand with tonic's building blocks: no protoc, no build script.
//!
//! [`http`] is the same chain over plain HTTP: axum servers with
//! [`CtxLayer`], calling on with reqwest's `send_ctx`, the deadline in
//! `x-request-timeout`.

pub mod http;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use ::http::uri::PathAndQuery;
use ctx_runtime::http::CtxLayer;
use ctx_runtime::tonic as ctx_tonic;
use ctx_runtime::{Cause, Context, Error, Instant, grpc_timeout};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// The request: how long each hop works before calling the next.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HopRequest {
    /// Milliseconds of work per hop.
    #[prost(uint32, tag = "1")]
    pub work_ms: u32,
    /// The last hop, instead of answering, waits until its context ends.
    #[prost(bool, tag = "2")]
    pub hold_last: bool,
}

/// What one hop saw.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HopReport {
    /// The hop's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The `grpc-timeout` it received (empty if none).
    #[prost(string, tag = "2")]
    pub received: String,
    /// Microseconds from the start of its handler to computing what it sends.
    #[prost(uint64, tag = "3")]
    pub spent_us: u64,
    /// The `grpc-timeout` it sent to the next hop (empty for the last hop).
    #[prost(string, tag = "4")]
    pub sent: String,
}

/// The reply: the reports of this hop and every hop after it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HopReply {
    /// First hop first.
    #[prost(message, repeated, tag = "1")]
    pub hops: Vec<HopReport>,
}

/// The full method path.
const CALL: &str = "/demo.Hop/Call";

/// What a hop's handler did, for tests: see [`Log::events`].
#[derive(Clone, Debug)]
pub enum HopEvent {
    /// The handler started.
    Started {
        /// The hop's name.
        hop: String,
        /// The timeout header it received (`grpc-timeout` or
        /// `x-request-timeout`), if any.
        received: Option<String>,
        /// What its request context had left when it started.
        remaining: Option<Duration>,
    },
    /// The handler ended (returned or was dropped) because its request
    /// context ended first.
    Stopped {
        /// The hop's name.
        hop: String,
        /// How the context ended.
        err: Error,
        /// Why.
        cause: Option<Cause>,
    },
}

impl HopEvent {
    /// The hop it is about.
    pub fn hop(&self) -> &str {
        match self {
            HopEvent::Started { hop, .. } | HopEvent::Stopped { hop, .. } => hop,
        }
    }
}

/// The receiving end of the hops' events (see [`Log::events`]).
#[derive(Debug)]
pub struct Events(mpsc::UnboundedReceiver<HopEvent>);

impl From<mpsc::UnboundedReceiver<HopEvent>> for Events {
    fn from(rx: mpsc::UnboundedReceiver<HopEvent>) -> Events {
        Events(rx)
    }
}

impl Events {
    /// A quiet [`Log`] whose hops send their events here.
    pub fn new() -> (Log, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Log::quiet().events(tx), Events(rx))
    }

    /// Forgets the events received so far.
    pub fn clear(&mut self) {
        while self.0.try_recv().is_ok() {}
    }

    /// The next event matching `pred`, skipping the others. Panics after
    /// 20 s: a hung test, not a way to wait.
    pub async fn next(&mut self, what: &str, pred: impl Fn(&HopEvent) -> bool) -> HopEvent {
        let wait = async {
            loop {
                match self.0.recv().await {
                    Some(event) if pred(&event) => return event,
                    Some(_) => {}
                    None => panic!("the hops are gone, waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("no {what} within 20 s"))
    }

    /// Waits until `hop`'s handler starts: the timeout header it received,
    /// and what its context had left.
    pub async fn started(&mut self, hop: &str) -> (Option<String>, Option<Duration>) {
        let what = format!("the start of {hop}");
        match self
            .next(&what, |e| {
                matches!(e, HopEvent::Started { .. }) && e.hop() == hop
            })
            .await
        {
            HopEvent::Started {
                received,
                remaining,
                ..
            } => (received, remaining),
            HopEvent::Stopped { .. } => unreachable!("only a start matches"),
        }
    }

    /// Waits until some hop's handler stops: which, and how its context
    /// ended.
    pub async fn stopped(&mut self) -> (String, Error, Option<Cause>) {
        match self
            .next("a hop stopping", |e| matches!(e, HopEvent::Stopped { .. }))
            .await
        {
            HopEvent::Stopped { hop, err, cause } => (hop, err, cause),
            HopEvent::Started { .. } => unreachable!("only a stop matches"),
        }
    }
}

/// Where a hop prints its lines and sends its events, if anywhere.
#[derive(Clone, Debug, Default)]
pub struct Log {
    start: Option<Instant>,
    events: Option<mpsc::UnboundedSender<HopEvent>>,
}

impl Log {
    /// Prints lines with the time since `start`.
    pub fn since(start: Instant) -> Log {
        Log {
            start: Some(start),
            events: None,
        }
    }

    /// Prints nothing.
    pub fn quiet() -> Log {
        Log::default()
    }

    /// Also sends each [`HopEvent`] to `events` (the tests' way to know
    /// when each hop's handler started and stopped).
    pub fn events(mut self, events: mpsc::UnboundedSender<HopEvent>) -> Log {
        self.events = Some(events);
        self
    }

    fn line(&self, who: &str, what: impl std::fmt::Display) {
        if let Some(start) = self.start {
            println!("{:>6} ms  {who}  {what}", start.elapsed().as_millis());
        }
    }

    fn emit(&self, event: HopEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// The handler of `hop` started under `ctx`, having received `received`.
    fn started(&self, hop: &str, received: &str, ctx: &Context) {
        self.emit(HopEvent::Started {
            hop: hop.to_owned(),
            received: (!received.is_empty()).then(|| received.to_owned()),
            remaining: ctx.remaining(),
        });
    }
}

struct Hop {
    name: String,
    next: Option<Channel>,
    log: Log,
}

/// `"1500000u (1500.0 ms)"`, for the timeline.
fn show(timeout: &str) -> String {
    match grpc_timeout::parse(timeout) {
        Ok(d) => format!("{timeout} ({:.1} ms)", d.as_secs_f64() * 1000.0),
        Err(_) => "none".to_owned(),
    }
}

impl Hop {
    async fn call(&self, request: Request<HopRequest>) -> Result<Response<HopReply>, Status> {
        let start = Instant::now();
        let ctx = ctx_tonic::context(&request)?;
        let received = request
            .metadata()
            .get(grpc_timeout::HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let message = request.into_inner();
        let work = Duration::from_millis(message.work_ms.into());
        self.log.line(
            &self.name,
            format!("received grpc-timeout {}, works {work:?}", show(&received)),
        );
        self.log.started(&self.name, &received, &ctx);
        // CtxLayer drops this handler when its context ends: say so.
        let _stopped = StopLog::new(&self.log, &self.name, &ctx);
        let worked = ctx.run(tokio::time::sleep(work)).await;
        if let Err(err) = worked {
            return Err(ctx_tonic::status(&ctx, err));
        }
        let Some(next) = &self.next else {
            if message.hold_last {
                self.log.line(&self.name, "holds until its context ends");
                let err = ctx.done().await;
                return Err(ctx_tonic::status(&ctx, err));
            }
            let spent_us = start.elapsed().as_micros() as u64;
            self.log.line(&self.name, "done, answers");
            return Ok(Response::new(HopReply {
                hops: vec![HopReport {
                    name: self.name.clone(),
                    received,
                    spent_us,
                    sent: String::new(),
                }],
            }));
        };
        // Measured before the request takes the time left, so that
        // `sent <= received - spent` holds exactly.
        let spent_us = start.elapsed().as_micros() as u64;
        let outgoing = ctx_tonic::request(&ctx, message).inspect_err(|status| {
            self.log.line(
                &self.name,
                format!("does not call on: {}", status.message()),
            )
        })?;
        let sent = outgoing
            .metadata()
            .get(grpc_timeout::HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.log.line(
            &self.name,
            format!("calls on with grpc-timeout {}", show(&sent)),
        );
        let reply = ctx_tonic::call(&ctx, call(next.clone(), outgoing))
            .await
            .inspect_err(|status| {
                self.log.line(
                    &self.name,
                    format!("call failed: {:?} ({})", status.code(), status.message()),
                )
            })?;
        let mut hops = vec![HopReport {
            name: self.name.clone(),
            received,
            spent_us,
            sent,
        }];
        hops.extend(reply.into_inner().hops);
        Ok(Response::new(HopReply { hops }))
    }
}

/// Logs (and sends as [`HopEvent::Stopped`]) how a hop's handler ended, if
/// its context ended first.
struct StopLog<'a> {
    log: &'a Log,
    name: &'a str,
    ctx: &'a Context,
}

impl StopLog<'_> {
    fn new<'a>(log: &'a Log, name: &'a str, ctx: &'a Context) -> StopLog<'a> {
        StopLog { log, name, ctx }
    }
}

impl Drop for StopLog<'_> {
    fn drop(&mut self) {
        if let Some(err) = self.ctx.err()
            && !std::thread::panicking()
        {
            // Completion also cancels the request's context; only a deadline
            // or a cancellation that came first is news.
            let cause = self.ctx.cause();
            if err.is_timeout() || cause.as_ref().is_some_and(|c| !c.is::<Error>()) {
                let why = cause.as_ref().map(|c| c.to_string()).unwrap_or_default();
                if why == err.to_string() {
                    self.log.line(self.name, format!("stopped: {err}"));
                } else {
                    self.log.line(self.name, format!("stopped: {err} ({why})"));
                }
                self.log.emit(HopEvent::Stopped {
                    hop: self.name.to_owned(),
                    err,
                    cause,
                });
            }
        }
    }
}

/// Calls `demo.Hop/Call` on `channel`.
pub async fn call(
    channel: Channel,
    request: Request<HopRequest>,
) -> Result<Response<HopReply>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let codec = ProstCodec::<HopRequest, HopReply>::default();
    grpc.unary(request, PathAndQuery::from_static(CALL), codec)
        .await
}

/// A channel to the hop at `addr`, connected on first use.
pub fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_lazy()
}

/// The unary method as a tower service, for [`tonic::server::Grpc::unary`].
struct CallSvc(Arc<Hop>);

impl tower_service::Service<Request<HopRequest>> for CallSvc {
    type Response = Response<HopReply>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Response<HopReply>, Status>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<HopRequest>) -> Self::Future {
        let hop = Arc::clone(&self.0);
        Box::pin(async move { hop.call(request).await })
    }
}

/// The `demo.Hop` service, routed by path the way generated code does it.
#[derive(Clone)]
struct HopServer(Arc<Hop>);

impl NamedService for HopServer {
    const NAME: &'static str = "demo.Hop";
}

impl tower_service::Service<::http::Request<tonic::body::Body>> for HopServer {
    type Response = ::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ::http::Request<tonic::body::Body>) -> Self::Future {
        let hop = Arc::clone(&self.0);
        if request.uri().path() != CALL {
            return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
        }
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<HopReply, HopRequest>::default());
            Ok(grpc.unary(CallSvc(hop), request).await)
        })
    }
}

/// Starts hop `name` on 127.0.0.1 (an ephemeral port), calling `next` if
/// given. Its server has [`CtxLayer`]; it runs until the runtime stops.
pub async fn start(name: &str, next: Option<SocketAddr>, log: Log) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let hop = HopServer(Arc::new(Hop {
        name: name.to_owned(),
        next: next.map(channel),
        log,
    }));
    let (root, shutdown) = Context::background().with_cancel();
    tokio::spawn(async move {
        let _shutdown = shutdown; // the server's root lives as long as the server
        Server::builder()
            .layer(CtxLayer::new(root))
            .add_service(hop)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
    });
    Ok(addr)
}

/// Starts the chain A -> B -> C and returns A's address.
pub async fn start_chain(log: Log) -> io::Result<SocketAddr> {
    let c = start("C", None, log.clone()).await?;
    let b = start("B", Some(c), log.clone()).await?;
    start("A", Some(b), log).await
}

/// Calls the chain at `first` under `ctx`: its remaining time is the
/// chain's budget.
pub async fn call_chain(
    ctx: &Context,
    first: SocketAddr,
    work_ms: u32,
) -> Result<HopReply, Status> {
    call_chain_with(
        ctx,
        first,
        HopRequest {
            work_ms,
            hold_last: false,
        },
    )
    .await
}

/// [`call_chain`] with the whole request given.
pub async fn call_chain_with(
    ctx: &Context,
    first: SocketAddr,
    request: HopRequest,
) -> Result<HopReply, Status> {
    let request = ctx_tonic::request(ctx, request)?;
    let reply = ctx_tonic::call(ctx, call(channel(first), request)).await?;
    Ok(reply.into_inner())
}
