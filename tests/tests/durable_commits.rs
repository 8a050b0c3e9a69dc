//! `synchronous = FULL`: every COMMIT fsyncs, so the library sends it from a blocking thread
//! and the executor keeps running; with the default (`NORMAL` in WAL) COMMIT stays on the
//! task's own thread (no hop). Either way the transaction behaves the same.
//!
//! SQLite-only, the whole file: `synchronous` is an SQLite pragma, and the COMMITs are seen
//! through SQLite's trace hook.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use transactional::rusqlite::trace::{TraceEvent, TraceEventCodes};
use transactional::{transactional, Atomic, Database, Error, TaskGroup};
use transactional_tests::{insert, table, Kind, TestDb};

/// Reopens `test` with `synchronous` set, recording the thread of every COMMIT.
async fn with_commit_threads(
    test: TestDb,
    synchronous: &str,
) -> (TestDb, Arc<Mutex<Vec<ThreadId>>>) {
    let threads = Arc::new(Mutex::new(Vec::new()));
    let sink = threads.clone();
    let builder = Database::builder()
        .pragma("synchronous", synchronous)
        .on_open(move |conn| {
            let sink = sink.clone();
            conn.trace_v2(
                TraceEventCodes::SQLITE_TRACE_STMT,
                Some(move |event: TraceEvent<'_>| {
                    if let TraceEvent::Stmt(stmt, _) = event {
                        if stmt.sql() == "COMMIT" {
                            sink.lock().unwrap().push(std::thread::current().id());
                        }
                    }
                }),
            )
        });
    (test.reopen_with(builder).await, threads)
}

#[transactional(db = db)]
async fn write(db: &Database, key: &'static str) -> Result<(), Error> {
    insert(key).await
}

#[tokio::test(flavor = "current_thread")]
async fn full_sync_commits_leave_the_executor_thread() {
    let (test, threads) = with_commit_threads(TestDb::new(Kind::File).await, "FULL").await;
    threads.lock().unwrap().clear();
    write(&test.db, "durable").await.unwrap();
    let commits = threads.lock().unwrap().clone();
    assert_eq!(commits.len(), 1);
    assert_ne!(
        commits[0],
        std::thread::current().id(),
        "COMMIT ran on the executor thread"
    );
    assert_eq!(test.raw_kv().unwrap(), table([("durable", 1)]));
}

#[tokio::test(flavor = "current_thread")]
async fn normal_sync_commits_stay_on_the_task_thread() {
    let (test, threads) = with_commit_threads(TestDb::new(Kind::File).await, "NORMAL").await;
    threads.lock().unwrap().clear();
    write(&test.db, "fast").await.unwrap();
    assert_eq!(*threads.lock().unwrap(), [std::thread::current().id()]);
}

#[transactional(propagation = "join")]
async fn joined_failure() -> Result<(), Error> {
    Err(Error::Unsupported("dooms the transaction".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_transactions_behave_the_same() {
    let (test, _) = with_commit_threads(TestDb::new(Kind::File).await, "FULL").await;
    let hooks = Arc::new(AtomicUsize::new(0));

    // Many concurrent outermost transactions, each with a task group of savepoints.
    let mut tasks = TaskGroup::<(), Error>::new();
    for t in 0..16 {
        let db = test.db.clone();
        let hooks = hooks.clone();
        tasks.spawn(async move {
            Atomic::new()
                .db(db)
                .run(async move {
                    let mut group = TaskGroup::new();
                    for i in 0..4 {
                        group.spawn(transactional::atomic(insert(format!("t{t:02}-{i}"))));
                    }
                    group.join_all().await?;
                    transactional::on_commit(move || {
                        hooks.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .await
        });
    }
    tasks.join_all().await.unwrap();
    assert_eq!(
        hooks.load(Ordering::SeqCst),
        16,
        "every hook ran after its commit"
    );

    // Rollback-only still rolls back instead of committing.
    let doomed = Atomic::new()
        .db(test.db.clone())
        .run(async {
            insert("doomed").await?;
            let _ = joined_failure().await;
            Ok::<_, Error>(())
        })
        .await;
    assert!(matches!(doomed, Err(Error::RollbackOnly)), "{doomed:?}");

    let kv = test.raw_kv().unwrap();
    assert_eq!(kv.len(), 64);
    assert!(!kv.contains_key("doomed"));
    test.assert_healthy().await;
}
