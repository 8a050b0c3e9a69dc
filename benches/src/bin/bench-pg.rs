//! The PostgreSQL workloads: each beside raw tokio-postgres (and deadpool-postgres) in the
//! same run, against the server `DATABASE_URL` names. Prints a table of µs per operation, the
//! raw floor, their ratio and the target (medians of `--rounds` interleaved rounds), and for
//! every figure an estimate of the round trips it costs: µs/op ÷ the loopback `SELECT 1`
//! latency measured in the same rounds.
//!
//! ```sh
//! cargo build --release -p transactional-benches --features postgres --bin bench-pg
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test ./target/release/bench-pg --rounds 3
//! ```
//!
//! Everything runs in a schema of its own, `bench_pg_<pid>` (every connection's
//! `search_path`), created at the start and dropped at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{Client, Config, NoTls, Statement};
use transactional::{current, transactional, Database, Error, TaskGroup};
use transactional_benches::{median, runtime, us};

/// The library's upsert (`?N` placeholders, rewritten to `$N` for PostgreSQL).
const UPSERT: &str =
    "INSERT INTO kv(key, val) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET val = excluded.val";
/// The same upsert for raw tokio-postgres.
const UPSERT_PG: &str =
    "INSERT INTO kv(key, val) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET val = excluded.val";

/// `SELECT 1`s per round, in four slices spread through the round (so that the latency is
/// measured under the same load as the workloads around it).
const LATENCY_PINGS: u64 = 2_000;
const W1_CALLS: u64 = 2_000;
const W2_TXS: u64 = 2_000;
const W2_TASKS: u64 = 64;
const W2_POOLS: [usize; 2] = [8, 16];
const W3_CHILDREN: u64 = 1_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every upsert gets a key no earlier upsert used, so that each one inserts a row.
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// `n` fresh keys: the first of them.
fn fresh_keys(n: u64) -> u64 {
    NEXT_KEY.fetch_add(n, Ordering::Relaxed)
}

fn key(n: u64) -> String {
    format!("k{n}")
}

// ---------------------------------------------------------------------------------------------
// The library's side: `#[transactional]` fns as users write them.

/// A nested transactional fn doing one upsert (a savepoint inside the caller's transaction).
#[transactional]
async fn upsert(key: String, val: i64) -> Result<(), Error> {
    current()?.execute(UPSERT, (key, val)).await?;
    Ok(())
}

/// An outermost transaction doing one upsert.
#[transactional(db = db)]
async fn upsert_tx(db: &Database, key: String, val: i64) -> Result<(), Error> {
    current()?.execute(UPSERT, (key, val)).await?;
    Ok(())
}

/// W1-pg: one outer transaction; `n` sequential calls of [`upsert`]. Times the calls only.
#[transactional(db = db)]
async fn w1(db: &Database, first: u64, n: u64) -> Result<Duration, Error> {
    let start = Instant::now();
    for i in 0..n {
        upsert(key(first + i), i as i64).await?;
    }
    Ok(start.elapsed())
}

/// W3-pg: one outer transaction whose body runs one task group of `n` children, each a call
/// of [`upsert`]. Times the group (spawn to join).
#[transactional(db = db)]
async fn w3(db: &Database, first: u64, n: u64) -> Result<Duration, Error> {
    let start = Instant::now();
    let mut tg = TaskGroup::new();
    for i in 0..n {
        tg.spawn(upsert(key(first + i), i as i64));
    }
    tg.join_all().await?;
    Ok(start.elapsed())
}

/// W2-pg on the library: `txs` outermost transactions from `tasks` concurrent tasks. Returns
/// the wall time per transaction and the number that failed (with the first error).
async fn w2_ours(db: &Database, txs: u64, tasks: u64) -> (Duration, u64, Option<String>) {
    let db = db.clone();
    w2_from_tasks(txs, tasks, move |key, val| {
        let db = db.clone();
        async move { upsert_tx(&db, key, val).await.map_err(|e| e.to_string()) }
    })
    .await
}

