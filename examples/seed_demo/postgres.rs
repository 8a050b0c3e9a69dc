//! The seed demo on PostgreSQL (`--db postgres://..`, feature `postgres`).
//!
//! Part 1 shares one raw tokio-postgres client between the tasks of a round, inside one
//! transaction, twice: with a savepoint name per task, and with the one name a depth counter
//! gives every savepoint at the same depth. Part 2 is the library code of `seed_demo.rs`
//! unchanged. Everything happens in a schema of this process's own, `seed_demo_<pid>`,
//! dropped at the end, so that runs never meet.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};
use transactional::Database;

use super::naive::explain_lost_savepoint;
use super::{
    compare, expected_table, intro, key, micros_per, millis, ordered, other_errors, progress_bar,
    same, stats_lines, table_row, trace_lines, varies, Args, Naive, Output, Summary,
};

/// The table, as part 1 and part 2 create it.
const KV: &str = "CREATE TABLE kv(key TEXT PRIMARY KEY, val BIGINT NOT NULL)";
const SELECT: &str = "SELECT val FROM kv WHERE key = $1";
const UPDATE: &str = "UPDATE kv SET val = $2 WHERE key = $1";
const INSERT: &str = "INSERT INTO kv(key, val) VALUES ($1, 1)";

/// The savepoint name of every task in part 1b: the name sqlx's depth counter gives a
/// savepoint at depth 1, whichever task opens it.
const SHARED_NAME: &str = "_sqlx_savepoint_1";

/// What part 1 saw, for each way of naming the savepoints.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // read by the tests only (and by `report`, a variant)
pub struct Outcome {
    /// 1a: `SAVEPOINT sp_task<N>`, a name per task.
    pub per_task: Variant,
    /// 1b: `SAVEPOINT _sqlx_savepoint_1` for every task.
    pub shared: Variant,
}

#[derive(Debug, Default)]
pub struct Variant {
    /// Nested transactions that ended in an error.
    pub failures: usize,
    /// ... of which with `savepoint "…" does not exist`,
    pub does_not_exist: usize,
    /// ... with `current transaction is aborted`,
    pub aborted: usize,
    /// ... with a duplicate key,
    pub unique: usize,
    /// ... and with any other error, by message.
    pub other: BTreeMap<String, usize>,
    /// Rounds whose COMMIT the server carried out as a ROLLBACK.
    pub rolled_back_rounds: usize,
    /// Nested transactions that had succeeded in those rounds, and were lost with them.
    pub lost: usize,
    /// The table after the last round.
    pub table: BTreeMap<String, i64>,
    pub elapsed: Duration,
    pub first_failure: Option<Vec<String>>,
}

/// This process's schema.
pub fn schema() -> String {
    format!("seed_demo_{}", std::process::id())
}

/// Whether this process's schema is still there (the test checks that the demo dropped it).
#[cfg_attr(not(test), allow(dead_code))]
pub async fn schema_exists(url: &str) -> Result<bool, tokio_postgres::Error> {
    let client = connect(url).await?;
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema()],
        )
        .await?;
    Ok(row.get::<_, i64>(0) > 0)
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("seed_demo: the connection to PostgreSQL failed: {err}");
        }
    });
    Ok(client)
}

/// Both parts in a schema made for them, dropped afterwards whatever happened.
pub async fn run(args: &Args, url: &str) -> Result<Summary, Box<dyn std::error::Error>> {
    let schema = schema();
    let admin = connect(url).await?;
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await?;
    // Every client and pool of the demo is gone when it returns (DROP SCHEMA waits for the
    // server to end any session of theirs still inside a transaction).
    let result = demo(args, url, &schema).await;
    let dropped = admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await;
    let summary = result?;
    dropped?;
    Ok(summary)
}

