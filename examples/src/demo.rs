//! The slow-upstream story with real parts.
//!
//! ```text
//!   client ──HTTP──▶ our service (axum + CtxLayer) ──spawns──▶ task ──reqwest──▶ slow upstream
//!                                                               └──────────────▶ SQLite (one row)
//! ```
//!
//! The handler starts the work as a *detached* task under the request's
//! context, the way real code hands work to the background: nothing but the
//! context ties the task to the request. With [`CtxLayer`] the context ends
//! when the client leaves or the deadline passes, and the task stops at its
//! next await, dropping the upstream call and writing nothing. Without it
//! (`Mode::WithoutCtxLayer`, the tests' negative control), the task runs to
//! the end and writes its row for a client that is long gone.
//!
//! The row is written through [`ctx_runtime::rusqlite::Connection`]: the
//! SQLite work runs under the task's context, so a context that ends while
//! the insert runs interrupts it, and no commit happens after it ends.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ctx_runtime::http::{ClientDisconnected, CtxLayer};
use ctx_runtime::reqwest::{RequestBuilderExt, SendError};
use ctx_runtime::{CancelHandle, Cause, Context, Error, Instant, TaskTracker};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// The header naming the demo's clients in the timeline.
pub const CLIENT_HEADER: &str = "x-client";

/// What happened, as the timeline records it.
#[derive(Clone, Debug)]
pub enum Event {
    /// A line from the demo's clients.
    Client {
        /// Which client.
        who: String,
        /// What it did or saw.
        what: String,
    },
    /// The upstream got a request.
    UpstreamReceived {
        /// For which client.
        who: String,
    },
    /// The upstream's handler was dropped before it answered: its client,
    /// our task, hung up.
    UpstreamDropped {
        /// For which client.
        who: String,
    },
    /// The upstream answered.
    UpstreamAnswered {
        /// For which client.
        who: String,
    },
    /// Our handler started.
    HandlerStarted {
        /// For which client.
        who: String,
        /// Time left on the request's context, if it has a deadline.
        deadline: Option<Duration>,
    },
    /// Our handler was dropped before it returned (hyper saw the client leave,
    /// or CtxLayer answered for it).
    HandlerDropped {
        /// For which client.
        who: String,
    },
    /// `POST /upload-read` started reading the request body.
    BodyReading {
        /// For which client.
        who: String,
    },
    /// `POST /upload-read` finished reading the request body.
    BodyRead {
        /// For which client.
        who: String,
        /// Why the body could not be read, if it could not.
        error: Option<String>,
    },
    /// The background task started.
    TaskStarted {
        /// For which client.
        who: String,
    },
    /// The background task saw its context end and stopped.
    TaskStopped {
        /// For which client.
        who: String,
        /// `ctx.err()`.
        err: Error,
        /// `ctx.cause()`.
        cause: Option<Cause>,
    },
    /// The background task failed for another reason.
    TaskFailed {
        /// For which client.
        who: String,
        /// Why.
        error: String,
    },
    /// The background task committed its row.
    RowWritten {
        /// For which client.
        who: String,
    },
}

