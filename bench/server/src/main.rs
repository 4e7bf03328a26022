//! The server of `bench/compare`'s wrk step (issue 14): axum 0.8 on
//! loopback, one route `/` whose handler returns a short string, with or
//! without `CtxLayer`, and either answering at once or after one
//! `tokio::task::yield_now().await`.
//!
//! ```text
//! ctx-bench-server --layer on|off --handler ready|yield [--workers N] [--port P] [--max-seconds S]
//! ```
//!
//! It prints `listening on 127.0.0.1:<port>` once it accepts connections
//! (port 0, the default, picks a free one), and exits by itself after
//! `--max-seconds` (default 120) in case whoever started it does not stop
//! it. `--workers` is the number of tokio worker threads (default 1: one of
//! this machine's two cores for the server, the other for wrk).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use ctx_runtime::Context;
use ctx_runtime::http::CtxLayer;

const BODY: &str = "Hello, World!";

async fn ready() -> &'static str {
    BODY
}

async fn yield_once() -> &'static str {
    tokio::task::yield_now().await;
    BODY
}

struct Options {
    layer: bool,
    yield_once: bool,
    workers: usize,
    port: u16,
    max_seconds: u64,
}

const USAGE: &str = "usage: ctx-bench-server --layer on|off --handler ready|yield \
                     [--workers N] [--port P] [--max-seconds S]";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut layer = None;
    let mut yield_once = None;
    let mut options = Options {
        layer: false,
        yield_once: false,
        workers: 1,
        port: 0,
        max_seconds: 120,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        let number = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what} must be a number, not {value:?}"))
        };
        match flag.as_str() {
            "--layer" => {
                layer = Some(match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--layer is on or off, not {value:?}")),
                })
            }
            "--handler" => {
                yield_once = Some(match value {
                    "ready" => false,
                    "yield" => true,
                    _ => return Err(format!("--handler is ready or yield, not {value:?}")),
                })
            }
            "--workers" => {
                options.workers = usize::try_from(number("--workers")?)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--workers must be at least 1")?
            }
            "--port" => {
                options.port =
                    u16::try_from(number("--port")?).map_err(|_| "--port is at most 65535")?
            }
            "--max-seconds" => options.max_seconds = number("--max-seconds")?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    options.layer = layer.ok_or("--layer is required")?;
    options.yield_once = yield_once.ok_or("--handler is required")?;
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("ctx-bench-server: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ctx-bench-server: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctx-bench-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(options: Options) -> std::io::Result<()> {
    let route = if options.yield_once {
        get(yield_once)
    } else {
        get(ready)
    };
    let mut app = Router::new().route("/", route);
    // The root of every request context; `_shutdown` lives as long as the
    // server, so no request is cancelled by it.
    let (root, _shutdown) = Context::background().with_cancel();
    if options.layer {
        app = app.layer(CtxLayer::new(root));
    }
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))
            .await?;
    println!("listening on {}", listener.local_addr()?);
    let limit = Duration::from_secs(options.max_seconds);
    match tokio::time::timeout(limit, axum::serve(listener, app)).await {
        Ok(result) => result,
        Err(_) => {
            eprintln!(
                "ctx-bench-server: stopping after --max-seconds {}",
                options.max_seconds
            );
            Ok(())
        }
    }
}
