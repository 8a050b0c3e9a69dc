//! Regression tests, class 1: a commit or rollback in flight must own its connection until it
//! is done. A COMMIT handed to a blocking thread, or a rollback handed to a cleanup task, that
//! outlives the future (or the runtime) which started it must not leave the connection to the
//! next user in the middle of a transaction, nor run on the next user's transaction.
//!
//! Every wait is bounded; a hang is reported as a failure.
//!
//! Conformance: defect 3 (a write root dropped outside a runtime, or whose cleanup dies with
//! the runtime) runs on every kind of `KINDS`; on PostgreSQL "the file lock" is the pooled
//! session, which must not be left inside the transaction. SQLite-only: defect 1 is about
//! `synchronous = FULL` (the COMMIT on a blocking thread), defect 2 about SQLite's reader pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use transactional::{Atomic, Database, Error};
use transactional_tests::{eventually, insert, raw_write, Kind, TestDb, KINDS};

type BoxedRun = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A database of `kind` opened with `builder`.
fn open_with(rt: &Runtime, kind: Kind, builder: transactional::DatabaseBuilder) -> TestDb {
    rt.block_on(TestDb::with_builder(kind, builder))
}

/// A file database with one reader connection and one committed row, for the read-only
/// roots of defect 2.
fn one_reader_with_a_row(rt: &Runtime) -> TestDb {
    let test = open_with(rt, Kind::File, Database::builder().readers(1));
    rt.block_on(test.exec("INSERT INTO kv VALUES ('committed', 1)"))
        .unwrap();
    test
}

/// An outermost transaction on `db` (read-only or not) whose body writes (unless read-only),
/// then spawns a child with `transactional::spawn` that opens a savepoint under it and keeps
/// it open, so the child holds the root's turn. The returned future has been polled, inside
/// `rt`, until that is the case; the handle is the child's.
fn root_with_child_holding_its_turn(
    rt: &Runtime,
    db: &Database,
    read_only: bool,
) -> (BoxedRun, JoinHandle<Result<(), Error>>) {
    let (handle_tx, handle_rx) = tokio::sync::oneshot::channel();
    let mut root: BoxedRun = Box::pin(
        Atomic::new()
            .db(db.clone())
            .name("dropped_root")
            .read_only(read_only)
            .run(async move {
                if !read_only {
                    insert("dropped_root").await?;
                }
                let (started_tx, started_rx) = tokio::sync::oneshot::channel();
                let child = transactional::spawn(Atomic::new().name("child").run(async move {
                    let _ = started_tx.send(());
                    std::future::pending::<()>().await;
                    Ok::<(), Error>(())
                }));
                started_rx.await.expect("the child started");
                let _ = handle_tx.send(child);
                std::future::pending::<()>().await;
                Ok(())
            }),
    );
    // (In a `Some`: a `JoinHandle` is itself a future, which an async block should not yield.)
    let child = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), async {
            tokio::select! {
                result = &mut root => panic!("the root ended on its own: {result:?}"),
                child = handle_rx => Some(child.expect("the root sent the child's handle")),
            }
        })
        .await
        .expect("the child opened its savepoint within 5 s")
    });
    let child = child.expect("the child's handle");
    (root, child)
}

/// Aborts `child` and waits (bounded) until it has stopped.
fn abort_and_wait(rt: &Runtime, child: JoinHandle<Result<(), Error>>) {
    child.abort();
    rt.block_on(async {
        let joined = tokio::time::timeout(Duration::from_secs(5), child)
            .await
            .expect("the aborted child stopped within 5 s");
        assert!(joined.unwrap_err().is_cancelled());
    });
}

/// Spawns `root` on `rt`, aborts it (its rollback now waits for the child, in a cleanup
/// task) and shuts `rt` down: the cleanup task dies unrun.
fn abort_and_shut_down(rt: Runtime, root: BoxedRun) {
    let task = rt.spawn(root);
    task.abort();
    rt.block_on(async {
        let joined = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the aborted root stopped");
        assert!(joined.unwrap_err().is_cancelled());
    });
    rt.shutdown_timeout(Duration::from_secs(5));
}

