//! Cancellation at every await point: a transaction future is polled `k` times and then
//! dropped, for every `k` from 0 until it completes on its own. Each drop lands on another
//! await point — waiting for the writer, for a turn, inside a child's savepoint, while the
//! frame waits for its children at its end, while its COMMIT runs on a blocking thread
//! (`synchronous = FULL`). After each one the database must hold all of the transaction's
//! rows or none, the `on_commit` hook must have run exactly when the rows are there, a later
//! transaction's rows must never be committed by the cancelled one, and every connection must
//! be back outside any transaction (another connection can write, readers and the writer
//! work, `integrity_check` is `ok`; on PostgreSQL: no pooled session is left idle in a
//! transaction).
//!
//! Conformance: the first sweep runs on every kind of `KINDS`. The second is SQLite-only: it
//! is about `synchronous = FULL`, whose COMMIT the library runs on a blocking thread.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use transactional::{Atomic, Database, Error, TaskGroup};
use transactional_tests::{eventually, insert, raw_write, Kind, TestDb, KINDS};

/// The transaction under test: rows of its own, a task group whose children open savepoints
/// (one fails and rolls back alone), a nested savepoint of its own, and a hook.
async fn transaction(db: Database, round: usize, hooks: Arc<AtomicUsize>) -> Result<(), Error> {
    Atomic::new()
        .db(db)
        .run(async move {
            insert(format!("{round}:root")).await?;
            // Awaits that always return Pending once: the root itself is cancelled at each.
            tokio::task::yield_now().await;
            transactional::on_commit(move || {
                hooks.fetch_add(1, Ordering::SeqCst);
            })?;
            let mut group = TaskGroup::new();
            for child in 0..3 {
                group.spawn(transactional::atomic(async move {
                    insert(format!("{round}:child{child}")).await?;
                    tokio::task::yield_now().await;
                    let failing = transactional::atomic(async move {
                        insert(format!("{round}:doomed{child}")).await?;
                        Err::<(), _>(Error::ReadOnly)
                    });
                    assert!(failing.await.is_err());
                    insert(format!("{round}:after{child}")).await
                }));
            }
            tokio::task::yield_now().await;
            group.join_all().await?;
            tokio::task::yield_now().await;
            transactional::atomic(insert(format!("{round}:nested"))).await
        })
        .await
}

fn expected(round: usize) -> Vec<String> {
    let mut rows = vec![format!("{round}:root"), format!("{round}:nested")];
    for child in 0..3 {
        rows.push(format!("{round}:child{child}"));
        rows.push(format!("{round}:after{child}"));
    }
    rows.sort();
    rows
}

/// Polls `fut` at most `polls` times, letting other tasks run between polls; `true` if it
/// completed. Dropping it afterwards is the cancellation.
async fn poll_at_most<F: Future>(fut: F, polls: usize) -> bool {
    let mut fut = pin!(fut);
    for poll in 0..polls {
        let ready = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())).await;
        if ready {
            return true;
        }
        // Let children, cleanups and the blocking COMMIT move on a step between polls; later
        // polls are spaced out, for a COMMIT that fsyncs.
        match poll < 64 {
            true => tokio::task::yield_now().await,
            false => tokio::time::sleep(Duration::from_micros(100)).await,
        }
    }
    false
}

async fn rows_of(test: &TestDb, round: usize) -> Vec<String> {
    let prefix = format!("{round}:");
    test.kv()
        .await
        .into_keys()
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

async fn sweep(kind: Kind, builder: transactional::DatabaseBuilder, label: &str) {
    let label = &format!("{kind:?}, {label}");
    let test = TestDb::with_builder(kind, builder).await;
    let mut completed_at = None;
    // Drops after which the transaction still committed: they landed after its COMMIT began.
    let mut committed_after_drop = 0;
    for k in 0..400 {
        let hooks = Arc::new(AtomicUsize::new(0));
        let done = poll_at_most(transaction(test.db.clone(), k, hooks.clone()), k).await;
        // Right after the drop, a later transaction inserts a marker and fails: the
        // cancelled transaction must never commit it.
        let marker = Atomic::new()
            .db(test.db.clone())
            .run(async move {
                insert(format!("{k}:marker")).await?;
                Err::<(), _>(Error::ReadOnly)
            })
            .await;
        assert!(
            matches!(marker, Err(Error::ReadOnly)),
            "{label} k={k}: {marker:?}"
        );
        // A commit running on a blocking thread finishes by itself; give it time.
        let mut rows = rows_of(&test, k).await;
        for _ in 0..50 {
            if rows.is_empty() || rows == expected(k) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            rows = rows_of(&test, k).await;
        }
        let committed = !rows.is_empty();
        assert!(
            !committed || rows == expected(k),
            "{label} k={k}: partly committed: {rows:?}"
        );
        assert!(
            done <= committed,
            "{label} k={k}: completed but not committed"
        );
        committed_after_drop += usize::from(committed && !done);
        // The hook runs exactly when the transaction committed (maybe on the blocking thread,
        // a moment after the rows became visible).
        eventually(Duration::from_millis(500), || async {
            hooks.load(Ordering::SeqCst) == usize::from(committed)
        })
        .await;
        assert_eq!(
            hooks.load(Ordering::SeqCst),
            usize::from(committed),
            "{label} k={k}: hook runs vs commit"
        );
        // No connection was left inside a transaction: another connection can write now (a
        // file; on PostgreSQL `assert_healthy` checks that no session is left in one)...
        if let Some(path) = test.path.as_ref() {
            raw_write(path, "BEGIN IMMEDIATE; COMMIT", Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("{label} k={k}: the file stayed write-locked: {e}"));
        }
        // ...and readers and the writer work (`assert_healthy` writes; `kv` reads).
        test.assert_healthy().await;
        if done {
            completed_at = Some(k);
            break;
        }
    }
    let k = completed_at.unwrap_or_else(|| panic!("{label}: never completed in 400 polls"));
    eprintln!(
        "{label}: dropped after 0..{k} polls ({committed_after_drop} of the drops came after \
         the COMMIT had begun, and it committed), completed at {k}"
    );
    assert!(
        k >= 3,
        "{label}: the transaction never waited, nothing was cancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_transaction_at_every_await_point_leaves_all_or_nothing() {
    for kind in KINDS {
        // (`readers(1)` applies to the SQLite file only.)
        sweep(kind, Database::builder().readers(1), "default settings").await;
    }
}

/// SQLite-only: `synchronous = FULL`, the COMMIT runs on a blocking thread, so some drops land
/// while it runs there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_dropping_a_durable_transaction_at_every_await_point_leaves_all_or_nothing() {
    sweep(
        Kind::File,
        Database::builder().readers(1).pragma("synchronous", "FULL"),
        "synchronous=FULL",
    )
    .await;
}