impl Event {
    fn who(&self) -> &str {
        match self {
            Event::Client { who, .. }
            | Event::UpstreamReceived { who }
            | Event::UpstreamDropped { who }
            | Event::UpstreamAnswered { who }
            | Event::HandlerStarted { who, .. }
            | Event::HandlerDropped { who }
            | Event::BodyReading { who }
            | Event::BodyRead { who, .. }
            | Event::TaskStarted { who }
            | Event::TaskStopped { who, .. }
            | Event::TaskFailed { who, .. }
            | Event::RowWritten { who } => who,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Client { who, what } => write!(f, "{who:<9} {what}"),
            Event::UpstreamReceived { who } => {
                write!(f, "{:<9} upstream: request for {who} arrives", "")
            }
            Event::UpstreamDropped { who } => write!(
                f,
                "{:<9} upstream: connection for {who} dropped before answering (released)",
                ""
            ),
            Event::UpstreamAnswered { who } => write!(f, "{:<9} upstream: answers {who}", ""),
            Event::HandlerStarted { who, deadline } => match deadline {
                Some(left) => write!(f, "{who:<9} server: handler starts, deadline in {left:.0?}"),
                None => write!(f, "{who:<9} server: handler starts, no deadline"),
            },
            Event::HandlerDropped { who } => write!(f, "{who:<9} server: handler dropped"),
            Event::BodyReading { who } => write!(f, "{who:<9} server: reads the request body"),
            Event::BodyRead { who, error: None } => write!(f, "{who:<9} server: body read"),
            Event::BodyRead {
                who,
                error: Some(error),
            } => write!(f, "{who:<9} server: body read failed: {error}"),
            Event::TaskStarted { who } => {
                write!(
                    f,
                    "{who:<9} task: fetch from upstream, then write to SQLite"
                )
            }
            Event::TaskStopped { who, err, cause } => {
                write!(f, "{who:<9} task: STOPPED: {err}")?;
                match cause.as_ref().map(ToString::to_string) {
                    Some(cause) if cause != err.to_string() => write!(f, " (cause: {cause})")?,
                    _ => {}
                }
                f.write_str(", nothing written")
            }
            Event::TaskFailed { who, error } => write!(f, "{who:<9} task: failed: {error}"),
            Event::RowWritten { who } => write!(f, "{who:<9} task: row committed to SQLite"),
        }
    }
}

/// Where the parts of the demo report what they do: printed as a timeline
/// (for the demo) and sent to an [`Events`] receiver (for the demo's and the
/// tests' synchronisation).
#[derive(Clone, Debug)]
pub struct Timeline {
    start: Instant,
    print: bool,
    tx: mpsc::UnboundedSender<Event>,
}

/// The receiving end of a [`Timeline`].
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
    /// Every event received so far.
    seen: Vec<Event>,
    /// Received, but not yet returned by `wait_for`.
    pending: Vec<Event>,
}

/// A timeline that prints its events if `print`, and its receiver.
pub fn timeline(print: bool) -> (Timeline, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let timeline = Timeline {
        start: Instant::now(),
        print,
        tx,
    };
    (
        timeline,
        Events {
            rx,
            seen: Vec::new(),
            pending: Vec::new(),
        },
    )
}

impl Timeline {
    /// Records `event`.
    pub fn emit(&self, event: Event) {
        if self.print {
            println!("{:>6} ms  {event}", self.start.elapsed().as_millis());
        }
        let _ = self.tx.send(event);
    }

    /// Records a line from a client.
    pub fn client(&self, who: &str, what: impl Into<String>) {
        self.emit(Event::Client {
            who: who.to_owned(),
            what: what.into(),
        });
    }
}

impl Events {
    /// The first event of `who` matching `pred` not returned yet, in the
    /// order they happened. Panics after 10 s (a hung test, not a way to wait).
    pub async fn wait_for(
        &mut self,
        who: &str,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        let matches = |event: &Event| event.who() == who && pred(event);
        if let Some(i) = self.pending.iter().position(matches) {
            return self.pending.remove(i);
        }
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.rx.recv()).await;
            match next {
                Ok(Some(event)) => {
                    self.seen.push(event.clone());
                    if matches(&event) {
                        return event;
                    }
                    self.pending.push(event);
                }
                Ok(None) => panic!("timeline closed while waiting for {who}: {what}"),
                Err(_) => panic!("no {what} for {who} within 10 s; seen: {:#?}", self.seen),
            }
        }
    }

    /// How `who`'s task ended: stopped by its context, or with its row written.
    pub async fn task_end(&mut self, who: &str) -> Event {
        self.wait_for(who, "the end of the task", |e| {
            matches!(e, Event::TaskStopped { .. } | Event::RowWritten { .. })
        })
        .await
    }

    /// How `who`'s upstream call ended: dropped (the connection released) or
    /// answered.
    pub async fn upstream_end(&mut self, who: &str) -> Event {
        self.wait_for(who, "the end of the upstream call", |e| {
            matches!(
                e,
                Event::UpstreamDropped { .. } | Event::UpstreamAnswered { .. }
            )
        })
        .await
    }

    /// Every event received so far.
    pub fn seen(&mut self) -> &[Event] {
        while let Ok(event) = self.rx.try_recv() {
            self.seen.push(event.clone());
            self.pending.push(event);
        }
        &self.seen
    }
}

