//! Regression tests, class 2: no wait in the library is unbounded, and a wait on the task's
//! own lock is an error at once (ARCHITECTURE.md §2.6, §6 "timeout bounds the whole call").
//!
//! Every wait here is bounded by `tokio::time::timeout` (or a thread with a deadline): a hang
//! is reported as a failure, never hangs the run.
//!
//! Conformance: defects 4, 5 (A → B → A), 6, 7 (turn), 8 and the bounded wait of a frame's end
//! run on every kind of `KINDS` (defect 4 with `requires_new` on the kinds that allow it
//! there). SQLite-only: defect 5 (own reader: SQLite's reader pool), defect 7 (writer: SQLite's
//! single-writer queue; on PostgreSQL transactions do not queue for a writer) and defect 9
//! (SQLite's busy handler, another process holding the file's locks).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use transactional::{Atomic, Database, Error, Propagation, TaskGroup};
use transactional_tests::{count_kv, eventually, insert, table, Kind, TestDb, KINDS};

/// Runs `fut` for at most `limit`; `None` when it did not finish.
async fn bounded<F: std::future::Future>(limit: Duration, fut: F) -> Option<F::Output> {
    tokio::time::timeout(limit, fut).await.ok()
}

/// A database of `kind` whose turns are waited for at most 200 ms (`turn_wait`).
async fn db_with_short_turn_wait(kind: Kind) -> TestDb {
    TestDb::with_builder(
        kind,
        Database::builder().turn_wait(Duration::from_millis(200)),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Defect 4: a handle to an outer frame used from a task whose current frame is a new root.

/// The shape of defect 4: a transaction on `test` inserts `outer` and opens savepoint
/// `own_savepoint`; in it, `new_root` begins (inserting `first`, if any) and runs a
/// statement through the transaction's handle, whose turn that savepoint holds. Asserts the
/// statement fails with `Error::Deadlock` at once and the transaction commits.
async fn assert_outer_handle_deadlocks_at_once(
    test: &TestDb,
    new_root: Atomic,
    first: Option<&'static str>,
) {
    let outcome = bounded(
        Duration::from_secs(10),
        Atomic::new().db(test.db.clone()).run(async {
            insert("outer").await?;
            let outer = transactional::current()?;
            let inner = Atomic::new()
                .name("own_savepoint")
                .run(async move {
                    new_root
                        .run(async move {
                            if let Some(key) = first {
                                insert(key).await?;
                            }
                            let started = Instant::now();
                            let result = bounded(
                                Duration::from_secs(2),
                                outer.execute("INSERT INTO kv VALUES ('through_outer', 1)", ()),
                            )
                            .await;
                            Ok::<_, Error>((result, started.elapsed()))
                        })
                        .await
                })
                .await?;
            Ok::<_, Error>(inner)
        }),
    )
    .await
    .expect("the transaction hung for 10 s");
    let (result, waited) = outcome.expect("the outer transaction commits");
    let Some(result) = result else {
        panic!("the statement through the outer handle hung for {waited:?}: expected Error::Deadlock at once");
    };
    assert!(
        matches!(result, Err(Error::Deadlock(_))),
        "expected Error::Deadlock, got {result:?}"
    );
    assert!(waited < Duration::from_millis(500), "took {waited:?}");
}

/// Defect 4 (requires_new): inside savepoint S of a transaction R, a `read_only` +
/// `requires_new` root (allowed on a file database: it runs on a reader) uses a `Tx` captured
/// from R. R's turn is held by S — the task's own savepoint — so the statement can never run;
/// the deadlock check only looks at frames below R in the task's current chain, and the
/// current frame is a new root, so it waits forever.
///
/// Expected: `Error::Deadlock` at once (well under a second); R commits without that row.
///
/// On a SQLite file and on PostgreSQL (a second connection); in memory `requires_new` inside
/// a transaction is refused outright (one connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outer_handle_used_inside_a_requires_new_root_is_a_deadlock_not_a_hang() {
    for kind in KINDS.into_iter().filter(|k| *k != Kind::Memory) {
        let test = TestDb::new(kind).await;
        let requires_new = Atomic::new()
            .read_only(true)
            .propagation(Propagation::RequiresNew);
        assert_outer_handle_deadlocks_at_once(&test, requires_new, None).await;
        assert_eq!(test.kv().await, table([("outer", 1)]), "{kind:?}");
        test.assert_healthy().await;
    }
}

/// Defect 4 (another database): the same, when the task's current frame is a transaction on
/// ANOTHER database opened inside savepoint S: a statement through R's handle waits for R's
/// turn, held by S, forever.
///
/// Expected: `Error::Deadlock` at once; both transactions commit their own rows only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outer_handle_used_inside_a_transaction_on_another_database_is_a_deadlock_not_a_hang() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let other = TestDb::new(kind).await;
        let on_other = Atomic::new().db(other.db.clone());
        assert_outer_handle_deadlocks_at_once(&test, on_other, Some("other")).await;
        assert_eq!(test.kv().await, table([("outer", 1)]));
        assert_eq!(other.kv().await, table([("other", 1)]), "{kind:?}");
        other.assert_healthy().await;
        test.assert_healthy().await;
    }
}