/// `txs` one-upsert transactions (`tx(key, val)`) from `tasks` concurrent tasks: the wall time
/// per transaction and the number that failed (with the first error).
async fn w2_from_tasks<T, F>(txs: u64, tasks: u64, tx: T) -> (Duration, u64, Option<String>)
where
    T: Fn(String, i64) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = Result<(), String>> + Send,
{
    let first = fresh_keys(txs);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (mut failed, mut error) = (0, None);
                let mut i = t;
                while i < txs {
                    if let Err(e) = tx(key(first + i), i as i64).await {
                        failed += 1;
                        error.get_or_insert(e);
                    }
                    i += tasks;
                }
                (failed, error)
            })
        })
        .collect();
    let (mut failed, mut error) = (0, None);
    for h in handles {
        let (f, e) = h.await.expect("join");
        failed += f;
        if error.is_none() {
            error = e;
        }
    }
    (start.elapsed() / txs as u32, failed, error)
}

// ---------------------------------------------------------------------------------------------
// The floors: raw tokio-postgres and deadpool-postgres.

/// The statements of the raw floors, prepared once on their connection.
struct RawStmts {
    ping: Statement,
    savepoint: Statement,
    upsert: Statement,
    release: Statement,
}

async fn raw_connect(config: &Config) -> Result<Client, BoxError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("raw connection ended: {e}");
        }
    });
    Ok(client)
}

async fn raw_prepare(client: &Client) -> Result<RawStmts, BoxError> {
    Ok(RawStmts {
        ping: client.prepare("SELECT 1").await?,
        savepoint: client.prepare("SAVEPOINT s").await?,
        upsert: client.prepare(UPSERT_PG).await?,
        release: client.prepare("RELEASE s").await?,
    })
}

/// Loopback latency: `n` prepared `SELECT 1`, each awaited. Time per query.
async fn latency(client: &Client, st: &RawStmts, n: u64) -> Result<Duration, BoxError> {
    let start = Instant::now();
    for _ in 0..n {
        let row = client.query_one(&st.ping, &[]).await?;
        debug_assert_eq!(row.get::<_, i32>(0), 1);
    }
    Ok(start.elapsed() / n as u32)
}

/// W1-pg's floors: one transaction; `n` iterations of `SAVEPOINT s`, the prepared upsert and
/// `RELEASE s` (all three prepared), each awaited before the next is sent or, `pipelined`,
/// all three sent at once. Times the iterations only.
async fn w1_raw(
    client: &Client,
    st: &RawStmts,
    n: u64,
    pipelined: bool,
) -> Result<Duration, BoxError> {
    let first = fresh_keys(n);
    client.batch_execute("BEGIN").await?;
    let start = Instant::now();
    for i in 0..n {
        let (key, val) = (key(first + i), i as i64);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&key, &val];
        if pipelined {
            // `biased`: polled in this order, so the requests go out in this order (a
            // prepared statement's request is sent at the future's first poll).
            tokio::try_join!(
                biased;
                client.execute(&st.savepoint, &[]),
                client.execute(&st.upsert, &params),
                client.execute(&st.release, &[]),
            )?;
        } else {
            client.execute(&st.savepoint, &[]).await?;
            client.execute(&st.upsert, &params).await?;
            client.execute(&st.release, &[]).await?;
        }
    }
    let elapsed = start.elapsed();
    client.batch_execute("COMMIT").await?;
    Ok(elapsed / n as u32)
}

/// A deadpool-postgres pool of `size` connections with deadpool's defaults (`Fast`
/// recycling), opened in full before it is used.
async fn raw_pool(config: &Config, size: usize) -> Result<Pool, BoxError> {
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(size).build()?;
    let mut held = Vec::new();
    for _ in 0..size {
        held.push(pool.get().await?);
    }
    Ok(pool)
}

/// One raw outermost transaction: `BEGIN`, the cached prepared upsert, `COMMIT`.
async fn raw_upsert_tx(pool: &Pool, key: &str, val: i64) -> Result<(), BoxError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let stmt = tx.prepare_cached(UPSERT_PG).await?;
    tx.execute(&stmt, &[&key, &val]).await?;
    tx.commit().await?;
    Ok(())
}

