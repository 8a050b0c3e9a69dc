//! PostgreSQL only (feature `postgres`, `DATABASE_URL`): what a transaction costs in round
//! trips, read from `Database::stats().round_trips`. BEGIN, SAVEPOINT and RELEASE travel
//! with the statements around them, so a nested call with one statement is one round trip,
//! and a frame that ran nothing costs none; a connection back from an answered COMMIT or
//! ROLLBACK a moment ago is handed out again without the pool's check (ARCHITECTURE.md §5).
//! Without `DATABASE_URL` every test returns at once.
#![cfg(feature = "postgres")]

use std::time::{Duration, Instant};

use transactional::{current, transactional, Atomic, Database, Error, TaskGroup};
use transactional_tests::postgres::one_connection;
use transactional_tests::{insert, table, TestDb};

async fn pg() -> Option<TestDb> {
    transactional_tests::postgres::only().await
}

fn round_trips(db: &Database) -> u64 {
    db.stats().round_trips
}

#[transactional]
async fn nested_insert(key: String) -> Result<(), Error> {
    insert(key).await
}

#[transactional]
async fn nested_nothing() -> Result<(), Error> {
    Ok(())
}

#[transactional]
async fn nested_with_an_empty_child(key: String) -> Result<(), Error> {
    nested_nothing().await?;
    insert(key).await?;
    nested_nothing().await
}

