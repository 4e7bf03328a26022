//! `Group`: Go's errgroup, cancel-safe. Time is paused; every wait is on a
//! channel, a `Notify` or an idle runtime (paused time advances only when
//! every task is idle, so a one-hour timeout means "nothing more can happen").

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

use ctx_runtime::{Context, Error, Group, TaskFailed, TaskOutput};
use tokio::sync::{Notify, oneshot};

/// An hour of virtual time: with the clock paused it passes the moment every
/// task is blocked, so a timeout of this length elapses only when nothing can
/// make progress any more.
const IDLE: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn a_timed_out_wait_changes_nothing() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let (ended_tx, ended_rx) = oneshot::channel();
    group.spawn(move |_ctx| async move {
        let _ = release_rx.await;
        let _ = ended_tx.send(());
        Err(io::Error::other("late failure"))
    });

    let timed_out = tokio::time::timeout(Duration::from_millis(50), group.wait()).await;
    assert!(timed_out.is_err(), "the task is still running");
    assert!(!ctx.is_done(), "a dropped wait leaves the context alone");

    release_tx.send(()).unwrap();
    ended_rx
        .await
        .expect("the task ran on after the wait was dropped");
    let err = group.wait().await.unwrap_err();
    assert_eq!(err.to_string(), "late failure", "its error is not lost");
    assert!(ctx.is_done());
}

#[tokio::test(start_paused = true)]
async fn concurrent_waits_each_wait_for_every_task() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    let group = Arc::new(group);
    let (release_tx, release_rx) = oneshot::channel::<()>();
    group.spawn(move |_ctx| async move {
        let _ = release_rx.await;
        Err(io::Error::other("failed after release"))
    });
    let first = tokio::spawn({
        let group = Arc::clone(&group);
        async move { group.wait().await.map_err(|e| e.to_string()) }
    });
    let second = tokio::spawn({
        let group = Arc::clone(&group);
        async move { group.wait().await.map_err(|e| e.to_string()) }
    });
    tokio::time::sleep(IDLE).await; // both waits are polled and blocked
    assert!(!first.is_finished() && !second.is_finished());
    assert!(!ctx.is_done(), "no wait cancelled the group early");

    release_tx.send(()).unwrap();
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    let errors: Vec<_> = [&first, &second]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert_eq!(
        errors,
        ["failed after release"],
        "the error is handed out once"
    );
    assert!(ctx.is_done());
}

#[tokio::test(start_paused = true)]
async fn a_panic_seen_by_a_dropped_wait_is_resumed_by_the_next() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let (ended_tx, ended_rx) = oneshot::channel();
    group.spawn(|_ctx| async { panic!("boom") });
    group.spawn(move |_ctx| async move {
        let _ = release_rx.await; // ignores its context on purpose
        let _ = ended_tx.send(());
        Ok(())
    });

    let timed_out = tokio::time::timeout(IDLE, group.wait()).await;
    assert!(timed_out.is_err(), "one task still runs");
    assert_eq!(
        ctx.cause().unwrap().to_string(),
        "a task of the group panicked",
        "the panic cancelled the rest"
    );

    release_tx.send(()).unwrap();
    ended_rx.await.expect("the other task ran on");
    let group = Arc::new(group);
    let waiter = tokio::spawn({
        let group = Arc::clone(&group);
        async move {
            let _ = group.wait().await;
        }
    });
    let panic = waiter.await.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
}

