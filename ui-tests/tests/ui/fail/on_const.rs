use ctx_runtime::cancellable;

#[cancellable]
const RETRIES: u32 = 3;

fn main() {}
