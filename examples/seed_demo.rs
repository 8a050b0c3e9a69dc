//! The seed scenario, first done the way async ORMs do it, then with `#[transactional]`.
//!
//! Inside one outer transaction, K concurrent tasks each run a nested transaction (a
//! savepoint) that reads a counter and writes it back plus one; two tasks share each key.
//! Done with plain savepoints on one shared connection, the savepoint stack breaks: `RELEASE
//! a` also releases a sibling's `b`, whose own RELEASE then fails with `no such savepoint`,
//! and increments are lost. Done with `#[transactional]` + `TaskGroup`, the savepoints are
//! taken in turn: zero failures and the exact final table.
//!
//! ```text
//! cargo run --release --example seed_demo                  # a temporary database file
//! cargo run --release --example seed_demo -- --tasks 1000 --rounds 200 --db seed.db
//! cargo run --release -p transactional-examples --features postgres --example seed_demo \
//!     -- --db postgres://postgres@127.0.0.1:5432/test      # PostgreSQL: seed_demo/postgres.rs
//! ```
//!
//! The README shows this program's output; a test below holds it to what a run prints.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
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
    /// SQLite file to use (created; emptied first; kept), or a `postgres://` URL (built with
    /// `--features postgres`; the demo works in a schema of its own, dropped at exit).
    /// Without it, a file in a new temporary folder, deleted at exit.
    #[arg(long)]
    db: Option<PathBuf>,
}

/// Part 1 and the setup on PostgreSQL; part 2 is [`ordered`], the same code as on SQLite.
#[cfg(feature = "postgres")]
#[path = "seed_demo/postgres.rs"]
mod postgres;

/// `--db` when it names a PostgreSQL server rather than an SQLite file.
fn postgres_url(db: Option<&Path>) -> Option<&str> {
    let db = db?.to_str()?;
    (db.starts_with("postgres://") || db.starts_with("postgresql://")).then_some(db)
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
    format!("k{:04}", task % keys(tasks))
}

fn keys(tasks: usize) -> usize {
    (tasks / 2).max(1)
}

fn expected_table(tasks: usize, rounds: usize) -> BTreeMap<String, i64> {
    let mut table = BTreeMap::new();
    for i in 0..tasks {
        *table.entry(key(i, tasks)).or_insert(0) += rounds as i64;
    }
    table
}

/// The rows of `found` that differ from `expected` (a missing row counts), and the first
/// of them as `key: expected N, found M` — or, when none differs, the first row.
fn compare(expected: &BTreeMap<String, i64>, found: &BTreeMap<String, i64>) -> (usize, String) {
    let shown = |k: &String, v: &i64| {
        let found = found.get(k).map_or("no row".to_owned(), |f| f.to_string());
        format!("{k}: expected {v}, found {found}")
    };
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(v))
        .collect();
    let example = match wrong.first().copied().or(expected.iter().next()) {
        Some((k, v)) => shown(k, v),
        None => "no rows".to_owned(),
    };
    (wrong.len(), example)
}

/// What the demo prints, line by line, each line split into parts that every run prints
/// alike and parts that vary (counts of the racy part 1, times, task numbers), so that a
/// test can hold the README's copy to everything that cannot vary.
#[derive(Default, Debug)]
struct Output {
    lines: Vec<Vec<Part>>,
}

#[derive(Debug, Clone)]
struct Part {
    text: String,
    #[cfg_attr(not(test), allow(dead_code))] // read by the README test only
    varies: bool,
}

fn same(text: impl Into<String>) -> Part {
    Part {
        text: text.into(),
        varies: false,
    }
}

fn varies(text: impl Into<String>) -> Part {
    Part {
        text: text.into(),
        varies: true,
    }
}

impl Output {
    fn line(&mut self, parts: Vec<Part>) {
        println!(
            "{}",
            parts.iter().map(|p| p.text.as_str()).collect::<String>()
        );
        self.lines.push(parts);
    }

    fn text(&mut self, text: impl Into<String>) {
        self.line(vec![same(text)]);
    }
}

/// What one run measured.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // `main` needs two fields, the tests all of them
struct Summary {
    naive: Naive,
    failed_rounds: usize,
    wrong_rows: usize,
    rows: usize,
    output: Output,
}

/// What part 1 saw, on the backend it ran on.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // read by the tests only
enum Naive {
    Sqlite(naive::Outcome),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Outcome),
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let summary = run(&Args::parse()).await?;
    if summary.failed_rounds > 0 || summary.wrong_rows > 0 {
        return Err("the ordered run (part 2) did not produce the exact table".into());
    }
    Ok(())
}

