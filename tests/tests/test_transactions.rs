//! `test_transaction`: a body runs in a transaction that always rolls back, with its
//! `on_commit` hooks captured; inside, nested fns and task groups behave as in production.
//! On every backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use transactional::{atomic, current, on_commit, test_transaction, Error, TaskGroup};
use transactional_tests::{count_kv, insert, table, TestDb, KINDS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_transaction_leaves_no_trace_and_captures_its_commit_hooks() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let hook = |ran: &Arc<AtomicUsize>| {
            let ran = ran.clone();
            move || {
                ran.fetch_add(1, Ordering::SeqCst);
            }
        };
        let mut outcome = test_transaction(&test.db, async {
            insert("root").await?;
            on_commit(hook(&ran))?;
            // Concurrent nested fns: savepoints in turn, as in production.
            let mut group = TaskGroup::new();
            for i in 0..8 {
                let hook = hook(&ran);
                group.spawn(atomic(async move {
                    insert(format!("child{i}")).await?;
                    on_commit(hook)?;
                    Ok::<_, Error>(())
                }));
            }
            group.join_all().await?;
            // A failing savepoint rolls back alone, and its hook is dropped.
            let failed = atomic(async {
                insert("failed").await?;
                on_commit(hook(&ran))?;
                Err::<(), _>(Error::Unsupported("fails on purpose".into()))
            })
            .await;
            assert!(failed.is_err());
            assert_eq!(current()?.depth(), 0);
            count_kv().await
        })
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(outcome.value, 9, "{kind:?}: the rows were there inside");
        assert_eq!(outcome.on_commit.len(), 9, "{kind:?}: root + 8 children");
        assert_eq!(ran.load(Ordering::SeqCst), 0, "{kind:?}: captured, not run");
        outcome.run_on_commit();
        assert_eq!(ran.load(Ordering::SeqCst), 9, "{kind:?}");
        assert_eq!(test.kv().await, table([]), "{kind:?}: no trace");
        if let Some(raw) = test.raw_kv() {
            assert_eq!(raw, table([]), "{kind:?}");
        }
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_body_returns_its_own_error() {
    #[derive(Debug)]
    enum AppError {
        Db(#[allow(dead_code)] Error), // read through Debug
        NotFound,
    }
    impl From<Error> for AppError {
        fn from(e: Error) -> Self {
            AppError::Db(e)
        }
    }
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let result = test_transaction(&test.db, async {
            insert("x").await?;
            Err::<(), _>(AppError::NotFound)
        })
        .await;
        assert!(
            matches!(result, Err(AppError::NotFound)),
            "{kind:?}: {result:?}"
        );
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        test.assert_healthy().await;
    }
}
