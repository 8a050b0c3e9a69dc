//! `transactional::carry` runs any future in the current transaction, whatever spawns it:
//! a child spawned with `tokio::spawn(carry(..))` or `JoinSet::spawn(carry(..))` writes in a
//! savepoint of the parent, commits with it and disappears when it rolls back.
//!
//! Reproduces: a child spawned without the context (plain `tokio::spawn` outside a
//! `#[transactional]` body) begins a transaction of its own. On SQLite it queues for the
//! writer its own parent holds while the parent waits for it, and fails only when
//! `writer_wait` runs out; the error says the task runs outside any transaction and names
//! `carry` as the fix.
//!
//! Conformance: every test runs on each kind of `KINDS`. The uncarried child's wait is
//! SQLite's single-writer queue; on PostgreSQL that child commits on a connection of its own
//! instead, so there the test checks that (outside the parent, kept after its rollback).

use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use transactional::{transactional, Atomic, Database, Error};
use transactional_tests::{bounded, table, Kind, TestDb, KINDS};

/// Short, so that the uncarried child's wait ends soon; long enough for any savepoint.
const WRITER_WAIT: Duration = Duration::from_millis(300);

/// Inserts `(key, val)` in a savepoint of the task's transaction on `db`, or in a
/// transaction of its own outside one; the depth of the frame it ran in.
#[transactional(db = db)]
async fn put(db: Database, key: String, val: i64) -> Result<u32, Error> {
    let tx = transactional::current()?;
    tx.execute("INSERT INTO kv(key, val) VALUES (?1, ?2)", (key, val))
        .await?;
    Ok(tx.depth())
}

/// The mistake: a plain `tokio::spawn` in a helper, which the attribute never sees.
fn spawn_uncarried(db: &Database, key: String) -> JoinHandle<Result<u32, Error>> {
    tokio::spawn(put(db.clone(), key, 0))
}

/// The parent: writes, spawns an uncarried child (on SQLite only, see the module docs) and
/// carried ones, waits for all, then commits (`fail == false`) or rolls back. Returns the
/// uncarried child's outcome.
async fn parent(test: &TestDb, prefix: &str, fail: bool) -> Option<Result<u32, Error>> {
    let db = test.db.clone();
    let outcome = Atomic::new()
        .db(db.clone())
        .name("parent")
        .run(async {
            let id = transactional::current()?.id();
            put(db.clone(), format!("{prefix}parent"), 1).await?;

            let uncarried = spawn_uncarried(&db, format!("{prefix}uncarried"));
            let uncarried = uncarried.await.expect("uncarried child");

            let carried = tokio::spawn(transactional::carry(put(
                db.clone(),
                format!("{prefix}carried"),
                2,
            )));
            assert_eq!(carried.await.expect("carried child")?, 1, "a savepoint");
            let mut set = JoinSet::new();
            for i in 0..3 {
                set.spawn(transactional::carry(put(
                    db.clone(),
                    format!("{prefix}set{i}"),
                    10 + i,
                )));
            }
            while let Some(joined) = set.join_next().await {
                assert_eq!(joined.expect("set child")?, 1, "a savepoint");
            }
            if fail {
                return Err(Error::RollbackOnly);
            }
            Ok::<_, Error>((id, uncarried))
        })
        .await;
    match outcome {
        Ok((id, uncarried)) => {
            check_uncarried(test.kind, id, &uncarried);
            Some(uncarried)
        }
        Err(Error::RollbackOnly) if fail => None,
        Err(err) => panic!("{:?}: the parent failed: {err}", test.kind),
    }
}

