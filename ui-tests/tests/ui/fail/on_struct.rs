use ctx_runtime::cancellable;

#[cancellable]
struct Client {
    retries: u32,
}

fn main() {}