/// Runs both parts and prints them; the caller decides what counts as failure.
async fn run(args: &Args) -> Result<Summary, Box<dyn std::error::Error>> {
    match postgres_url(args.db.as_deref()) {
        #[cfg(feature = "postgres")]
        Some(url) => postgres::run(args, url).await,
        #[cfg(not(feature = "postgres"))]
        Some(_) => Err(
            "`--db postgres://..` names a PostgreSQL server, and this seed_demo was built \
             without PostgreSQL: build it with `--features postgres` (cargo run --release -p \
             transactional-examples --features postgres --example seed_demo -- --db \
             postgres://..)"
                .into(),
        ),
        None => run_sqlite(args).await,
    }
}

/// The demo on an SQLite file.
async fn run_sqlite(args: &Args) -> Result<Summary, Box<dyn std::error::Error>> {
    // Kept until the end of `run_sqlite`: dropping it deletes the temporary folder and its files.
    let mut temporary = None;
    let path = match &args.db {
        Some(path) => {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
            path.clone()
        }
        None => temporary
            .insert(tempfile::tempdir()?)
            .path()
            .join("seed_demo.db"),
    };
    let (tasks, rounds) = (args.tasks, args.rounds);
    let ops = tasks * rounds;
    let expected = expected_table(tasks, rounds);
    let mut out = Output::default();

    intro(&mut out, tasks, rounds, &expected);
    out.text(match &args.db {
        Some(path) => format!("database: {} (kept)", path.display()),
        None => "database: a file in a temporary folder, deleted at exit (--db FILE keeps one)"
            .to_owned(),
    });

    // Part 1.
    let started = Instant::now();
    let naive = naive::run(&path, tasks, rounds).await?;
    let naive_elapsed = started.elapsed();
    let (naive_wrong, naive_example) = compare(&expected, &naive.table);
    out.text("");
    out.line(vec![
        same("1. plain savepoints on one shared connection (what async ORMs do), "),
        varies(millis(naive_elapsed)),
        same(" ms:"),
    ]);
    out.line(vec![
        same("   "),
        varies(naive.failures.to_string()),
        same(format!(" of {ops} nested transactions failed:")),
    ]);
    out.line(vec![
        same("     "),
        varies(format!("{:>5}", naive.no_such_savepoint)),
        same(" with `no such savepoint`: another task's RELEASE had released this task's"),
    ]);
    out.text("           savepoint with its own, which was opened earlier (see the trace below)");
    out.line(vec![
        same("     "),
        varies(format!("{:>5}", naive.unique)),
        same(" with `UNIQUE constraint failed`: both tasks of a key read no row, then both"),
    ]);
    out.text(
        "           inserted one; on the one shared connection the second insert meets the first",
    );
    other_errors(&mut out, &naive.other);
    out.line(vec![
        same("   "),
        varies(naive_wrong.to_string()),
        same(format!(
            " of {} rows wrong or missing after the commit, e.g. ",
            expected.len()
        )),
        varies(naive_example),
    ]);
    out.text("     (an increment is lost, with no error, when a task reads its counter, the key's");
    out.text("     other task writes it meanwhile, and the first writes back its stale value plus");
    out.text("     one; and when a task's insert fails, above)");
    if let Some(trace) = &naive.first_failure {
        out.text("   how the first `no such savepoint` happened, as the tasks sent it:");
        trace_lines(&mut out, trace);
    }

    // Part 2.
    let db = Database::open(&path).await?;
    let part2 = ordered(
        &db,
        "CREATE TABLE kv(key TEXT PRIMARY KEY, val INTEGER NOT NULL)",
        tasks,
        rounds,
        &expected,
        &mut out,
    )
    .await?;

    // Summary: one column per part, every count labelled with what it counts.
    let widths = [10, 12];
    out.text("");
    out.line(table_row(
        "summary",
        [("1. plain", false), ("2. ordered", false)],
        widths,
    ));
    out.line(table_row(
        "nested transactions run",
        [(ops, false), (ops, false)],
        widths,
    ));
    out.line(table_row(
        "nested transactions failed",
        [(naive.failures, true), (part2.failed_rounds * tasks, false)],
        widths,
    ));
    out.line(table_row(
        &format!("rows wrong or missing (of {})", expected.len()),
        [(naive_wrong, true), (part2.wrong_rows, false)],
        widths,
    ));
    out.line(table_row(
        "time (ms)",
        [(millis(naive_elapsed), true), (millis(part2.elapsed), true)],
        widths,
    ));
    out.line(table_row(
        "µs per nested transaction",
        [
            (micros_per(naive_elapsed, ops), true),
            (micros_per(part2.elapsed, ops), true),
        ],
        widths,
    ));
    // Part 1 formats and records every statement for its trace, and commits through
    // rusqlite's defaults: its time says how long the demo took, not what raw savepoints
    // cost. The library against raw rusqlite is the benchmarks' job.
    out.text("   (part 1 also records every statement for its trace: its time is no benchmark;");
    out.text("   `bench-table` in benches/ compares the library with raw rusqlite)");
    stats_lines(&mut out, &db);
    drop(db);
    Ok(Summary {
        naive: Naive::Sqlite(naive),
        failed_rounds: part2.failed_rounds,
        wrong_rows: part2.wrong_rows,
        rows: part2.table.len(),
        output: out,
    })
}