/// A door the upstream's answers wait behind, for tests that decide when
/// (or whether) the upstream answers.
#[derive(Clone, Debug)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(watch::Sender::new(false)))
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every waiting (and later) answer through.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// When the upstream answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// After a fixed delay: the demo.
    After(Duration),
    /// When the gate opens: the tests.
    WhenOpened(Gate),
}

/// Runs `f` when dropped, unless disarmed.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnDrop<F> {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

fn client_of(headers: &HeaderMap) -> String {
    headers
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous")
        .to_owned()
}

#[derive(Clone)]
struct UpstreamState {
    answer: Answer,
    timeline: Timeline,
}

/// Starts the slow upstream on 127.0.0.1 (an ephemeral port): `GET /data`
/// answers `"42 widgets"` when `answer` says so. It is someone else's
/// service: no ctx here, only hyper dropping the handler when its client
/// hangs up, which the timeline records.
pub async fn start_upstream(answer: Answer, timeline: Timeline) -> io::Result<SocketAddr> {
    async fn data(State(state): State<UpstreamState>, headers: HeaderMap) -> &'static str {
        let who = client_of(&headers);
        state
            .timeline
            .emit(Event::UpstreamReceived { who: who.clone() });
        let mut dropped = OnDrop(Some({
            let timeline = state.timeline.clone();
            let who = who.clone();
            move || timeline.emit(Event::UpstreamDropped { who })
        }));
        match &state.answer {
            Answer::After(delay) => tokio::time::sleep(*delay).await,
            Answer::WhenOpened(gate) => gate.wait().await,
        }
        dropped.disarm();
        state.timeline.emit(Event::UpstreamAnswered { who });
        "42 widgets"
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = Router::new()
        .route("/data", get(data))
        .with_state(UpstreamState { answer, timeline });
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

/// Our service's state: the database, the upstream, and what it runs.
#[derive(Clone)]
pub struct App {
    db: ctx_runtime::rusqlite::Connection,
    upstream: String,
    client: reqwest::Client,
    timeline: Timeline,
    tracker: TaskTracker,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("upstream", &self.upstream)
            .field("tracker", &self.tracker)
            .finish_non_exhaustive()
    }
}

/// Why the background task failed.
#[derive(Debug)]
pub enum JobError {
    /// Its context ended.
    Ctx(Error),
    /// The upstream call failed.
    Upstream(String),
    /// SQLite failed.
    Db(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Ctx(err) => write!(f, "{err}"),
            JobError::Upstream(err) => write!(f, "upstream: {err}"),
            JobError::Db(err) => write!(f, "database: {err}"),
        }
    }
}

impl From<Error> for JobError {
    fn from(err: Error) -> Self {
        JobError::Ctx(err)
    }
}

impl From<SendError> for JobError {
    fn from(err: SendError) -> Self {
        match err {
            SendError::Context(err) => JobError::Ctx(err),
            SendError::Http(err) => JobError::Upstream(err.to_string()),
        }
    }
}

impl From<reqwest::Error> for JobError {
    fn from(err: reqwest::Error) -> Self {
        JobError::Upstream(err.to_string())
    }
}

impl From<ctx_runtime::rusqlite::Error> for JobError {
    fn from(err: ctx_runtime::rusqlite::Error) -> Self {
        match err.context_error() {
            Some(err) => JobError::Ctx(err),
            None => JobError::Db(err.to_string()),
        }
    }
}

