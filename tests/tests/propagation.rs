//! Propagation, hooks, and the errors of misuse: `join`, `mandatory`, `requires_new`,
//! `on_commit`, a handle used after its frame ended, a wait that could never end.
//!
//! Conformance: every test loops over `KINDS` (SQLite file and memory, PostgreSQL) except
//! `sqlite_requires_new_inside_a_write_transaction_is_a_clear_error`, which is about SQLite's
//! single writer; `postgres_requires_new_inside_a_transaction_is_independent` is its
//! PostgreSQL counterpart (a second pooled connection).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use transactional::{transactional, Atomic, Database, Error, Propagation};
use transactional_tests::{bounded, insert, table, TestDb, KINDS, SQLITE_KINDS};

#[transactional(propagation = "join")]
async fn joined(key: &'static str, fail: bool) -> Result<u32, Error> {
    insert(key).await?;
    if fail {
        return Err(Error::Unsupported("joined frame fails".into()));
    }
    Ok(transactional::current()?.depth())
}

#[transactional(db = db)]
async fn outer_with_join(db: &Database, fail: bool) -> Result<(), Error> {
    let (outer, inner) = if fail {
        ("outer2", "joined2")
    } else {
        ("outer", "joined")
    };
    insert(outer).await?;
    assert_eq!(
        joined(inner, false).await?,
        0,
        "join runs in the enclosing frame"
    );
    if fail {
        // The caller swallows the error, but the transaction is doomed all the same.
        assert!(joined("joined_failing", true).await.is_err());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_join_marks_the_transaction_rollback_only() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        outer_with_join(&test.db, false).await.unwrap();
        let doomed = outer_with_join(&test.db, true).await;
        assert!(matches!(doomed, Err(Error::RollbackOnly)), "{doomed:?}");
        assert_eq!(
            test.kv().await,
            table([("joined", 1), ("outer", 1)]),
            "{kind:?}"
        );
        test.assert_healthy().await;
    }
}

#[transactional(propagation = "mandatory")]
async fn needs_a_transaction() -> Result<u32, Error> {
    Ok(transactional::current()?.depth())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_fails_outside_and_nests_inside() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        assert!(matches!(
            needs_a_transaction().await,
            Err(Error::NoTransaction)
        ));
        let depth = Atomic::new()
            .db(test.db.clone())
            .run(needs_a_transaction())
            .await
            .unwrap();
        assert_eq!(depth, 1, "{kind:?}");
    }
}

#[transactional(propagation = "requires_new")]
async fn independent() -> Result<(), Error> {
    insert("independent").await
}

/// SQLite-only: SQLite has one writer per database, so a `requires_new` write transaction
/// inside a write transaction on the same database would wait for its own lock; it is
/// refused. (PostgreSQL runs it on a second connection: see the next test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_requires_new_inside_a_write_transaction_is_a_clear_error() {
    for kind in SQLITE_KINDS {
        let test = TestDb::new(kind).await;
        let result = Atomic::new().db(test.db.clone()).run(independent()).await;
        let Err(Error::Unsupported(message)) = result else {
            panic!("{kind:?}: expected Unsupported, got {result:?}");
        };
        assert!(message.contains("requires_new"), "{message}");
        // Outside a transaction it simply begins one on the default database.
        test.db.set_default();
        independent().await.unwrap();
        assert_eq!(test.kv().await, table([("independent", 1)]), "{kind:?}");
    }
}

