use ctx_runtime::{Context, Error, cancellable};

struct Client;

#[cancellable]
impl Client {
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, Error> {
        Ok(id)
    }

    // Async, but no `ctx`: reported (opt out with `#[cancellable(skip)]`).
    async fn warm_up(&self) -> Result<(), Error> {
        Ok(())
    }

    // Sync methods are left alone, but a misplaced `ctx` is still reported.
    fn describe(&self, verbose: bool, ctx: &Context) -> String {
        format!("{verbose} {:?}", ctx.err())
    }
}

fn main() {}