// ---------------------------------------------------------------------------------------
// Defect 5: waits for the task's own reader or writer.

/// Defect 5 (own reader): with one reader connection, a `read_only` + `requires_new` block
/// inside a read-only transaction waits for a reader — the one its own outer transaction
/// holds — forever.
///
/// Expected: an error at once (`Error::Deadlock`; `Error::Busy` is accepted), well under a
/// second, with the default `reader_wait`.
///
/// SQLite-only: SQLite's reader pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_requires_new_inside_read_only_with_one_reader_fails_at_once() {
    let test = TestDb::new(Kind::File).await;
    let test = test.reopen_with(Database::builder().readers(1)).await;
    test.exec("INSERT INTO kv VALUES ('committed', 1)")
        .await
        .unwrap();
    let outcome = bounded(
        Duration::from_secs(10),
        Atomic::new()
            .db(test.db.clone())
            .read_only(true)
            .run(async {
                let started = Instant::now();
                let inner = bounded(
                    Duration::from_secs(2),
                    Atomic::new()
                        .read_only(true)
                        .propagation(Propagation::RequiresNew)
                        .run(count_kv()),
                )
                .await;
                Ok::<_, Error>((inner, started.elapsed()))
            }),
    )
    .await
    .expect("the transaction hung for 10 s");
    let (inner, waited) = outcome.expect("the outer read-only transaction ends Ok");
    let Some(inner) = inner else {
        panic!("the inner read-only transaction waited {waited:?} for the reader its own outer transaction holds");
    };
    assert!(
        matches!(inner, Err(Error::Deadlock(_) | Error::Busy { .. })),
        "expected Error::Deadlock (or Busy), got {inner:?}"
    );
    assert!(waited < Duration::from_millis(500), "took {waited:?}");
    assert_eq!(test.kv().await, table([("committed", 1)]));
    test.assert_healthy().await;
}

/// Defect 5 (A → B → A): a transaction on db1, inside it one on db2, inside that a block that
/// names db1 again. The inner db1 block begins an outermost transaction on db1 and waits for
/// db1's writer lock — held by its own outer transaction — until `writer_wait` ends it with
/// `Error::Busy`.
///
/// Expected: the inner db1 block runs as a savepoint in the outer db1 transaction
/// (`depth() >= 1`), promptly, and its row commits with the outer db1 transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_b_a_nesting_across_two_databases_joins_the_outer_transaction() {
    for kind in KINDS {
        let one = TestDb::with_builder(
            kind,
            Database::builder().writer_wait(Duration::from_millis(500)),
        )
        .await;
        let two = TestDb::new(kind).await;
        let (db1, db2) = (one.db.clone(), two.db.clone());
        let started = Instant::now();
        let outcome = bounded(
            Duration::from_secs(10),
            Atomic::new().db(db1.clone()).run(async move {
                insert("a_outer").await?;
                let depth = Atomic::new()
                    .db(db2)
                    .run(async move {
                        insert("b").await?;
                        Atomic::new()
                            .db(db1)
                            .run(async {
                                insert("a_inner").await?;
                                Ok::<_, Error>(transactional::current()?.depth())
                            })
                            .await
                    })
                    .await?;
                Ok::<_, Error>(depth)
            }),
        )
        .await
        .expect("A -> B -> A hung for 10 s");
        let elapsed = started.elapsed();
        let depth = outcome.expect("A -> B -> A commits");
        assert!(
            depth >= 1,
            "{kind:?}: the inner db1 block ran at depth {depth}"
        );
        assert!(
            elapsed < Duration::from_millis(400),
            "{kind:?}: took {elapsed:?}"
        );
        assert_eq!(one.kv().await, table([("a_inner", 1), ("a_outer", 1)]));
        assert_eq!(two.kv().await, table([("b", 1)]));
        one.assert_healthy().await;
        two.assert_healthy().await;
    }
}