/// W2-pg's floor: as [`w2_ours`] on a raw pool.
async fn w2_raw(pool: &Pool, txs: u64, tasks: u64) -> (Duration, u64, Option<String>) {
    let pool = pool.clone();
    w2_from_tasks(txs, tasks, move |key, val| {
        let pool = pool.clone();
        async move {
            raw_upsert_tx(&pool, &key, val)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The schema.

/// The URL's settings with `search_path` set to `schema` (added to any `options` it has).
fn config_in(url: &str, schema: &str) -> Config {
    let mut config: Config = url.parse().expect("DATABASE_URL is not a PostgreSQL URL");
    let options = match config.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{o} -csearch_path={schema}"),
        _ => format!("-csearch_path={schema}"),
    };
    config.options(&options);
    config
}

/// Drops the schema when it goes out of scope, also when a workload panics (after the
/// runtime, and with it every connection, is gone).
struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let result = rt.block_on(async {
            let config: Config = self.url.parse()?;
            let client = raw_connect(&config).await?;
            client
                .batch_execute(&format!(
                    "SET lock_timeout = '30s'; DROP SCHEMA IF EXISTS {} CASCADE",
                    self.schema
                ))
                .await?;
            Ok::<_, BoxError>(())
        });
        match result {
            Ok(()) => eprintln!("dropped schema {}", self.schema),
            Err(e) => eprintln!("could not drop schema {}: {e}", self.schema),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table.

struct Line {
    name: String,
    ours: f64,
    floor_name: String,
    floor: f64,
    target: &'static str,
    /// The ratio the target bounds (`None`: no target).
    bound: Option<f64>,
    note: String,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .map(|p| args[p + 1].parse().expect("--rounds N"))
        .unwrap_or(5)
        .max(1);
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL server (postgres://user@host:port/db)");
    let schema = format!("bench_pg_{}", std::process::id());
    let config = config_in(&url, &schema);

    let started = Instant::now();
    // Declared before the runtime so that it drops after it (its connections closed).
    let _guard = {
        let rt = runtime();
        rt.block_on(async {
            let config: Config = url.parse().expect("DATABASE_URL");
            let admin = raw_connect(&config).await.expect("connect to DATABASE_URL");
            admin
                .batch_execute(&format!(
                    "CREATE SCHEMA {schema};
                     CREATE TABLE {schema}.kv(key text PRIMARY KEY, val bigint NOT NULL);"
                ))
                .await
                .expect("create the schema");
        });
        SchemaGuard {
            url: url.clone(),
            schema: schema.clone(),
        }
    };
    let rt = runtime();
    let (lines, server, rtt) = rt.block_on(run(&url, &config, &schema, rounds));

    println!(
        "\n{} rounds per row (median), PostgreSQL {} at {}, schema {}; {} cores; took {:.0?}",
        rounds,
        server,
        redact(&url),
        schema,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed()
    );
    println!(
        "Loopback latency (prepared `SELECT 1`, awaited, raw connection; mean of {LATENCY_PINGS} \
         per round, spread through the round): {rtt:.1} µs; \"RTs\" = µs/op ÷ this.\n"
    );
    println!(
        "| workload | ours µs/op | ours ≈ RTs/op | floor | floor µs/op | floor ≈ RTs/op | ratio | target | met | note |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---|---|---|");
    for l in &lines {
        let ratio = l.ours / l.floor;
        let met = match l.bound {
            Some(b) if ratio <= b => "yes",
            Some(_) => "no",
            None => "",
        };
        println!(
            "| {} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.2}x | {} | {} | {} |",
            l.name,
            l.ours,
            l.ours / rtt,
            l.floor_name,
            l.floor,
            l.floor / rtt,
            ratio,
            l.target,
            met,
            l.note
        );
    }
    drop(rt);
}

/// All the workloads, `rounds` interleaved rounds. Returns the table's lines, the server's
/// version and the median loopback latency in µs.
async fn run(url: &str, config: &Config, schema: &str, rounds: usize) -> (Vec<Line>, String, f64) {
    let raw = raw_connect(config).await.expect("raw connection");
    let st = raw_prepare(&raw).await.expect("prepare");
    let server: String = raw
        .query_one("SHOW server_version", &[])
        .await
        .expect("server_version")
        .get(0);
    let path: String = raw
        .query_one("SHOW search_path", &[])
        .await
        .expect("search_path")
        .get(0);
    assert_eq!(path, schema, "the raw connection's search_path");

    let set_path = Arc::new(format!("SET search_path TO {schema}"));
    let ours = |pool_size: usize| {
        let set_path = set_path.clone();
        async move {
            Database::postgres(url)
                .pool_size(pool_size)
                .on_connect(move |client| {
                    let set_path = set_path.clone();
                    Box::pin(async move { client.batch_execute(&set_path).await })
                })
                .connect()
                .await
                .expect("Database::postgres(..).connect()")
        }
    };
    // W1 and W3 use one connection at a time; W2 a pool of each size, opened in full.
    let db = ours(2).await;
    let mut w2_dbs = Vec::new();
    let mut w2_raw_pools = Vec::new();
    for size in W2_POOLS {
        let db = ours(size).await;
        let raw_pool = raw_pool(config, size).await.expect("raw pool");
        // Warm up: every connection opened, statements prepared.
        let (_, f, e) = w2_ours(&db, 10 * size as u64, 2 * size as u64).await;
        if let Some(e) = e {
            eprintln!("W2-pg warm-up, pool of {size}: {f} library txs failed: {e}");
        }
        let (_, f, e) = w2_raw(&raw_pool, 10 * size as u64, 2 * size as u64).await;
        if let Some(e) = e {
            eprintln!("W2-pg warm-up, pool of {size}: {f} raw txs failed: {e}");
        }
        w2_dbs.push(db);
        w2_raw_pools.push(raw_pool);
    }
    // Warm up W1, W3 and the raw connection.
    if let Err(e) = w1(&db, fresh_keys(200), 200).await {
        eprintln!("W1-pg warm-up failed: {e}");
    }
    if let Err(e) = w3(&db, fresh_keys(100), 100).await {
        eprintln!("W3-pg warm-up failed: {e}");
    }
    w1_raw(&raw, &st, 200, false).await.expect("raw warm-up");
    w1_raw(&raw, &st, 200, true).await.expect("raw warm-up");
    latency(&raw, &st, 200).await.expect("latency warm-up");

    let mut rtts = vec![];
    let (mut w1_ours, mut w1_awaited, mut w1_pipelined) = (vec![], vec![], vec![]);
    let mut w1_error = None;
    let mut w2 = vec![(vec![], vec![], 0, 0, None, None); W2_POOLS.len()];
    let (mut w3_ours, mut w3_error) = (vec![], None);
    // Round trips the library itself counted (`Database::stats().round_trips`), per op.
    let counted = |db: &Database| db.stats().round_trips;
    let (mut w1_trips, mut w3_trips) = (0u64, 0u64);
    let mut w2_trips = vec![0u64; W2_POOLS.len()];
    let slice = LATENCY_PINGS / 4;
    for _ in 0..rounds {
        let mut rtt = latency(&raw, &st, slice).await.expect("latency");

        let before = counted(&db);
        match w1(&db, fresh_keys(W1_CALLS), W1_CALLS).await {
            Ok(t) => w1_ours.push(t / W1_CALLS as u32),
            Err(e) => w1_error = Some(e.to_string()),
        }
        w1_trips += counted(&db) - before;
        w1_awaited.push(w1_raw(&raw, &st, W1_CALLS, false).await.expect("W1 raw"));
        w1_pipelined.push(w1_raw(&raw, &st, W1_CALLS, true).await.expect("W1 raw"));
        rtt += latency(&raw, &st, slice).await.expect("latency");

        for (i, (ours, floor, failed, raw_failed, error, raw_error)) in w2.iter_mut().enumerate() {
            let before = counted(&w2_dbs[i]);
            let (t, f, e) = w2_ours(&w2_dbs[i], W2_TXS, W2_TASKS).await;
            w2_trips[i] += counted(&w2_dbs[i]) - before;
            ours.push(t);
            *failed += f;
            if error.is_none() {
                *error = e;
            }
            let (t, f, e) = w2_raw(&w2_raw_pools[i], W2_TXS, W2_TASKS).await;
            floor.push(t);
            *raw_failed += f;
            if raw_error.is_none() {
                *raw_error = e;
            }
        }
        rtt += latency(&raw, &st, slice).await.expect("latency");

        let before = counted(&db);
        match w3(&db, fresh_keys(W3_CHILDREN), W3_CHILDREN).await {
            Ok(t) => w3_ours.push(t / W3_CHILDREN as u32),
            Err(e) => w3_error = Some(e.to_string()),
        }
        w3_trips += counted(&db) - before;
        rtt += latency(&raw, &st, slice).await.expect("latency");
        rtts.push(rtt / 4);
    }
    let rtt = us(median(rtts));

    let mut lines = Vec::new();
    let failed_rounds = |n: usize, error: &Option<String>| match error {
        Some(e) => format!("{n} of {rounds} rounds failed: {e}"),
        None => String::new(),
    };
    let per_op = |trips: u64, ops: u64| {
        format!(
            "ours counted {:.2} round trips/op",
            trips as f64 / (ops * rounds as u64) as f64
        )
    };
    let joined = |a: String, b: String| {
        if a.is_empty() {
            b
        } else {
            format!("{b}; {a}")
        }
    };
    let w1_note = joined(
        failed_rounds(rounds - w1_ours.len(), &w1_error),
        per_op(w1_trips, W1_CALLS),
    );
    let w1_us = if w1_ours.is_empty() {
        f64::NAN
    } else {
        us(median(w1_ours))
    };
    let name = format!("W1-pg {W1_CALLS} nested calls in one transaction, per call");
    lines.push(Line {
        name: name.clone(),
        ours: w1_us,
        floor_name: "raw awaited (SAVEPOINT, upsert, RELEASE)".into(),
        floor: us(median(w1_awaited)),
        target: "≤ 0.45x",
        bound: Some(0.45),
        note: w1_note.clone(),
    });
    lines.push(Line {
        name,
        ours: w1_us,
        floor_name: "raw pipelined (the three at once)".into(),
        floor: us(median(w1_pipelined)),
        target: "",
        bound: None,
        note: w1_note,
    });
    for (i, (ours, floor, failed, raw_failed, error, raw_error)) in w2.into_iter().enumerate() {
        let mut note = format!(
            "{}; wall time / txs; failed txs in {rounds} rounds: ours {failed}, raw {raw_failed}",
            per_op(w2_trips[i], W2_TXS)
        );
        if let Some(e) = error {
            note.push_str(&format!("; ours: {e}"));
        }
        if let Some(e) = raw_error {
            note.push_str(&format!("; raw: {e}"));
        }
        lines.push(Line {
            name: format!(
                "W2-pg {W2_TXS} outermost txs from {W2_TASKS} tasks, pool of {}",
                W2_POOLS[i]
            ),
            ours: us(median(ours)),
            floor_name: "raw deadpool (BEGIN, upsert, COMMIT)".into(),
            floor: us(median(floor)),
            target: "≤ 1.1x",
            bound: Some(1.1),
            note,
        });
    }
    let w3_note = joined(
        failed_rounds(rounds - w3_ours.len(), &w3_error),
        per_op(w3_trips, W3_CHILDREN),
    );
    lines.push(Line {
        name: format!("W3-pg TaskGroup of {W3_CHILDREN} in one transaction, per child"),
        ours: if w3_ours.is_empty() {
            f64::NAN
        } else {
            us(median(w3_ours))
        },
        floor_name: "W1-pg per call (the library)".into(),
        floor: w1_us,
        target: "≤ 1.2x",
        bound: Some(1.2),
        note: w3_note,
    });

    for db in [db].into_iter().chain(w2_dbs) {
        if let Err(e) = db.close().await {
            eprintln!("closing {}: {e}", db.label());
        }
    }
    for pool in w2_raw_pools {
        pool.close();
    }
    (lines, server, rtt)
}

/// The URL without its password.
fn redact(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| {
        let (userinfo, host) = rest.split_once('@')?;
        let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
        Some(format!("{scheme}://{user}@{host}"))
    }) {
        Some(redacted) => redacted,
        None => url.to_owned(),
    }
}
