//! `tokio::spawn` inside a `#[transactional]` body joins the transaction: the children's
//! work commits with the outer transaction and disappears when it rolls back.
//!
//! Conformance: both tests run on every kind of `KINDS`.

use transactional::{transactional, Database, Error};
use transactional_tests::{table, TestDb, KINDS};

#[transactional]
async fn put(key: String, val: i64) -> Result<(), Error> {
    transactional::current()?
        .execute("INSERT INTO kv(key, val) VALUES (?1, ?2)", (key, val))
        .await?;
    Ok(())
}

#[transactional(db = db)]
async fn spawn_children(db: &Database, prefix: &'static str, fail: bool) -> Result<(), Error> {
    let mut handles = Vec::new();
    for i in 0..8 {
        // Rewritten by the attribute to the spawn that carries the transaction.
        handles.push(tokio::spawn(put(format!("{prefix}{i}"), i)));
    }
    handles.push(tokio::task::spawn(async move {
        // A plain statement in the spawned task runs in the outer frame.
        transactional::current()?
            .execute(
                "INSERT INTO kv(key, val) VALUES (?1, 100)",
                (format!("{prefix}plain"),),
            )
            .await?;
        Ok(())
    }));
    for handle in handles {
        handle.await.expect("child task")?;
    }
    if fail {
        return Err(Error::RollbackOnly);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_children_commit_and_roll_back_with_the_outer_transaction() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        spawn_children(&test.db, "ok", false).await.unwrap();
        assert!(matches!(
            spawn_children(&test.db, "gone", true).await,
            Err(Error::RollbackOnly)
        ));
        let mut expected: Vec<(String, i64)> = (0..8).map(|i| (format!("ok{i}"), i)).collect();
        expected.push(("okplain".into(), 100));
        let expected = table(expected.iter().map(|(k, v)| (k.as_str(), *v)));
        assert_eq!(test.kv().await, expected, "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_transactional_spawn_carries_the_frame() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        transactional::Atomic::new()
            .db(test.db.clone())
            .run(async {
                let outer = transactional::current()?.id();
                let seen =
                    transactional::spawn(async { transactional::current().map(|tx| tx.id()) })
                        .await
                        .expect("join")?;
                assert_eq!(seen, outer);
                // A plain tokio::spawn (outside the attribute's rewriting) carries nothing.
                let plain = tokio::spawn(async { transactional::current().is_err() })
                    .await
                    .expect("join");
                assert!(plain);
                Ok::<_, Error>(())
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
}
