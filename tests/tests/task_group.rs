//! `TaskGroup`: results in spawn order, `join_next`, the first error cancelling the rest,
//! and a dropped group aborting its children (whose savepoints roll back).
//!
//! Conformance: every test runs on every kind of `KINDS`.

use std::time::Duration;

use transactional::{transactional, Atomic, Error, TaskGroup};
use transactional_tests::{insert, table, TestDb, KINDS};

#[transactional]
async fn put_after(key: &'static str, delay_ms: u64) -> Result<&'static str, Error> {
    insert(key.to_owned()).await?;
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    Ok(key)
}

#[transactional]
async fn fail_after(
    delay_ms: u64,
    holding: tokio::sync::oneshot::Sender<()>,
) -> Result<&'static str, Error> {
    insert("failing".to_owned()).await?;
    let _ = holding.send(()); // this savepoint holds the turn now
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    Err(Error::Unsupported("child fails".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_all_returns_values_in_spawn_order_and_join_next_as_they_finish() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                let mut group = TaskGroup::new();
                // Savepoints are taken in turn, so the finishing order is the turn order; the
                // result order must still be the spawn order.
                group.spawn(put_after("slow", 30));
                group.spawn(put_after("fast", 0));
                assert_eq!(group.len(), 2);
                assert_eq!(group.join_all().await?, ["slow", "fast"]);

                let mut group = TaskGroup::new();
                group.spawn(put_after("one", 0));
                group.spawn(put_after("two", 0));
                let mut seen = Vec::new();
                while let Some(result) = group.join_next().await {
                    seen.push(result?);
                }
                seen.sort();
                assert_eq!(seen, ["one", "two"]);
                assert!(group.is_empty());
                Ok::<_, Error>(())
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(
            test.kv().await,
            table([("fast", 1), ("one", 1), ("slow", 1), ("two", 1)]),
            "{kind:?}"
        );
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_error_cancels_the_rest_and_waits_for_their_rollback() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                let mut group = TaskGroup::new();
                let (holding, held) = tokio::sync::oneshot::channel();
                group.spawn(fail_after(5, holding));
                group.spawn(async move {
                    let _ = held.await; // queue behind the failing child
                    put_after("cancelled", 10_000).await // would run for 10 s
                });
                let started = std::time::Instant::now();
                let err = group.join_all().await.unwrap_err();
                assert!(matches!(err, Error::Unsupported(_)), "{err}");
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "the slow child was cancelled"
                );
                // By now the cancelled child's savepoint has rolled back: the frame is free.
                insert("parent".to_owned()).await
            })
            .await
            .unwrap();
        assert_eq!(test.kv().await, table([("parent", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_group_aborts_its_children_and_rolls_them_back() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                let mut group: TaskGroup<&'static str> = TaskGroup::new();
                group.spawn(put_after("dropped1", 10_000));
                group.spawn(put_after("dropped2", 10_000));
                tokio::time::sleep(Duration::from_millis(20)).await; // one holds the turn
                drop(group);
                // Waits until the aborted child has rolled back and released the turn.
                insert("parent".to_owned()).await
            })
            .await
            .unwrap();
        assert_eq!(test.kv().await, table([("parent", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}