/// The lines that say what the scenario is and what the right table holds.
fn intro(out: &mut Output, tasks: usize, rounds: usize, expected: &BTreeMap<String, i64>) {
    out.text(format!(
        "seed scenario: {rounds} rounds, each one outer transaction in which {tasks} concurrent tasks"
    ));
    out.text("each run one nested transaction (a savepoint): read the counter of its key, then");
    out.text(format!(
        "write it back plus one, or insert it at 1 if there is no row yet. The {tasks} tasks share"
    ));
    let per_key = tasks / expected.len().max(1);
    out.text(if tasks.is_multiple_of(expected.len().max(1)) {
        format!(
            "{} keys, so the right table after the run holds every key at {} ({per_key} tasks × {rounds} rounds).",
            expected.len(),
            per_key * rounds,
        )
    } else {
        format!(
            "{} keys, so the right table after the run holds each key at {rounds} × its number of tasks.",
            expected.len()
        )
    });
}

/// Errors of part 1 of no kind it explains: not seen in practice, printed so that nothing is
/// hidden if it happens.
fn other_errors(out: &mut Output, other: &BTreeMap<String, usize>) {
    for (message, count) in other {
        out.line(vec![
            same("     "),
            varies(format!("{count:>5}")),
            same(format!(" with another error: {message}")),
        ]);
    }
}

fn trace_lines(out: &mut Output, trace: &[String]) {
    for line in trace {
        out.line(vec![same("     "), varies(line.as_str())]);
    }
}

/// What part 2 measured.
struct Ordered {
    failed_rounds: usize,
    wrong_rows: usize,
    table: BTreeMap<String, i64>,
    elapsed: Duration,
}