impl App {
    /// A service that fetches from the upstream at `upstream`, with an
    /// in-memory SQLite database (a real, embedded one).
    pub fn new(upstream: SocketAddr, timeline: Timeline) -> rusqlite::Result<App> {
        let db = rusqlite::Connection::open_in_memory()?;
        db.execute_batch(
            "CREATE TABLE reports (id INTEGER PRIMARY KEY, client TEXT NOT NULL, body TEXT NOT NULL)",
        )?;
        Ok(App {
            db: ctx_runtime::rusqlite::Connection::new(db),
            upstream: format!("http://{upstream}/data"),
            client: reqwest::Client::new(),
            timeline,
            tracker: TaskTracker::new(),
        })
    }

    /// The number of rows in the `reports` table.
    pub fn rows(&self) -> i64 {
        self.db
            .call_blocking(&Context::background(), |db| {
                db.query_row("SELECT COUNT(*) FROM reports", [], |row| row.get(0))
            })
            .expect("count rows")
    }

    /// Counts the requests in flight and the background tasks.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// The routes, without any layer:
    ///
    /// * `GET /report`: spawn the task, answer with what it fetched;
    /// * `POST /upload-unread`: the same, leaving the request body unread;
    /// * `POST /upload-read`: the same, after reading the whole body.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/report", get(report))
            .route("/upload-unread", post(report))
            .route("/upload-read", post(upload_read))
            .with_state(self.clone())
    }

    /// Writes the row under `ctx`, on the blocking pool: once `ctx` has
    /// ended, the insert is interrupted and the commit refused, so a
    /// cancelled request commits nothing.
    async fn store(&self, ctx: &Context, who: &str, body: &str) -> Result<(), JobError> {
        let (who, body) = (who.to_owned(), body.to_owned());
        self.db
            .call(ctx, move |db| {
                let tx = db.transaction()?;
                tx.execute(
                    "INSERT INTO reports (client, body) VALUES (?1, ?2)",
                    (&who, &body),
                )?;
                tx.commit()
            })
            .await?;
        Ok(())
    }

    /// The background task: fetch, then store. Every await watches `ctx`.
    async fn fetch_and_store(self, ctx: Context, who: String) -> Result<String, JobError> {
        self.timeline.emit(Event::TaskStarted { who: who.clone() });
        let result = async {
            let response = self
                .client
                .get(&self.upstream)
                .header(CLIENT_HEADER, &who)
                .send_ctx(&ctx)
                .await?;
            let body = ctx.run(response.text()).await??;
            self.store(&ctx, &who, &body).await?;
            Ok(body)
        }
        .await;
        self.timeline.emit(match &result {
            Ok(_) => Event::RowWritten { who },
            Err(JobError::Ctx(err)) => Event::TaskStopped {
                who,
                err: *err,
                cause: ctx.cause(),
            },
            Err(other) => Event::TaskFailed {
                who,
                error: other.to_string(),
            },
        });
        result
    }
}

