//! The seed scenario: an outer transaction whose `TaskGroup` runs K concurrent nested
//! `update_or_create` calls (read, then insert or update). Without ordered savepoints this
//! fails with `no such savepoint` or loses rows; here it must give zero errors and the exact
//! final table, round after round.

use std::collections::BTreeMap;

use transactional::{transactional, Database, Error, TaskGroup};
use transactional_tests::{Kind, TestDb, KINDS};

/// Read-then-write: the read and the write must see no other task's work in between.
#[transactional]
async fn update_or_create(key: String) -> Result<(), Error> {
    let tx = transactional::current()?;
    let seen = tx
        .query_opt("SELECT val FROM kv WHERE key = ?1", (&key,))
        .await?;
    tokio::task::yield_now().await; // give siblings every chance to interleave
    match seen {
        Some(row) => {
            let val: i64 = row.get(0)?;
            tx.execute("UPDATE kv SET val = ?2 WHERE key = ?1", (&key, val + 1))
                .await?;
        }
        None => {
            tx.execute("INSERT INTO kv(key, val) VALUES (?1, 1)", (&key,))
                .await?;
        }
    }
    Ok(())
}

/// One round: K children, child i bumps key `i % keys`.
#[transactional(db = db)]
async fn round(db: &Database, tasks: usize, keys: usize) -> Result<(), Error> {
    let mut group = TaskGroup::new();
    for i in 0..tasks {
        group.spawn(update_or_create(format!("k{:04}", i % keys)));
    }
    group.join_all().await?;
    Ok(())
}

async fn run_seed(kind: Kind, tasks: usize, rounds: usize) {
    let test = TestDb::new(kind).await;
    let keys = (tasks / 2).max(1); // two children per key: read-then-write races are real
    let mut failures = 0;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        if let Err(err) = round(&test.db, tasks, keys).await {
            failures += 1;
            eprintln!("round failed: {err}");
        }
    }
    eprintln!(
        "{kind:?} K={tasks}: {rounds} rounds, {failures} failed, in {:.2?}",
        started.elapsed()
    );
    assert_eq!(failures, 0, "{kind:?} K={tasks}: rounds failed");

    let mut expected = BTreeMap::new();
    for i in 0..tasks {
        *expected.entry(format!("k{:04}", i % keys)).or_insert(0) += rounds as i64;
    }
    assert_eq!(test.kv().await, expected, "{kind:?} K={tasks}");
    if let Some(raw) = test.raw_kv() {
        assert_eq!(raw, expected, "committed data seen by another connection");
    }
    test.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tasks_200_rounds() {
    for kind in KINDS {
        run_seed(kind, 2, 200).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_tasks_200_rounds() {
    for kind in KINDS {
        run_seed(kind, 100, 200).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_tasks_200_rounds() {
    for kind in KINDS {
        run_seed(kind, 1000, 200).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn hundred_tasks_on_a_current_thread_runtime() {
    run_seed(Kind::File, 100, 50).await;
}
