//! `Database::close`, and the drop of the last handle: a complete database file, no lock left
//! behind, and a closed database that refuses new work with a clear error.
//!
//! Conformance (every kind of `KINDS`): a closed database refuses new transactions in every
//! clone, waits for the open ones, names them when they outlast the bound, and refuses to
//! close from inside one of its own transactions. SQLite only: what is left on disk — the
//! WAL folded back into the main file, and the file free for another process at once.

use std::future::Future;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use transactional::{Atomic, Database, Error};
use transactional_tests::{bounded, insert, Kind, TestDb, KINDS};

// ---------------------------------------------------------------------------------------
// Another process: this test binary run again with an environment variable naming the file.
// `#[ignore]`d so that only a parent test runs it.

const CHILD_DB: &str = "TRANSACTIONAL_CLOSE_CHILD_DB";

/// Child: opens the file and writes to it at once, without waiting for a lock (busy timeout
/// 0); prints `wrote` on success, the error otherwise.
#[test]
#[ignore = "run by the file tests below"]
fn child_writes_at_once() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let result = rusqlite::Connection::open(&path).and_then(|conn| {
        conn.busy_timeout(Duration::ZERO)?;
        conn.execute_batch("INSERT INTO kv VALUES ('from_other_process', 1)")
    });
    match result {
        Ok(()) => println!("wrote"),
        Err(e) => println!("failed: {e}"),
    }
}

/// Runs [`child_writes_at_once`] on `path` and returns what it printed.
fn another_process_writes(path: &Path) -> String {
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "child_writes_at_once",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child process");
    // libtest prints `test child_writes_at_once ... ` before the child's own output.
    let stdout = String::from_utf8_lossy(&output.stdout);
    ["wrote", "failed: "]
        .iter()
        .find_map(|word| {
            stdout
                .find(word)
                .map(|at| stdout[at..].lines().next().unwrap_or(""))
        })
        .unwrap_or("the child printed nothing")
        .to_owned()
}

/// Rows of `kv` in a copy of the main database file alone (no `-wal`, no `-shm`), and that
/// copy's integrity check.
fn rows_in_a_copy_of_the_main_file(path: &Path) -> (i64, String) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(path, &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let rows = conn
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    let check = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (rows, check)
}

/// Commits `n` rows, one transaction each, then runs a read-only transaction — which on a
/// file database runs on a reader connection, the one that used to close last.
async fn commit_rows_then_read(db: &Database, n: usize) {
    for i in 0..n {
        Atomic::new()
            .db(db.clone())
            .run(insert(format!("k{i}")))
            .await
            .unwrap();
    }
    let count: i64 = Atomic::new()
        .db(db.clone())
        .read_only(true)
        .run(async {
            transactional::current()?
                .query_row("SELECT count(*) FROM kv", ())
                .await?
                .get(0)
        })
        .await
        .unwrap();
    assert_eq!(count, n as i64);
}

fn assert_file_complete_and_free(path: &Path, rows: i64) {
    let wal = path.with_extension("db-wal");
    assert!(
        !wal.exists(),
        "the WAL was left beside the file ({} bytes)",
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0)
    );
    assert_eq!(
        rows_in_a_copy_of_the_main_file(path),
        (rows, "ok".to_owned()),
        "a copy of the main file alone must hold every committed row"
    );
    assert_eq!(another_process_writes(path), "wrote");
}

