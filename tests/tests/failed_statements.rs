//! ARCHITECTURE.md §6, the same on every backend: a statement the database rejects fails its frame.
//! PostgreSQL refuses every later statement of the transaction until the frame rolls back,
//! and answers a later `COMMIT` with a silent rollback; so on SQLite too the failed frame
//! refuses further statements with `FrameFailed`, rolls back when it ends, and never reports
//! `Ok` for work it did not commit. A nested frame (a savepoint) contains the failure.
//! Errors raised before anything reached the database (parameter count, a conversion, no
//! rows, refused transaction control) do not fail the frame.

use transactional::{atomic, current, Atomic, Error};
use transactional_tests::{insert, table, TestDb, KINDS};

const DUPLICATE: &str = "INSERT INTO kv(key, val) VALUES ('a', 2)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swallowed_failure_rolls_the_root_back_and_is_reported() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let result = Atomic::new()
            .db(test.db.clone())
            .run(async {
                insert("a").await?;
                let failed = current()?.execute(DUPLICATE, ()).await;
                assert!(failed.is_err(), "{kind:?}: the duplicate key is rejected");
                Ok::<_, Error>(()) // the body swallows the failure
            })
            .await;
        let err = result.expect_err("never Ok for work that was rolled back");
        assert!(
            matches!(&err, Error::FrameFailed { cause, .. } if cause.to_lowercase().contains("unique") || cause.to_lowercase().contains("duplicate")),
            "{kind:?}: {err}"
        );
        assert_eq!(test.kv().await, table([]), "{kind:?}: nothing committed");
        if let Some(raw) = test.raw_kv() {
            assert_eq!(raw, table([]), "{kind:?}");
        }
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_frame_refuses_further_statements_and_savepoints_naming_the_cause() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let result = Atomic::new()
            .db(test.db.clone())
            .run(async {
                insert("a").await?;
                let tx = current()?;
                assert!(tx.execute(DUPLICATE, ()).await.is_err());
                let next = tx.query_row("SELECT count(*) FROM kv", ()).await;
                let Err(Error::FrameFailed { cause, .. }) = &next else {
                    panic!("{kind:?}: a statement after the failure: {next:?}")
                };
                assert!(!cause.is_empty());
                let nested = atomic(async { insert("b").await }).await;
                assert!(
                    matches!(nested, Err(Error::FrameFailed { .. })),
                    "{kind:?}: a savepoint under a failed frame: {nested:?}"
                );
                next.map(drop)
            })
            .await;
        assert!(
            matches!(result, Err(Error::FrameFailed { .. })),
            "{kind:?}: {result:?}"
        );
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_contains_a_failure_and_the_transaction_goes_on() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                insert("a").await?;
                let contained = atomic(async {
                    insert("rolled_back").await?;
                    current()?.execute(DUPLICATE, ()).await
                })
                .await;
                assert!(contained.is_err(), "{kind:?}");
                // The nested frame swallowed nothing: it returned the error. Even one that
                // swallows it is contained, and reports FrameFailed to its caller.
                let swallowed = atomic(async {
                    insert("rolled_back_too").await?;
                    let _ = current()?.execute(DUPLICATE, ()).await;
                    Ok::<_, Error>(())
                })
                .await;
                assert!(
                    matches!(swallowed, Err(Error::FrameFailed { .. })),
                    "{kind:?}: {swallowed:?}"
                );
                insert("after").await
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(test.kv().await, table([("a", 1), ("after", 1)]), "{kind:?}");
        if let Some(raw) = test.raw_kv() {
            assert_eq!(raw, table([("a", 1), ("after", 1)]), "{kind:?}");
        }
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_errors_and_refused_control_do_not_fail_the_frame() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                let tx = current()?;
                let count = tx
                    .execute("INSERT INTO kv(key, val) VALUES (?1, ?2)", ("x",))
                    .await;
                assert!(
                    matches!(
                        count,
                        Err(Error::ParameterCount {
                            expected: 2,
                            given: 1,
                            ..
                        })
                    ),
                    "{kind:?}: {count:?}"
                );
                let none = tx
                    .query_row("SELECT key FROM kv WHERE key = 'none'", ())
                    .await;
                assert!(
                    matches!(none, Err(Error::NoRows { .. })),
                    "{kind:?}: {none:?}"
                );
                let range = tx
                    .execute("INSERT INTO kv(key, val) VALUES ('big', ?1)", (u64::MAX,))
                    .await;
                assert!(
                    matches!(range, Err(Error::Parameter { index: 1, .. })),
                    "{kind:?}: {range:?}"
                );
                for control in ["COMMIT", "ROLLBACK", "BEGIN", "SAVEPOINT x", "RELEASE x"] {
                    let refused = tx.execute_batch(control).await;
                    assert!(
                        matches!(refused, Err(Error::Forbidden { .. })),
                        "{kind:?} {control}: {refused:?}"
                    );
                }
                let row = tx.query_row("SELECT 'text' AS t", ()).await?;
                assert!(matches!(row.get::<i64>(0), Err(Error::Conversion { .. })));
                insert("kept").await
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(test.kv().await, table([("kept", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_a_read_only_frame_is_refused_by_the_database() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        insert_committed(&test, "a").await;
        let result = Atomic::new()
            .db(test.db.clone())
            .read_only(true)
            .run(async { insert("b").await })
            .await;
        assert!(
            matches!(result, Err(Error::ReadOnly)),
            "{kind:?}: {result:?}"
        );
        // A read-only savepoint in a transaction that writes: refused inside, and the
        // transaction still writes afterwards.
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                let inner = Atomic::new()
                    .read_only(true)
                    .run(async { insert("c").await })
                    .await;
                assert!(matches!(inner, Err(Error::ReadOnly)), "{kind:?}: {inner:?}");
                insert("d").await
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(test.kv().await, table([("a", 1), ("d", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}

async fn insert_committed(test: &TestDb, key: &str) {
    let key = key.to_owned();
    Atomic::new()
        .db(test.db.clone())
        .run(async move { insert(&key).await })
        .await
        .unwrap();
}