/// On SQLite the uncarried child waited for its own parent's writer until `writer_wait`,
/// and the error says why; on PostgreSQL it ran in a transaction of its own.
fn check_uncarried(kind: Kind, parent_id: u64, uncarried: &Result<u32, Error>) {
    if !kind.is_sqlite() {
        assert_eq!(
            uncarried.as_ref().ok(),
            Some(&0),
            "{kind:?}: its own transaction"
        );
        return;
    }
    let Err(Error::Busy { detail, .. }) = uncarried else {
        panic!("{kind:?}: expected Busy, got {uncarried:?}")
    };
    for part in [
        &format!("held by transaction #{parent_id} `parent`"),
        "This task runs outside any transaction",
        "started without the transaction's context",
        "`transactional::carry(..)`",
        "`transactional::spawn`",
    ] {
        assert!(
            detail.contains(part),
            "{kind:?}: missing {part:?} in {detail}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carried_children_write_in_the_parent_transaction_and_an_uncarried_one_is_named() {
    for kind in KINDS {
        let test = TestDb::with_builder(kind, Database::builder().writer_wait(WRITER_WAIT)).await;
        bounded("commit", parent(&test, "ok_", false)).await;
        let committed = table([
            ("ok_carried", 2),
            ("ok_parent", 1),
            ("ok_set0", 10),
            ("ok_set1", 11),
            ("ok_set2", 12),
        ]);
        let mut expected = committed.clone();
        if !kind.is_sqlite() {
            expected.insert("ok_uncarried".into(), 0);
        }
        assert_eq!(test.kv().await, expected, "{kind:?}");

        bounded("rollback", parent(&test, "gone_", true)).await;
        // Nothing of the rolled-back parent or its carried children is visible, through the
        // library or (file and PostgreSQL) through a connection of its own; the uncarried
        // child's own transaction on PostgreSQL committed regardless.
        if !kind.is_sqlite() {
            expected.insert("gone_uncarried".into(), 0);
        }
        assert_eq!(test.kv().await, expected, "{kind:?}");
        if let Some(raw) = test.raw_kv() {
            assert_eq!(raw, expected, "{kind:?}: as another connection sees it");
        }
        test.assert_healthy().await;
    }
}

/// `carry` takes the frame current when it is called: a carried future polled after that
/// frame has ended gets `TransactionClosed`, as a task `transactional::spawn` started would.
/// Outside a transaction it carries nothing, and `current()` there says how to carry one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carry_takes_the_frame_current_when_called() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let db = test.db.clone();
        let late = Atomic::new()
            .db(db.clone())
            .run(async {
                let late = transactional::carry(put(db.clone(), "late".into(), 1));
                Ok::<_, Error>(Box::pin(late))
            })
            .await
            .unwrap();
        assert!(
            matches!(late.await, Err(Error::TransactionClosed(_))),
            "{kind:?}"
        );
        let outside = transactional::carry(async { transactional::current().map(|tx| tx.id()) });
        let outside = outside.await;
        assert!(matches!(outside, Err(Error::NoTransaction)), "{outside:?}");
        // What an uncarried child that asks for the transaction is told.
        let message = outside.unwrap_err().to_string();
        assert!(message.contains("transactional::carry"), "{message}");
        assert_eq!(test.kv().await, table([]), "{kind:?}");
    }
}

/// Two transactions on one database polled together by one task (`join!`) run one after
/// the other: the second waits for the first, a legitimate wait that is never cut short.
/// When it runs out, the error says the waiter is the holder's own task, not a child
/// spawned without the context.
///
/// SQLite-only: SQLite's single-writer queue; on PostgreSQL the two run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_in_the_holders_own_task_is_named_as_such() {
    for kind in [Kind::File, Kind::Memory] {
        let test = TestDb::with_builder(kind, Database::builder().writer_wait(WRITER_WAIT)).await;
        let db = test.db.clone();
        let first_db = db.clone();
        let first = Atomic::new().db(db.clone()).name("first").run(async move {
            let db = first_db;
            put(db.clone(), "first".into(), 1).await?;
            // Longer than `writer_wait`, so that the second one's wait runs out.
            tokio::time::sleep(WRITER_WAIT * 2).await;
            Ok::<_, Error>(())
        });
        let second = async move {
            // Let the first take the writer.
            tokio::time::sleep(WRITER_WAIT / 10).await;
            put(db.clone(), "second".into(), 2).await
        };
        // In a task: the test's own future runs in `block_on`, which is no tokio task (and
        // has no task id to compare).
        let both = tokio::spawn(async move { tokio::join!(first, second) });
        let (first, second) = bounded("join", both).await.expect("the joining task");
        first.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let Err(Error::Busy { detail, .. }) = &second else {
            panic!("{kind:?}: expected Busy, got {second:?}")
        };
        assert!(
            detail.contains("This task began that transaction and waits outside it"),
            "{kind:?}: {detail}"
        );
        assert!(
            !detail.contains("runs outside any transaction"),
            "{kind:?}: {detail}"
        );
        assert_eq!(test.kv().await, table([("first", 1)]), "{kind:?}");
    }
}
