//! Every option of `#[transactional(..)]`, exercised at run time.
//!
//! Conformance: `read_only`, `isolation`, `timeout` and `name` run on every kind of `KINDS`.
//! SQLite-only: `begin` (SQLite's BEGIN DEFERRED/IMMEDIATE/EXCLUSIVE, read from SQLite's trace
//! hook) and `retries` against SQLite's write lock held by another connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use transactional::rusqlite::trace::{TraceEvent, TraceEventCodes};
use transactional::{transactional, Atomic, Database, Error};
use transactional_tests::{insert, table, Kind, TestDb, KINDS};

/// A file database whose writer records the statements it runs (SQLite's trace hook).
async fn traced() -> (TestDb, Arc<Mutex<Vec<String>>>) {
    let test = TestDb::new(Kind::File).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let builder = Database::builder().readers(0).on_open(move |conn| {
        let sink = sink.clone();
        conn.trace_v2(
            TraceEventCodes::SQLITE_TRACE_STMT,
            Some(move |event: TraceEvent<'_>| {
                if let TraceEvent::Stmt(stmt, _) = event {
                    sink.lock().unwrap().push(stmt.sql().into_owned());
                }
            }),
        )
    });
    (test.reopen_with(builder).await, log)
}

#[transactional(db = db, begin = "deferred")]
async fn begins_deferred(db: &Database) -> Result<(), Error> {
    insert("deferred").await
}

#[transactional(db = db, begin = "exclusive")]
async fn begins_exclusive(db: &Database) -> Result<(), Error> {
    insert("exclusive").await
}

#[transactional(db = db)]
async fn begins_by_default(db: &Database) -> Result<(), Error> {
    insert("default").await
}

/// SQLite-only: `begin` picks SQLite's BEGIN variant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_begin_chooses_the_begin_statement() {
    let (test, log) = traced().await;
    let begins = || -> Vec<String> {
        let mut log = log.lock().unwrap();
        log.drain(..).filter(|s| s.starts_with("BEGIN")).collect()
    };
    begins();
    begins_deferred(&test.db).await.unwrap();
    assert_eq!(begins(), ["BEGIN DEFERRED"]);
    begins_exclusive(&test.db).await.unwrap();
    assert_eq!(begins(), ["BEGIN EXCLUSIVE"]);
    begins_by_default(&test.db).await.unwrap();
    assert_eq!(begins(), ["BEGIN IMMEDIATE"]);
    assert_eq!(
        test.kv().await,
        table([("default", 1), ("deferred", 1), ("exclusive", 1)])
    );
}

#[transactional(db = db, read_only)]
async fn reads_only(db: &Database, write: bool) -> Result<i64, Error> {
    let tx = transactional::current()?;
    assert!(tx.is_read_only());
    if write {
        insert("forbidden").await?;
    }
    tx.query_row("SELECT count(*) FROM kv", ()).await?.get(0)
}

#[transactional(read_only = true)]
async fn nested_read_only() -> Result<(), Error> {
    insert("forbidden_nested").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_writes_outermost_and_nested() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        test.exec("INSERT INTO kv VALUES ('x', 1)").await.unwrap();
        assert_eq!(reads_only(&test.db, false).await.unwrap(), 1);
        assert!(matches!(
            reads_only(&test.db, true).await,
            Err(Error::ReadOnly)
        ));
        let outer = Atomic::new()
            .db(test.db.clone())
            .run(async {
                assert!(matches!(nested_read_only().await, Err(Error::ReadOnly)));
                insert("allowed").await // the enclosing write transaction goes on
            })
            .await;
        outer.unwrap();
        assert_eq!(
            test.kv().await,
            table([("allowed", 1), ("x", 1)]),
            "{kind:?}"
        );
    }
}

#[transactional(db = db, isolation = "serializable")]
async fn serializable(db: &Database) -> Result<(), Error> {
    insert("serializable").await
}

#[transactional(db = db, isolation = "read_committed", name = "weaker_level")]
async fn read_committed(db: &Database) -> Result<(), Error> {
    insert("read_committed").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_levels_are_accepted_and_commit() {
    // SQLite's transactions are serializable, which honours every level; PostgreSQL begins
    // each at the level asked for.
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        serializable(&test.db).await.unwrap();
        read_committed(&test.db).await.unwrap();
        assert_eq!(
            test.kv().await,
            table([("read_committed", 1), ("serializable", 1)]),
            "{kind:?}"
        );
        test.assert_healthy().await;
    }
}

#[transactional(timeout = "30ms")]
async fn too_slow() -> Result<(), Error> {
    insert("too_slow").await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[transactional(db = db, timeout = "2s")]
async fn outer_with_slow_child(db: &Database) -> Result<(), Error> {
    let started = Instant::now();
    assert!(matches!(too_slow().await, Err(Error::Timeout(d)) if d == Duration::from_millis(30)));
    assert!(started.elapsed() < Duration::from_secs(2));
    insert("outer").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_rolls_the_frame_back() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        outer_with_slow_child(&test.db).await.unwrap();
        assert_eq!(test.kv().await, table([("outer", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[transactional(name = "named_frame")]
async fn leaks_its_handle() -> Result<transactional::Tx, Error> {
    transactional::current()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_appears_in_errors() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let tx = Atomic::new()
            .db(test.db.clone())
            .run(leaks_its_handle())
            .await
            .unwrap();
        let err = tx.execute("SELECT 1", ()).await.unwrap_err();
        assert!(err.to_string().contains("`named_frame`"), "{kind:?}: {err}");
    }
}

#[transactional(db = db, retries = 10)]
async fn retried(db: &Database, attempts: &Mutex<u32>) -> Result<(), Error> {
    *attempts.lock().unwrap() += 1;
    insert("retried").await
}

/// Deferred: BEGIN succeeds, the INSERT inside the body meets the lock.
#[transactional(db = db, retries = 10, begin = "deferred")]
async fn retried_body(db: &Database, attempts: &Mutex<u32>) -> Result<(), Error> {
    *attempts.lock().unwrap() += 1;
    insert("retried_body").await
}

#[transactional(db = db)]
async fn not_retried(db: &Database) -> Result<(), Error> {
    insert("not_retried").await
}

/// Another process's connection holds the write lock for a while.
fn hold_write_lock(path: &std::path::Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let conn = transactional::rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(hold);
        conn.execute_batch("COMMIT").unwrap();
    })
}

/// SQLite-only: the transient failure is SQLite's write lock held by another connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retries_rerun_the_transaction_once_the_lock_is_gone() {
    let test = TestDb::new(Kind::File).await;
    let path = test.path.clone().unwrap();
    let db = Database::builder()
        .busy_timeout(Duration::from_millis(20))
        .open(&path)
        .await
        .unwrap();

    let holder = hold_write_lock(&path, Duration::from_millis(150));
    let err = not_retried(&db).await.unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    assert!(err.to_string().contains("busy"), "{err}");

    // Fails at BEGIN IMMEDIATE (20 ms busy timeout) until the other connection commits.
    let attempts = Mutex::new(0);
    retried(&db, &attempts).await.unwrap();
    holder.join().unwrap();

    // Fails inside the body: the body runs again.
    let holder = hold_write_lock(&path, Duration::from_millis(150));
    let body_attempts = Mutex::new(0);
    retried_body(&db, &body_attempts).await.unwrap();
    holder.join().unwrap();
    let body_attempts = *body_attempts.lock().unwrap();
    assert!(body_attempts >= 2, "the body ran {body_attempts} times");

    assert_eq!(
        test.kv().await,
        table([("retried", 1), ("retried_body", 1)])
    );
    test.assert_healthy().await;
}
