//! `Database::activity()` on every backend: the open transactions as a tree — the savepoint
//! holding a frame's turn under it, the tasks queued for the turn, statements run.

use std::time::Duration;

use transactional::{atomic, Atomic, Error, TaskGroup};
use transactional_tests::{insert, TestDb, KINDS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_shows_the_open_chain_and_the_queue() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let observer = test.db.clone();
        assert!(observer.activity().transactions.is_empty(), "{kind:?}");
        Atomic::new()
            .db(test.db.clone())
            .name("outer")
            .run(async move {
                insert("root").await?;
                let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
                let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<()>();
                let mut group = TaskGroup::new();
                group.spawn(Atomic::new().name("holder").run(async move {
                    insert("held").await?;
                    let _ = opened_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, Error>(())
                }));
                opened_rx.await.unwrap();
                for i in 0..2 {
                    group.spawn(atomic(async move { insert(format!("queued{i}")).await }));
                }
                let mut seen = None;
                for _ in 0..200 {
                    let activity = observer.activity();
                    if activity.transactions.len() == 1
                        && activity.transactions[0].waiting_for_turn == 2
                    {
                        seen = Some(activity);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let activity = seen.unwrap_or_else(|| panic!("{kind:?}: {}", observer.activity()));
                let root = &activity.transactions[0];
                assert_eq!(
                    (root.name, root.depth, root.statements),
                    (Some("outer"), 0, 1)
                );
                assert!(root
                    .opened_at
                    .as_deref()
                    .is_some_and(|at| at.contains("activity.rs")));
                let open = root
                    .open
                    .as_deref()
                    .expect("the holder holds the root's turn");
                assert_eq!(
                    (open.name, open.depth, open.statements),
                    (Some("holder"), 1, 1)
                );
                assert!(open.open.is_none());
                let text = activity.to_string();
                assert!(text.starts_with("transaction #"), "{text}");
                assert!(
                    text.contains("`outer`") && text.contains("2 waiting for its turn"),
                    "{text}"
                );
                assert!(
                    text.contains("\n  savepoint #") && text.contains("`holder`"),
                    "{text}"
                );
                let _ = release_tx.send(());
                group.join_all().await?;
                Ok::<_, Error>(())
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(test.db.activity().transactions.is_empty(), "{kind:?}");
        assert_eq!(test.db.activity().to_string(), "no open transactions");
        test.assert_healthy().await;
    }
}
