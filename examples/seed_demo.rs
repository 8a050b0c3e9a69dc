//! The seed scenario, first done the way async ORMs do it, then with `#[transactional]`.
//!
//! Inside one outer transaction, K concurrent tasks each run a nested transaction (a
//! savepoint) that reads a counter and writes it back. Done with plain savepoints on one
//! shared connection, the savepoint stack breaks: `RELEASE a` also releases a sibling's `b`,
//! whose own RELEASE then fails with `no such savepoint`, and rows are lost. Done with
//! `#[transactional]` + `TaskGroup`, the savepoints are taken in turn: zero failures and the
//! exact final table.
//!
//! ```text
//! cargo run --release --example seed_demo -- --tasks 100 --rounds 50 --db seed.db
//! ```

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use transactional::{transactional, Database, Error, TaskGroup};

/// Runs the seed scenario: concurrent nested transactions inside one outer transaction.
#[derive(Parser, Debug)]
struct Args {
    /// Concurrent nested transactions per round.
    #[arg(long, default_value_t = 100)]
    tasks: usize,
    /// Rounds, each one outer transaction.
    #[arg(long, default_value_t = 50)]
    rounds: usize,
    /// SQLite file to use (created; emptied first).
    #[arg(long, default_value = "seed_demo.db")]
    db: PathBuf,
}

/// The nested transaction of each task: read a counter, then insert or update it.
#[transactional]
async fn update_or_create(key: String) -> Result<(), Error> {
    let tx = transactional::current()?;
    let seen = tx
        .query_opt("SELECT val FROM kv WHERE key = ?1", (&key,))
        .await?;
    tokio::task::yield_now().await; // as a real handler would await something here
    match seen {
        Some(row) => {
            tx.execute(
                "UPDATE kv SET val = ?2 WHERE key = ?1",
                (&key, row.get::<i64>(0)? + 1),
            )
            .await?
        }
        None => {
            tx.execute("INSERT INTO kv(key, val) VALUES (?1, 1)", (&key,))
                .await?
        }
    };
    Ok(())
}

/// One round: the outer transaction and its task group.
#[transactional(db = db)]
async fn round(db: &Database, tasks: usize) -> Result<(), Error> {
    let mut group = TaskGroup::new();
    for i in 0..tasks {
        group.spawn(update_or_create(key(i, tasks)));
    }
    group.join_all().await?;
    Ok(())
}

/// Two tasks share each key, so the read-then-write of one can race the other's.
fn key(task: usize, tasks: usize) -> String {
    format!("k{:04}", task % (tasks / 2).max(1))
}

fn expected_table(tasks: usize, rounds: usize) -> BTreeMap<String, i64> {
    let mut table = BTreeMap::new();
    for i in 0..tasks {
        *table.entry(key(i, tasks)).or_insert(0) += rounds as i64;
    }
    table
}

/// What one run measured.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // `main` needs two fields, the test all of them
struct Summary {
    naive: naive::Outcome,
    failures: usize,
    table_exact: bool,
    rows: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let summary = run(&Args::parse()).await?;
    if summary.failures > 0 || !summary.table_exact {
        return Err("the ordered run did not produce the exact table".into());
    }
    Ok(())
}