/// A read-only transaction (bounded) sees the one committed row; the database is healthy.
async fn assert_reads_work(test: &TestDb, when: &str) {
    let read = tokio::time::timeout(Duration::from_secs(5), test.count_read_only())
        .await
        .expect("a read-only transaction hung for 5 s");
    assert!(
        matches!(read, Ok(1)),
        "a read-only transaction {when}: {read:?}"
    );
    test.assert_healthy().await;
}

/// Another connection can write the file within a second (`key` is its row). (On PostgreSQL
/// `assert_healthy`, in `assert_writes_work_without_the_roots_row`, checks that no session is
/// left inside a transaction.)
fn assert_another_connection_can_write(test: &TestDb, key: &str, when: &str) {
    let Some(path) = test.path.as_ref() else {
        return;
    };
    let raw = raw_write(
        path,
        &format!("BEGIN IMMEDIATE; INSERT INTO kv VALUES ('{key}', 1); COMMIT"),
        Duration::from_secs(1),
    );
    assert!(
        raw.is_ok(),
        "another connection cannot write {when}: {raw:?}"
    );
}

/// A write transaction (bounded) commits; the dropped root's row is not on disk; the
/// database is healthy.
async fn assert_writes_work_without_the_roots_row(test: &TestDb) {
    tokio::time::timeout(
        Duration::from_secs(5),
        Atomic::new().db(test.db.clone()).run(insert("after")),
    )
    .await
    .expect("a write transaction hung for 5 s")
    .unwrap();
    // (In memory, only the library reaches the database: a transaction of its own.)
    let kv = match test.raw_kv() {
        Some(kv) => kv,
        None => test.kv().await,
    };
    assert!(!kv.contains_key("dropped_root"), "{kv:?}");
    assert!(kv.contains_key("after"), "{kv:?}");
    test.assert_healthy().await;
}

/// Defect 1: with `synchronous = FULL` the COMMIT runs on a blocking thread. When the caller's
/// future is dropped while that COMMIT is still queued (here: the only blocking thread is
/// busy), the frame rolls back and gives the writer away at once, and the detached COMMIT
/// runs later on whatever transaction is open then — committing the NEXT transaction's rows,
/// which that transaction then tries to roll back.
///
/// Expected: the writer stays owned until the COMMIT has run; the next transaction's
/// rolled-back rows are never on disk; the cancelled transaction is either committed with its
/// `on_commit` hook run, or not committed at all; the database stays healthy.
///
/// SQLite-only: `synchronous = FULL` and SQLite's single writer.
#[test]
fn a_cancelled_off_thread_commit_never_commits_the_next_transactions_rows() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let test = open_with(
        &rt,
        Kind::File,
        Database::builder().pragma("synchronous", "FULL"),
    );
    rt.block_on(async {
        // Occupy the only blocking thread, so that the COMMIT queues behind it.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (busy_tx, busy_rx) = tokio::sync::oneshot::channel();
        let blocker = tokio::task::spawn_blocking(move || {
            let _ = busy_tx.send(());
            let _ = release_rx.recv_timeout(Duration::from_secs(10));
        });
        busy_rx.await.unwrap();

        let hook_ran = Arc::new(AtomicBool::new(false));
        let flag = hook_ran.clone();
        let cancelled = tokio::time::timeout(
            Duration::from_millis(100),
            Atomic::new()
                .db(test.db.clone())
                .name("cancelled")
                .run(async move {
                    insert("cancelled").await?;
                    transactional::on_commit(move || flag.store(true, Ordering::SeqCst))?;
                    Ok::<(), Error>(())
                }),
        )
        .await;

        // The blocking thread frees up in 200 ms, while the next transaction is open.
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = release_tx.send(());
        });
        let next = tokio::time::timeout(
            Duration::from_secs(10),
            Atomic::new().db(test.db.clone()).name("next").run(async {
                insert("next_rolled_back").await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                Err::<(), _>(Error::Unsupported("the next transaction fails".into()))
            }),
        )
        .await
        .expect("the next transaction hung for 10 s");
        assert!(
            matches!(&next, Err(Error::Unsupported(_))),
            "the next transaction returns its own error: {next:?}"
        );
        releaser.await.unwrap();
        blocker.await.unwrap();

        let raw = test.raw_kv().unwrap();
        assert!(
            !raw.contains_key("next_rolled_back"),
            "the next transaction returned Err, yet its row is on disk (committed by the \
             cancelled transaction's detached COMMIT): {raw:?}"
        );
        if raw.contains_key("cancelled") || cancelled.is_ok() {
            assert!(
                matches!(cancelled, Err(_) | Ok(Ok(()))),
                "a committed transaction reported {cancelled:?}"
            );
            assert!(raw.contains_key("cancelled"), "reported Ok but not on disk");
            eventually(Duration::from_secs(2), || async {
                hook_ran.load(Ordering::SeqCst)
            })
            .await;
            assert!(
                hook_ran.load(Ordering::SeqCst),
                "the cancelled transaction committed but its on_commit hook never ran"
            );
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                !hook_ran.load(Ordering::SeqCst),
                "the on_commit hook ran for a transaction that is not on disk"
            );
        }
        test.assert_healthy().await;
    });
}

