//! Outermost transactions from many tasks on one database (queued on the writer lock on
//! SQLite, pooled connections on PostgreSQL): all commit, none sees busy/locked.
//!
//! Conformance: both tests run on every kind of `KINDS` that has a connection for a reader
//! beside the writer (the second test needs one: not SQLite in memory, which has only the
//! writer).

use transactional::{transactional, Database, Error};
use transactional_tests::{Kind, TestDb, KINDS};

#[transactional(db = db)]
async fn deposit(db: &Database, task: usize, i: usize) -> Result<(), Error> {
    let tx = transactional::current()?;
    tx.execute(
        "INSERT INTO kv(key, val) VALUES (?1, 1) ON CONFLICT(key) DO UPDATE SET val = kv.val + 1",
        (format!("task{task:02}"),),
    )
    .await?;
    if i.is_multiple_of(2) {
        tokio::task::yield_now().await; // hold the transaction across an await
    }
    tx.execute(
        "INSERT INTO kv(key, val) VALUES ('total', 1) ON CONFLICT(key) DO UPDATE SET val = kv.val + 1",
        (),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_of_outermost_transactions_all_commit() {
    for kind in KINDS {
        sixty_four_tasks(kind).await;
    }
}

async fn sixty_four_tasks(kind: Kind) {
    const TASKS: usize = 64;
    const EACH: usize = 50;
    let test = TestDb::new(kind).await;
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let db = test.db.clone();
        handles.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for i in 0..EACH {
                if let Err(err) = deposit(&db, task, i).await {
                    errors.push(err.to_string());
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for handle in handles {
        errors.extend(handle.await.unwrap());
    }
    assert!(errors.is_empty(), "{kind:?}: errors: {errors:?}");
    let kv = test.kv().await;
    assert_eq!(kv["total"], (TASKS * EACH) as i64);
    for task in 0..TASKS {
        assert_eq!(kv[&format!("task{task:02}")], EACH as i64);
    }
    if let Some(raw) = test.raw_kv() {
        assert_eq!(raw, kv, "{kind:?}");
    }
    test.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_transactions_run_beside_the_writer() {
    // SQLite in memory has only the writer: a read-only transaction there waits for it.
    for kind in KINDS.into_iter().filter(|k| *k != Kind::Memory) {
        let test = TestDb::new(kind).await;
        test.exec("INSERT INTO kv VALUES ('x', 1)").await.unwrap();
        let db = test.db.clone();
        // The writer holds its transaction open while a reader runs and finishes.
        transactional::Atomic::new()
            .db(db.clone())
            .run(async move {
                transactional::current()?
                    .execute("UPDATE kv SET val = 2 WHERE key = 'x'", ())
                    .await?;
                let seen: i64 = tokio::spawn(async move {
                    transactional::Atomic::new()
                        .db(db)
                        .read_only(true)
                        .run(async {
                            // A refused write fails its frame (ARCHITECTURE.md §6): tried in a savepoint
                            // of its own, the reader's transaction goes on.
                            let refused = transactional::atomic(async {
                                transactional::current()?
                                    .execute("DELETE FROM kv", ())
                                    .await
                            })
                            .await;
                            assert!(matches!(refused, Err(Error::ReadOnly)), "{refused:?}");
                            let tx = transactional::current()?;
                            tx.query_row("SELECT val FROM kv WHERE key = 'x'", ())
                                .await?
                                .get(0)
                        })
                        .await
                })
                .await
                .unwrap()?;
                assert_eq!(
                    seen, 1,
                    "{kind:?}: the reader sees the last committed value, not the open write"
                );
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
        assert_eq!(test.kv().await["x"], 2);
    }
}
