//! Request-scoped values (keyed by type) and the Debug chain.

use std::time::Duration;

use ctx_runtime::Context;

mod crate_a {
    /// Two crates each define a `UserId`: different types, so no collision.
    #[derive(Debug, PartialEq)]
    pub struct UserId(pub &'static str);
}
mod crate_b {
    #[derive(Debug, PartialEq)]
    pub struct UserId(pub u64);
}

#[test]
fn values_are_keyed_by_type_so_crates_cannot_collide() {
    let ctx = Context::background()
        .with_value(crate_a::UserId("alice"))
        .with_value(crate_b::UserId(7));
    assert_eq!(
        ctx.value::<crate_a::UserId>(),
        Some(&crate_a::UserId("alice"))
    );
    assert_eq!(ctx.value::<crate_b::UserId>(), Some(&crate_b::UserId(7)));
}

#[test]
fn lookup_walks_up_through_every_kind_of_node_and_the_nearest_wins() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let root = Context::background().with_value(1u32).with_value("root");
    let (c1, _a) = root.with_cancel();
    let (c2, _b) = c1.with_timeout(Duration::from_secs(5));
    let shadow = c2.with_value(2u32);
    let detached = shadow.without_cancel();
    assert_eq!(root.value::<u32>(), Some(&1));
    assert_eq!(c2.value::<u32>(), Some(&1));
    assert_eq!(shadow.value::<u32>(), Some(&2));
    assert_eq!(detached.value::<u32>(), Some(&2));
    assert_eq!(detached.value::<&str>(), Some(&"root"));
    assert_eq!(detached.value::<u64>(), None);
    assert_eq!(Context::background().value::<u32>(), None);
}

#[test]
fn values_live_as_long_as_any_descendant() {
    let leaf = {
        let ctx = Context::background().with_value(String::from("kept"));
        ctx.with_cancel().0.with_value(3i8)
    };
    assert_eq!(leaf.value::<String>().map(String::as_str), Some("kept"));
}

#[test]
fn a_value_context_shares_its_parents_cancellation() {
    let (parent, cancel) = Context::background().with_cancel();
    let child = parent.with_value(5u8);
    cancel.cancel_with_cause("stop");
    assert!(child.is_done());
    assert_eq!(child.cause().unwrap().to_string(), "stop");
}

#[test]
fn debug_names_the_chain_like_gos_string_and_hides_values() {
    struct Secret(#[allow(dead_code)] &'static str);
    assert_eq!(
        format!("{:?}", Context::background()),
        "Context::background()"
    );
    assert_eq!(format!("{:?}", Context::todo()), "Context::todo()");
    let (ctx, cancel) = Context::todo().with_cancel();
    let valued = ctx.with_value(Secret("hunter2"));
    let detached = valued.without_cancel();
    let text = format!("{valued:?}");
    assert_eq!(
        text,
        "Context::todo().with_cancel().with_value::<values_and_debug::debug_names_the_chain_like_gos_string_and_hides_values::Secret>() [live]"
    );
    assert!(!text.contains("hunter2"));
    cancel.cancel();
    assert!(format!("{valued:?}").ends_with(" [context canceled]"));
    assert!(format!("{detached:?}").ends_with(".without_cancel() [live]"));
}

#[tokio::test(start_paused = true)]
async fn debug_shows_timeouts_as_deadlines_like_go() {
    let (t, _a) = Context::background().with_timeout(Duration::from_millis(500));
    assert_eq!(
        format!("{t:?}"),
        "Context::background().with_deadline(in 500ms) [live]"
    );
    let (d, _b) =
        Context::background().with_deadline(ctx_runtime::Instant::now() + Duration::from_secs(2));
    assert_eq!(
        format!("{d:?}"),
        "Context::background().with_deadline(in 2s) [live]"
    );
    t.done().await;
    assert_eq!(
        format!("{t:?}"),
        "Context::background().with_deadline(passed) [context deadline exceeded]"
    );
    let (never, _c) = Context::background().with_timeout(Duration::MAX);
    assert_eq!(
        format!("{never:?}"),
        "Context::background().with_deadline(never) [live]"
    );
}
