//! Regression tests, class 4: small contracts of `on_commit` and `retries`.
//!
//! Conformance: defects 14 and 16 (`on_commit`) run on every kind of `KINDS`. SQLite-only:
//! defect 15, whose transient failure is SQLite's write lock held by another connection.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use transactional::{transactional, Atomic, Database, Error};
use transactional_tests::{bounded, insert, table, Kind, TestDb, KINDS};

// ---------------------------------------------------------------------------------------
// Defect 14: on_commit after the frame has ended.

/// Defect 14 (root): `on_commit` called from a task spawned with `transactional::spawn` after
/// the transaction it carries has committed returns `Ok`, and the hook never runs.
///
/// Expected: `Err(Error::TransactionClosed(_))`, and the hook does not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_commit_after_the_transaction_ended_is_transaction_closed() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        bounded(
            "the transaction",
            Atomic::new().db(test.db.clone()).run(async {
                insert("root").await?;
                transactional::spawn(async move {
                    let _ = go_rx.await;
                    let registered =
                        transactional::on_commit(move || flag.store(true, Ordering::SeqCst));
                    let _ = result_tx.send(registered);
                });
                Ok::<(), Error>(())
            }),
        )
        .await
        .unwrap();
        go_tx.send(()).unwrap();
        let registered = bounded("the spawned task", result_rx).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!ran.load(Ordering::SeqCst), "a hook of an ended frame ran");
        assert!(
            matches!(registered, Err(Error::TransactionClosed(_))),
            "on_commit after the frame ended returned {registered:?} (the hook will never run)"
        );
        assert_eq!(test.kv().await, table([("root", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}

/// Defect 14 (savepoint): the same for a savepoint: a task spawned in a savepoint registers a
/// hook after that savepoint was released into its (still open) parent. The hook goes into
/// the ended savepoint's list, which nobody reads again: `Ok`, and it never runs although
/// the transaction commits.
///
/// Expected: `Err(Error::TransactionClosed(_))`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_commit_after_the_savepoint_ended_is_transaction_closed() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let registered = bounded(
            "the transaction",
            Atomic::new().db(test.db.clone()).run(async {
                insert("root").await?;
                let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
                let task = Atomic::new()
                    .name("ended")
                    .run(async move {
                        insert("savepoint").await?;
                        Ok::<_, Error>(transactional::spawn(async move {
                            let _ = go_rx.await;
                            transactional::on_commit(move || flag.store(true, Ordering::SeqCst))
                        }))
                    })
                    .await?;
                go_tx.send(()).unwrap();
                Ok::<_, Error>(task.await.expect("join"))
            }),
        )
        .await
        .expect("the transaction commits");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let hook_ran = ran.load(Ordering::SeqCst);
        assert!(
            matches!(registered, Err(Error::TransactionClosed(_))),
            "on_commit after the savepoint ended returned {registered:?} (hook ran: {hook_ran})"
        );
        assert_eq!(
            test.kv().await,
            table([("root", 1), ("savepoint", 1)]),
            "{kind:?}"
        );
        test.assert_healthy().await;
    }
}

// ---------------------------------------------------------------------------------------
// Defect 15: `retries` re-runs a body that failed with its own, non-transient error.

/// A user error type that wraps the library's error (as `source`) and has its own variants.
#[derive(Debug)]
enum AppError {
    Db(Error),
    Invalid(String),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Db(_) => write!(f, "database error"),
            AppError::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Db(err) => Some(err),
            AppError::Invalid(_) => None,
        }
    }
}

impl From<Error> for AppError {
    fn from(err: Error) -> Self {
        AppError::Db(err)
    }
}

/// A file database whose write lock another connection holds (`BEGIN IMMEDIATE`) until the
/// returned connection is dropped or rolls back. (SQLite-only: defect 15's transient failure.)
async fn locked_by_another_connection() -> (TestDb, rusqlite::Connection) {
    let test = TestDb::new(Kind::File).await;
    let raw = rusqlite::Connection::open(test.path.as_ref().unwrap()).unwrap();
    raw.execute_batch("BEGIN IMMEDIATE; INSERT INTO kv VALUES ('other_connection', 1)")
        .unwrap();
    (test, raw)
}

/// What a write in the body met: it must be the other connection's lock.
fn expect_busy(seen: &Mutex<Vec<String>>, result: Result<(), Error>) {
    let what = match result {
        Err(Error::Busy { .. }) => return,
        other => format!("{other:?}"),
    };
    seen.lock().unwrap().push(what);
}

#[transactional(db = db, begin = "deferred", retries = 3)]
async fn swallows_busy_then_fails_with_library_error(
    db: &Database,
    attempts: &AtomicU32,
    seen: &Mutex<Vec<String>>,
) -> Result<(), Error> {
    attempts.fetch_add(1, Ordering::SeqCst);
    expect_busy(seen, insert("body").await); // swallowed
    Err(Error::ReadOnly)
}

#[transactional(db = db, begin = "deferred", retries = 3)]
async fn swallows_busy_then_fails_with_own_error(
    db: &Database,
    attempts: &AtomicU32,
    seen: &Mutex<Vec<String>>,
) -> Result<(), AppError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    expect_busy(seen, insert("body").await); // swallowed
    Err(AppError::Invalid("the body's own decision".into()))
}

#[transactional(db = db, begin = "deferred", retries = 3)]
async fn returns_busy_with_library_error(db: &Database, attempts: &AtomicU32) -> Result<(), Error> {
    attempts.fetch_add(1, Ordering::SeqCst);
    insert("body").await?;
    Ok(())
}

