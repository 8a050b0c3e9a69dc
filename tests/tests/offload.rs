//! `offload`: a heavy statement leaves the executor's other tasks running; and a heavy
//! statement that was not offloaded is logged with its frame. SQLite only: on PostgreSQL a
//! statement never holds an executor thread.
//!
//! Each test runs on a multi-thread runtime with **one** worker, so that a statement holding
//! the worker stops every other task — deterministically, not by timing — and an offloaded
//! one, which hands the worker's tasks to another thread first, does not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use transactional::{Atomic, Error};
use transactional_tests::{LogCapture, TestDb, SQLITE_KINDS};

/// Counts to 400,000 in SQL: a few hundred milliseconds of work on the connection.
const HEAVY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                     WHERE x < 400000) SELECT count(*) FROM c";

fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `HEAVY` in a read-only frame (offloaded as a whole, per statement, or not at all)
/// while a DB-free task ticks every millisecond; how many ticks happened during it.
async fn ticks_during_heavy_read(t: &TestDb, how: &'static str) -> u64 {
    let ticks = Arc::new(AtomicU64::new(0));
    let ticking = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            ticking.fetch_add(1, Ordering::Relaxed);
        }
    });
    // Let the ticker start.
    while ticks.load(Ordering::Relaxed) < 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ticks_seen = ticks.clone();
    let during = Atomic::new()
        .db(t.db.clone())
        .read_only(true)
        .offload(how == "frame")
        .run(async move {
            let tx = transactional::current()?;
            let tx = match how {
                "statement" => tx.offloaded(),
                _ => tx,
            };
            let before = ticks_seen.load(Ordering::Relaxed);
            let n: i64 = tx.query_row(HEAVY, ()).await?.get(0)?;
            assert_eq!(n, 400_000);
            Ok::<_, Error>(ticks_seen.load(Ordering::Relaxed) - before)
        })
        .await
        .unwrap();
    ticker.abort();
    during
}

#[test]
fn an_offloaded_statement_leaves_the_worker_to_other_tasks() {
    for kind in SQLITE_KINDS {
        // In a spawned task, so that the body runs on the worker, beside the ticker.
        let runtime = one_worker();
        runtime.block_on(async {
            tokio::spawn(async move {
                let t = TestDb::new(kind).await;
                let inline = ticks_during_heavy_read(&t, "inline").await;
                let frame = ticks_during_heavy_read(&t, "frame").await;
                let statement = ticks_during_heavy_read(&t, "statement").await;
                // Inline, the only worker runs the statement: the ticker cannot run (one tick may
                // slip in at a cooperative yield before the statement starts).
                assert!(
                    inline <= 1,
                    "{kind:?}: {inline} ticks during an inline statement"
                );
                assert!(
                    frame >= 10,
                    "{kind:?}: {frame} ticks during an offloaded frame"
                );
                assert!(
                    statement >= 10,
                    "{kind:?}: {statement} ticks during Tx::offloaded"
                );
                t.assert_healthy().await;
            })
            .await
            .unwrap();
        });
    }
}

#[test]
fn offload_is_inherited_by_savepoints_and_joined_blocks() {
    one_worker().block_on(async {
        let t = TestDb::new(transactional_tests::Kind::File).await;
        let offloaded = || Ok::<_, Error>(transactional::current()?.is_offloaded());
        let (frame, savepoint) = Atomic::new()
            .db(t.db.clone())
            .offload(true)
            .run(async {
                let savepoint = Atomic::new().run(async { offloaded() }).await?;
                Ok::<_, Error>((offloaded()?, savepoint))
            })
            .await
            .unwrap();
        assert!(frame && savepoint);
        let (before, joined, after) = Atomic::new()
            .db(t.db.clone())
            .run(async {
                let before = offloaded()?;
                let joined = Atomic::new()
                    .propagation(transactional::Propagation::Join)
                    .offload(true)
                    .run(async { offloaded() })
                    .await?;
                Ok::<_, Error>((before, joined, offloaded()?))
            })
            .await
            .unwrap();
        // The joined block's setting ends with it.
        assert_eq!((before, joined, after), (false, true, false));
    });
}

#[test]
fn offload_on_a_current_thread_runtime_runs_inline() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let t = TestDb::new(transactional_tests::Kind::Memory).await;
        let n: i64 = Atomic::new()
            .db(t.db.clone())
            .offload(true)
            .run(async {
                transactional::current()?
                    .query_row("SELECT 41 + 1", ())
                    .await?
                    .get(0)
            })
            .await
            .unwrap();
        assert_eq!(n, 42);
    });
}

#[test]
fn a_heavy_statement_on_an_executor_thread_is_logged_with_its_frame() {
    let captured = LogCapture::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        one_worker().block_on(async {
            let builder =
                transactional::Database::builder().slow_statement(Duration::from_millis(5));
            let t = TestDb::with_builder(transactional_tests::Kind::Memory, builder).await;
            Atomic::new()
                .db(t.db.clone())
                .name("nightly_audit")
                .run(async {
                    let tx = transactional::current()?;
                    tx.query_row(HEAVY, ()).await?;
                    tx.query_row("SELECT 1", ()).await?; // quick: not logged
                    Ok::<_, Error>(())
                })
                .await
                .unwrap();
        })
    });
    let log = captured.text();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("held an executor thread"), "{log}");
    assert!(warnings[0].contains("nightly_audit"), "{log}");
    assert!(warnings[0].contains("offload"), "{log}");
}
