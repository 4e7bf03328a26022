//! A PostgreSQL server for the slow_query demo and the tests.
//!
//! [`Server::get`] uses `DATABASE_URL` when it is set (scripts/test sets it
//! to the cluster it started), and otherwise starts a throwaway cluster with
//! `scripts/postgres start --no-install`: so `cargo test` and
//! `cargo run --example slow_query` work alone on a machine with PostgreSQL
//! installed, and fail with a message saying what to install when it is not.
//! A cluster started here is stopped and removed when the process exits (the
//! script's watchdog), or when the [`Server`] is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_postgres::{Client, NoTls};

/// Where the server is, and the cluster to remove if we started it.
#[derive(Debug)]
pub struct Server {
    url: String,
    started: Option<PathBuf>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres")
}

impl Server {
    /// `DATABASE_URL` if set, else a new throwaway cluster.
    pub fn get() -> Result<Server, String> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(Server { url, started: None }),
            _ => Server::start(),
        }
    }

    /// Starts a throwaway cluster with `scripts/postgres`.
    pub fn start() -> Result<Server, String> {
        let script = script();
        let out = Command::new(&script)
            .args(["start", "--no-install", "--owner"])
            .arg(std::process::id().to_string())
            .output()
            .map_err(|err| format!("cannot run {}: {err}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "DATABASE_URL is not set and no throwaway PostgreSQL could be started:\n{}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let var = |name: &str| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .map(str::to_owned)
                .ok_or_else(|| format!("{} printed no {name}: {stdout}", script.display()))
        };
        Ok(Server {
            url: var("DATABASE_URL")?,
            started: Some(PathBuf::from(var("CTX_PG_DIR")?)),
        })
    }

    /// The connection string.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True if this process started the cluster (rather than finding
    /// `DATABASE_URL`).
    pub fn is_throwaway(&self) -> bool {
        self.started.is_some()
    }

    /// A new connection, its connection task spawned on the current runtime.
    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(dir) = &self.started {
            let _ = Command::new(script()).arg("stop").arg(dir).status();
        }
    }
}