#[transactional(db = db, begin = "deferred", retries = 3)]
async fn returns_busy_with_own_error(db: &Database, attempts: &AtomicU32) -> Result<(), AppError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    insert("body").await?;
    Ok(())
}

/// Defect 15's checks once a body swallowed a busy and returned its own error (`own_error`
/// says whether `result` is that error): the write met the other connection's lock, which
/// is then let go; the error came back after one attempt; nothing was written.
async fn assert_own_error_after_one_attempt(
    test: &TestDb,
    raw: &rusqlite::Connection,
    seen: &Mutex<Vec<String>>,
    attempts: &AtomicU32,
    own_error: bool,
    result: &dyn fmt::Debug,
) {
    raw.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        Vec::<String>::new(),
        "the write met the lock"
    );
    assert!(own_error, "{result:?}");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "the body's own error is not transient: it must not be re-run"
    );
    assert_eq!(test.kv().await, table([]));
    test.assert_healthy().await;
}

/// Defect 15 (E = transactional::Error): with `begin = "deferred"` and another connection
/// holding the write lock, a write in the body fails with `Error::Busy`; the body swallows
/// it and returns its own non-transient error (`Error::ReadOnly`). Because a statement of
/// the transaction had seen busy, `retries = 3` re-runs the body: 4 attempts.
///
/// Expected: exactly 1 attempt, and the body's own error returned.
/// SQLite-only: the busy error comes from SQLite's write lock held by another connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retries_never_rerun_a_body_that_returned_its_own_error_after_a_swallowed_busy() {
    let (test, raw) = locked_by_another_connection().await;
    let attempts = AtomicU32::new(0);
    let seen = Mutex::new(Vec::new());
    let result = bounded(
        "the transaction",
        swallows_busy_then_fails_with_library_error(&test.db, &attempts, &seen),
    )
    .await;
    let own_error = matches!(result, Err(Error::ReadOnly));
    assert_own_error_after_one_attempt(&test, &raw, &seen, &attempts, own_error, &result).await;
}

/// Defect 15 (a user error type with the library error as `source`/`From`): the same with
/// `AppError::Invalid` returned after the swallowed busy: re-run 3 more times.
///
/// Expected: exactly 1 attempt, and the body's own error returned.
/// SQLite-only: the busy error comes from SQLite's write lock held by another connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retries_never_rerun_a_body_that_returned_its_own_user_error_after_a_swallowed_busy()
{
    let (test, raw) = locked_by_another_connection().await;
    let attempts = AtomicU32::new(0);
    let seen = Mutex::new(Vec::new());
    let result = bounded(
        "the transaction",
        swallows_busy_then_fails_with_own_error(&test.db, &attempts, &seen),
    )
    .await;
    let own_error = matches!(result, Err(AppError::Invalid(_)));
    assert_own_error_after_one_attempt(&test, &raw, &seen, &attempts, own_error, &result).await;
}

/// Positive control for defect 15 (passes today, must keep passing): a body that returns
/// the busy error itself (`?`) IS re-run, for both error types: 1 + 3 attempts, then the
/// busy error.
/// SQLite-only: the busy error comes from SQLite's write lock held by another connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retries_do_rerun_a_body_that_returned_the_busy_error() {
    let (test, raw) = locked_by_another_connection().await;
    let attempts = AtomicU32::new(0);
    let result = bounded(
        "the transaction",
        returns_busy_with_library_error(&test.db, &attempts),
    )
    .await;
    assert!(matches!(result, Err(Error::Busy { .. })), "{result:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 4);

    let attempts = AtomicU32::new(0);
    let result = bounded(
        "the transaction",
        returns_busy_with_own_error(&test.db, &attempts),
    )
    .await;
    assert!(
        matches!(result, Err(AppError::Db(Error::Busy { .. }))),
        "{result:?}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    raw.execute_batch("ROLLBACK").unwrap();
    assert_eq!(test.kv().await, table([]));
    test.assert_healthy().await;
}

// ---------------------------------------------------------------------------------------
// Defect 16: a panicking on_commit hook.

/// Defect 16: a panicking `on_commit` hook unwinds out of the caller right after the commit,
/// and the hooks registered after it never run.
///
/// Expected: every hook runs, in order; the commit stays committed; the panic is resumed on
/// the caller after all hooks ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_on_commit_hook_does_not_skip_the_later_hooks() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let ran = Arc::new(Mutex::new(Vec::new()));
        let (first, third) = (ran.clone(), ran.clone());
        let outcome = bounded(
            "the transaction",
            AssertUnwindSafe(Atomic::new().db(test.db.clone()).run(async move {
                insert("committed").await?;
                transactional::on_commit(move || first.lock().unwrap().push(1))?;
                transactional::on_commit(|| panic!("hook 2 panics"))?;
                transactional::on_commit(move || third.lock().unwrap().push(3))?;
                Ok::<(), Error>(())
            }))
            .catch_unwind(),
        )
        .await;
        let ran = ran.lock().unwrap().clone();
        let committed = match test.raw_kv() {
            Some(kv) => kv,
            None => test.kv().await, // in memory: only the library reaches it
        };
        assert_eq!(committed, table([("committed", 1)]), "{kind:?}");
        assert_eq!(
            ran,
            [1, 3],
            "hooks that ran (the panic of hook 2 {} the caller)",
            if outcome.is_err() {
                "reached"
            } else {
                "did not reach"
            }
        );
        let panic = outcome.expect_err("the hook's panic is resumed on the caller");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"hook 2 panics"));
        test.assert_healthy().await;
    }
}
