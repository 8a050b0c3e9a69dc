//! The SQL actually sent is strictly LIFO. A trace hook records every statement on the writer
//! connection while a 3-level tree with concurrency at each level runs (some frames fail and
//! roll back); replaying the trace against a stack checks that every SAVEPOINT/RELEASE/
//! ROLLBACK TO acts on the top of the stack and every write runs in the frame at the top.

use std::sync::{Arc, Mutex};

use transactional::rusqlite::trace::{TraceEvent, TraceEventCodes};
use transactional::{transactional, Atomic, Database, Error, TaskGroup};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoint_sql_is_strictly_lifo() {
    let trace = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = trace.clone();
    let recording = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on = recording.clone();
    let db = Database::builder()
        .on_open(move |conn| {
            let sink = sink.clone();
            let on = on.clone();
            conn.trace_v2(
                TraceEventCodes::SQLITE_TRACE_STMT,
                Some(move |event: TraceEvent<'_>| {
                    if let TraceEvent::Stmt(stmt, _) = event {
                        if on.load(std::sync::atomic::Ordering::Relaxed) {
                            sink.lock().unwrap().push(stmt.sql().into_owned());
                        }
                    }
                }),
            )
        })
        .open_in_memory()
        .await
        .unwrap();
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
        trace.lock().unwrap().clear();
        recording.store(true, std::sync::atomic::Ordering::Relaxed);
        tree(&db).await.unwrap();
        recording.store(false, std::sync::atomic::Ordering::Relaxed);
        let trace = trace.lock().unwrap().clone();
        let savepoints = check_lifo(&trace);
        // 3 tops + 9 middles + 27 leaves.
        assert_eq!(savepoints, 39, "round {round}");
    }
}