/// Part 2, the same on every backend: `kv` made afresh by `create`, then the rounds through
/// `#[transactional]` + `TaskGroup`, and what they left.
async fn ordered(
    db: &Database,
    create: &str,
    tasks: usize,
    rounds: usize,
    expected: &BTreeMap<String, i64>,
    out: &mut Output,
) -> Result<Ordered, Error> {
    let ddl = format!("DROP TABLE IF EXISTS kv; {create}");
    transactional::Atomic::new()
        .db(db.clone())
        .run(async { transactional::current()?.execute_batch(&ddl).await })
        .await?;
    let bar = progress_bar(rounds, "2. ordered");
    let started = Instant::now();
    let mut failed_rounds = 0;
    for _ in 0..rounds {
        if let Err(err) = round(db, tasks).await {
            failed_rounds += 1;
            bar.suspend(|| eprintln!("   round failed: {err}"));
        }
        bar.inc(1);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let table = read_table(db).await?;
    let (wrong_rows, example) = compare(expected, &table);
    // A failed round rolls back whole: its tasks count as failed nested transactions.
    let failed_nested = failed_rounds * tasks;
    let ops = tasks * rounds;
    out.text("");
    out.line(vec![
        same("2. #[transactional] + TaskGroup (ordered savepoints), "),
        varies(millis(elapsed)),
        same(" ms:"),
    ]);
    out.text(format!(
        "   {failed_nested} of {ops} nested transactions failed ({failed_rounds} of {rounds} rounds)"
    ));
    out.text(format!(
        "   {wrong_rows} of {} rows wrong or missing after the commit, e.g. {example}",
        expected.len()
    ));
    Ok(Ordered {
        failed_rounds,
        wrong_rows,
        table,
        elapsed,
    })
}

/// A line of the summary: its label, then one right-aligned cell per column, each marked as
/// printed alike by every run or not.
fn table_row<const N: usize>(
    label: &str,
    cells: [(impl std::fmt::Display, bool); N],
    widths: [usize; N],
) -> Vec<Part> {
    let mut parts = vec![same(format!("   {label:<34}"))];
    for ((cell, varying), width) in cells.into_iter().zip(widths) {
        parts.push(Part {
            text: format!("{cell:>width$}"),
            varies: varying,
        });
    }
    parts
}

/// The end of the output: part 2's database counters.
fn stats_lines(out: &mut Output, db: &Database) {
    out.text("");
    out.text("   part 2's database counters (Database::stats):");
    for line in db.stats().to_string().lines() {
        out.line(vec![same("   "), varies(line)]);
    }
}

fn millis(elapsed: Duration) -> String {
    format!("{:.1}", elapsed.as_secs_f64() * 1e3)
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

/// Microseconds per nested transaction, as the summary shows them.
fn micros_per(elapsed: Duration, ops: usize) -> String {
    format!("{:.2}", elapsed.as_secs_f64() * 1e6 / ops.max(1) as f64)
}

/// The unordered way: every task opens its own savepoint on the one shared connection.
mod naive {
    use super::*;
    use rusqlite::Connection;

    #[derive(Debug)]
    pub struct Outcome {
        /// Nested transactions that ended in an error.
        pub failures: usize,
        /// ... of which with `no such savepoint`,
        pub no_such_savepoint: usize,
        /// ... with `UNIQUE constraint failed`,
        pub unique: usize,
        /// ... and with any other error, by message.
        pub other: BTreeMap<String, usize>,
        /// The table after the last round's commit.
        pub table: BTreeMap<String, i64>,
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

    /// Finds the first release that failed with `error` (`no such savepoint`; PostgreSQL's
    /// `does not exist`) and the four statements that caused it: task X opened its
    /// savepoint, task T opened one after it, X released (taking T's with it), and T's
    /// release failed.
    pub fn explain_lost_savepoint(log: &[String], error: &str) -> Option<Vec<String>> {
        let failed_at = log
            .iter()
            .position(|l| l.contains(": RELEASE") && l.contains(error))?;
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
        let (mut failures, mut no_such_savepoint, mut unique) = (0, 0, 0);
        let mut other = BTreeMap::new();
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
                    let message = err.to_string();
                    if message.contains("no such savepoint") {
                        no_such_savepoint += 1;
                    } else if message.contains("UNIQUE constraint failed") {
                        unique += 1;
                    } else {
                        *other.entry(message).or_insert(0) += 1;
                    }
                }
            }
            // Commit whatever survived (the ORM's outer transaction ends normally).
            let c = conn.lock().expect("connection");
            if !c.is_autocommit() {
                c.execute_batch("COMMIT")?;
            }
            drop(c);
            if first_failure.is_none() {
                first_failure =
                    explain_lost_savepoint(&log.lock().expect("log"), "no such savepoint");
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let conn = conn.lock().expect("connection");
        let mut stmt = conn.prepare("SELECT key, val FROM kv")?;
        let table: BTreeMap<String, i64> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(Outcome {
            failures,
            no_such_savepoint,
            unique,
            other,
            table,
            first_failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo end to end with small numbers and `--db`, arguments parsed as on the
    /// command line.
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
        assert_eq!(summary.failed_rounds, 0, "{summary:?}");
        assert_eq!(summary.wrong_rows, 0, "{summary:?}");
        assert_eq!(summary.rows, 8);
        assert!(db.exists(), "--db keeps the file");
        // Part 1 is racy by nature: only its bookkeeping is checked.
        #[allow(irrefutable_let_patterns)] // without the `postgres` feature
        let Naive::Sqlite(naive) = &summary.naive
        else {
            panic!("--db FILE runs on SQLite: {summary:?}")
        };
        assert!(naive.failures <= 16 * 5, "{summary:?}");
        assert_eq!(
            naive.no_such_savepoint + naive.unique + naive.other.values().sum::<usize>(),
            naive.failures
        );
        assert!(naive.table.len() <= 8);
    }

    /// The demo end to end on PostgreSQL with small numbers, in a schema of its own that it
    /// drops at the end, when `DATABASE_URL` names a server (skipped without it).
    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn small_run_on_postgres_is_exact() {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            eprintln!("DATABASE_URL is not set: the seed demo on PostgreSQL is skipped");
            return;
        };
        let args = Args::try_parse_from([
            "seed_demo",
            "--tasks",
            "16",
            "--rounds",
            "5",
            "--db",
            url.as_str(),
        ])
        .expect("arguments");
        let summary = run(&args).await.expect("the demo runs on PostgreSQL");
        assert_eq!(summary.failed_rounds, 0, "{summary:?}");
        assert_eq!(summary.wrong_rows, 0, "{summary:?}");
        assert_eq!(summary.rows, 8);
        let Naive::Postgres(naive) = &summary.naive else {
            panic!("--db postgres://.. runs on PostgreSQL: {summary:?}")
        };
        // Part 1 is racy, but one task's RELEASE taking a later sibling's savepoint with it
        // happens in every round that interleaves at all.
        let per_task = &naive.per_task;
        assert!(
            per_task.failures > 0,
            "part 1 showed no failure: {summary:?}"
        );
        for variant in [&naive.per_task, &naive.shared] {
            assert!(variant.failures <= 16 * 5, "{summary:?}");
            assert_eq!(
                variant.does_not_exist
                    + variant.aborted
                    + variant.unique
                    + variant.other.values().sum::<usize>(),
                variant.failures,
                "{summary:?}"
            );
            assert!(variant.rolled_back_rounds <= 5, "{summary:?}");
            assert_eq!(variant.table.len(), 8, "every key is there from the start");
        }
        assert!(
            !postgres::schema_exists(&url)
                .await
                .expect("ask for the schema"),
            "the demo drops its schema"
        );
    }

    /// Without the feature, a PostgreSQL URL is refused with the way to build it in.
    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn postgres_url_without_the_feature_says_how_to_build() {
        let args = Args::try_parse_from([
            "seed_demo",
            "--db",
            "postgres://postgres@127.0.0.1:5432/test",
        ])
        .expect("arguments");
        let err = run(&args).await.expect_err("no PostgreSQL in this build");
        assert!(err.to_string().contains("--features postgres"), "{err}");
    }

    #[test]
    fn defaults_match_the_readme() {
        let args = Args::try_parse_from(["seed_demo"]).expect("arguments");
        assert_eq!((args.tasks, args.rounds, args.db), (100, 50, None));
    }

    /// Whether `shown` (a line of the README) is `printed` with any text in place of the
    /// parts that vary (at least one character each, so a part cannot just be left out).
    fn shows(shown: &str, printed: &[Part]) -> bool {
        match printed.split_first() {
            None => shown.is_empty(),
            Some((part, rest)) if !part.varies => shown
                .strip_prefix(part.text.as_str())
                .is_some_and(|after| shows(after, rest)),
            Some((_, rest)) => shown
                .char_indices()
                .skip(1)
                .map(|(i, _)| i)
                .chain([shown.len()])
                .filter(|&i| i > 0)
                .any(|i| shows(&shown[i..], rest)),
        }
    }

    #[test]
    fn shows_holds_fixed_parts_and_lets_varying_ones_differ() {
        let printed = [same("a "), varies("12"), same(" of 50")];
        assert!(shows("a 12 of 50", &printed));
        assert!(shows("a 4733 of 50", &printed));
        assert!(!shows("a 12 of 5000", &printed));
        assert!(!shows("a  of 50", &printed));
        assert!(!shows("b 12 of 50", &printed));
    }

    /// The README's output block under "The problem" is what `cargo run --release --example
    /// seed_demo` prints (the same default arguments, the temporary file), line for line:
    /// equal wherever every run prints the same, anything where the demo marks a part as
    /// varying (part 1's counts and trace, times, the counters).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn readme_shows_what_the_demo_prints() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let shown: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("seed scenario:"))
            .take_while(|l| *l != "```")
            .collect();
        assert!(
            !shown.is_empty(),
            "the README shows the demo's output in a block starting with `seed scenario:`"
        );

        let args = Args::try_parse_from(["seed_demo"]).expect("the README's arguments");
        let summary = run(&args).await.expect("the demo runs");
        let printed = &summary.output.lines;
        for (i, (shown, printed)) in shown.iter().zip(printed).enumerate() {
            let text: String = printed.iter().map(|p| p.text.as_str()).collect();
            assert!(
                shows(shown.trim_end(), printed),
                "README line {} of the demo's output differs from what the demo prints\n  \
                 README: {shown}\n  printed: {text}\n  (varying parts: {:?})",
                i + 1,
                printed
                    .iter()
                    .filter(|p| p.varies)
                    .map(|p| p.text.as_str())
                    .collect::<Vec<_>>()
            );
        }
        assert_eq!(
            shown.len(),
            printed.len(),
            "the README shows {} lines of the demo's output, the demo prints {}",
            shown.len(),
            printed.len()
        );
    }
}