async fn demo(args: &Args, url: &str, schema: &str) -> Result<Summary, Box<dyn std::error::Error>> {
    let (tasks, rounds) = (args.tasks, args.rounds);
    let ops = tasks * rounds;
    let expected = expected_table(tasks, rounds);
    let mut out = Output::default();
    // Part 2's database, with the schema on every pooled connection; opened first so that a
    // wrong URL fails before anything runs, and for its label, which leaves out a password.
    let set_path = format!("SET search_path TO {schema}");
    let db = Database::postgres(url)
        .on_connect(move |client| {
            let set_path = set_path.clone();
            Box::pin(async move { client.batch_execute(&set_path).await })
        })
        .connect()
        .await?;
    intro(&mut out, tasks, rounds, &expected);
    out.text(format!(
        "database: PostgreSQL {}, schema {schema} (dropped at exit)",
        db.label()
    ));

    // Part 1.
    let client = connect(url).await?;
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await?;
    let shared = Shared::new(client).await?;
    out.text("");
    out.text(
        "1. plain savepoints on one shared connection (what async ORMs do): one tokio-postgres",
    );
    out.text(
        "   client, which each task takes for one statement at a time. Every key is at 0 before",
    );
    out.text("   the first round here (part 2 starts empty), so every task updates: PostgreSQL");
    out.text(
        "   aborts a transaction at its first error, and on an empty table a duplicate insert",
    );
    out.text("   would end each round before the savepoints go wrong.");
    let per_task = variant(&shared, "1a. per task", tasks, rounds, &expected, |task| {
        format!("sp_task{task}")
    })
    .await?;
    report(
        &mut out,
        &["1a. a savepoint name per task (SAVEPOINT sp_task<N>), "],
        &per_task,
        tasks,
        rounds,
        &expected,
    );
    let one_name = variant(&shared, "1b. shared", tasks, rounds, &expected, |_| {
        SHARED_NAME.to_owned()
    })
    .await?;
    report(
        &mut out,
        &[
            "1b. one savepoint name for every task (SAVEPOINT _sqlx_savepoint_1, the name sqlx's",
            "    depth counter gives a savepoint at depth 1), ",
        ],
        &one_name,
        tasks,
        rounds,
        &expected,
    );
    out.text("     (RELEASE releases the newest savepoint of that name, whichever task opened it,");
    out.text("     so no statement fails; but nothing keeps a task's read and write together: it");
    out.text("     reads its counter, the key's other task writes it meanwhile, and the first");
    out.text("     writes back its stale value plus one)");
    drop(shared);

    // Part 2: the library code, as on SQLite.
    let part2 = ordered(&db, KV, tasks, rounds, &expected, &mut out).await?;

    // Summary: one column per variant of part 1, and part 2.
    let widths = [13, 13, 12];
    let wrong = |v: &Variant| compare(&expected, &v.table).0;
    out.text("");
    out.line(table_row(
        "summary",
        [
            ("1a. per task", false),
            ("1b. shared", false),
            ("2. ordered", false),
        ],
        widths,
    ));
    out.line(table_row(
        "nested transactions run",
        [(ops, false), (ops, false), (ops, false)],
        widths,
    ));
    out.line(table_row(
        "nested transactions failed",
        [
            (per_task.failures, true),
            (one_name.failures, true),
            (part2.failed_rounds * tasks, false),
        ],
        widths,
    ));
    out.line(table_row(
        "  succeeded, then rolled back",
        [(per_task.lost, true), (one_name.lost, true), (0, false)],
        widths,
    ));
    out.line(table_row(
        &format!("rounds rolled back (of {rounds})"),
        [
            (per_task.rolled_back_rounds, true),
            (one_name.rolled_back_rounds, true),
            (part2.failed_rounds, false),
        ],
        widths,
    ));
    out.line(table_row(
        &format!("rows wrong or missing (of {})", expected.len()),
        [
            (wrong(&per_task), true),
            (wrong(&one_name), true),
            (part2.wrong_rows, false),
        ],
        widths,
    ));
    out.line(table_row(
        "time (ms)",
        [
            (millis(per_task.elapsed), true),
            (millis(one_name.elapsed), true),
            (millis(part2.elapsed), true),
        ],
        widths,
    ));
    out.line(table_row(
        "µs per nested transaction",
        [
            (micros_per(per_task.elapsed, ops), true),
            (micros_per(one_name.elapsed, ops), true),
            (micros_per(part2.elapsed, ops), true),
        ],
        widths,
    ));
    out.text("   (part 1 records every statement for its trace and sends one at a time: its time");
    out.text(
        "   is no benchmark; `bench-pg` in benches/ compares the library with raw tokio-postgres)",
    );
    stats_lines(&mut out, &db);
    db.close().await?;
    Ok(Summary {
        naive: Naive::Postgres(Outcome {
            per_task,
            shared: one_name,
        }),
        failed_rounds: part2.failed_rounds,
        wrong_rows: part2.wrong_rows,
        rows: part2.table.len(),
        output: out,
    })
}