// ---------------------------------------------------------------------------------------
// Defect 6: cycles across tasks, bounded by `turn_wait`.

/// Defect 6's ending: a `task` (what kind of) ran a statement in the root while savepoint
/// `holder` awaited it. Asserts it ended in `Error::Busy` naming that savepoint and where it
/// was opened, and the root committed its own row.
async fn assert_task_got_busy_naming_the_holder(
    test: &TestDb,
    task: &str,
    outcome: Option<Result<Result<u64, Error>, Error>>,
) {
    let Some(outcome) = outcome else {
        panic!("hung for 5 s: the {task} task waits for the root's turn held by the savepoint that awaits it");
    };
    let result = outcome.expect("the root commits");
    let Err(Error::Busy { detail, .. }) = &result else {
        panic!("expected Error::Busy naming the holder, got {result:?}")
    };
    assert!(
        detail.contains("holder"),
        "names the holding frame: {detail}"
    );
    assert!(detail.contains("opened at"), "says where: {detail}");
    assert!(
        detail.contains("holes_waits.rs:"),
        "gives the file:line: {detail}"
    );
    assert_eq!(test.kv().await, table([("root", 1)]));
    test.assert_healthy().await;
}

/// Defect 6a: a task spawned with `transactional::spawn` in frame F runs a statement in F
/// while F's turn is held by a later savepoint S of F that awaits the task: a cycle the
/// library cannot see, which hangs silently.
///
/// Expected with `turn_wait(200ms)`: the task's statement fails with `Error::Busy` within a
/// few seconds, naming the holding savepoint (`holder`) and where it was opened; everything
/// then ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_task_awaited_inside_a_later_savepoint_gets_busy_naming_the_holder() {
    for kind in KINDS {
        let test = db_with_short_turn_wait(kind).await;
        let outcome = bounded(
            Duration::from_secs(5),
            Atomic::new().db(test.db.clone()).run(async {
                insert("root").await?;
                let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
                let task = transactional::spawn(async move {
                    let _ = go_rx.await;
                    transactional::current()?
                        .execute("INSERT INTO kv VALUES ('from_task', 1)", ())
                        .await
                });
                Atomic::new()
                    .name("holder")
                    .run(async move {
                        let _ = go_tx.send(());
                        Ok::<_, Error>(task.await.expect("join"))
                    })
                    .await
            }),
        )
        .await;
        assert_task_got_busy_naming_the_holder(&test, "spawned", outcome).await;
    }
}

/// Defect 6b: a plain `tokio::spawn` (no transaction context) uses the root's `Tx` handle
/// while a savepoint of the root awaits it: the statement waits for the root's turn, which
/// the savepoint holds until the task ends — a silent hang.
///
/// Expected with `turn_wait(200ms)`: `Error::Busy` within a few seconds naming the holding
/// savepoint and where it was opened; no hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tokio_task_using_the_roots_handle_gets_busy_naming_the_holder() {
    for kind in KINDS {
        let test = db_with_short_turn_wait(kind).await;
        let outcome = bounded(
            Duration::from_secs(5),
            Atomic::new().db(test.db.clone()).run(async {
                insert("root").await?;
                let tx = transactional::current()?;
                Atomic::new()
                    .name("holder")
                    .run(async move {
                        let task = tokio::spawn(async move {
                            tx.execute("INSERT INTO kv VALUES ('from_plain_task', 1)", ())
                                .await
                        });
                        Ok::<_, Error>(task.await.expect("join"))
                    })
                    .await
            }),
        )
        .await;
        assert_task_got_busy_naming_the_holder(&test, "plain", outcome).await;
    }
}

// ---------------------------------------------------------------------------------------
// Defect 7: `timeout` bounds the whole call, waits included.