#[transactional]
async fn nested_failing(key: String) -> Result<(), Error> {
    insert(key).await?;
    Err(Error::Unsupported("fails on purpose".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_call_is_one_round_trip_and_an_empty_frame_none() {
    let Some(test) = pg().await else { return };
    let db = test.db.clone();
    let db2 = db.clone();
    Atomic::new()
        .db(db.clone())
        .run(async move {
            // BEGIN goes out with this first statement, which also prepares the INSERT on
            // this connection.
            insert("warm").await?;
            let before = round_trips(&db2);
            for i in 0..10 {
                nested_insert(format!("n{i}")).await?;
            }
            assert_eq!(round_trips(&db2) - before, 10, "one per nested call");

            let before = round_trips(&db2);
            for _ in 0..10 {
                nested_nothing().await?;
            }
            assert_eq!(round_trips(&db2) - before, 0, "frames that ran nothing");

            // The empty children add nothing; the RELEASE of the last nested call goes out
            // with this one's SAVEPOINT and statement.
            let before = round_trips(&db2);
            nested_with_an_empty_child("e".into()).await?;
            assert_eq!(
                round_trips(&db2) - before,
                1,
                "empty children inside a call"
            );

            // A call that rolls back: its statement, then its ROLLBACK TO (awaited, so that
            // a failure to roll back is seen at once).
            let before = round_trips(&db2);
            assert!(nested_failing("gone".into()).await.is_err());
            assert_eq!(round_trips(&db2) - before, 2, "a call that rolls back");

            // Children of a task group, one after another in turn: one round trip each.
            let before = round_trips(&db2);
            let mut group: TaskGroup<(), Error> = TaskGroup::new();
            for i in 0..20 {
                group.spawn(nested_insert(format!("g{i:02}")));
            }
            group.join_all().await?;
            assert_eq!(round_trips(&db2) - before, 20, "task group children");
            Ok::<_, Error>(())
        })
        .await
        .unwrap();

    let mut expected: Vec<String> = vec!["warm".into(), "e".into()];
    expected.extend((0..10).map(|i| format!("n{i}")));
    expected.extend((0..20).map(|i| format!("g{i:02}")));
    assert_eq!(
        test.raw_kv().unwrap(),
        table(expected.iter().map(|k| (k.as_str(), 1)))
    );
    test.assert_healthy().await;
}

/// Runs one outermost transaction; the round trips it cost, and whether it ended within
/// 300 ms of `since` (the end of the transaction before it), which then becomes its own end.
/// The pool skips its check only for a connection back within 500 ms: a slower machine does
/// not get to assert the exact count.
async fn counted<F, T>(db: &Database, since: &mut Instant, run: impl FnOnce() -> F) -> (u64, bool)
where
    F: std::future::Future<Output = Result<T, Error>>,
{
    let before = round_trips(db);
    let _ = run().await;
    let quick = since.elapsed() < Duration::from_millis(300);
    *since = Instant::now();
    (round_trips(db) - before, quick)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outermost_transaction_is_its_statements_and_its_commit() {
    let Some(test) = pg().await else { return };
    let db = test.db.clone();
    // Warm every connection the pool has opened so far: INSERT prepared.
    Atomic::new()
        .db(db.clone())
        .run(insert("warm"))
        .await
        .unwrap();
    let mut since = Instant::now();

    // The statement with BEGIN ahead of it, and the COMMIT (the connection came back from
    // an answered COMMIT a moment ago: no check).
    let (trips, quick) = counted(&db, &mut since, || {
        Atomic::new().db(db.clone()).run(insert("one"))
    })
    .await;
    if quick {
        assert_eq!(trips, 2);
    }

    // Nothing sent: no BEGIN, no COMMIT, no check.
    let (trips, quick) = counted(&db, &mut since, || {
        Atomic::new()
            .db(db.clone())
            .run(async { Ok::<_, Error>(()) })
    })
    .await;
    if quick {
        assert_eq!(trips, 0);
    }
    let (trips, quick) = counted(&db, &mut since, || {
        Atomic::new()
            .db(db.clone())
            .run(async { Err::<(), _>(Error::Unsupported("nothing to undo".into())) })
    })
    .await;
    if quick {
        assert_eq!(trips, 0);
    }

    // The transaction still runs on the server as one: a second connection does not see
    // the first statement before the COMMIT.
    let db2 = db.clone();
    Atomic::new()
        .db(db.clone())
        .run(async move {
            insert("later").await?;
            let seen = Atomic::new()
                .db(db2)
                .propagation(transactional::Propagation::RequiresNew)
                .run(async {
                    let n: i64 = current()?
                        .query_row("SELECT count(*) FROM kv WHERE key = 'later'", ())
                        .await?
                        .get(0)?;
                    Ok::<_, Error>(n)
                })
                .await?;
            assert_eq!(seen, 0, "the uncommitted row is not visible elsewhere");
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(
        test.raw_kv().unwrap(),
        table([("warm", 1), ("one", 1), ("later", 1)])
    );
    test.assert_healthy().await;
}

/// A connection back from an answered COMMIT or ROLLBACK a moment ago skips the pool's
/// check — also after a transaction dropped mid-flight, which the library rolls back itself
/// — and one that sat idle past the window is checked. (One given back any other way, inside
/// a transaction, is checked and refused: `pool.rs`'s own tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_checked_unless_it_just_came_back_from_an_answered_end() {
    let Some((schema, db)) = one_connection("round_trips_check", |b| b).await else {
        return;
    };
    Atomic::new()
        .db(db.clone())
        .run(insert("warm"))
        .await
        .unwrap();
    let mut since = Instant::now();
    let (trips, quick) = counted(&db, &mut since, || {
        Atomic::new().db(db.clone()).run(insert("a"))
    })
    .await;
    if quick {
        assert_eq!(trips, 2, "back from a COMMIT: no check");
    }

    // Dropped after its statement, before its end: rolled back by the library (an answered
    // ROLLBACK, from a cleanup task).
    let (sent_tx, sent) = tokio::sync::oneshot::channel();
    let abandoned = Atomic::new().db(db.clone()).run(async move {
        insert("abandoned").await?;
        let _ = sent_tx.send(());
        std::future::pending::<()>().await;
        Ok::<_, Error>(())
    });
    tokio::select! {
        _ = abandoned => unreachable!("it never ends by itself"),
        _ = sent => {}
    }
    since = Instant::now(); // its ROLLBACK comes after this
    transactional_tests::postgres::assert_no_session_in_transaction(&schema).await;
    let (trips, quick) = counted(&db, &mut since, || {
        Atomic::new().db(db.clone()).run(insert("b"))
    })
    .await;
    if quick {
        assert_eq!(trips, 2, "back from the cleanup's ROLLBACK: no check");
    }

    tokio::time::sleep(Duration::from_millis(600)).await;
    let (trips, _) = counted(&db, &mut since, || {
        Atomic::new().db(db.clone()).run(insert("c"))
    })
    .await;
    assert_eq!(trips, 3, "idle past the window: checked");

    let kv = transactional_tests::postgres::raw_kv(&schema);
    assert_eq!(kv, table([("warm", 1), ("a", 1), ("b", 1), ("c", 1)]));
    transactional_tests::postgres::assert_no_session_in_transaction(&schema).await;
}
