//! `Database::with_default`: a default database scoped to a task and the tasks it spawns,
//! so tests running in parallel can each use their own database with fns that name none.
//! Conformance: every kind of `KINDS`.

use transactional::{transactional, Database, Error, TaskGroup};
use transactional_tests::{insert, TestDb, KINDS};

/// An outermost transaction without `db = ..`: it runs on the default database.
#[transactional]
async fn add(key: String) -> Result<(), Error> {
    insert(key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_scopes_each_use_their_own_database() {
    for kind in KINDS {
        let (a, b) = (TestDb::new(kind).await, TestDb::new(kind).await);
        let run = |db: Database, prefix: &'static str| {
            tokio::spawn(db.clone().with_default(async move {
                for i in 0..50 {
                    add(format!("{prefix}{i}")).await?;
                    tokio::task::yield_now().await; // interleave with the other scope
                }
                // Children spawned outside any transaction inherit the default too.
                let mut group: TaskGroup<(), Error> = TaskGroup::new();
                for i in 0..10 {
                    group.spawn(add(format!("{prefix}child{i}")));
                }
                group.join_all().await?;
                // And inside one: the child's nested frame is a savepoint of its parent.
                transactional::Atomic::new()
                    .run(async move {
                        transactional::spawn(add(format!("{prefix}nested")))
                            .await
                            .expect("child task")
                    })
                    .await
            }))
        };
        let (ra, rb) = tokio::join!(run(a.db.clone(), "a"), run(b.db.clone(), "b"));
        ra.unwrap().unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        rb.unwrap().unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        for (t, own, other) in [(&a, "a", "b"), (&b, "b", "a")] {
            let keys = t.kv().await;
            assert_eq!(keys.len(), 61, "{kind:?}: {keys:?}");
            assert!(
                keys.keys().all(|k| k.starts_with(own)),
                "{kind:?}: {keys:?}"
            );
            assert!(!keys.keys().any(|k| k.starts_with(other)), "{kind:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scoped_default_ends_with_its_future() {
    let t = TestDb::new(transactional_tests::Kind::Memory).await;
    let inside =
        t.db.with_default(async { Database::default_database() })
            .await
            .expect("a default inside the scope");
    assert_eq!(inside.label(), t.db.label());
    // Outside the scope only a process default (set by another test, perhaps) can apply:
    // never this one.
    if let Some(outside) = Database::default_database() {
        assert_ne!(format!("{outside:?}"), format!("{:?}", t.db));
    }
}
