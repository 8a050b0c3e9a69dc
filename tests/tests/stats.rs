//! `Database::stats()` on every backend: frame ends, retries, contended and timed-out waits,
//! deadlocks, and the waits in progress.

use std::time::Duration;

use std::sync::atomic::{AtomicU32, Ordering};

use transactional::{atomic, current, transactional, Atomic, Database, Error};
use transactional_tests::{insert, TestDb, KINDS};

/// Fails with a transient error on its first attempt.
#[transactional(db = db, retries = 3)]
async fn flaky_once(db: &Database, attempts: &AtomicU32) -> Result<(), Error> {
    if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(Error::Busy {
            detail: "transient on purpose".into(),
            source: None,
        });
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_ends_and_retries_are_counted() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let before = test.db.stats();
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                atomic(async { insert("a").await }).await?;
                let _ = atomic(async {
                    insert("b").await?;
                    Err::<(), _>(Error::Unsupported("rolls back".into()))
                })
                .await;
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
        let _ = Atomic::new()
            .db(test.db.clone())
            .run(async { Err::<(), _>(Error::Unsupported("rolls back".into())) })
            .await;
        let attempts = AtomicU32::new(0);
        flaky_once(&test.db, &attempts).await.unwrap();
        assert_eq!(attempts.load(Ordering::SeqCst), 2, "{kind:?}");
        let after = test.db.stats();
        assert_eq!(
            after.transactions_committed - before.transactions_committed,
            2,
            "{kind:?}"
        );
        assert_eq!(
            after.transactions_rolled_back - before.transactions_rolled_back,
            2,
            "{kind:?}"
        );
        assert_eq!(
            after.savepoints_released - before.savepoints_released,
            1,
            "{kind:?}"
        );
        assert_eq!(
            after.savepoints_rolled_back - before.savepoints_rolled_back,
            1,
            "{kind:?}"
        );
        assert_eq!(after.retries - before.retries, 1, "{kind:?}");
        assert!(
            after
                .to_string()
                .contains(&format!("{} committed", after.transactions_committed)),
            "{kind:?}: {after}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_in_progress_timed_out_and_deadlocks_are_counted() {
    for kind in KINDS {
        let test = TestDb::with_builder(
            kind,
            Database::builder().turn_wait(Duration::from_millis(300)),
        )
        .await;
        let db = test.db.clone();
        let observer = test.db.clone();
        Atomic::new()
            .db(db)
            .run(async move {
                let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
                let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<()>();
                // A savepoint that holds the root's turn until told to end...
                let holder = transactional::spawn(atomic(async move {
                    let _ = opened_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, Error>(())
                }));
                opened_rx.await.unwrap();
                // ...so this statement of the root waits for the turn.
                let waiter = transactional::spawn(async { insert("waited").await });
                let mut seen = None;
                for _ in 0..100 {
                    let stats = observer.stats();
                    if stats.waiting_for_turn == 1 {
                        seen = Some(stats);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let seen = seen.unwrap_or_else(|| panic!("{kind:?}: no wait seen in progress"));
                assert!(seen.longest_current_wait.is_some(), "{kind:?}");
                let _ = release_tx.send(());
                holder.await.unwrap()?;
                waiter.await.unwrap()?;
                // A handle to the root used from inside a savepoint: a deadlock, reported.
                let root = current()?;
                let deadlock = atomic(async move { root.execute("SELECT 1", ()).await }).await;
                assert!(matches!(deadlock, Err(Error::Deadlock(_))), "{deadlock:?}");
                Ok::<_, Error>(())
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        // A wait that runs out: a savepoint never gives the turn back within turn_wait.
        let result = Atomic::new()
            .db(test.db.clone())
            .run(async {
                let (_keep, held) = tokio::sync::oneshot::channel::<()>();
                let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<()>();
                let holder = transactional::spawn(atomic(async move {
                    let _ = opened_tx.send(());
                    let _ = held.await;
                    Ok::<_, Error>(())
                }));
                opened_rx.await.unwrap();
                let waited = insert("late").await;
                holder.abort();
                waited
            })
            .await;
        assert!(
            matches!(result, Err(Error::Busy { .. })),
            "{kind:?}: {result:?}"
        );
        let stats = test.db.stats();
        assert!(stats.contended_waits >= 2, "{kind:?}: {stats}");
        assert_eq!(stats.waits_timed_out, 1, "{kind:?}: {stats}");
        assert_eq!(stats.deadlocks, 1, "{kind:?}: {stats}");
        assert!(stats.wait_histogram.total() >= 2, "{kind:?}: {stats}");
        assert_eq!(stats.waiting_for_turn, 0, "{kind:?}: {stats}");
    }
}
