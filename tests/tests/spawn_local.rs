//! `tokio::task::spawn_local` inside a `#[transactional]` body (rewritten by the attribute)
//! and `transactional::spawn_local` carry the transaction into the local task: a nested
//! `#[transactional]` fn there is a savepoint whose rows commit, or roll back, with the
//! outer transaction.
//!
//! Reproduces: a nested frame in a task from plain `spawn_local` saw no transaction, began
//! a new root and queued for the writer lock that its own outer transaction held until the
//! task ended — `Error::Busy` after `writer_wait`.
//!
//! Conformance: the first test runs on every kind of `KINDS`; the second uses no database.

use std::rc::Rc;
use std::time::Duration;

use tokio::task::LocalSet;
use transactional::{transactional, Database, Error};
use transactional_tests::{table, TestDb, KINDS};

/// Long enough for a savepoint, short enough that the old behaviour fails fast with `Busy`.
const WRITER_WAIT: Duration = Duration::from_millis(500);
/// Every case ends well within this, or it hangs.
const BOUND: Duration = Duration::from_secs(10);

/// Inserts `(key, val)` and returns the depth of the frame it ran in. Holds an `Rc`, so
/// its future is not `Send`: only `spawn_local` can run it in another task.
#[transactional]
async fn put(key: String, val: i64) -> Result<u32, Error> {
    let not_send = Rc::new(val);
    let tx = transactional::current()?;
    tokio::task::yield_now().await;
    tx.execute("INSERT INTO kv(key, val) VALUES (?1, ?2)", (key, *not_send))
        .await?;
    Ok(tx.depth())
}

#[transactional(db = db)]
async fn spawn_local_children(db: &Database, prefix: &str, fail: bool) -> Result<Vec<u32>, Error> {
    let mut handles = Vec::new();
    for i in 0..4 {
        // Rewritten by the attribute to `transactional::spawn_local`.
        handles.push(tokio::task::spawn_local(put(format!("{prefix}{i}"), i)));
    }
    handles.push(transactional::spawn_local(put(
        format!("{prefix}explicit"),
        10,
    )));
    handles.extend(
        [put(format!("{prefix}path"), 20)]
            .into_iter()
            .map(::tokio::task::spawn_local),
    );
    let mut depths = Vec::new();
    for handle in handles {
        depths.push(handle.await.expect("local task")?);
    }
    if fail {
        return Err(Error::RollbackOnly);
    }
    Ok(depths)
}

#[tokio::test]
async fn spawn_local_children_are_savepoints_of_the_outer_transaction() {
    for kind in KINDS {
        let local = LocalSet::new();
        let run = local.run_until(async {
            let test =
                TestDb::with_builder(kind, Database::builder().writer_wait(WRITER_WAIT)).await;
            let db = test.db.clone();
            // A child that sees no transaction begins one here, on the same database.
            db.set_default();
            let depths = spawn_local_children(&db, "ok", false).await;
            assert_eq!(depths.expect("commits"), vec![1; 6], "{kind:?}");
            assert!(
                matches!(
                    spawn_local_children(&db, "gone", true).await,
                    Err(Error::RollbackOnly)
                ),
                "{kind:?}"
            );
            let expected = table([
                ("ok0", 0),
                ("ok1", 1),
                ("ok2", 2),
                ("ok3", 3),
                ("okexplicit", 10),
                ("okpath", 20),
            ]);
            assert_eq!(test.kv().await, expected, "{kind:?}");
        });
        tokio::time::timeout(BOUND, run)
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: did not finish within {BOUND:?}"));
    }
}

#[tokio::test]
async fn spawn_local_outside_a_transaction_carries_nothing() {
    LocalSet::new()
        .run_until(async {
            let seen = transactional::spawn_local(async { transactional::current().is_err() })
                .await
                .expect("join");
            assert!(seen);
        })
        .await;
}
