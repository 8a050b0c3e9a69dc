//! Rollback control on every backend: `set_rollback_only()` / `is_rollback_only()` scoped to
//! the frame they run in, and `on_rollback` hooks that follow the frame's work.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use transactional::{
    atomic, current, is_rollback_only, on_commit, on_rollback, set_rollback_only, Atomic, Error,
    Propagation,
};
use transactional_tests::{insert, table, TestDb, KINDS};

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::default()
}

fn note(log: &Log, what: &str) -> impl FnOnce() + Send + 'static {
    let (log, what) = (log.clone(), what.to_owned());
    move || log.lock().unwrap().push(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_marked_rollback_only_rolls_back_and_says_so() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let hooks = log();
        let result = Atomic::new()
            .db(test.db.clone())
            .run(async {
                insert("a").await?;
                assert!(!is_rollback_only()?);
                on_commit(note(&hooks, "commit"))?;
                on_rollback(note(&hooks, "rollback"))?;
                set_rollback_only()?;
                assert!(is_rollback_only()?);
                insert("b").await // statements still run in a marked frame
            })
            .await;
        assert!(
            matches!(result, Err(Error::RollbackOnly)),
            "{kind:?}: {result:?}"
        );
        assert_eq!(*hooks.lock().unwrap(), ["rollback"], "{kind:?}");
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_marked_rollback_only_rolls_back_alone() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                insert("outer").await?;
                let inner = atomic(async {
                    insert("inner").await?;
                    set_rollback_only()
                })
                .await;
                assert!(
                    matches!(inner, Err(Error::RollbackOnly)),
                    "{kind:?}: {inner:?}"
                );
                assert!(!is_rollback_only()?, "the mark stays with the savepoint");
                // Inside a joined block the mark goes to the frame it joined.
                let joined_in = atomic(async {
                    insert("joined_in").await?;
                    Atomic::new()
                        .propagation(Propagation::Join)
                        .run(async { set_rollback_only() })
                        .await?;
                    assert!(is_rollback_only()?);
                    Ok::<_, Error>(())
                })
                .await;
                assert!(
                    matches!(joined_in, Err(Error::RollbackOnly)),
                    "{kind:?}: {joined_in:?}"
                );
                insert("after").await
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(
            test.kv().await,
            table([("after", 1), ("outer", 1)]),
            "{kind:?}"
        );
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_hooks_follow_the_frames_work() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        // Released into the root, then the root rolls back: the savepoint's work is undone,
        // so its hook runs, after the root's own, in registration order.
        let hooks = log();
        let result = Atomic::new()
            .db(test.db.clone())
            .run(async {
                on_rollback(note(&hooks, "root 1"))?;
                atomic(async {
                    insert("a").await?;
                    on_rollback(note(&hooks, "savepoint"))
                })
                .await?;
                on_rollback(note(&hooks, "root 2"))?;
                Err::<(), _>(Error::Unsupported("the root fails".into()))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(
            *hooks.lock().unwrap(),
            ["root 1", "savepoint", "root 2"],
            "{kind:?}"
        );
        // A savepoint that rolls back runs its hooks at once; the root commits and drops the
        // rollback hooks of released savepoints.
        let hooks = log();
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                let failed = atomic(async {
                    on_rollback(note(&hooks, "failed savepoint"))?;
                    Err::<(), _>(Error::Unsupported("inner fails".into()))
                })
                .await;
                assert!(failed.is_err());
                assert_eq!(
                    *hooks.lock().unwrap(),
                    ["failed savepoint"],
                    "ran at its rollback"
                );
                atomic(async { on_rollback(note(&hooks, "released savepoint")) }).await?;
                insert("kept").await
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(*hooks.lock().unwrap(), ["failed savepoint"], "{kind:?}");
        assert_eq!(test.kv().await, table([("kept", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_hooks_run_when_the_frame_is_cancelled_and_after_a_panicking_hook() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let hooks = log();
        let cancelled = Atomic::new().db(test.db.clone()).run(async {
            insert("never").await?;
            on_rollback(note(&hooks, "cancelled"))?;
            std::future::pending::<()>().await;
            Ok::<_, Error>(())
        });
        assert!(tokio::time::timeout(Duration::from_millis(50), cancelled)
            .await
            .is_err());
        let ran = transactional_tests::eventually(Duration::from_secs(2), || {
            let hooks = hooks.clone();
            async move { hooks.lock().unwrap().len() == 1 }
        })
        .await;
        assert!(
            ran,
            "{kind:?}: the hook of a dropped frame runs after its rollback"
        );
        // A panicking hook does not stop the next; the panic resumes once all have run.
        let hooks = log();
        let (first, second) = (note(&hooks, "first"), note(&hooks, "second"));
        let run = Atomic::new().db(test.db.clone()).run(async move {
            on_rollback(|| panic!("hook panics"))?;
            on_rollback(first)?;
            on_rollback(second)?;
            Err::<(), _>(Error::Unsupported("fails".into()))
        });
        let panicked = tokio::spawn(run).await;
        assert!(
            panicked.is_err_and(|e| e.is_panic()),
            "{kind:?}: the hook's panic resumes"
        );
        assert_eq!(*hooks.lock().unwrap(), ["first", "second"], "{kind:?}");
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test]
async fn outside_a_transaction_there_is_nothing_to_mark() {
    assert!(matches!(set_rollback_only(), Err(Error::NoTransaction)));
    assert!(matches!(is_rollback_only(), Err(Error::NoTransaction)));
    assert!(matches!(on_rollback(|| ()), Err(Error::NoTransaction)));
    let _ = current();
}

/// A failed `join` block dooms the frame it joined — here a savepoint — not the whole
/// transaction: that frame refuses further statements, rolls back at its end and reports
/// `RollbackOnly`; its caller handles that and the rest of the transaction commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_joined_block_dooms_only_the_frame_it_joined() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                insert("outer").await?;
                let savepoint = atomic(async {
                    insert("in_savepoint").await?;
                    let joined = Atomic::new()
                        .propagation(Propagation::Join)
                        .run(async {
                            insert("joined").await?;
                            Err::<(), _>(Error::Unsupported("the joined block fails".into()))
                        })
                        .await;
                    assert!(joined.is_err());
                    assert!(is_rollback_only()?);
                    let refused = insert("refused").await;
                    assert!(
                        matches!(&refused, Err(Error::FrameFailed { cause, .. }) if cause.contains("joined")),
                        "{kind:?}: {refused:?}"
                    );
                    Ok::<_, Error>(())
                })
                .await;
                assert!(matches!(savepoint, Err(Error::RollbackOnly)), "{kind:?}: {savepoint:?}");
                assert!(!is_rollback_only()?, "the outer frame is not doomed");
                insert("after").await
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(
            test.kv().await,
            table([("after", 1), ("outer", 1)]),
            "{kind:?}"
        );
        if let Some(raw) = test.raw_kv() {
            assert_eq!(raw, table([("after", 1), ("outer", 1)]), "{kind:?}");
        }
        test.assert_healthy().await;
    }
}

/// `on_commit_async`: spawned after the outermost commit, never after a rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_commit_hooks_are_spawned_after_the_commit_only() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
        let tx = sent_tx.clone();
        Atomic::new()
            .db(test.db.clone())
            .run(async move {
                insert("a").await?;
                atomic(async move {
                    transactional::on_commit_async(async move {
                        tokio::task::yield_now().await;
                        let _ = tx.send("committed");
                    })
                })
                .await
            })
            .await
            .unwrap();
        let tx = sent_tx.clone();
        let rolled_back = Atomic::new()
            .db(test.db.clone())
            .run(async move {
                transactional::on_commit_async(async move {
                    let _ = tx.send("rolled back");
                })?;
                Err::<(), _>(Error::Unsupported("fails".into()))
            })
            .await;
        assert!(rolled_back.is_err());
        drop(sent_tx);
        let mut seen = Vec::new();
        while let Ok(Some(what)) =
            tokio::time::timeout(Duration::from_secs(2), sent_rx.recv()).await
        {
            seen.push(what);
        }
        assert_eq!(seen, ["committed"], "{kind:?}");
        test.assert_healthy().await;
    }
}
