//! What racing a PostgreSQL call against a context costs (issue 13): `query_ctx`
//! against tokio-postgres's plain `query`, on the same connection, in one
//! run. Target: at most 1.05x.
//!
//! - `plain_*`: `client.query(...)`, the baseline;
//! - `ctx_*`: `client.query_ctx(&ctx, ...)` with a live, cancellable context
//!   (the case that registers a waker on the context each call).
//!
//! Each for `SELECT 1` as text (tokio-postgres prepares it each time: two
//! round trips) and as a prepared `Statement` (one round trip: the overhead
//! is the largest share there). A current-thread runtime runs both the call
//! and the connection task, so a sample is one full round trip on loopback.
//!
//! Needs a server: `DATABASE_URL`, which bench/postgres sets (it starts a
//! throwaway cluster). Without it the bench says so and measures nothing.
//!
//! `CTX_PG_BENCH=<variant>:<n>` runs one variant n times without divan, for
//! `valgrind --tool=callgrind` (bench/postgres runs it with n = 1 and n =
//! 2001 and takes the difference: the client side's instructions per call;
//! the server runs outside valgrind). `CTX_PG_BENCH=paired:<n>` times n
//! pairs of calls, plain then ctx, alternating, and prints the ratio of the
//! medians: divan runs one version after the other, and on a shared machine
//! the load drifts between them more than the overhead being measured.

use std::sync::LazyLock;

use ctx_runtime::postgres::ClientExt;
use ctx_runtime::{CancelHandle, Context};
use tokio_postgres::{Client, NoTls, Statement};

// Allocations per call, for bench/compare's table (as in the other benches).
#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

struct Fixture {
    rt: tokio::runtime::Runtime,
    client: Client,
    select_1: Statement,
    ctx: Context,
    _cancel: CancelHandle,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (client, select_1) = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("connect to DATABASE_URL");
        tokio::spawn(connection);
        let select_1 = client.prepare("SELECT 1").await.expect("prepare");
        (client, select_1)
    });
    let (ctx, cancel) = Context::background().with_cancel();
    Fixture {
        rt,
        client,
        select_1,
        ctx,
        _cancel: cancel,
    }
});

fn run(variant: &str) {
    let f = &*FIXTURE;
    let rows = f.rt.block_on(async {
        match variant {
            "plain_text" => f.client.query("SELECT 1", &[]).await.unwrap(),
            "ctx_text" => f.client.query_ctx(&f.ctx, "SELECT 1", &[]).await.unwrap(),
            "plain_prepared" => f.client.query(&f.select_1, &[]).await.unwrap(),
            "ctx_prepared" => f.client.query_ctx(&f.ctx, &f.select_1, &[]).await.unwrap(),
            other => panic!("unknown variant {other}"),
        }
    });
    assert_eq!(rows.len(), 1);
}

fn main() {
    if let Ok(spec) = std::env::var("CTX_PG_BENCH") {
        let (variant, n) = spec.split_once(':').expect("CTX_PG_BENCH=<variant>:<n>");
        let n: u64 = n.parse().expect("a number of calls");
        LazyLock::force(&FIXTURE);
        if let Some(tsv) = match variant {
            "paired" => Some(false),
            "paired-tsv" => Some(true),
            _ => None,
        } {
            paired(n, tsv);
            return;
        }
        if n > 0 {
            // Warm up what a first call allocates (type caches, buffers).
            run(variant);
        }
        for _ in 1..n {
            run(variant);
        }
        return;
    }
    if std::env::var_os("DATABASE_URL").is_none() {
        eprintln!(
            "benches/postgres: DATABASE_URL is not set; bench/postgres starts a server and sets it"
        );
        return;
    }
    divan::main();
}

/// Alternates plain and ctx calls, `n` pairs per form, and prints the
/// medians and their ratio; with `tsv`, as bench/compare's extra rows
/// (`benchmark, implementation, ns`) and a note.
fn paired(n: u64, tsv: bool) {
    for form in ["text", "prepared"] {
        let (plain, ctx) = (format!("plain_{form}"), format!("ctx_{form}"));
        let mut times = [Vec::new(), Vec::new()];
        for i in 0..n {
            // Which goes first alternates too.
            let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let start = std::time::Instant::now();
                run(if which == 0 { &plain } else { &ctx });
                times[which].push(start.elapsed());
            }
        }
        let [mut p, mut c] = times;
        p.sort();
        c.sort();
        let (p, c) = (p[p.len() / 2], c[c.len() / 2]);
        let ratio = c.as_secs_f64() / p.as_secs_f64();
        if tsv {
            println!("PostgresQuery/form={form}\tplain\t{}\t\t", p.as_nanos());
            println!("PostgresQuery/form={form}\tctx\t{}\t\t", c.as_nanos());
            println!(
                "#note\tPostgresQuery\t`{form}`: ns/op are the medians of {n} alternating pairs \
                 (plain, ctx; which goes first alternates), {p:.1?} and {c:.1?}, ratio {ratio:.3}x; \
                 B/op and allocs/op are divan's."
            );
        } else {
            println!(
                "SELECT 1 ({form}), {n} pairs: median plain {p:.1?}, query_ctx {c:.1?}, ratio {ratio:.3}x"
            );
        }
    }
}

/// Both forms of `SELECT 1`; bench/compare reads the group as the
/// implementation and `PostgresQuery/<form>` as the benchmark.
const FORMS: [&str; 2] = ["text", "prepared"];

#[divan::bench_group(name = "plain")]
mod plain {
    #[divan::bench(name = "PostgresQuery", args = super::FORMS, sample_count = 200, sample_size = 20)]
    fn query(form: &str) {
        super::run(&format!("plain_{form}"));
    }
}

#[divan::bench_group(name = "ctx")]
mod ctx {
    #[divan::bench(name = "PostgresQuery", args = super::FORMS, sample_count = 200, sample_size = 20)]
    fn query(form: &str) {
        super::run(&format!("ctx_{form}"));
    }
}
