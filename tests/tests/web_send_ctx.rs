//! `send_ctx` tells the server what its context has left
//! (`x-request-timeout` in milliseconds, or another header, or none), and
//! its errors print each message of their chain once.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use ctx_runtime::reqwest::{RequestBuilderExt, SendError, SendOptions};
use ctx_runtime::{Context, Error, request_timeout};
use reqwest::header::HeaderName;
use tokio::net::TcpListener;

/// A server that answers with the two timeout headers it received, one per
/// line (`-` for none).
async fn echo() -> SocketAddr {
    async fn headers(headers: HeaderMap) -> String {
        ["x-request-timeout", "x-budget-ms"]
            .iter()
            .map(|name| {
                headers
                    .get(*name)
                    .map_or("-", |v| v.to_str().unwrap())
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/", get(headers));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The two headers the server saw.
async fn seen(response: reqwest::Response) -> (String, String) {
    let text = response.text().await.unwrap();
    let (a, b) = text.split_once('\n').unwrap();
    (a.to_owned(), b.to_owned())
}

fn millis(value: &str) -> Duration {
    request_timeout::parse(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

#[tokio::test]
async fn send_ctx_sends_what_is_left_in_milliseconds() {
    let addr = echo().await;
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/"))
        .send_ctx(&ctx)
        .await
        .unwrap();
    let (sent, other) = seen(response).await;
    assert!(sent.bytes().all(|b| b.is_ascii_digit()), "{sent:?}");
    let sent = millis(&sent);
    assert!(sent <= Duration::from_secs(5), "{sent:?}");
    assert!(sent > Duration::from_secs(1), "{sent:?}");
    assert_eq!(other, "-");
}

#[tokio::test]
async fn without_a_deadline_nothing_is_sent() {
    let addr = echo().await;
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/"))
        .send_ctx(&Context::background())
        .await
        .unwrap();
    assert_eq!(seen(response).await, ("-".to_owned(), "-".to_owned()));
}

#[tokio::test]
async fn options_rename_the_header_or_turn_it_off() {
    let addr = echo().await;
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    let client = reqwest::Client::new();

    let renamed = SendOptions::new().timeout_header(HeaderName::from_static("x-budget-ms"));
    let response = client
        .get(format!("http://{addr}/"))
        .send_ctx_with(&ctx, &renamed)
        .await
        .unwrap();
    let (default, budget) = seen(response).await;
    assert_eq!(default, "-");
    assert!(millis(&budget) <= Duration::from_secs(5), "{budget:?}");

    let silent = SendOptions::new().without_timeout_header();
    let response = client
        .get(format!("http://{addr}/"))
        .send_ctx_with(&ctx, &silent)
        .await
        .unwrap();
    assert_eq!(seen(response).await, ("-".to_owned(), "-".to_owned()));
}

#[tokio::test]
async fn a_shorter_header_set_by_the_caller_stays_a_longer_one_is_replaced() {
    let addr = echo().await;
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    let client = reqwest::Client::new();
    let send = |value: &'static str| {
        client
            .get(format!("http://{addr}/"))
            .header("x-request-timeout", value)
            .send_ctx(&ctx)
    };
    let (sent, _) = seen(send("1.5s").await.unwrap()).await;
    assert_eq!(sent, "1.5s", "shorter: kept as it was");
    let (sent, _) = seen(send("60000").await.unwrap()).await;
    assert!(millis(&sent) <= Duration::from_secs(5), "longer: {sent}");
    let (sent, _) = seen(send("250M").await.unwrap()).await;
    assert!(
        millis(&sent) <= Duration::from_secs(5),
        "unreadable: {sent}"
    );
}

/// Every message of an error's chain, outermost first.
fn chain(err: &dyn StdError) -> Vec<String> {
    let mut messages = vec![err.to_string()];
    let mut next = err.source();
    while let Some(err) = next {
        messages.push(err.to_string());
        next = err.source();
    }
    messages
}

#[tokio::test]
async fn a_send_error_prints_each_message_of_its_chain_once() {
    // Was "context deadline exceeded: context deadline exceeded".
    let err = SendError::Context(Error::DeadlineExceeded);
    assert_eq!(chain(&err), ["context deadline exceeded"]);

    // A refused connection: the same chain as reqwest's own error.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .send_ctx(&Context::background())
        .await
        .unwrap_err();
    let SendError::Http(inner) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(chain(&err), chain(inner));
    let messages = chain(&err);
    for (i, m) in messages.iter().enumerate() {
        assert!(
            !messages[i + 1..].contains(m),
            "{m:?} repeated: {messages:?}"
        );
    }

    // Through anyhow, as an application prints it.
    let printed = format!(
        "{:#}",
        anyhow::Error::from(SendError::from(Error::Canceled))
    );
    assert_eq!(printed, "context canceled");
}
