//! `Database::execute_batch`: one-off statements in a transaction of their own, all or
//! nothing. Conformance: every kind of `KINDS`.

use transactional::{Atomic, Error};
use transactional_tests::{bounded, table, TestDb, KINDS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_commits_all_or_nothing() {
    for kind in KINDS {
        let t = TestDb::new(kind).await;
        t.db.execute_batch("INSERT INTO kv VALUES ('a', 1); INSERT INTO kv VALUES ('b', 2)")
            .await
            .unwrap();
        assert_eq!(t.kv().await, table([("a", 1), ("b", 2)]), "{kind:?}");
        // The second statement fails: the first one's row is rolled back with it.
        let err =
            t.db.execute_batch("INSERT INTO kv VALUES ('c', 3); INSERT INTO kv VALUES ('a', 9)")
                .await
                .unwrap_err();
        assert!(err.to_string().contains("kv"), "{kind:?}: {err}");
        assert_eq!(t.kv().await, table([("a", 1), ("b", 2)]), "{kind:?}");
        // Transaction control stays with the library.
        let refused = t.db.execute_batch("COMMIT").await.unwrap_err();
        assert!(
            matches!(refused, Error::Forbidden { .. }),
            "{kind:?}: {refused:?}"
        );
        t.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_inside_a_transaction_is_a_transaction_of_its_own() {
    for kind in KINDS {
        let t = TestDb::new(kind).await;
        let db = t.db.clone();
        let inner = bounded(
            "a batch inside a transaction",
            Atomic::new().db(t.db.clone()).run(async move {
                let inner = db.execute_batch("INSERT INTO kv VALUES ('own', 1)").await;
                transactional_tests::insert("outer").await?;
                Ok::<_, Error>(inner)
            }),
        )
        .await
        .unwrap();
        if kind.is_sqlite() {
            // SQLite has one writer: its own transaction would wait for the outer one.
            let err = inner.unwrap_err();
            assert!(err.to_string().contains("one writer"), "{kind:?}: {err}");
            assert_eq!(t.kv().await, table([("outer", 1)]), "{kind:?}");
        } else {
            inner.unwrap();
            assert_eq!(t.kv().await, table([("outer", 1), ("own", 1)]), "{kind:?}");
        }
    }
}