/// A block with a 100 ms timeout queued behind a holder that lasts ~1 s ended in
/// `Error::Timeout` within roughly the timeout.
fn assert_timed_out_promptly(limited: &Result<(), Error>, elapsed: Duration) {
    assert!(
        matches!(limited, Err(Error::Timeout(_))),
        "expected Error::Timeout, got {limited:?} after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(600), "took {elapsed:?}");
}

/// Defect 7 (writer): a transaction with a 100 ms timeout, queued behind another transaction
/// that holds the writer for ~1 s, waits the whole second (the timeout only covers the body)
/// and then commits: `Ok` after ~950 ms.
///
/// Expected: `Error::Timeout` within roughly the timeout (< 600 ms), nothing of it committed.
///
/// SQLite-only: SQLite's single-writer queue (PostgreSQL transactions do not wait for each
/// other to begin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_transaction_timeout_covers_the_wait_for_the_writer() {
    let test = TestDb::new(Kind::File).await;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let db = test.db.clone();
    let slow = tokio::spawn(async move {
        Atomic::new()
            .db(db)
            .name("slow")
            .run(async {
                insert("slow").await?;
                let _ = started_tx.send(());
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<(), Error>(())
            })
            .await
    });
    started_rx.await.unwrap();
    let started = Instant::now();
    let limited = bounded(
        Duration::from_secs(5),
        Atomic::new()
            .db(test.db.clone())
            .timeout(Duration::from_millis(100))
            .run(insert("late")),
    )
    .await
    .expect("hung for 5 s");
    let elapsed = started.elapsed();
    slow.await.unwrap().unwrap();
    assert_timed_out_promptly(&limited, elapsed);
    assert_eq!(test.raw_kv().unwrap(), table([("slow", 1)]));
    test.assert_healthy().await;
}

/// Defect 7 (turn): a savepoint with a 100 ms timeout, queued behind a sibling task's open
/// savepoint that lasts ~1 s, waits the whole second and then releases `Ok`.
///
/// Expected: `Error::Timeout` within roughly the timeout (< 600 ms); its row is not
/// committed; the sibling's and the parent's are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_timeout_covers_the_wait_for_the_turn() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let outcome = bounded(
            Duration::from_secs(10),
            Atomic::new().db(test.db.clone()).run(async {
                insert("parent").await?;
                let (started_tx, started_rx) = tokio::sync::oneshot::channel();
                let sibling = transactional::spawn(Atomic::new().name("sibling").run(async {
                    insert("sibling").await?;
                    let _ = started_tx.send(());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok::<(), Error>(())
                }));
                started_rx.await.unwrap();
                let started = Instant::now();
                let limited = Atomic::new()
                    .timeout(Duration::from_millis(100))
                    .run(insert("late"))
                    .await;
                let elapsed = started.elapsed();
                sibling.await.expect("join")?;
                Ok::<_, Error>((limited, elapsed))
            }),
        )
        .await
        .expect("hung for 10 s");
        let (limited, elapsed) = outcome.expect("the parent commits");
        assert_timed_out_promptly(&limited, elapsed);
        assert_eq!(
            test.kv().await,
            table([("parent", 1), ("sibling", 1)]),
            "{kind:?}"
        );
        if let Some(raw) = test.raw_kv() {
            assert_eq!(raw, table([("parent", 1), ("sibling", 1)]), "{kind:?}");
        }
        test.assert_healthy().await;
    }
}

// ---------------------------------------------------------------------------------------
// Defect 8: no dependence on tokio's timer.

/// What a panic said (its `String` or `&str` payload).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Defect 8: on a runtime built without the time driver, contended writers (and contended
/// savepoints) panic inside the library: "A Tokio 1.x context was found, but timers are
/// disabled". The library must not depend on tokio's timer.
///
/// Expected: no panic; every contended transaction commits.
#[test]
fn contended_transactions_work_on_a_runtime_without_the_time_driver() {
    for kind in KINDS.into_iter().filter(|k| k.is_sqlite()) {
        contended_transactions_without_the_time_driver(kind);
    }
}

/// The same on PostgreSQL (split off only to be ignored there until fixed).
#[test]

fn contended_transactions_work_on_a_runtime_without_the_time_driver_postgres() {
    for kind in KINDS.into_iter().filter(|k| !k.is_sqlite()) {
        contended_transactions_without_the_time_driver(kind);
    }
}

