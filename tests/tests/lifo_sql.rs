//! The SQL actually sent is strictly LIFO, on every backend. The library's `transactional::sql`
//! trace (one `tracing` event per statement, in the order the database receives them)
//! records every statement while a 3-level tree with concurrency at each level runs (some
//! frames fail and roll back); replaying it against a stack checks that every SAVEPOINT/
//! RELEASE/ROLLBACK TO acts on the top of the stack and every write runs in the frame at the
//! top.

use std::sync::{Mutex, OnceLock};

use transactional::{transactional, Atomic, Database, Error, TaskGroup};
use transactional_tests::{TestDb, KINDS};

/// Each node writes `(node, depth)`; depth is in the SQL text so the trace shows it.
async fn write(node: &str, depth: usize) -> Result<(), Error> {
    let tx = transactional::current()?;
    assert_eq!(tx.depth() as usize, depth, "{node} runs in the wrong frame");
    tx.execute(
        &format!("INSERT INTO log(node, depth) VALUES (?1, {depth})"),
        (node,),
    )
    .await?;
    tokio::task::yield_now().await;
    Ok(())
}

fn fails(node: &str) -> bool {
    // Deterministic, spread over the tree: some leaves and one middle node fail.
    node.ends_with(".1.0") || node == "0.2" || node.ends_with(".2.1")
}

#[transactional]
async fn leaf(node: String) -> Result<(), Error> {
    write(&node, 3).await?;
    if fails(&node) {
        return Err(Error::Unsupported(format!("{node} fails on purpose")));
    }
    write(&node, 3).await
}

#[transactional]
async fn middle(node: String) -> Result<(), Error> {
    write(&node, 2).await?;
    // Two leaves concurrently in one task (join!), and the frame's own write racing them.
    let (a, b, own) = tokio::join!(
        leaf(format!("{node}.0")),
        leaf(format!("{node}.1")),
        write(&node, 2)
    );
    own?;
    let _ = (a, b); // a failed leaf is this frame's business: it goes on
    let mut group: TaskGroup<(), Error> = TaskGroup::new();
    let n = node.clone();
    group.spawn(async move { leaf(format!("{n}.2")).await.or(Ok(())) });
    group.join_all().await?;
    if fails(&node) {
        return Err(Error::Unsupported(format!("{node} fails on purpose")));
    }
    Ok(())
}

#[transactional]
async fn top(node: String) -> Result<(), Error> {
    write(&node, 1).await?;
    let mut group: TaskGroup<(), Error> = TaskGroup::new();
    for i in 0..3 {
        let child = format!("{node}.{i}");
        group.spawn(async move { middle(child).await.or(Ok(())) });
    }
    group.join_all().await?;
    write(&node, 1).await
}

#[transactional(db = db)]
async fn tree(db: &Database) -> Result<(), Error> {
    write("root", 0).await?;
    let mut group: TaskGroup<(), Error> = TaskGroup::new();
    for i in 0..3 {
        group.spawn(top(i.to_string()));
    }
    group.join_all().await?;
    Ok(())
}

/// Replays the trace; returns the number of savepoints seen.
fn check_lifo(trace: &[String]) -> usize {
    let mut stack: Vec<usize> = Vec::new(); // depths of the open savepoints
    let mut in_tx = false;
    let mut savepoints = 0;
    let mut last_rollback_to: Option<usize> = None;
    for (i, sql) in trace.iter().enumerate() {
        let at = || format!("statement {i} `{sql}` with savepoints {stack:?}");
        let depth_of = |prefix: &str| -> usize {
            sql[prefix.len()..]
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad name in {sql}"))
        };
        if sql.starts_with("BEGIN") {
            assert!(!in_tx, "nested BEGIN: {}", at());
            in_tx = true;
        } else if sql == "COMMIT" || sql == "ROLLBACK" {
            assert!(
                stack.is_empty(),
                "transaction ended over open savepoints: {}",
                at()
            );
            in_tx = false;
        } else if let Some(rest) = sql.strip_prefix("SAVEPOINT sp_") {
            let d: usize = rest.parse().expect("depth");
            assert_eq!(d, stack.len() + 1, "savepoint not on top: {}", at());
            assert!(in_tx);
            stack.push(d);
            savepoints += 1;
        } else if sql.starts_with("ROLLBACK TO sp_") {
            let d = depth_of("ROLLBACK TO sp_");
            assert_eq!(
                stack.last(),
                Some(&d),
                "ROLLBACK TO not of the top: {}",
                at()
            );
            last_rollback_to = Some(d);
            continue;
        } else if sql.starts_with("RELEASE sp_") {
            let d = depth_of("RELEASE sp_");
            assert_eq!(stack.last(), Some(&d), "RELEASE not of the top: {}", at());
            stack.pop();
        } else if sql.starts_with("INSERT INTO log") {
            let depth: usize = sql
                .rsplit(", ")
                .next()
                .and_then(|s| s.trim_end_matches(')').parse().ok())
                .expect("depth literal");
            assert_eq!(depth, stack.len(), "write outside the top frame: {}", at());
        }
        assert!(
            last_rollback_to.is_none() || sql.starts_with("RELEASE"),
            "ROLLBACK TO not followed by its RELEASE"
        );
        last_rollback_to = None;
    }
    assert!(
        stack.is_empty() && !in_tx,
        "trace ends inside a transaction"
    );
    savepoints
}

/// The statements of the `transactional::sql` trace, per session, while recording.
#[derive(Default)]
struct Recorder {
    on: std::sync::atomic::AtomicBool,
    sessions: Mutex<std::collections::BTreeMap<u64, Vec<String>>>,
}

/// A subscriber that keeps only the `transactional::sql` events (installed process-wide,
/// so that every worker thread reports to it).
struct SqlTrace(&'static Recorder);

impl tracing::Subscriber for SqlTrace {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "transactional::sql"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if !self.0.on.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        #[derive(Default)]
        struct Fields {
            session: u64,
            sql: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "session" {
                    self.session = value;
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "sql" {
                    self.sql = value.to_owned();
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "sql" {
                    self.sql = format!("{value:?}");
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut sessions = self.0.sessions.lock().unwrap();
        sessions.entry(fields.session).or_default().push(fields.sql);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder: &'static Recorder = Box::leak(Box::default());
        tracing::subscriber::set_global_default(SqlTrace(recorder))
            .expect("the only subscriber of this test binary");
        recorder
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoint_sql_is_strictly_lifo() {
    let recorder = recorder();
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let db = test.db.clone();
        Atomic::new()
            .db(db.clone())
            .run(async {
                transactional::current()?
                    .execute_batch("CREATE TABLE log(node TEXT, depth INTEGER)")
                    .await
            })
            .await
            .unwrap();
        for round in 0..20 {
            recorder.sessions.lock().unwrap().clear();
            recorder.on.store(true, std::sync::atomic::Ordering::SeqCst);
            tree(&db).await.unwrap();
            recorder
                .on
                .store(false, std::sync::atomic::Ordering::SeqCst);
            let sessions = recorder.sessions.lock().unwrap().clone();
            // One tree, one transaction: all of its statements went through one session.
            let trees: Vec<&Vec<String>> = sessions
                .values()
                .filter(|trace| trace.iter().any(|sql| sql.starts_with("BEGIN")))
                .collect();
            assert_eq!(trees.len(), 1, "{kind:?} round {round}: {sessions:#?}");
            let savepoints = check_lifo(trees[0]);
            // 3 tops + 9 middles + 27 leaves.
            assert_eq!(savepoints, 39, "{kind:?} round {round}");
        }
        test.assert_healthy().await;
    }
}