/// Prints what one variant of part 1 saw; the last line of `heading` is followed by its time.
fn report(
    out: &mut Output,
    heading: &[&str],
    v: &Variant,
    tasks: usize,
    rounds: usize,
    expected: &BTreeMap<String, i64>,
) {
    let ops = tasks * rounds;
    let (wrong, example) = compare(expected, &v.table);
    out.text("");
    let (last, first) = heading.split_last().expect("a heading");
    for line in first {
        out.text(*line);
    }
    out.line(vec![same(*last), varies(millis(v.elapsed)), same(" ms:")]);
    if v.failures == 0 {
        out.line(vec![
            same("   "),
            varies("0"),
            same(format!(
                " of {ops} nested transactions failed: no error at all"
            )),
        ]);
    } else {
        out.line(vec![
            same("   "),
            varies(v.failures.to_string()),
            same(format!(" of {ops} nested transactions failed:")),
        ]);
        out.line(vec![
            same("     "),
            varies(format!("{:>5}", v.does_not_exist)),
            same(" with `savepoint \"sp_task<N>\" does not exist`: another task's RELEASE had"),
        ]);
        out.text(
            "           released this task's savepoint with its own, which was opened earlier",
        );
        out.text("           (see the trace below); the error aborts the whole transaction, so");
        out.line(vec![
            same("     "),
            varies(format!("{:>5}", v.aborted)),
            same(" with `current transaction is aborted, commands ignored until end of"),
        ]);
        out.text("           transaction block`: every later statement of every task of the round");
        if v.unique > 0 {
            out.line(vec![
                same("     "),
                varies(format!("{:>5}", v.unique)),
                same(" with `duplicate key value violates unique constraint`: both tasks of a"),
            ]);
            out.text("           key read no row, then both inserted one");
        }
        other_errors(out, &v.other);
    }
    if v.rolled_back_rounds == 0 {
        out.line(vec![
            same("   "),
            varies("0"),
            same(format!(
                " of {rounds} COMMITs rolled back: every round committed"
            )),
        ]);
    } else {
        out.line(vec![
            same("   "),
            varies(v.rolled_back_rounds.to_string()),
            same(format!(
                " of {rounds} COMMITs returned Ok and rolled the round back: PostgreSQL ends an"
            )),
        ]);
        out.text("     aborted transaction with ROLLBACK whatever it is sent, and says so only in");
        out.line(vec![
            same("     the command tag; "),
            varies(v.lost.to_string()),
            same(" nested transactions that had succeeded were lost with them"),
        ]);
    }
    out.line(vec![
        same("   "),
        varies(wrong.to_string()),
        same(format!(
            " of {} rows wrong or missing after the commits, e.g. ",
            expected.len()
        )),
        varies(example),
    ]);
    if let Some(trace) = &v.first_failure {
        out.text("   how the first `does not exist` happened, as the tasks sent it:");
        trace_lines(out, trace);
    }
}

/// The one connection the tasks of part 1 share, taken for one statement at a time (as an
/// async ORM's transaction object locks its connection), and the log of what was sent, in
/// the order the server received it.
struct Shared {
    client: tokio::sync::Mutex<Client>,
    select: Statement,
    update: Statement,
    insert: Statement,
    log: Mutex<Vec<String>>,
}

