//! What the PostgreSQL tests share: one server per test binary (`DATABASE_URL`,
//! or a throwaway cluster: see ctx_examples::pg), and a monitor connection
//! that watches `pg_stat_activity`.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ctx_examples::pg::Server;
use ctx_runtime::Instant;
use tokio_postgres::Client;

/// The server of this test binary, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::get().unwrap_or_else(|err| panic!("{err}")))
}

/// A new connection to the server.
pub async fn connect() -> Client {
    server().connect().await.expect("connect to PostgreSQL")
}

/// The server process behind `client`: what a cancel request targets.
pub async fn backend_pid(client: &Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pg_backend_pid")
        .get(0)
}

/// A table name no other test of any binary uses.
pub fn unique_table(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A second connection that watches the others in `pg_stat_activity`.
pub struct Monitor(Client);

/// The polling interval: a bound on how late a change is seen, not a wait
/// for something to happen.
const POLL: Duration = Duration::from_millis(1);

impl Monitor {
    pub async fn new() -> Monitor {
        Monitor(connect().await)
    }

    /// The query `pid` is running, if it is running one.
    pub async fn active_query(&self, pid: i32) -> Option<String> {
        let row = self
            .0
            .query_opt(
                "SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                &[&pid],
            )
            .await
            .expect("read pg_stat_activity")?;
        Some(row.get(0))
    }

    /// Waits until `pid` runs a query containing `needle` (at most 10 s: a
    /// hung test, not a timing target).
    pub async fn wait_active(&self, pid: i32, needle: &str) {
        let start = Instant::now();
        loop {
            if let Some(query) = self.active_query(pid).await
                && query.contains(needle)
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "backend {pid} never ran {needle:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// How long until `pid` no longer runs a query containing `needle`, if
    /// that happens within `bound`.
    pub async fn gone_within(&self, pid: i32, needle: &str, bound: Duration) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if !self
                .active_query(pid)
                .await
                .is_some_and(|query| query.contains(needle))
            {
                return Some(start.elapsed());
            }
            if start.elapsed() > bound {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends `pid`'s connection (cleanup after a negative control).
    pub async fn terminate(&self, pid: i32) {
        self.0
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .expect("pg_terminate_backend");
    }

    /// The rows of `table`, counted from this connection: what is committed.
    pub async fn count(&self, table: &str) -> i64 {
        self.0
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count rows")
            .get(0)
    }

    /// Runs `sql` on the monitor connection.
    pub async fn run(&self, sql: &str) {
        self.0.batch_execute(sql).await.expect(sql);
    }
}
