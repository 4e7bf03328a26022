// The generated code cannot collide with the user's names, and does not
// depend on what the user's scope calls `Result`, `Ok`, `Err`, `core` or
// `ctx_runtime`.
#![deny(warnings)]

use ctx_runtime::{Context, cancellable};

#[derive(Debug, PartialEq)]
struct MyError;

impl From<ctx_runtime::Error> for MyError {
    fn from(_: ctx_runtime::Error) -> Self {
        MyError
    }
}

type Result<T> = std::result::Result<T, MyError>;

#[allow(dead_code)]
mod core {}

#[allow(dead_code)]
mod ctx_runtime_shadow {
    pub fn race() {}
}

#[allow(dead_code)]
fn race() {}

#[allow(non_snake_case, dead_code)]
fn Watch() {}

#[cancellable]
async fn names(ctx: &Context, __ctx_watch: u32, __ctx_exit: u32) -> Result<u32> {
    let __ctx_fut = 1;
    let __ctx_value = __ctx_fut + __ctx_watch + __ctx_exit;
    let __ctx_err = async { __ctx_value }.await;
    Ok(__ctx_err)
}

#[cancellable(timeout = "1s")]
async fn more_names(ctx: &Context, __ctx_child: u32, __ctx_guard: u32) -> Result<u32> {
    tokio::task::yield_now().await;
    Ok(__ctx_child + __ctx_guard)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::background();
    assert_eq!(names(&ctx, 1, 2).await, Ok(4));
    assert_eq!(more_names(&ctx, 1, 2).await, Ok(3));
}