fn contended_transactions_without_the_time_driver(kind: Kind) {
    const WRITERS: usize = 8;
    const CHILDREN: usize = 4;
    // The fixture is made on a runtime with timers (PostgreSQL's schema set-up connects with a
    // connect timeout, which tokio-postgres arms on tokio's timer) that stays up meanwhile;
    // the contended transactions run on a runtime without the time driver.
    let fixture_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let test = fixture_rt.block_on(TestDb::new(kind));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let test = std::panic::AssertUnwindSafe(test);
        let outcome = std::panic::catch_unwind(|| {
            let test = &*test;
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            rt.worker_threads(2);
            if !kind.is_sqlite() {
                rt.enable_io(); // a network client needs IO; still no timer
            }
            let rt = rt.build().unwrap(); // no enable_time / enable_all
            rt.block_on(async {
                let mut tasks = Vec::new();
                for w in 0..WRITERS {
                    let db = test.db.clone();
                    tasks.push(tokio::spawn(async move {
                        Atomic::new()
                            .db(db)
                            .run(async move {
                                insert(format!("w{w}")).await?;
                                let mut group = TaskGroup::new();
                                for c in 0..CHILDREN {
                                    group.spawn(transactional::atomic(async move {
                                        insert(format!("w{w}c{c}")).await?;
                                        for _ in 0..5 {
                                            tokio::task::yield_now().await;
                                        }
                                        Ok::<(), Error>(())
                                    }));
                                }
                                group.join_all().await?;
                                for _ in 0..5 {
                                    tokio::task::yield_now().await;
                                }
                                Ok::<(), Error>(())
                            })
                            .await
                    }));
                }
                let mut failures = Vec::new();
                for (w, task) in tasks.into_iter().enumerate() {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => failures.push(format!("writer {w}: {err}")),
                        Err(err) if err.is_panic() => {
                            let msg = panic_message(&*err.into_panic());
                            failures.push(format!("writer {w} panicked: {msg}"));
                        }
                        Err(err) => failures.push(format!("writer {w}: {err}")),
                    }
                }
                let rows = test.kv().await.len();
                (failures, rows)
            })
        });
        let _ = done_tx.send(outcome.map_err(|p| panic_message(&*p)));
    });
    let outcome = done_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{kind:?}: hung for 30 s on a runtime without the time driver"));
    fixture_rt.shutdown_background();
    let (failures, rows) = outcome.unwrap_or_else(|p| panic!("{kind:?}: panicked: {p}"));
    assert!(
        failures.is_empty(),
        "{kind:?}: {} of {WRITERS} contended transactions failed: {failures:#?}",
        failures.len()
    );
    assert_eq!(rows, WRITERS * (CHILDREN + 1), "{kind:?}");
}

// ---------------------------------------------------------------------------------------
// Defect 9: a busy reader must not sleep on an executor thread.

/// Runs `python3` to simulate another process running WAL recovery on `path`: it holds the
/// WAL write and recovery locks of the `-shm` file (POSIX record locks, as SQLite takes them)
/// and marks the WAL index as in need of recovery, for `hold_ms`. Any connection that starts
/// a read meanwhile gets `SQLITE_BUSY_RECOVERY` (it cannot take the locks itself) until the
/// locks go; the WAL file itself is untouched, so the next reader recovers the index from it
/// and no committed data is lost. Panics when python3 is not available (CI checks for it).
///
/// (A raw connection with `locking_mode = EXCLUSIVE` cannot make the file unreadable to the
/// library's readers: in WAL mode the library's writer holds a SHARED lock on the database
/// file for as long as it is open, so no other connection can take an exclusive lock, and
/// within one process SQLite grants SHARED locks without asking the OS.)
fn simulate_recovery_in_another_process(
    path: &std::path::Path,
    hold_ms: u64,
) -> std::process::Child {
    let shm = format!("{}-shm", path.display());
    let script = format!(
        "import fcntl, time, sys\n\
         f = open({shm:?}, 'r+b')\n\
         fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120)\n\
         fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 122)\n\
         f.seek(0); f.write(bytes(136)); f.flush()\n\
         print('locked', flush=True)\n\
         time.sleep({hold})\n",
        hold = hold_ms as f64 / 1000.0
    );
    Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("this test needs python3 to hold the file's locks from another process")
}