async fn report(State(app): State<App>, ctx: Context, headers: HeaderMap) -> (StatusCode, String) {
    let who = client_of(&headers);
    app.timeline.emit(Event::HandlerStarted {
        who: who.clone(),
        deadline: ctx.remaining(),
    });
    let mut dropped = OnDrop(Some({
        let timeline = app.timeline.clone();
        let who = who.clone();
        move || timeline.emit(Event::HandlerDropped { who })
    }));
    // Detached: the task outlives this handler if the handler is dropped.
    // Only its context (a child of the request's) can stop it.
    let job = app
        .tracker
        .spawn(&ctx, {
            let app = app.clone();
            move |ctx| app.fetch_and_store(ctx, who)
        })
        .detach();
    let result = job.await;
    dropped.disarm();
    match result {
        Ok(Ok(body)) => (StatusCode::OK, body),
        Ok(Err(JobError::Ctx(err))) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
        Ok(Err(err)) => (StatusCode::BAD_GATEWAY, err.to_string()),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

async fn upload_read(
    State(app): State<App>,
    ctx: Context,
    headers: HeaderMap,
    body: axum::body::Body,
) -> (StatusCode, String) {
    let who = client_of(&headers);
    app.timeline.emit(Event::BodyReading { who: who.clone() });
    // Read in full before the slow work starts: a client that hangs up
    // mid-upload ends the body early, and we never start the work.
    let read = ctx.run(axum::body::to_bytes(body, usize::MAX)).await;
    let error = match &read {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(err.to_string()),
        Err(err) => Some(err.to_string()),
    };
    app.timeline.emit(Event::BodyRead {
        who,
        error: error.clone(),
    });
    match error {
        None => report(State(app), ctx, headers).await,
        Some(error) => (StatusCode::BAD_REQUEST, error),
    }
}

/// With or without [`CtxLayer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `CtxLayer`: a request context that ends with the request.
    WithCtxLayer,
    /// No `CtxLayer`: every request gets `Context::background()`, which
    /// nothing ever cancels (the negative control).
    WithoutCtxLayer,
}

/// Our service, running.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server's root context: every request's is a child.
    pub root: Context,
    shutdown: CancelHandle,
    tracker: TaskTracker,
    serve: tokio::task::JoinHandle<io::Result<()>>,
}

impl Server {
    /// Starts `app` on 127.0.0.1 (an ephemeral port), serving HTTP/1.1 and
    /// HTTP/2 (prior knowledge).
    pub async fn start(app: &App, mode: Mode) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (root, shutdown) = Context::background().with_cancel();
        let router = match mode {
            Mode::WithCtxLayer => app.router().layer(
                CtxLayer::new(root.clone())
                    .max_timeout(Duration::from_secs(30))
                    .tracker(app.tracker.clone()),
            ),
            Mode::WithoutCtxLayer => app.router().layer(axum::Extension(Context::background())),
        };
        let stop = root.done_owned();
        // `with_graceful_shutdown` wants a future of `()`; `done` says why it ended.
        let stop = async move {
            stop.await;
        };
        let serve = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        });
        Ok(Server {
            addr,
            root,
            shutdown,
            tracker: app.tracker.clone(),
            serve,
        })
    }

    /// Graceful shutdown: cancel the root (every request in flight and every
    /// task under one ends), stop accepting, and wait until every request and
    /// task has finished.
    pub async fn shutdown(self) -> io::Result<()> {
        self.shutdown.cancel_with_cause("server shutting down");
        self.tracker.close();
        self.tracker.wait().await;
        self.serve.await.map_err(io::Error::other)?
    }
}

/// True if `cause` says the client went away.
pub fn is_client_disconnected(cause: Option<&Cause>) -> bool {
    cause.is_some_and(|c| c.is::<ClientDisconnected>())
}

/// The whole demo, started for one test: a gated upstream, the app and its
/// server, and the timeline's receiver.
#[derive(Debug)]
pub struct Fixture {
    /// The upstream answers when this opens.
    pub gate: Gate,
    /// Our service's state (database, tracker).
    pub app: App,
    /// Our service.
    pub server: Server,
    /// What happened.
    pub events: Events,
}

impl Fixture {
    /// Starts everything on 127.0.0.1, with the upstream's gate closed.
    pub async fn start(mode: Mode) -> Fixture {
        let (timeline, events) = timeline(false);
        let gate = Gate::new();
        let upstream = start_upstream(Answer::WhenOpened(gate.clone()), timeline.clone())
            .await
            .expect("start the upstream");
        let app = App::new(upstream, timeline).expect("open SQLite");
        let server = Server::start(&app, mode).await.expect("start the server");
        Fixture {
            gate,
            app,
            server,
            events,
        }
    }

    /// `http://127.0.0.1:port{path}` of our service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }
}
