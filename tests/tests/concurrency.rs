//! Many tasks and threads creating, cancelling and waiting at once.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use ctx_runtime::{Context, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_cancelling_concurrently_agree_on_the_first_cause() {
    for _ in 0..50 {
        let (ctx, cancel) = Context::background().with_cancel();
        let cancel = Arc::new(cancel);
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let cancel = Arc::clone(&cancel);
                tokio::spawn(async move { cancel.cancel_with_cause(format!("task {i}")) })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let cause = ctx.cause().unwrap().to_string();
        // Every later reader sees the same single winner.
        for _ in 0..4 {
            assert_eq!(ctx.cause().unwrap().to_string(), cause);
        }
        assert!(cause.starts_with("task "));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn children_created_while_the_parent_is_cancelled_never_stay_live() {
    for _ in 0..20 {
        let (parent, cancel) = Context::background().with_cancel();
        let creators: Vec<_> = (0..4)
            .map(|_| {
                let parent = parent.clone();
                tokio::spawn(async move {
                    let mut made = Vec::new();
                    for _ in 0..500 {
                        made.push(parent.with_cancel());
                        tokio::task::yield_now().await;
                    }
                    made
                })
            })
            .collect();
        tokio::task::yield_now().await;
        cancel.cancel();
        for creator in creators {
            for (child, _handle) in creator.await.unwrap() {
                assert_eq!(child.err(), Some(Error::Canceled));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sibling_subtrees_cancel_independently_under_contention() {
    let (root, cancel_root) = Context::background().with_cancel();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let root = root.clone();
            tokio::spawn(async move {
                let (mine, cancel) = root.with_cancel();
                let (leaf, leaf_handle) = mine.with_value(i).with_cancel();
                if i % 2 == 0 {
                    cancel.cancel();
                    assert_eq!(leaf.err(), Some(Error::Canceled));
                    None
                } else {
                    Some((leaf, (cancel, leaf_handle)))
                }
            })
        })
        .collect();
    let mut survivors = Vec::new();
    for t in tasks {
        if let Some(s) = t.await.unwrap() {
            survivors.push(s);
        }
    }
    assert_eq!(survivors.len(), 32);
    assert!(survivors.iter().all(|(leaf, _)| leaf.err().is_none()));
    assert_eq!(root.err(), None);
    cancel_root.cancel();
    assert!(
        survivors
            .iter()
            .all(|(leaf, _)| leaf.err() == Some(Error::Canceled))
    );
}

#[test]
fn threads_cancelling_parent_and_child_at_once_stay_consistent() {
    for _ in 0..500 {
        let (parent, cancel_parent) = Context::background().with_cancel();
        let (child, cancel_child) = parent.with_cancel();
        let gate = Arc::new(Barrier::new(2));
        let g = Arc::clone(&gate);
        let t = std::thread::spawn(move || {
            g.wait();
            cancel_parent.cancel_with_cause("parent");
        });
        gate.wait();
        cancel_child.cancel_with_cause("child");
        t.join().unwrap();
        let cause = child.cause().unwrap().to_string();
        assert!(cause == "parent" || cause == "child");
        assert_eq!(parent.cause().unwrap().to_string(), "parent");
        // Whoever won, the child's view never changes afterwards.
        assert_eq!(child.cause().unwrap().to_string(), cause);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_waiting_with_timeouts_and_manual_cancels_all_finish() {
    let (root, cancel) = Context::background().with_cancel();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (ctx, guard) = if i % 3 == 0 {
                root.with_timeout(Duration::from_millis(1))
            } else {
                root.with_cancel()
            };
            tokio::spawn(async move {
                ctx.done().await;
                drop(guard);
                ctx.err()
            })
        })
        .collect();
    cancel.cancel();
    for t in tasks {
        assert!(t.await.unwrap().is_some());
    }
}