#[tokio::test(start_paused = true)]
async fn a_wait_dropped_beside_another_leaves_that_one_waiting() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    let group = Arc::new(group);
    let (release_tx, release_rx) = oneshot::channel::<()>();
    group.spawn(move |_ctx| async move {
        let _ = release_rx.await;
        Err(io::Error::other("released"))
    });
    let kept = tokio::spawn({
        let group = Arc::clone(&group);
        async move { group.wait().await.map_err(|e| e.to_string()) }
    });
    let dropped = tokio::time::timeout(IDLE, group.wait()).await;
    assert!(dropped.is_err());
    assert!(!kept.is_finished() && !ctx.is_done());

    release_tx.send(()).unwrap();
    assert_eq!(kept.await.unwrap(), Err("released".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn the_first_error_is_handed_out_once_and_the_cause_stays() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    group.spawn(|_ctx| async { Err(io::Error::other("first")) });
    assert_eq!(group.wait().await.unwrap_err().to_string(), "first");
    assert!(
        group.wait().await.is_ok(),
        "the error was moved out: nothing more to report"
    );
    let cause = ctx.cause().unwrap();
    assert_eq!(
        cause.downcast_ref::<TaskFailed>().unwrap().message(),
        "first"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_on_an_empty_group_returns_at_once_and_cancels_it() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    group.wait().await.unwrap();
    assert_eq!(
        ctx.err(),
        Some(Error::Canceled),
        "Go: Wait cancels the context"
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_spawn_into_a_shared_group_while_it_is_waited_on() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    let group = Arc::new(group);
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let release = Arc::new(Notify::new());
    let (spawned_tx, spawned_rx) = oneshot::channel();
    {
        let inner = Arc::clone(&group);
        let release = Arc::clone(&release);
        group.spawn(move |_ctx| async move {
            let _ = go_rx.await; // spawn only once the wait below is under way
            for i in 0..3 {
                let release = Arc::clone(&release);
                inner.spawn(move |_ctx| async move {
                    release.notified().await;
                    if i == 1 {
                        Err(io::Error::other("a child failed"))
                    } else {
                        Ok(())
                    }
                });
            }
            let _ = spawned_tx.send(());
            Ok(())
        });
    }
    let waiter = tokio::spawn({
        let group = Arc::clone(&group);
        async move { group.wait().await.map_err(|e| e.to_string()) }
    });
    tokio::time::sleep(IDLE).await; // the wait is blocked on the first task
    go_tx.send(()).unwrap();
    spawned_rx.await.unwrap();
    tokio::time::sleep(IDLE).await; // the spawning task has ended; three children wait
    assert!(
        !waiter.is_finished(),
        "the wait waits for tasks spawned during it"
    );
    assert!(!ctx.is_done());

    release.notify_waiters();
    assert_eq!(waiter.await.unwrap(), Err("a child failed".to_owned()));
    assert!(ctx.is_done());
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_noticed_by_the_next_spawn_too() {
    let (group, ctx) = Group::<io::Error>::with_context(&Context::background());
    group.spawn(|_ctx| async { panic!("boom") });
    tokio::time::sleep(IDLE).await; // the task has panicked; no wait is running
    group.spawn(|_ctx| async { Ok(()) });
    let cause = ctx
        .cause()
        .expect("spawn saw the panic and cancelled the rest");
    assert!(cause.downcast_ref::<TaskFailed>().unwrap().is_panic());

    let group = Arc::new(group);
    let waiter = tokio::spawn({
        let group = Arc::clone(&group);
        async move {
            let _ = group.wait().await;
        }
    });
    let panic = waiter.await.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"), "not lost");
}

#[tokio::test(start_paused = true)]
async fn many_tasks_that_end_at_once_wake_the_wait() {
    // More results than tokio's cooperative budget lets one poll take: the
    // wait yields and must be woken again, not forgotten.
    let (group, _ctx) = Group::<io::Error>::with_context(&Context::background());
    let start = Arc::new(Notify::new());
    for _ in 0..1000 {
        let start = Arc::clone(&start);
        group.spawn(move |_ctx| async move {
            start.notified().await;
            Ok(())
        });
    }
    let group = Arc::new(group);
    let waiter = tokio::spawn({
        let group = Arc::clone(&group);
        async move { group.wait().await.is_ok() }
    });
    tokio::time::sleep(IDLE).await;
    start.notify_waiters();
    let ended = tokio::time::timeout(IDLE, waiter).await;
    assert!(ended.expect("the wait was woken").unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_long_lived_group_keeps_only_what_runs() {
    let (group, _ctx) = Group::<io::Error>::with_context(&Context::background());
    for _ in 0..100 {
        group.spawn(|_ctx| async { Ok(()) });
    }
    tokio::time::sleep(IDLE).await; // all hundred have ended; nobody waited
    group.spawn(|_ctx| std::future::pending());
    let debug = format!("{group:?}");
    assert!(debug.ends_with("tasks: 1, failed: false }"), "{debug}");
}

// --- the error type: anything Display + Send, moved out by wait ---

#[tokio::test(start_paused = true)]
async fn wait_with_question_mark_in_an_anyhow_fn() {
    async fn fetch_all(ctx: &Context) -> anyhow::Result<u32> {
        let (group, _ctx) = Group::<anyhow::Error>::with_context(ctx);
        group.spawn(|_ctx| async { Ok(()) });
        group.spawn(|_ctx| async { Err(anyhow::anyhow!("mirror down").context("fetching")) });
        group.wait().await?;
        Ok(1)
    }
    let err = fetch_all(&Context::background()).await.unwrap_err();
    assert_eq!(err.to_string(), "fetching");
    assert_eq!(
        err.root_cause().to_string(),
        "mirror down",
        "the error itself"
    );
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("upstream: {0}")]
    Upstream(#[from] io::Error),
    #[error("stopped: {0}")]
    Stopped(#[from] Error),
}

#[tokio::test(start_paused = true)]
async fn wait_with_question_mark_into_a_thiserror_enum() {
    async fn fetch(ctx: &Context) -> Result<(), AppError> {
        ctx.check()?;
        let (group, _ctx) = Group::<io::Error>::with_context(ctx);
        group.spawn(|_ctx| async { Err(io::Error::new(io::ErrorKind::TimedOut, "slow")) });
        group.wait().await?;
        Ok(())
    }
    match fetch(&Context::background()).await {
        Err(AppError::Upstream(err)) => assert_eq!(err.kind(), io::ErrorKind::TimedOut),
        other => panic!("expected the io::Error itself, got {other:?}"),
    }
}

/// An error that is `Send` but not `Sync`: a group needs no more.
#[derive(Debug)]
struct NotSync(std::cell::Cell<u32>);

impl std::fmt::Display for NotSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}", self.0.get())
    }
}

#[tokio::test(start_paused = true)]
async fn an_error_that_is_not_sync_works_too() {
    let (group, ctx) = Group::<NotSync>::with_context(&Context::background());
    group.spawn(|_ctx| async { Err(NotSync(std::cell::Cell::new(7))) });
    assert_eq!(group.wait().await.unwrap_err().0.get(), 7);
    assert_eq!(ctx.cause().unwrap().to_string(), "code 7");
}

// --- values ---

#[tokio::test(start_paused = true)]
async fn outputs_come_back_after_wait() {
    let (group, _ctx) = Group::<io::Error>::with_context(&Context::background());
    let parts: Vec<_> = (0..4u64)
        .map(|i| {
            group.spawn_with_output(move |ctx| async move {
                // Finish in reverse order: outputs still match their tasks.
                tokio::time::sleep(Duration::from_millis(40 - 10 * i)).await;
                ctx.check().map_err(io::Error::from)?;
                Ok(i * i)
            })
        })
        .collect();
    group.wait().await.unwrap();
    let mut values = Vec::new();
    for part in parts {
        values.push(part.await);
    }
    assert_eq!(values, [Some(0), Some(1), Some(4), Some(9)]);
}

#[tokio::test(start_paused = true)]
async fn an_output_is_none_when_its_task_fails_and_awaiting_it_is_cancel_safe() {
    let (group, _ctx) = Group::<io::Error>::with_context(&Context::background());
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let mut slow = group.spawn_with_output(move |_ctx| async move {
        let _ = release_rx.await;
        Ok("slow")
    });
    let failed = group.spawn_with_output(|_ctx| async { Err::<u8, _>(io::Error::other("no")) });

    let gave_up = tokio::time::timeout(IDLE, &mut slow).await;
    assert!(gave_up.is_err(), "still running");
    release_tx.send(()).unwrap();
    assert_eq!(slow.await, Some("slow"), "not lost by the dropped await");
    assert_eq!(failed.await, None);
    assert_eq!(group.wait().await.unwrap_err().to_string(), "no");
}

// --- types ---

#[test]
fn group_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Group<io::Error>>();
    send_sync::<Group<anyhow::Error>>();
    send_sync::<Group<NotSync>>();
    send_sync::<TaskFailed>();
    send_sync::<TaskOutput<String>>();

    fn send<T: Send>(_: &T) {}
    let (group, _ctx) = Group::<anyhow::Error>::with_context(&Context::background());
    send(&group.wait()); // a wait can be spawned as a task
}

#[tokio::test(start_paused = true)]
async fn group_debug_shows_its_context_tasks_and_failure() {
    let (group, _ctx) = Group::<io::Error>::with_context(&Context::background());
    let (release_tx, release_rx) = oneshot::channel::<()>();
    group.spawn(move |_ctx| async move {
        let _ = release_rx.await;
        Err(io::Error::other("x"))
    });
    let debug = format!("{group:?}");
    assert!(debug.starts_with("Group { ctx: "), "{debug}");
    assert!(debug.ends_with("tasks: 1, failed: false }"), "{debug}");
    release_tx.send(()).unwrap();
    let _ = group.wait().await;
    assert!(format!("{group:?}").ends_with("tasks: 0, failed: true }"));

    let output = group.spawn_with_output(|_ctx| async { Ok(1) });
    assert_eq!(format!("{output:?}"), "TaskOutput { resolved: false }");
    let failed = TaskFailed::clone(_ctx.cause().unwrap().downcast_ref::<TaskFailed>().unwrap());
    assert_eq!(
        format!("{failed:?}"),
        r#"TaskFailed { message: "x", panicked: false }"#
    );
}

// --- hostile user code: a waker that re-enters the group ---

/// A waker whose wake spawns into the group: if it ran while the group held
/// its lock, the spawn would deadlock.
struct SpawningWaker {
    group: Arc<Group<io::Error>>,
    spawned: AtomicBool,
    woken: AtomicUsize,
}

impl Wake for SpawningWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
        if !self.spawned.swap(true, Ordering::SeqCst) {
            self.group.spawn(|_ctx| async { Ok(()) });
        }
        let _ = format!("{:?}", self.group); // locks the group too
    }
}

#[test]
fn a_waker_that_reenters_the_group_never_runs_under_its_lock() {
    // On a thread of its own, so that a deadlock fails the test instead of
    // hanging it.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (group, _ctx) = Group::<io::Error>::with_context(&Context::background());
            let group = Arc::new(group);
            // Enough finished tasks that one poll of the wait runs out of
            // tokio's budget, and the task set wakes its waker mid-poll.
            for _ in 0..300 {
                group.spawn(|_ctx| async { Ok(()) });
            }
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            let waker = Arc::new(SpawningWaker {
                group: Arc::clone(&group),
                spawned: AtomicBool::new(false),
                woken: AtomicUsize::new(0),
            });
            let task_waker = Waker::from(Arc::clone(&waker));
            let mut wait = pin!(group.wait());
            let result = loop {
                let mut cx = TaskContext::from_waker(&task_waker);
                if let Poll::Ready(result) = wait.as_mut().poll(&mut cx) {
                    break result;
                }
                tokio::task::yield_now().await; // a fresh budget
            };
            assert!(result.is_ok());
            assert!(waker.woken.load(Ordering::SeqCst) > 0, "the budget ran out");
            assert!(waker.spawned.load(Ordering::SeqCst));
        });
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no deadlock: the waker ran outside the group's lock");
}

#[test]
fn tasks_ending_on_other_threads_while_a_wait_polls_still_wake_it() {
    // Tasks end on the other workers while the waits poll the task set: a
    // wake that arrives mid-poll is held back and must still be delivered.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        for _ in 0..1000 {
            let (group, _ctx) = Group::<io::Error>::with_context(&Context::background());
            let group = Arc::new(group);
            for _ in 0..20 {
                group.spawn(|_ctx| async {
                    tokio::task::yield_now().await;
                    Ok(())
                });
            }
            let other = tokio::spawn({
                let group = Arc::clone(&group);
                async move { group.wait().await.is_ok() }
            });
            assert!(group.wait().await.is_ok());
            assert!(other.await.unwrap());
        }
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("every wait was woken");
}
