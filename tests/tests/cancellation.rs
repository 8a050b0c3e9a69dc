//! Panics and cancellation (timeout, `select!`, abort, a dropped frame whose child is still
//! running): the frame that stopped rolls back, its siblings and parent go on, the database
//! stays usable and `PRAGMA integrity_check` is `ok` (on PostgreSQL: no session is left in a
//! transaction).
//!
//! Conformance: every test runs on every kind of `KINDS`.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use transactional::{transactional, Atomic, Database, Error, TaskGroup};
use transactional_tests::{insert, table, TestDb, KINDS};

#[transactional]
async fn put(key: &'static str) -> Result<(), Error> {
    insert(key).await
}

/// Writes, then never finishes on its own.
#[transactional]
async fn put_then_hang(key: &'static str) -> Result<(), Error> {
    insert(key).await?;
    std::future::pending::<()>().await;
    unreachable!()
}

#[transactional]
async fn put_then_panic(key: &'static str) -> Result<(), Error> {
    insert(key).await?;
    tokio::task::yield_now().await;
    panic!("child {key} panics");
}

#[transactional(db = db)]
async fn siblings_with_a_panic(db: &Database) -> Result<(), Error> {
    let panicked = transactional::spawn(put_then_panic("panicked"));
    let mut group = TaskGroup::new();
    group.spawn(put("sibling1"));
    group.spawn(put("sibling2"));
    group.join_all().await?;
    let joined = panicked.await;
    assert!(joined.unwrap_err().is_panic());
    // A panic caught inside the same task: the savepoint is rolled back before it unwinds.
    let caught = AssertUnwindSafe(put_then_panic("caught"))
        .catch_unwind()
        .await;
    assert!(caught.is_err());
    insert("parent").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_child_rolls_back_alone() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        siblings_with_a_panic(&test.db).await.unwrap();
        assert_eq!(
            test.kv().await,
            table([("parent", 1), ("sibling1", 1), ("sibling2", 1)]),
            "{kind:?}"
        );
        test.assert_healthy().await;
    }
}

/// Tells its sibling once its savepoint holds the turn, so the hanging sibling cannot take
/// the turn first (and keep it forever).
#[transactional]
async fn put_signal_then_panic(
    key: &'static str,
    started: tokio::sync::oneshot::Sender<()>,
) -> Result<(), Error> {
    insert(key).await?;
    let _ = started.send(());
    tokio::task::yield_now().await;
    panic!("child {key} panics");
}

#[transactional(db = db)]
async fn group_with_a_panic(db: &Database) -> Result<(), Error> {
    insert("parent").await?;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let mut group = TaskGroup::new();
    group.spawn(put_signal_then_panic("panicked", started_tx));
    group.spawn(async move {
        let _ = started_rx.await;
        put_then_hang("hangs").await // cancelled when the panic reaches join_all
    });
    group.join_all().await?;
    unreachable!("join_all resumes the child's panic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_through_join_all_rolls_back_the_whole_transaction() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let db = test.db.clone();
        let joined = tokio::spawn(async move { group_with_a_panic(&db).await }).await;
        let panic = joined.unwrap_err().into_panic();
        assert_eq!(
            panic.downcast_ref::<String>().map(String::as_str),
            Some("child panicked panics")
        );
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[transactional(db = db)]
async fn siblings_with_cancellations(db: &Database) -> Result<(), Error> {
    // Timeout: the nested frame is dropped while its savepoint is open.
    let timed_out = tokio::time::timeout(Duration::from_millis(20), put_then_hang("timeout")).await;
    assert!(timed_out.is_err());
    // select!: the losing branch is dropped mid-savepoint.
    tokio::select! {
        _ = put_then_hang("select") => unreachable!(),
        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
    }
    // Abort: a spawned task is aborted while its savepoint is open and a sibling waits.
    let hanging = transactional::spawn(put_then_hang("aborted"));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let waiting = transactional::spawn(put("after_abort"));
    hanging.abort();
    assert!(hanging.await.unwrap_err().is_cancelled());
    waiting.await.expect("join")?;
    // The builder's own timeout option.
    let limited = Atomic::new()
        .timeout(Duration::from_millis(20))
        .run(async {
            insert("option_timeout").await?;
            std::future::pending::<()>().await;
            Ok::<(), Error>(())
        })
        .await;
    assert!(matches!(limited, Err(Error::Timeout(_))), "{limited:?}");
    insert("parent").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_children_roll_back_and_the_rest_commit() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        siblings_with_cancellations(&test.db).await.unwrap();
        assert_eq!(
            test.kv().await,
            table([("after_abort", 1), ("parent", 1)]),
            "{kind:?}"
        );
        test.assert_healthy().await;
    }
}

/// A frame cancelled while a task it spawned still holds a savepoint under it: the frame
/// rolls back only after that child ends, and its parent waits until then.
#[transactional]
async fn frame_with_detached_child() -> Result<(), Error> {
    insert("cancelled_frame").await?;
    transactional::spawn(async {
        put_slowly("detached_child").await.ok();
    });
    tokio::time::sleep(Duration::from_millis(5)).await; // the child opens its savepoint
    std::future::pending::<()>().await;
    unreachable!()
}

#[transactional]
async fn put_slowly(key: &'static str) -> Result<(), Error> {
    insert(key).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    insert("detached_child_2").await
}

#[transactional(db = db)]
async fn parent_of_cancelled_frame(db: &Database) -> Result<(), Error> {
    let cancelled =
        tokio::time::timeout(Duration::from_millis(20), frame_with_detached_child()).await;
    assert!(cancelled.is_err());
    // Waits until the detached child has ended and the cancelled frame has rolled back.
    insert("parent").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_frame_waits_for_its_running_child_before_rolling_back() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        parent_of_cancelled_frame(&test.db).await.unwrap();
        assert_eq!(test.kv().await, table([("parent", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_outermost_transaction_rolls_back() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let db = test.db.clone();
        let task = tokio::spawn(async move {
            Atomic::new()
                .db(db)
                .run(async {
                    insert("never").await?;
                    std::future::pending::<()>().await;
                    Ok::<(), Error>(())
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        if let Some(raw) = test.raw_kv() {
            assert!(raw.is_empty());
        }
        test.assert_healthy().await;
    }
}