/// Defect 9: reader connections keep SQLite's busy timeout, so a read-only transaction that
/// meets a lock held by another process sleeps in SQLite's busy handler on the executor
/// thread, for up to the busy timeout: on a single-threaded runtime nothing else runs
/// meanwhile. (The writer side is covered by faults.rs's
/// `waiting_for_another_process_does_not_block_the_executor`.)
///
/// Expected: the executor keeps running (a ticker ticks); the read succeeds once the lock is
/// gone (or ends in `Error::Busy` after the busy timeout).
///
/// SQLite-only: SQLite's busy handler and file locks.
#[tokio::test(flavor = "current_thread")]
async fn sqlite_a_busy_reader_does_not_block_the_executor() {
    let test = TestDb::new(Kind::File).await;
    test.exec("INSERT INTO kv VALUES ('committed', 1)")
        .await
        .unwrap();
    let path = test.path.clone().unwrap();
    let test = test
        .reopen_with(
            Database::builder()
                .readers(1)
                .busy_timeout(Duration::from_secs(3)),
        )
        .await;
    let mut process = simulate_recovery_in_another_process(&path, 500);
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    assert!(
        lines.by_ref().any(|l| l.unwrap().ends_with("locked")),
        "the other process took the locks"
    );

    let ticks = Arc::new(AtomicU32::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    tokio::task::yield_now().await; // the ticker is running
    let started = Instant::now();
    let read = bounded(Duration::from_secs(10), test.count_read_only())
        .await
        .expect("the read hung for 10 s");
    let waited = started.elapsed();
    ticker.abort();
    let ticks = ticks.load(Ordering::Relaxed);
    assert!(process.wait().unwrap().success());
    assert!(
        matches!(read, Ok(1) | Err(Error::Busy { .. })),
        "the read: {read:?}"
    );
    assert!(
        waited >= Duration::from_millis(300),
        "the read did meet the lock (it returned after {waited:?})"
    );
    // Blocked in SQLite's busy handler, the only thread could not have ticked at all.
    assert!(
        ticks >= 5,
        "the executor ticked only {ticks} times while the reader waited {waited:?}"
    );
    assert_eq!(test.kv().await, table([("committed", 1)]));
    test.assert_healthy().await;
}

// ---------------------------------------------------------------------------------------
// The wait of a frame's end for its children is bounded too.

/// A frame ends only after every savepoint opened under it has ended; a child that never
/// ends (it awaits something that never comes) used to keep its parent's end waiting
/// forever. Expected with `.turn_wait(..)`: the end fails with `Error::Busy` naming the child
/// savepoint and where it was opened; nothing is committed; once the child is gone, the
/// transaction has rolled back and the database works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_whose_child_never_ends_gets_busy_naming_the_child() {
    for kind in KINDS {
        let test = db_with_short_turn_wait(kind).await;
        let started = Instant::now();
        let (child_tx, child_rx) = tokio::sync::oneshot::channel();
        let outer = Atomic::new().db(test.db.clone()).run(async move {
            insert("outer").await?;
            let child = transactional::spawn(Atomic::new().name("stuck_child").run(async {
                insert("child").await?;
                std::future::pending::<()>().await;
                Ok::<_, Error>(())
            }));
            // Let the child open its savepoint, then leave without waiting for it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = child_tx.send(child);
            Ok::<_, Error>(())
        });
        let result = bounded(Duration::from_secs(5), outer)
            .await
            .expect("the end waited for the child forever");
        let Err(Error::Busy { detail, .. }) = &result else {
            panic!("expected Busy naming the child, got {result:?}");
        };
        assert!(detail.contains("stuck_child"), "{detail}");
        assert!(detail.contains("opened at"), "{detail}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // The child goes away: the transaction rolls back behind it.
        child_rx.await.unwrap().abort();
        eventually(Duration::from_secs(1), || async {
            test.kv().await.is_empty()
        })
        .await;
        assert_eq!(test.kv().await, table([]), "{kind:?}");
        test.assert_healthy().await;
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL: a `requires_new` transaction waiting for its own enclosing transaction.

/// PostgreSQL-only (on SQLite `requires_new` inside a write transaction is refused at once:
/// one writer). `requires_new` runs on a second connection; when it writes a row its own
/// enclosing transaction has written (and so locked), it waits for that transaction, which
/// waits for it: the server sees two sessions, not a cycle, and the wait never ends.
///
/// Expected: an error within a bound (like defect 5's `Error::Deadlock`, or `Error::Busy`
/// after a lock wait), never a hang; the enclosing transaction can then roll back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn postgres_requires_new_waiting_for_its_own_enclosing_transaction_is_bounded() {
    for kind in KINDS.into_iter().filter(|k| !k.is_sqlite()) {
        let test = db_with_short_turn_wait(kind).await;
        let outcome = bounded(
            Duration::from_secs(10),
            Atomic::new().db(test.db.clone()).run(async {
                insert("x").await?;
                Atomic::new()
                    .propagation(Propagation::RequiresNew)
                    .run(insert("x"))
                    .await
            }),
        )
        .await;
        let Some(result) = outcome else {
            panic!("requires_new waited 10 s for the row lock its own enclosing transaction holds");
        };
        assert!(
            matches!(&result, Err(Error::Deadlock(why)) if why.contains("requires_new")),
            "{result:?}"
        );
        assert_eq!(test.kv().await, table([]));
        test.assert_healthy().await;
    }
}
