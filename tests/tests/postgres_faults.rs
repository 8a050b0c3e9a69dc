//! PostgreSQL only (feature `postgres`, `DATABASE_URL`): what a server does to its clients,
//! against the real server, each test in a schema of its own and bounded in time. A
//! statement the server cancels (`statement_timeout`) or gives up on (`lock_timeout`) inside
//! a savepoint fails that frame only (ARCHITECTURE.md §6) and its parent goes on; two
//! outermost transactions that deadlock on row locks both commit with `retries`; and a
//! transaction dropped at any of its awaits never leaves the next user of its pooled
//! connection inside it. Without `DATABASE_URL` every test returns at once.
#![cfg(feature = "postgres")]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use transactional::{current, transactional, Atomic, Database, Error};
use transactional_tests::postgres::{assert_no_session_in_transaction, one_connection, raw_kv};
use transactional_tests::{bounded, insert, table, TestDb};

async fn pg() -> Option<TestDb> {
    transactional_tests::postgres::only().await
}

/// Writes a row, then runs a statement the server cancels after 50 ms.
#[transactional]
async fn cancelled_by_statement_timeout() -> Result<(), Error> {
    let tx = current()?;
    insert("in the cancelled frame").await?;
    tx.execute_batch("SET LOCAL statement_timeout = '50ms'")
        .await?;
    tx.execute("SELECT pg_sleep(5)", ()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_inside_a_savepoint_fails_that_frame_and_the_parent_goes_on() {
    let Some(test) = pg().await else { return };
    let started = Instant::now();
    Atomic::new()
        .db(test.db.clone())
        .run(async {
            insert("before").await?;
            let err = cancelled_by_statement_timeout()
                .await
                .expect_err("the server cancels the statement");
            assert_eq!(err.sqlstate(), Some("57014"), "{err:?}");
            // The savepoint's rollback also undid its SET LOCAL.
            let timeout: String = current()?
                .query_row("SHOW statement_timeout", ())
                .await?
                .get(0)?;
            assert_eq!(timeout, "0");
            insert("after").await
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "not the 5 s sleep"
    );
    assert_eq!(test.raw_kv().unwrap(), table([("before", 1), ("after", 1)]));
    test.assert_healthy().await;
}

/// Waits at most 50 ms for a row lock that another session holds.
#[transactional]
async fn blocked_by_a_row_lock() -> Result<(), Error> {
    let tx = current()?;
    insert("in the blocked frame").await?;
    tx.execute_batch("SET LOCAL lock_timeout = '50ms'").await?;
    tx.execute("UPDATE kv SET val = val + 1 WHERE key = 'locked'", ())
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeout_inside_a_savepoint_fails_that_frame_and_the_parent_goes_on() {
    let Some(test) = pg().await else { return };
    test.exec("INSERT INTO kv VALUES ('locked', 0)")
        .await
        .unwrap();
    let holder = test.pg.as_ref().unwrap().connect().await;
    holder
        .batch_execute("BEGIN; SELECT * FROM kv WHERE key = 'locked' FOR UPDATE")
        .await
        .unwrap();
    Atomic::new()
        .db(test.db.clone())
        .run(async {
            insert("before").await?;
            let err = blocked_by_a_row_lock()
                .await
                .expect_err("the lock is never granted");
            assert!(matches!(err, Error::Busy { .. }), "{err:?}");
            assert!(err.is_transient(), "a lock given up on is worth a retry");
            assert_eq!(err.sqlstate(), Some("55P03"), "{err:?}");
            insert("after").await
        })
        .await
        .unwrap();
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        test.raw_kv().unwrap(),
        table([("locked", 0), ("before", 1), ("after", 1)])
    );
    test.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_outermost_transactions_that_deadlock_both_commit_with_retries() {
    let Some(test) = pg().await else { return };
    test.exec("INSERT INTO kv VALUES ('a', 0), ('b', 0)")
        .await
        .unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let run = |first_key: &'static str, second_key: &'static str| {
        let (db, attempts, barrier) = (test.db.clone(), attempts.clone(), barrier.clone());
        let first_attempt = Arc::new(AtomicBool::new(true));
        async move {
            Atomic::new()
                .db(db)
                .retries(5)
                .run_retrying(|| {
                    let (attempts, barrier, first_attempt) =
                        (attempts.clone(), barrier.clone(), first_attempt.clone());
                    async move {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        let tx = current()?;
                        // Found within 100 ms instead of the server's default second.
                        tx.execute_batch("SET LOCAL deadlock_timeout = '100ms'")
                            .await?;
                        let bump = "UPDATE kv SET val = val + 1 WHERE key = ?1";
                        tx.execute(bump, (first_key,)).await?;
                        if first_attempt.swap(false, Ordering::SeqCst) {
                            barrier.wait().await; // each holds one row, then wants the other
                        }
                        tx.execute(bump, (second_key,)).await?;
                        Ok::<_, Error>(())
                    }
                })
                .await
        }
    };
    let (one, two) = bounded("two deadlocking transactions", async {
        tokio::join!(run("a", "b"), run("b", "a"))
    })
    .await;
    one.unwrap();
    two.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "exactly one was re-run");
    assert!(test.db.stats().retries >= 1);
    assert_eq!(test.raw_kv().unwrap(), table([("a", 2), ("b", 2)]));
    test.assert_healthy().await;
}

#[transactional]
async fn nested_insert(key: String) -> Result<(), Error> {
    insert(key).await
}

/// A transaction with a savepoint, dropped after `polls` polls (or run to its end).
async fn polled_then_dropped(db: &Database, round: usize, polls: usize) -> bool {
    let run = Atomic::new().db(db.clone()).run(async move {
        insert(format!("{round}:a")).await?;
        nested_insert(format!("{round}:b")).await?;
        tokio::task::yield_now().await;
        insert(format!("{round}:c")).await
    });
    let mut run = pin!(run);
    let mut seen = 0;
    std::future::poll_fn(|cx| match run.as_mut().poll(cx) {
        Poll::Ready(result) => {
            result.unwrap();
            Poll::Ready(true)
        }
        Poll::Pending if seen >= polls => Poll::Ready(false), // dropped here
        Poll::Pending => {
            seen += 1;
            Poll::Pending
        }
    })
    .await
}

/// Dropped at every await in turn — leasing, BEGIN and the first statement, the savepoint's
/// statement, the yield, the last statement, the COMMIT — on a pool of one connection: the
/// next transaction gets that connection outside any transaction (it sees none of the
/// dropped one's rows, and has no transaction id until it writes), and the dropped one left
/// all of its rows or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_dropped_at_any_await_never_leaves_the_next_lease_inside_it() {
    let Some((schema, db)) = one_connection("faults_dropped_at_any_await", |b| {
        b.pool_wait(Duration::from_secs(10))
    })
    .await
    else {
        return;
    };
    for polls in 0.. {
        let round = polls;
        let finished = bounded(
            "the dropped transaction",
            polled_then_dropped(&db, round, polls),
        )
        .await;
        let (txid, seen): (Option<i64>, i64) = bounded(
            "the next lease",
            Atomic::new().db(db.clone()).run(async move {
                let tx = current()?;
                let txid: Option<i64> = tx
                    .query_row("SELECT txid_current_if_assigned()::int8", ())
                    .await?
                    .get(0)?;
                let prefix = format!("{round}:%");
                let seen: i64 = tx
                    .query_row("SELECT count(*) FROM kv WHERE key LIKE ?1", (prefix,))
                    .await?
                    .get(0)?;
                Ok::<_, Error>((txid, seen))
            }),
        )
        .await
        .unwrap();
        assert_eq!(
            txid, None,
            "after {polls} polls: the next lease is inside a transaction"
        );
        let committed = raw_kv(&schema)
            .keys()
            .filter(|k| k.starts_with(&format!("{round}:")))
            .count();
        assert_eq!(seen as usize, committed, "after {polls} polls");
        assert!(
            committed == 0 || committed == 3,
            "after {polls} polls: {committed} of 3 rows"
        );
        if finished {
            assert_eq!(committed, 3);
            eprintln!("dropped at each of {polls} awaits, then ran to its end");
            break;
        }
    }
    assert_no_session_in_transaction(&schema).await;
}