/// A statement of a task in part 1.
enum Sql<'a> {
    Savepoint(&'a str),
    Release(&'a str),
    Select(&'a str),
    Update(&'a str, i64),
    Insert(&'a str),
}

impl Shared {
    async fn new(client: Client) -> Result<Arc<Shared>, tokio_postgres::Error> {
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS kv; {KV}"))
            .await?;
        Ok(Arc::new(Shared {
            select: client.prepare(SELECT).await?,
            update: client.prepare(UPDATE).await?,
            insert: client.prepare(INSERT).await?,
            client: tokio::sync::Mutex::new(client),
            log: Mutex::default(),
        }))
    }

    /// Sends one statement of `task` and logs it; a SELECT returns the counter it read.
    async fn send(&self, task: usize, sql: Sql<'_>) -> Result<Option<i64>, tokio_postgres::Error> {
        let client = self.client.lock().await;
        let (shown, result) = match sql {
            Sql::Savepoint(name) => {
                let sql = format!("SAVEPOINT {name}");
                let result = client.batch_execute(&sql).await.map(|()| None);
                (sql, result)
            }
            Sql::Release(name) => {
                let sql = format!("RELEASE {name}");
                let result = client.batch_execute(&sql).await.map(|()| None);
                (sql, result)
            }
            Sql::Select(key) => (
                SELECT.to_owned(),
                client
                    .query_opt(&self.select, &[&key])
                    .await
                    .map(|row| row.map(|row| row.get(0))),
            ),
            Sql::Update(key, val) => (
                UPDATE.to_owned(),
                client
                    .execute(&self.update, &[&key, &val])
                    .await
                    .map(|_| None),
            ),
            Sql::Insert(key) => (
                INSERT.to_owned(),
                client.execute(&self.insert, &[&key]).await.map(|_| None),
            ),
        };
        let line = match &result {
            Ok(_) => format!("task {task:>3}: {shown}"),
            Err(err) => format!("task {task:>3}: {shown}  -> error: {}", message(err)),
        };
        self.log.lock().expect("log").push(line);
        result
    }
}

/// The server's message for a database error (tokio-postgres's `Display` adds `db error:
/// ERROR:` before it), or the client's error.
fn message(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map_or_else(|| err.to_string(), |db| db.message().to_owned())
}

/// One task of part 1: its savepoint, read, write, release, each statement on its own.
async fn task(
    shared: Arc<Shared>,
    task: usize,
    key: String,
    savepoint: String,
) -> Result<(), tokio_postgres::Error> {
    shared.send(task, Sql::Savepoint(&savepoint)).await?;
    let seen = shared.send(task, Sql::Select(&key)).await?;
    tokio::task::yield_now().await;
    match seen {
        Some(val) => shared.send(task, Sql::Update(&key, val + 1)).await?,
        None => shared.send(task, Sql::Insert(&key)).await?,
    };
    tokio::task::yield_now().await;
    shared.send(task, Sql::Release(&savepoint)).await?;
    Ok(())
}

/// The rounds of part 1 with savepoints named by `name`, on a table whose keys start at 0.
async fn variant(
    shared: &Arc<Shared>,
    label: &'static str,
    tasks: usize,
    rounds: usize,
    expected: &BTreeMap<String, i64>,
    name: fn(usize) -> String,
) -> Result<Variant, tokio_postgres::Error> {
    {
        let client = shared.client.lock().await;
        let keys: Vec<&str> = expected.keys().map(String::as_str).collect();
        client.batch_execute("TRUNCATE kv").await?;
        client
            .execute(
                "INSERT INTO kv(key, val) SELECT unnest($1::text[]), 0",
                &[&keys],
            )
            .await?;
    }
    let mut v = Variant::default();
    let bar = progress_bar(rounds, label);
    let started = Instant::now();
    for _ in 0..rounds {
        shared.log.lock().expect("log").clear();
        let xid: String = {
            let client = shared.client.lock().await;
            client.batch_execute("BEGIN").await?;
            client
                .query_one("SELECT pg_current_xact_id()::text", &[])
                .await?
                .get(0)
        };
        let handles: Vec<_> = (0..tasks)
            .map(|i| tokio::spawn(task(shared.clone(), i, key(i, tasks), name(i))))
            .collect();
        let mut succeeded = 0;
        for handle in handles {
            match handle.await.expect("task") {
                Ok(()) => succeeded += 1,
                Err(err) => {
                    v.failures += 1;
                    match err.code() {
                        Some(code) if *code == SqlState::S_E_INVALID_SPECIFICATION => {
                            v.does_not_exist += 1
                        }
                        Some(code) if *code == SqlState::IN_FAILED_SQL_TRANSACTION => {
                            v.aborted += 1
                        }
                        Some(code) if *code == SqlState::UNIQUE_VIOLATION => v.unique += 1,
                        _ => *v.other.entry(message(&err)).or_insert(0) += 1,
                    }
                }
            }
        }
        // Commit whatever survived (the ORM's outer transaction ends normally). On an
        // aborted transaction the server carries the COMMIT out as a ROLLBACK and says so
        // only in the command tag, which tokio-postgres drops: `Ok(())` either way. So ask
        // the server what became of the transaction.
        let client = shared.client.lock().await;
        client.batch_execute("COMMIT").await?;
        let status: Option<String> = client
            .query_one("SELECT pg_xact_status($1::text::xid8)", &[&xid])
            .await?
            .get(0);
        drop(client);
        if status.as_deref() != Some("committed") {
            v.rolled_back_rounds += 1;
            v.lost += succeeded;
        }
        if v.first_failure.is_none() {
            v.first_failure =
                explain_lost_savepoint(&shared.log.lock().expect("log"), "does not exist");
        }
        bar.inc(1);
    }
    v.elapsed = started.elapsed();
    bar.finish_and_clear();
    let client = shared.client.lock().await;
    v.table = client
        .query("SELECT key, val FROM kv", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    Ok(v)
}