/// PostgreSQL-only (the counterpart of the SQLite test above): `requires_new` inside a
/// transaction on the same database is a transaction of its own on a second pooled
/// connection: it commits though the enclosing transaction rolls back, and the enclosing
/// transaction goes on after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_requires_new_inside_a_transaction_is_independent() {
    for kind in KINDS.into_iter().filter(|k| !k.is_sqlite()) {
        let test = TestDb::new(kind).await;
        let result = bounded(
            "requires_new inside a transaction",
            Atomic::new().db(test.db.clone()).run(async {
                insert("outer").await?;
                independent().await?;
                assert_eq!(
                    test.raw_kv(),
                    Some(table([("independent", 1)])),
                    "requires_new committed on its own before the enclosing transaction ends"
                );
                insert("outer_after").await?;
                Err::<(), _>(Error::Unsupported("outer fails".into()))
            }),
        )
        .await;
        assert!(matches!(result, Err(Error::Unsupported(_))), "{result:?}");
        assert_eq!(test.kv().await, table([("independent", 1)]));
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_new_on_another_database_is_independent() {
    for kind in KINDS {
        let outer = TestDb::new(kind).await;
        let other = TestDb::new(kind).await;
        let other_db = other.db.clone();
        let result = Atomic::new()
            .db(outer.db.clone())
            .run(async move {
                insert("outer").await?;
                Atomic::new()
                    .db(other_db)
                    .propagation(Propagation::RequiresNew)
                    .run(insert("other"))
                    .await?;
                Err::<(), _>(Error::Unsupported("outer fails".into()))
            })
            .await;
        assert!(result.is_err(), "{kind:?}");
        assert_eq!(outer.kv().await, table([]), "{kind:?}");
        assert_eq!(
            other.kv().await,
            table([("other", 1)]),
            "{kind:?}: committed on its own"
        );
        outer.assert_healthy().await;
        other.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_commit_hooks_run_after_the_outermost_commit_only() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let (r1, r2, r3) = (ran.clone(), ran.clone(), ran.clone());
        Atomic::new()
            .db(test.db.clone())
            .run(async move {
                transactional::on_commit(move || {
                    r1.fetch_add(1, Ordering::SeqCst);
                })?;
                // Released savepoint: its hook moves up and runs at the outer commit.
                transactional::atomic(async move {
                    transactional::on_commit(move || {
                        r2.fetch_add(10, Ordering::SeqCst);
                    })
                })
                .await?;
                // Rolled-back savepoint: its hook is dropped.
                let _ = transactional::atomic(async move {
                    transactional::on_commit(move || {
                        r3.fetch_add(100, Ordering::SeqCst);
                    })?;
                    Err::<(), _>(Error::RollbackOnly)
                })
                .await;
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 11, "{kind:?}");
        assert!(matches!(
            transactional::on_commit(|| {}),
            Err(Error::NoTransaction)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_used_after_its_frame_ended_is_refused() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let leaked = Atomic::new()
            .db(test.db.clone())
            .run(async { transactional::current() })
            .await
            .unwrap();
        let err = leaked
            .execute("INSERT INTO kv VALUES ('late', 1)", ())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::TransactionClosed(_)),
            "{kind:?}: {err}"
        );
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        test.assert_healthy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn using_an_outer_handle_inside_a_savepoint_is_a_deadlock_error_not_a_hang() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let result = bounded(
            "the transaction",
            Atomic::new().db(test.db.clone()).run(async {
                let outer = transactional::current()?;
                transactional::atomic(async move {
                    // The savepoint holds the outer frame's turn until it ends: this could
                    // never run.
                    outer.execute("INSERT INTO kv VALUES ('x', 1)", ()).await
                })
                .await
            }),
        )
        .await;
        let Err(Error::Deadlock(message)) = result else {
            panic!("{kind:?}: expected Deadlock, got {result:?}");
        };
        assert!(message.contains("savepoint"), "{message}");
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        test.assert_healthy().await;
    }
}

/// The statement a database error belongs to, when the database itself rejected it (SQLite's
/// error, or PostgreSQL's); `None` for any other error.
fn rejected_statement(err: &Error) -> Option<Option<&str>> {
    match err {
        Error::Sqlite { sql, .. } => Some(sql.as_deref()),
        #[cfg(feature = "postgres")]
        Error::Postgres(e) => Some(e.statement()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_inside_a_savepoint_keeps_the_transaction_usable() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        Atomic::new()
            .db(test.db.clone())
            .run(async {
                insert("kept").await?;
                let dup = transactional::atomic(insert("kept")).await; // UNIQUE violation
                let Some(sql) = dup.as_ref().err().and_then(rejected_statement) else {
                    panic!("{kind:?}: expected a constraint error, got {dup:?}");
                };
                assert!(sql.unwrap_or("").contains("INSERT INTO kv"), "{dup:?}");
                let bad = transactional::atomic(async {
                    transactional::current()?
                        .execute("INSRT nonsense", ())
                        .await
                })
                .await;
                assert!(
                    bad.as_ref().err().and_then(rejected_statement).is_some(),
                    "{kind:?}: {bad:?}"
                );
                insert("after").await
            })
            .await
            .unwrap();
        assert_eq!(
            test.kv().await,
            table([("after", 1), ("kept", 1)]),
            "{kind:?}"
        );
        test.assert_healthy().await;
    }
}