/// Defect 2, path (a): a read-only root on a reader connection, dropped outside any runtime
/// while a child savepoint (of a task it spawned) holds its turn, gives the reader back to
/// the pool still inside `BEGIN`. With one reader, every later read-only transaction fails
/// with `cannot start a transaction within a transaction`.
///
/// Expected: once the child has ended too, later read-only transactions work.
///
/// SQLite-only: SQLite's reader pool.
#[test]
fn a_read_only_root_dropped_outside_a_runtime_returns_a_clean_reader() {
    let rt = runtime();
    let test = one_reader_with_a_row(&rt);
    let (root, child) = root_with_child_holding_its_turn(&rt, &test.db, true);
    std::thread::spawn(move || drop(root)).join().unwrap();
    abort_and_wait(&rt, child);
    rt.block_on(assert_reads_work(&test, "after the drop"));
}

/// Defect 2, path (b): the same root, cancelled while the child holds its turn, hands its
/// rollback to a cleanup task; the runtime shuts down before that task runs, and the reader
/// goes back to the pool inside `BEGIN`. The same `Database` used from a new runtime then
/// fails every read-only transaction (`readers(1)`).
///
/// Expected: read-only transactions work from the new runtime.
///
/// SQLite-only: SQLite's reader pool.
#[test]
fn a_read_only_root_whose_cleanup_dies_with_the_runtime_returns_a_clean_reader() {
    let rt = runtime();
    let test = one_reader_with_a_row(&rt);
    let (root, _child) = root_with_child_holding_its_turn(&rt, &test.db, true);
    abort_and_shut_down(rt, root);
    runtime().block_on(assert_reads_work(&test, "from a new runtime"));
}

/// Defect 3, path (a): a write root dropped outside any runtime while a child savepoint holds
/// its turn leaves the writer connection inside `BEGIN IMMEDIATE`: the file stays
/// write-locked for every other connection and process.
///
/// Expected: once the child has ended, another connection can write at once (within a
/// second); the root's row was rolled back; the `Database` keeps working.
#[test]
fn a_write_root_dropped_outside_a_runtime_releases_the_file_lock() {
    for kind in KINDS {
        let rt = runtime();
        let test = open_with(&rt, kind, Database::builder());
        let (root, child) = root_with_child_holding_its_turn(&rt, &test.db, false);
        std::thread::spawn(move || drop(root)).join().unwrap();
        abort_and_wait(&rt, child);
        assert_another_connection_can_write(&test, "raw_after_drop", "after the root was dropped");
        rt.block_on(assert_writes_work_without_the_roots_row(&test));
    }
}

/// Defect 3, path (b): a write root cancelled while a child holds its turn, whose cleanup task
/// is dropped unrun when the runtime shuts down, leaves the writer inside `BEGIN IMMEDIATE`:
/// the file stays write-locked for other connections.
///
/// Expected: right after the runtime is gone another connection can write, and the same
/// `Database` used from a new runtime works; the root's row is not on disk.
#[test]
fn a_write_root_whose_cleanup_dies_with_the_runtime_releases_the_file_lock() {
    for kind in KINDS {
        let rt = runtime();
        let test = open_with(&rt, kind, Database::builder());
        let (root, _child) = root_with_child_holding_its_turn(&rt, &test.db, false);
        abort_and_shut_down(rt, root);
        assert_another_connection_can_write(
            &test,
            "raw_after_shutdown",
            "after the runtime shut down",
        );
        runtime().block_on(assert_writes_work_without_the_roots_row(&test));
    }
}
