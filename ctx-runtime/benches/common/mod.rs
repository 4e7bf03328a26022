//! What the bench targets share.

use std::sync::LazyLock;

/// A tokio multi-thread runtime with 2 workers: Go's GOMAXPROCS=2.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    &RT
}

/// The ops of the twins against tokio-util (each binary uses a part).
#[allow(dead_code)]
pub mod ops;
