//! PostgreSQL only (feature `postgres`, `DATABASE_URL`): what SQLite cannot have — outermost
//! transactions in parallel on pooled connections, `requires_new` on a second connection,
//! pool exhaustion, isolation levels and serialization retries, and a broken connection that
//! is never reused. Without `DATABASE_URL` every test returns at once.
#![cfg(feature = "postgres")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use transactional::{current, Atomic, Database, Error, Isolation, Propagation};
use transactional_tests::postgres::PgTestDb;
use transactional_tests::{insert, table, TestDb};

async fn pg() -> Option<TestDb> {
    transactional_tests::postgres::only().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outermost_transactions_run_in_parallel_on_pooled_connections() {
    let Some(test) = pg().await else { return };
    let both_inside = Arc::new(tokio::sync::Barrier::new(2));
    let run = |key: &'static str| {
        let db = test.db.clone();
        let barrier = both_inside.clone();
        async move {
            Atomic::new()
                .db(db)
                .run(async move {
                    insert(key).await?;
                    // Both transactions are open at once: on SQLite the second would wait
                    // for the writer, and this barrier would never open.
                    tokio::time::timeout(Duration::from_secs(5), barrier.wait())
                        .await
                        .expect("the other transaction runs in parallel");
                    let pid: i32 = current()?
                        .query_row("SELECT pg_backend_pid()", ())
                        .await?
                        .get(0)?;
                    Ok::<_, Error>(pid)
                })
                .await
        }
    };
    let (a, b) = tokio::join!(run("a"), run("b"));
    assert_ne!(a.unwrap(), b.unwrap(), "two connections");
    assert_eq!(test.raw_kv().unwrap(), table([("a", 1), ("b", 1)]));
    test.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_new_commits_on_a_second_connection_whatever_the_outer_does() {
    let Some(test) = pg().await else { return };
    let result = Atomic::new()
        .db(test.db.clone())
        .run(async {
            insert("outer").await?;
            Atomic::new()
                .propagation(Propagation::RequiresNew)
                .run(async { insert("independent").await })
                .await?;
            Err::<(), _>(Error::NoRows {
                sql: "the outer fails".into(),
            })
        })
        .await;
    assert!(result.is_err());
    assert_eq!(test.raw_kv().unwrap(), table([("independent", 1)]));
    test.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_fails_within_its_wait_naming_the_holder() {
    let Some(schema) = PgTestDb::new("pool_exhausted").await else {
        return;
    };
    let db = Database::postgres("postgres://test")
        .config(schema.config())
        .pool_size(1)
        .pool_wait(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let result = Atomic::new()
        .db(db.clone())
        .name("holder")
        .run(async {
            Atomic::new()
                .propagation(Propagation::RequiresNew)
                .run(async { current()?.execute("SELECT 1", ()).await })
                .await
        })
        .await;
    let err = result.expect_err("one connection, two transactions");
    assert!(started.elapsed() < Duration::from_secs(5), "a bounded wait");
    let Error::Busy { detail, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        detail.contains("`holder`") && detail.contains("pool_wait"),
        "{detail}"
    );
    // The pool is whole again: the next transaction gets the connection.
    Atomic::new()
        .db(db)
        .run(async { current()?.execute("SELECT 1", ()).await })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_and_read_only_reach_the_server() {
    let Some(test) = pg().await else { return };
    let (level, ro): (String, String) = Atomic::new()
        .db(test.db.clone())
        .isolation(Isolation::Serializable)
        .read_only(true)
        .run(async {
            let tx = current()?;
            let level = tx
                .query_row("SHOW transaction_isolation", ())
                .await?
                .get(0)?;
            let ro = tx
                .query_row("SHOW transaction_read_only", ())
                .await?
                .get(0)?;
            Ok::<_, Error>((level, ro))
        })
        .await
        .unwrap();
    assert_eq!((level.as_str(), ro.as_str()), ("serializable", "on"));
    let level: String = Atomic::new()
        .db(test.db.clone())
        .isolation(Isolation::RepeatableRead)
        .run(async {
            current()?
                .query_row("SHOW transaction_isolation", ())
                .await?
                .get(0)
        })
        .await
        .unwrap();
    assert_eq!(level, "repeatable read");
}

/// Two serializable transactions that each read what the other writes: one fails with
/// 40001 at a statement or at COMMIT, and `retries` re-runs it until both are in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialization_failures_are_retried() {
    let Some(test) = pg().await else { return };
    test.exec("INSERT INTO kv VALUES ('x', 0), ('y', 0)")
        .await
        .unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let run = |read: &'static str, write: &'static str| {
        let (db, attempts, barrier) = (test.db.clone(), attempts.clone(), barrier.clone());
        async move {
            let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
            Atomic::new()
                .db(db)
                .isolation(Isolation::Serializable)
                .retries(10)
                .run_retrying(|| {
                    let (attempts, barrier, first) =
                        (attempts.clone(), barrier.clone(), first.clone());
                    async move {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        let tx = current()?;
                        let seen: i64 = tx
                            .query_row("SELECT sum(val) FROM kv WHERE key = ?1", (read,))
                            .await?
                            .get(0)?;
                        if first.swap(false, Ordering::SeqCst) {
                            barrier.wait().await; // both have read before either writes
                        }
                        tx.execute("UPDATE kv SET val = ?2 + 1 WHERE key = ?1", (write, seen))
                            .await?;
                        Ok::<_, Error>(())
                    }
                })
                .await
        }
    };
    let (a, b) = tokio::join!(run("x", "y"), run("y", "x"));
    a.unwrap();
    b.unwrap();
    assert!(
        attempts.load(Ordering::SeqCst) > 2,
        "one of them was re-run"
    );
    let kv = test.raw_kv().unwrap();
    assert!(
        kv == table([("x", 1), ("y", 2)]) || kv == table([("x", 2), ("y", 1)]),
        "serial: {kv:?}"
    );
    test.assert_healthy().await;
}

/// A connection whose server session was terminated mid-transaction: the transaction fails
/// with a connection error, nothing of it is committed, and later transactions get a live
/// connection (the dead one is never handed out again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_connection_is_never_reused() {
    let Some(test) = pg().await else { return };
    let observer = test.pg.as_ref().unwrap().connect().await;
    let result = Atomic::new()
        .db(test.db.clone())
        .run(async {
            insert("lost").await?;
            let pid: i32 = current()?
                .query_row("SELECT pg_backend_pid()", ())
                .await?
                .get(0)?;
            observer
                .execute("SELECT pg_terminate_backend($1, 5000)", &[&pid])
                .await
                .unwrap();
            insert("after_kill").await
        })
        .await;
    let err = result.expect_err("the connection is gone");
    assert!(
        matches!(err, Error::Postgres(_) | Error::TransactionClosed(_)),
        "{err:?}"
    );
    for i in 0..5 {
        Atomic::new()
            .db(test.db.clone())
            .run(async move { insert(format!("k{i}")).await })
            .await
            .unwrap_or_else(|e| panic!("transaction {i} after the kill: {e}"));
    }
    assert_eq!(
        test.raw_kv().unwrap().len(),
        5,
        "nothing of the killed transaction"
    );
    test.assert_healthy().await;
}

/// A transaction dropped while its statement runs on the server: nothing is committed and
/// the connection goes back to the pool outside any transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_dropped_mid_statement_leaves_nothing_behind() {
    let Some(test) = pg().await else { return };
    let run = Atomic::new().db(test.db.clone()).run(async {
        insert("dropped").await?;
        current()?.execute("SELECT pg_sleep(0.3)", ()).await?;
        insert("never").await
    });
    assert!(tokio::time::timeout(Duration::from_millis(100), run)
        .await
        .is_err());
    test.assert_healthy().await;
    assert_eq!(test.raw_kv().unwrap(), table([]));
}

/// `Tx::postgres`: the transaction's own client, inside the library's rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_client_sees_the_transaction_and_keeps_its_rules() {
    let Some(test) = pg().await else { return };
    // It runs in the transaction: it sees the frame's uncommitted row.
    let seen: i64 = Atomic::new()
        .db(test.db.clone())
        .run(async {
            insert("a").await?;
            current()?
                .postgres(|client| {
                    Box::pin(async move {
                        let row = client.query_one("SELECT count(*) FROM kv", &[]).await?;
                        Ok(row.get::<_, i64>(0))
                    })
                })
                .await
        })
        .await
        .unwrap();
    assert_eq!(seen, 1);
    // A failure the closure swallows still fails the frame: never a silent rollback at
    // COMMIT reported as Ok.
    let swallowed = Atomic::new()
        .db(test.db.clone())
        .run(async {
            insert("b").await?;
            current()?
                .postgres(|client| {
                    Box::pin(async move {
                        let _ = client.batch_execute("INSERT INTO kv VALUES ('a', 1)").await;
                        Ok(())
                    })
                })
                .await
        })
        .await;
    assert!(swallowed.is_err(), "{swallowed:?}");
    // Ending the transaction from the closure is refused and aborts the transaction.
    let ended = Atomic::new()
        .db(test.db.clone())
        .run(async {
            let tx = current()?;
            let result = tx
                .postgres(|client| Box::pin(async move { client.batch_execute("ROLLBACK").await }))
                .await;
            assert!(matches!(result, Err(Error::Forbidden { .. })), "{result:?}");
            insert("c").await
        })
        .await;
    assert!(ended.is_err(), "{ended:?}");
    assert_eq!(test.raw_kv().unwrap(), table([("a", 1)]));
    test.assert_healthy().await;
}

/// A lock another transaction holds, given up on (`NOWAIT`, `lock_timeout`), is `Busy` as on
/// SQLite: transient, with the server's report kept as its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_given_up_on_is_busy_and_transient() {
    let Some(test) = pg().await else { return };
    test.exec("INSERT INTO kv VALUES ('x', 1)").await.unwrap();
    let holder = test.pg.as_ref().unwrap().connect().await;
    holder
        .batch_execute("BEGIN; SELECT * FROM kv WHERE key = 'x' FOR UPDATE")
        .await
        .unwrap();
    let result = Atomic::new()
        .db(test.db.clone())
        .run(async {
            current()?
                .query("SELECT * FROM kv WHERE key = 'x' FOR UPDATE NOWAIT", ())
                .await
        })
        .await;
    let err = result.expect_err("the row is locked");
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.sqlstate(), Some("55P03"));
    holder.batch_execute("ROLLBACK").await.unwrap();
    test.assert_healthy().await;
}