/// Runs both parts and prints them; the caller decides what counts as failure.
async fn run(args: &Args) -> Result<Summary, Box<dyn std::error::Error>> {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = args.db.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    println!("seed scenario: {} concurrent nested transactions per outer transaction, {} rounds, on {}\n",
        args.tasks, args.rounds, args.db.display());

    let naive = naive::run(&args.db, args.tasks, args.rounds).await?;
    println!("1. plain savepoints on one shared connection (what async ORMs do):");
    println!(
        "   {} of {} nested transactions failed ({} with `no such savepoint`), \
         {} of {} rows wrong or missing after commit",
        naive.failures,
        args.tasks * args.rounds,
        naive.no_such_savepoint,
        naive.wrong_rows,
        naive.expected_rows
    );
    if let Some(trace) = &naive.first_failure {
        println!("   how the first `no such savepoint` happened, as the tasks sent it:");
        for line in trace {
            println!("     {line}");
        }
    }

    let db = Database::open(&args.db).await?;
    transactional::Atomic::new().db(db.clone()).run(async {
        transactional::current()?
            .execute_batch("DROP TABLE IF EXISTS kv; CREATE TABLE kv(key TEXT PRIMARY KEY, val INTEGER NOT NULL)")
            .await
    }).await?;
    let bar = progress_bar(args.rounds, "2. ordered");
    let started = Instant::now();
    let mut failures = 0;
    for _ in 0..args.rounds {
        if let Err(err) = round(&db, args.tasks).await {
            failures += 1;
            bar.suspend(|| eprintln!("   round failed: {err}"));
        }
        bar.inc(1);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let table = read_table(&db).await?;
    let expected = expected_table(args.tasks, args.rounds);
    let table_exact = table == expected;
    println!("\n2. #[transactional] + TaskGroup (ordered savepoints):");
    println!(
        "   {failures} failed rounds; final table {}",
        if table_exact {
            "exactly as expected"
        } else {
            "WRONG"
        }
    );
    print_table(&table);

    let ops = args.tasks * args.rounds;
    println!("\n   {:<24} {:>10}", "tasks per round", args.tasks);
    println!("   {:<24} {:>10}", "rounds", args.rounds);
    println!("   {:<24} {:>10}", "nested transactions", ops);
    println!("   {:<24} {:>10}", "failures", failures);
    println!("   {:<24} {:>10}", "rows", table.len());
    println!(
        "   {:<24} {:>10.1}",
        "time (ms)",
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "   {:<24} {:>10.2}",
        "µs per nested tx",
        micros_per(elapsed, ops)
    );
    println!("\n   the database's counters (Database::stats):");
    for line in db.stats().to_string().lines() {
        println!("   {line}");
    }
    Ok(Summary {
        naive,
        failures,
        table_exact,
        rows: table.len(),
    })
}

/// A bar for the rounds on a terminal; hidden when the output is piped or redirected, so a
/// log or `| less` gets only the result lines.
fn progress_bar(rounds: usize, label: &'static str) -> ProgressBar {
    if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(rounds as u64).with_prefix(label);
    bar.set_style(
        ProgressStyle::with_template("   {prefix} [{bar:40}] {pos}/{len} rounds  {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

async fn read_table(db: &Database) -> Result<BTreeMap<String, i64>, Error> {
    transactional::Atomic::new()
        .db(db.clone())
        .read_only(true)
        .run(async {
            let rows = transactional::current()?
                .query("SELECT key, val FROM kv ORDER BY key", ())
                .await?;
            rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
        })
        .await
}

fn print_table(table: &BTreeMap<String, i64>) {
    let shown: Vec<String> = table
        .iter()
        .take(6)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let more = table.len().saturating_sub(shown.len());
    println!(
        "   kv: {}{}",
        shown.join(" "),
        if more > 0 {
            format!(" … and {more} more rows")
        } else {
            String::new()
        }
    );
}

fn micros_per(elapsed: Duration, ops: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / ops.max(1) as f64
}

/// The unordered way: every task opens its own savepoint on the one shared connection.
mod naive {
    use super::*;
    use rusqlite::Connection;

    #[derive(Debug)]
    pub struct Outcome {
        pub failures: usize,
        pub no_such_savepoint: usize,
        pub wrong_rows: usize,
        pub expected_rows: usize,
        pub first_failure: Option<Vec<String>>,
    }

    type Log = Arc<Mutex<Vec<String>>>;

    /// Runs one statement on the shared connection, as an async ORM does: the connection is
    /// locked for the statement only, so other tasks' statements interleave between ours.
    fn sql(
        conn: &Mutex<Connection>,
        log: &Log,
        task: usize,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> rusqlite::Result<Option<i64>> {
        let conn = conn.lock().expect("connection");
        let result = conn.prepare_cached(sql).and_then(|mut stmt| {
            if stmt.readonly() {
                let mut rows = stmt.query(params)?;
                rows.next()?.map(|row| row.get(0)).transpose()
            } else {
                stmt.execute(params).map(|_| None)
            }
        });
        let shown = match &result {
            Ok(_) => format!("task {task:>3}: {sql}"),
            Err(e) => format!("task {task:>3}: {sql}  -> error: {e}"),
        };
        log.lock().expect("log").push(shown);
        result
    }

    async fn task(
        conn: Arc<Mutex<Connection>>,
        log: Log,
        task: usize,
        key: String,
    ) -> rusqlite::Result<()> {
        let name = format!("sp_task{task}");
        sql(&conn, &log, task, &format!("SAVEPOINT {name}"), &[])?;
        let seen = sql(
            &conn,
            &log,
            task,
            "SELECT val FROM kv WHERE key = ?1",
            &[&key],
        )?;
        tokio::task::yield_now().await;
        match seen {
            Some(val) => sql(
                &conn,
                &log,
                task,
                "UPDATE kv SET val = ?2 WHERE key = ?1",
                &[&key, &(val + 1)],
            )?,
            None => sql(
                &conn,
                &log,
                task,
                "INSERT INTO kv(key, val) VALUES (?1, 1)",
                &[&key],
            )?,
        };
        tokio::task::yield_now().await;
        sql(&conn, &log, task, &format!("RELEASE {name}"), &[])?;
        Ok(())
    }

    /// Finds the first `no such savepoint` and the four statements that caused it: task X
    /// opened its savepoint, task T opened one after it, X released (taking T's with it),
    /// and T's release failed.
    fn explain_no_such_savepoint(log: &[String]) -> Option<Vec<String>> {
        let failed_at = log.iter().position(|l| l.contains("no such savepoint"))?;
        let failed_task = task_of(&log[failed_at]);
        let opened_at = log[..failed_at]
            .iter()
            .rposition(|l| task_of(l) == failed_task && l.contains(": SAVEPOINT"))?;
        // The release in between whose own savepoint was opened before T's.
        let (released_at, releaser) = log[opened_at..failed_at]
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(": RELEASE") && !l.contains("error"))
            .map(|(i, l)| (opened_at + i, task_of(l)))
            .find(|(_, task)| {
                log[..opened_at]
                    .iter()
                    .any(|l| task_of(l) == *task && l.contains(": SAVEPOINT"))
            })?;
        let releaser_opened_at = log[..opened_at]
            .iter()
            .rposition(|l| task_of(l) == releaser && l.contains(": SAVEPOINT"))?;
        Some(
            [releaser_opened_at, opened_at, released_at, failed_at]
                .iter()
                .map(|&i| log[i].clone())
                .collect(),
        )
    }

    fn task_of(line: &str) -> &str {
        line.split(':').next().unwrap_or_default()
    }

    pub async fn run(
        path: &std::path::Path,
        tasks: usize,
        rounds: usize,
    ) -> rusqlite::Result<Outcome> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; DROP TABLE IF EXISTS kv; CREATE TABLE kv(key TEXT PRIMARY KEY, val INTEGER NOT NULL)")?;
        let conn = Arc::new(Mutex::new(conn));
        let mut failures = 0;
        let mut no_such_savepoint = 0;
        let mut first_failure = None;
        let bar = progress_bar(rounds, "1. unordered");
        for _ in 0..rounds {
            let log: Log = Arc::default();
            conn.lock().expect("connection").execute_batch("BEGIN")?;
            let handles: Vec<_> = (0..tasks)
                .map(|i| tokio::spawn(task(conn.clone(), log.clone(), i, key(i, tasks))))
                .collect();
            for handle in handles {
                if let Err(err) = handle.await.expect("task") {
                    failures += 1;
                    no_such_savepoint += usize::from(err.to_string().contains("no such savepoint"));
                }
            }
            // Commit whatever survived (the ORM's outer transaction ends normally).
            let c = conn.lock().expect("connection");
            if !c.is_autocommit() {
                c.execute_batch("COMMIT")?;
            }
            drop(c);
            if first_failure.is_none() {
                first_failure = explain_no_such_savepoint(&log.lock().expect("log"));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let conn = conn.lock().expect("connection");
        let mut stmt = conn.prepare("SELECT key, val FROM kv")?;
        let table: BTreeMap<String, i64> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let expected = expected_table(tasks, rounds);
        let wrong_rows = expected
            .iter()
            .filter(|(k, v)| table.get(*k) != Some(v))
            .count();
        Ok(Outcome {
            failures,
            no_such_savepoint,
            wrong_rows,
            expected_rows: expected.len(),
            first_failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo end to end with small numbers, arguments parsed as on the command line.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn small_run_is_exact() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("seed.db");
        let args = Args::try_parse_from([
            "seed_demo".as_ref(),
            "--tasks".as_ref(),
            "16".as_ref(),
            "--rounds".as_ref(),
            "5".as_ref(),
            "--db".as_ref(),
            db.as_os_str(),
        ])
        .expect("arguments");
        let summary = run(&args).await.expect("the demo runs");
        assert_eq!(summary.failures, 0, "{summary:?}");
        assert!(summary.table_exact, "{summary:?}");
        assert_eq!(summary.rows, 8);
        // Part 1 is racy by nature: only its bookkeeping is checked.
        assert!(summary.naive.failures <= 16 * 5, "{summary:?}");
        assert!(summary.naive.no_such_savepoint <= summary.naive.failures);
        assert_eq!(summary.naive.expected_rows, 8);
        assert!(summary.naive.wrong_rows <= 8);
    }

    #[test]
    fn defaults_match_the_readme() {
        let args = Args::try_parse_from(["seed_demo"]).expect("arguments");
        assert_eq!((args.tasks, args.rounds), (100, 50));
    }
}
