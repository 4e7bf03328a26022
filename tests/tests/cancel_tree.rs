//! Cancellation down the tree: Go's semantics for WithCancel, Cause and Err.

use ctx_runtime::{Cause, Context, Error};

#[test]
fn cancelling_a_parent_cancels_every_descendant_before_cancel_returns() {
    let (root, cancel) = Context::background().with_cancel();
    let (a, _ca) = root.with_cancel();
    let (b, _cb) = root.with_value(1u8).with_cancel();
    let (a1, _ca1) = a.with_cancel();
    let a2 = a.with_value("v");
    let (b1, _cb1) = b.with_cancel();
    let all = [&root, &a, &b, &a1, &a2, &b1];
    assert!(all.iter().all(|c| c.err().is_none()));
    cancel.cancel();
    for ctx in all {
        assert_eq!(ctx.err(), Some(Error::Canceled), "{ctx:?}");
        assert!(ctx.is_done());
        assert_eq!(ctx.check(), Err(Error::Canceled));
    }
}

#[test]
fn cancelling_a_child_affects_neither_parent_nor_siblings() {
    let (root, _cancel) = Context::background().with_cancel();
    let (left, cancel_left) = root.with_cancel();
    let (right, _cr) = root.with_cancel();
    let (left_child, _clc) = left.with_cancel();
    cancel_left.cancel();
    assert_eq!(left.err(), Some(Error::Canceled));
    assert_eq!(left_child.err(), Some(Error::Canceled));
    assert_eq!(root.err(), None);
    assert_eq!(right.err(), None);
}

#[test]
fn dropping_the_handle_cancels() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert_eq!(ctx.err(), None);
    drop(cancel);
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[test]
fn the_first_cancellation_wins() {
    let (parent, cancel_parent) = Context::background().with_cancel();
    let (child, cancel_child) = parent.with_cancel();
    cancel_child.cancel_with_cause("first");
    cancel_child.cancel_with_cause("second");
    cancel_child.cancel();
    cancel_parent.cancel_with_cause("parent");
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(child.cause().unwrap().to_string(), "first");
    assert_eq!(parent.cause().unwrap().to_string(), "parent");
}

#[tokio::test(start_paused = true)]
async fn a_later_deadline_does_not_change_a_cancelled_context() {
    let (ctx, cancel) =
        Context::background().with_timeout_cause(std::time::Duration::from_millis(10), "late");
    cancel.cancel_with_cause("early");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(ctx.cause().unwrap().to_string(), "early");
}

#[test]
fn cause_defaults_to_err_and_is_none_while_live() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert!(ctx.cause().is_none());
    cancel.cancel();
    let cause = ctx.cause().unwrap();
    assert_eq!(cause.downcast_ref::<Error>(), Some(&Error::Canceled));
    assert_eq!(cause.to_string(), "context canceled");
}

#[test]
fn a_child_cancelled_by_its_parent_reports_the_parents_cause() {
    #[derive(Debug)]
    struct Shutdown;
    impl std::fmt::Display for Shutdown {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("server shutting down")
        }
    }
    impl std::error::Error for Shutdown {}

    let (parent, cancel) = Context::background().with_cancel();
    let (child, _c) = parent.with_value(3u16).with_cancel();
    let grandchild = child.with_value(4u32);
    cancel.cancel_with_cause(Cause::new(Shutdown));
    for ctx in [&parent, &child, &grandchild] {
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert!(ctx.cause().unwrap().is::<Shutdown>(), "{ctx:?}");
    }
}

#[test]
fn a_context_derived_from_a_cancelled_parent_is_born_cancelled_with_its_cause() {
    let (parent, cancel) = Context::background().with_cancel();
    cancel.cancel_with_cause("gone");
    let (child, child_cancel) = parent.with_cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(child.cause().unwrap().to_string(), "gone");
    // Its own handle cannot change that.
    child_cancel.cancel_with_cause("mine");
    assert_eq!(child.cause().unwrap().to_string(), "gone");
    let (deadline_child, _c) = parent.with_timeout(std::time::Duration::from_secs(1));
    assert_eq!(deadline_child.err(), Some(Error::Canceled));
    assert_eq!(deadline_child.cause().unwrap().to_string(), "gone");
}

#[test]
fn background_and_todo_are_never_done() {
    for root in [Context::background(), Context::todo()] {
        assert_eq!(root.err(), None);
        assert_eq!(root.check(), Ok(()));
        assert!(!root.is_done());
        assert!(root.cause().is_none());
        assert!(root.deadline().is_none());
        assert!(root.remaining().is_none());
    }
}

#[test]
fn without_cancel_is_never_done_and_has_no_deadline_but_keeps_values() {
    struct RequestId(u64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (parent, cancel) = Context::background()
        .with_value(RequestId(9))
        .with_timeout(std::time::Duration::from_secs(5));
    let detached = parent.without_cancel();
    assert!(parent.deadline().is_some());
    assert_eq!(detached.deadline(), None);
    cancel.cancel();
    assert!(parent.is_done());
    assert_eq!(detached.err(), None);
    assert!(detached.cause().is_none());
    assert_eq!(detached.value::<RequestId>().map(|r| r.0), Some(9));
    // Its own children are cancellable again, independently.
    let (child, cancel_child) = detached.with_cancel();
    assert_eq!(child.err(), None);
    cancel_child.cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
}

#[test]
fn cancel_handle_reports_its_context() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert!(cancel.context().same(&ctx));
    assert!(format!("{cancel:?}").contains("None"));
    cancel.cancel();
    assert!(format!("{cancel:?}").contains("Canceled"));
}

#[test]
fn types_are_send_sync_static_and_clone() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Context>();
    assert_send_sync::<ctx_runtime::CancelHandle>();
    assert_send_sync::<ctx_runtime::AfterFunc>();
    assert_send_sync::<ctx_runtime::DoneOwned>();
    assert_send_sync::<Cause>();
    assert_send_sync::<Error>();
    fn assert_send<T: Send>(_: &T) {}
    let ctx = Context::background();
    assert_send(&ctx.done());
    assert_send(&ctx.run(async { 1 }));
    let copy = Error::Canceled;
    let again = copy;
    assert_eq!(copy, again);
}
