//! The parts of the demos, shared with the integration tests in `tests/`:
//!
//! * [`demo`]: a slow upstream HTTP service, our axum service (which spawns
//!   a task per request: fetch from the upstream with reqwest, then write a
//!   row to SQLite), and a timeline of what happened.
//! * [`hop`]: a gRPC service that calls the next one, for a chain of three.
//! * [`pg`]: a PostgreSQL server for the slow_query demo and the tests:
//!   `DATABASE_URL`, or a throwaway cluster from `scripts/postgres`.
//!
//! The demos are `cargo run --example slow_upstream` and
//! `cargo run --example grpc_chain`.

pub mod demo;
pub mod hop;
pub mod pg;