// ---------------------------------------------------------------------------------------
// SQLite: the file after `close` and after the last handle is dropped.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_leaves_a_complete_file_that_another_process_writes_at_once() {
    let t = TestDb::new(Kind::File).await;
    let path = t.path.clone().unwrap();
    commit_rows_then_read(&t.db, 20).await;
    let clone = t.db.clone(); // another handle stays alive: close does not wait for drops
    bounded("close", t.db.close()).await.unwrap();
    assert_file_complete_and_free(&path, 20);
    drop(clone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_leaves_a_complete_file_that_another_process_writes_at_once() {
    let t = TestDb::new(Kind::File).await;
    let path = t.path.clone().unwrap();
    commit_rows_then_read(&t.db, 20).await;
    let (db, dir) = t.into_parts();
    drop(db);
    assert_file_complete_and_free(&path, 20);
    drop(dir);
}

// ---------------------------------------------------------------------------------------
// Every kind: what a closed database does.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_database_refuses_new_transactions_in_every_clone() {
    for kind in KINDS {
        let t = TestDb::new(kind).await;
        let clone = t.db.clone();
        assert!(!clone.is_closed());
        bounded("close", t.db.close()).await.unwrap();
        assert!(clone.is_closed(), "{kind:?}");
        let refused = Atomic::new()
            .db(clone.clone())
            .run(insert("after close"))
            .await;
        assert!(
            matches!(refused, Err(Error::Closed(_))),
            "{kind:?}: {refused:?}"
        );
        let text = refused.unwrap_err().to_string();
        assert!(text.contains("is closed"), "{kind:?}: {text}");
        // Closing again is harmless.
        bounded("close again", clone.close()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_the_open_transactions_and_keeps_their_work() {
    for kind in KINDS {
        let t = TestDb::new(kind).await;
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let db = t.db.clone();
        // Set when the body returns, before its COMMIT: close, which returns only once the
        // transaction has ended, must see it. (Whether the spawned task has finished by
        // then is up to the scheduler: it still has to return from `run` and complete.)
        let body_returned = Arc::new(AtomicBool::new(false));
        let returned = body_returned.clone();
        let open = tokio::spawn(async move {
            Atomic::new()
                .db(db)
                .run(async move {
                    insert("in flight").await?;
                    let _ = opened_tx.send(());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    insert("in flight, later").await?;
                    returned.store(true, Ordering::SeqCst);
                    Ok::<_, Error>(())
                })
                .await
        });
        opened.await.unwrap();
        bounded("close", t.db.close()).await.unwrap();
        assert!(
            body_returned.load(Ordering::SeqCst),
            "{kind:?}: close returned before the transaction ended"
        );
        open.await.unwrap().unwrap();
        if kind == Kind::File {
            let (rows, check) = rows_in_a_copy_of_the_main_file(t.path.as_ref().unwrap());
            assert_eq!((rows, check.as_str()), (2, "ok"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_names_the_transactions_that_outlast_its_wait() {
    for kind in KINDS {
        let builder = Database::builder().writer_wait(Duration::from_millis(300));
        let t = TestDb::with_builder(kind, builder).await;
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let db = t.db.clone();
        let open = tokio::spawn(async move {
            Atomic::new()
                .db(db)
                .name("slow_report")
                .run(async move {
                    insert("held").await?;
                    let _ = opened_tx.send(());
                    let _ = released.await;
                    Ok::<_, Error>(())
                })
                .await
        });
        opened.await.unwrap();
        let err = bounded("close", t.db.close()).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Busy { .. }), "{kind:?}: {err:?}");
        assert!(text.contains("slow_report"), "{kind:?}: {text}");
        // Still closed to new work; the open transaction finishes normally.
        assert!(matches!(
            Atomic::new().db(t.db.clone()).run(insert("new")).await,
            Err(Error::Closed(_))
        ));
        release.send(()).unwrap();
        open.await.unwrap().unwrap();
        bounded("close once it has ended", t.db.close())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_inside_its_own_transaction_fails_at_once() {
    for kind in KINDS {
        let t = TestDb::new(kind).await;
        let db = t.db.clone();
        let result = bounded(
            "close inside",
            Atomic::new().db(t.db.clone()).run(async move {
                let err = db.close().await.unwrap_err();
                assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
                assert!(err.to_string().contains("wait for itself"), "{err}");
                insert("still usable").await
            }),
        )
        .await;
        result.unwrap();
        assert!(!t.db.is_closed(), "{kind:?}");
        assert_eq!(t.kv().await.len(), 1, "{kind:?}");
    }
}

/// `close` dropped after its first, second, … poll — at each of its awaits in turn — leaves
/// a database that refuses new work and, once its last handle is dropped, a complete file
/// that another process writes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_dropped_at_any_await_leaves_a_complete_file() {
    for polls in 1.. {
        let t = TestDb::new(Kind::File).await;
        let path = t.path.clone().unwrap();
        commit_rows_then_read(&t.db, 5).await;
        let finished = {
            let mut close = std::pin::pin!(t.db.close());
            let mut seen = 0;
            std::future::poll_fn(|cx| match close.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(Some(result)),
                Poll::Pending => {
                    seen += 1;
                    match seen >= polls {
                        true => Poll::Ready(None), // dropped here
                        false => Poll::Pending,
                    }
                }
            })
            .await
        };
        assert!(t.db.is_closed(), "closed from its first poll");
        assert!(
            matches!(
                Atomic::new().db(t.db.clone()).run(insert("late")).await,
                Err(Error::Closed(_))
            ),
            "after {polls} polls"
        );
        let (db, dir) = t.into_parts();
        drop(db);
        // The blocking half of a dropped close may still be finishing: give it a moment.
        let mut written = String::new();
        for _ in 0..50 {
            written = another_process_writes(&path);
            if written == "wrote" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(written, "wrote", "after {polls} polls");
        let (rows, check) = rows_in_a_copy_of_the_main_file(&path);
        assert_eq!((rows, check.as_str()), (6, "ok"), "after {polls} polls"); // 5 + the child's
        drop(dir);
        if let Some(result) = finished {
            // Every await point before this run's last has been a drop point. How many
            // there were is up to the scheduler (the checkpoint thread's join and the
            // closing of the connections run on blocking threads, whose handles may already
            // be done when first polled), so it is not asserted: it once was, and a loaded
            // CI machine saw close finish within 2 polls.
            result.unwrap();
            break;
        }
    }
}
