//! Workloads of the benchmarks (issue 5, `BENCHMARKS.md`), shared by the criterion benches in
//! `benches/` and by `bench-table`, which runs them all once and prints a table.
//!
//! Every workload has a *floor*: the same SQL written by hand against raw rusqlite, measured in
//! the same process. The library's side uses `#[transactional]` fns as a user would write them.
//!
//! The schema is `kv(key INTEGER PRIMARY KEY, val INTEGER)`, seeded with keys `0..1000`; the
//! upserts use `key = i % 1000`, so every run does the same work.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use transactional::{current, transactional, Database, Error, TaskGroup};

/// The upsert every write workload runs.
pub const UPSERT: &str =
    "INSERT INTO kv(key, val) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET val = excluded.val";
/// The point read of W4.
pub const SELECT: &str = "SELECT val FROM kv WHERE key = ?1";
/// Number of distinct keys.
pub const KEYS: u64 = 1000;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv(key INTEGER PRIMARY KEY, val INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL);";

/// Where a workload's database lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `:memory:`.
    Memory,
    /// A file in WAL mode (`synchronous = NORMAL`, as `Database::open` sets it).
    Wal,
}

impl Store {
    pub fn label(self) -> &'static str {
        match self {
            Store::Memory => "in-memory",
            Store::Wal => "WAL file",
        }
    }
}

/// A tokio multi-thread runtime with one worker per core of the benchmark machine (2), as
/// `#[tokio::main]` would build there.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A runtime and a directory for database files.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    next: AtomicU64,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        Env {
            rt: runtime(),
            dir: tempfile::tempdir().expect("tempdir"),
            next: AtomicU64::new(0),
        }
    }

    /// A fresh path for a database file.
    pub fn path(&self, what: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("{what}-{n}.db"))
    }

    /// A fresh seeded database opened through the library.
    pub fn ours(&self, store: Store) -> Database {
        let path = self.path("ours");
        self.rt.block_on(async {
            let db = match store {
                Store::Memory => Database::open_in_memory().await,
                Store::Wal => Database::open(&path).await,
            }
            .expect("open database");
            seed(&db).await.expect("seed");
            db
        })
    }

    /// A fresh seeded database file opened through the library, with extra pragmas.
    pub fn ours_file_with(&self, path: &Path, pragmas: &[(&str, &str)]) -> Database {
        self.rt.block_on(async {
            let mut builder = Database::builder();
            for (name, value) in pragmas {
                builder = builder.pragma(*name, *value);
            }
            let db = builder.open(path).await.expect("open database");
            seed(&db).await.expect("seed");
            db
        })
    }

    /// A fresh seeded raw rusqlite connection with the library's settings (WAL,
    /// `synchronous = NORMAL`, `foreign_keys = ON`, statement cache of 256).
    pub fn raw(&self, store: Store) -> Connection {
        match store {
            Store::Memory => raw_open(None),
            Store::Wal => raw_open(Some(&self.path("raw"))),
        }
    }
}

/// Opens and seeds a raw connection (`None`: in memory).
pub fn raw_open(path: Option<&Path>) -> Connection {
    let conn = match path {
        Some(path) => {
            let conn = Connection::open(path).expect("open");
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .expect("wal");
            assert_eq!(mode, "wal");
            conn.pragma_update(None, "synchronous", "NORMAL")
                .expect("synchronous");
            conn
        }
        None => Connection::open_in_memory().expect("open"),
    };
    conn.set_prepared_statement_cache_capacity(256);
    conn.busy_timeout(Duration::from_secs(5)).expect("busy");
    conn.pragma_update(None, "foreign_keys", "ON").expect("fk");
    conn.execute_batch(SCHEMA).expect("schema");
    {
        let mut stmt = conn.prepare(UPSERT).expect("prepare");
        conn.execute_batch("BEGIN").expect("begin");
        for key in 0..KEYS {
            stmt.execute((key as i64, 0i64)).expect("seed");
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
    conn
}

#[transactional(db = db)]
async fn seed(db: &Database) -> Result<(), Error> {
    let tx = current()?;
    tx.execute_batch(SCHEMA).await?;
    for key in 0..KEYS {
        tx.execute(UPSERT, (key as i64, 0i64)).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The library's side: `#[transactional]` fns as users write them.

/// A nested transactional fn doing one upsert (a savepoint inside the caller's transaction).
#[transactional]
pub async fn upsert(key: i64, val: i64) -> Result<(), Error> {
    current()?.execute(UPSERT, (key, val)).await?;
    Ok(())
}

/// An outermost transaction doing one upsert.
#[transactional(db = db)]
pub async fn upsert_tx(db: &Database, key: i64, val: i64) -> Result<(), Error> {
    current()?.execute(UPSERT, (key, val)).await?;
    Ok(())
}

/// A read-only outermost transaction reading one value (on a reader connection).
#[transactional(db = db, read_only)]
pub async fn read_tx(db: &Database, key: i64) -> Result<i64, Error> {
    current()?.query_row(SELECT, (key,)).await?.get(0)
}

async fn upsert_loop(n: u64) -> Result<Duration, Error> {
    let start = Instant::now();
    for i in 0..n {
        upsert((i % KEYS) as i64, i as i64).await?;
    }
    Ok(start.elapsed())
}

/// `depth - 1` savepoints around the loop, so that the loop's upserts open theirs at `depth`.
#[transactional]
async fn nest(levels: u32, n: u64) -> Result<Duration, Error> {
    if levels > 1 {
        Box::pin(nest(levels - 1, n)).await
    } else {
        upsert_loop(n).await
    }
}

/// W1 (and growth): one outer transaction; `n` sequential calls of [`upsert`], each a
/// savepoint at `depth` (1: directly under the transaction). Times the calls only.
#[transactional(db = db)]
pub async fn w1(db: &Database, depth: u32, n: u64) -> Result<Duration, Error> {
    if depth > 1 {
        nest(depth - 1, n).await
    } else {
        upsert_loop(n).await
    }
}

/// W3: one outer transaction; `groups` task groups one after the other, each of `k`
/// concurrent children that call [`upsert`]. Times the groups (spawn to join).
#[transactional(db = db)]
pub async fn w3(db: &Database, k: u64, groups: u64) -> Result<Duration, Error> {
    let start = Instant::now();
    for g in 0..groups {
        let mut tg = TaskGroup::new();
        for i in 0..k {
            let n = g * k + i;
            tg.spawn(upsert((n % KEYS) as i64, n as i64));
        }
        tg.join_all().await?;
    }
    Ok(start.elapsed())
}

impl Env {
    /// W1 on the library: time per call.
    pub fn w1_ours(&self, db: &Database, depth: u32, n: u64) -> Duration {
        let db = db.clone();
        let total = self
            .rt
            .block_on(self.rt.spawn(async move { w1(&db, depth, n).await }))
            .expect("join")
            .expect("w1");
        total / n as u32
    }

    /// W2 on the library: `txs` outermost transactions from `tasks` concurrent tasks.
    /// Returns the time per transaction and the number of failed transactions.
    pub fn w2_ours(&self, db: &Database, txs: u64, tasks: u64) -> (Duration, u64) {
        let failed = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        self.rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|t| {
                    let db = db.clone();
                    let failed = failed.clone();
                    tokio::spawn(async move {
                        let mut i = t;
                        while i < txs {
                            if upsert_tx(&db, (i % KEYS) as i64, i as i64).await.is_err() {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                            i += tasks;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.expect("join");
            }
        });
        (start.elapsed() / txs as u32, failed.load(Ordering::Relaxed))
    }

    /// W3 on the library: time per child.
    pub fn w3_ours(&self, db: &Database, k: u64, groups: u64) -> Duration {
        let db = db.clone();
        let total = self
            .rt
            .block_on(self.rt.spawn(async move { w3(&db, k, groups).await }))
            .expect("join")
            .expect("w3");
        total / (k * groups) as u32
    }
}

// ---------------------------------------------------------------------------------------------
// Floors: the same SQL on raw rusqlite, synchronous, one thread.

/// Begins a transaction and opens the savepoints that put the next one at `depth`.
fn begin_at_depth(conn: &Connection, depth: u32) {
    conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
    for level in 1..depth {
        conn.execute_batch(&format!("SAVEPOINT outer_{level}"))
            .expect("savepoint");
    }
}

/// F1: one transaction; `n` iterations of rusqlite's `Savepoint` API around a cached upsert,
/// at `depth` (enclosing savepoints opened first). Time per iteration.
pub fn f1(conn: &mut Connection, depth: u32, n: u64) -> Duration {
    begin_at_depth(conn, depth);
    let start = Instant::now();
    for i in 0..n {
        let sp = conn.savepoint().expect("savepoint");
        sp.prepare_cached(UPSERT)
            .expect("prepare")
            .execute(((i % KEYS) as i64, i as i64))
            .expect("upsert");
        sp.commit().expect("release");
    }
    let elapsed = start.elapsed();
    conn.execute_batch("COMMIT").expect("commit");
    elapsed / n as u32
}

/// F1c: like [`f1`], with `SAVEPOINT`, the upsert and `RELEASE` all `prepare_cached`.
pub fn f1c(conn: &mut Connection, depth: u32, n: u64) -> Duration {
    begin_at_depth(conn, depth);
    let start = Instant::now();
    for i in 0..n {
        conn.prepare_cached("SAVEPOINT sp")
            .and_then(|mut s| s.execute([]))
            .expect("savepoint");
        conn.prepare_cached(UPSERT)
            .and_then(|mut s| s.execute(((i % KEYS) as i64, i as i64)))
            .expect("upsert");
        conn.prepare_cached("RELEASE sp")
            .and_then(|mut s| s.execute([]))
            .expect("release");
    }
    let elapsed = start.elapsed();
    conn.execute_batch("COMMIT").expect("commit");
    elapsed / n as u32
}

/// One raw rusqlite write transaction: `BEGIN IMMEDIATE`, the cached upsert, `COMMIT`.
fn raw_upsert_tx(conn: &mut Connection, i: u64) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    tx.prepare_cached(UPSERT)
        .expect("prepare")
        .execute(((i % KEYS) as i64, i as i64))
        .expect("upsert");
    tx.commit().expect("commit");
}

/// W2's floor: `txs` sequential rusqlite transactions (`BEGIN IMMEDIATE`, cached upsert,
/// `COMMIT`). Time per transaction.
pub fn w2_floor(conn: &mut Connection, txs: u64) -> Duration {
    let start = Instant::now();
    for i in 0..txs {
        raw_upsert_tx(conn, i);
    }
    start.elapsed() / txs as u32
}

// ---------------------------------------------------------------------------------------------
// W4: readers beside a writer.

/// What the writer does while W4's readers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Outermost write transactions (one upsert each), back to back.
    Busy,
    /// One write transaction, begun before the readers start and held open until they end.
    HeldOpen,
}

/// The result of a W4 run.
#[derive(Clone, Copy, Debug)]
pub struct ReadRun {
    /// Wall time per read, over all readers.
    pub per_read: Duration,
    /// Write transactions committed while the readers ran.
    pub writes: u64,
}

impl Env {
    /// W4 on the library: `readers` tasks each running `reads` read-only transactions (one
    /// point read each) beside a writer task.
    pub fn w4_ours(&self, db: &Database, readers: u64, reads: u64, writer: Writer) -> ReadRun {
        self.rt.block_on(async {
            let stop = Arc::new(AtomicBool::new(false));
            let writes = Arc::new(AtomicU64::new(0));
            let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
            let writer_task = {
                let (db, stop, writes) = (db.clone(), stop.clone(), writes.clone());
                tokio::spawn(async move {
                    match writer {
                        Writer::Busy => {
                            let _ = started_tx.send(());
                            let mut i = 0u64;
                            while !stop.load(Ordering::Relaxed) {
                                upsert_tx(&db, (i % KEYS) as i64, i as i64)
                                    .await
                                    .expect("write");
                                writes.fetch_add(1, Ordering::Relaxed);
                                i += 1;
                                tokio::task::yield_now().await;
                            }
                        }
                        Writer::HeldOpen => {
                            hold_write_tx(&db, started_tx, stop).await.expect("write");
                            writes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            };
            started.await.expect("writer started");
            let start = Instant::now();
            let tasks: Vec<_> = (0..readers)
                .map(|r| {
                    let db = db.clone();
                    tokio::spawn(async move {
                        for i in 0..reads {
                            let key = ((r * reads + i) % KEYS) as i64;
                            read_tx(&db, key).await.expect("read");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("join");
            }
            let elapsed = start.elapsed();
            stop.store(true, Ordering::Relaxed);
            writer_task.await.expect("join writer");
            ReadRun {
                per_read: elapsed / (readers * reads) as u32,
                writes: writes.load(Ordering::Relaxed),
            }
        })
    }
}

/// A write transaction that has written and then stays open until `stop`.
#[transactional(db = db)]
async fn hold_write_tx(
    db: &Database,
    started: tokio::sync::oneshot::Sender<()>,
    stop: Arc<AtomicBool>,
) -> Result<(), Error> {
    current()?.execute(UPSERT, (0i64, -1i64)).await?;
    let _ = started.send(());
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// W4's floor: one raw rusqlite reader on its own thread doing `reads` point reads (each its
/// own autocommit read transaction) beside a raw writer thread.
pub fn w4_floor(path: &Path, reads: u64, writer: Writer) -> ReadRun {
    let mut wconn = raw_open(Some(path));
    let reader = Connection::open(path).expect("open reader");
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let writer_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut writes = 0u64;
            match writer {
                Writer::Busy => {
                    let _ = started_tx.send(());
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        raw_upsert_tx(&mut wconn, i);
                        writes += 1;
                        i += 1;
                    }
                }
                Writer::HeldOpen => {
                    let tx = wconn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .expect("begin");
                    tx.execute(UPSERT, (0i64, -1i64)).expect("upsert");
                    let _ = started_tx.send(());
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    tx.commit().expect("commit");
                    writes += 1;
                }
            }
            writes
        })
    };
    started.recv().expect("writer started");
    let start = Instant::now();
    {
        let mut stmt = reader.prepare_cached(SELECT).expect("prepare");
        for i in 0..reads {
            let _: i64 = stmt
                .query_row(((i % KEYS) as i64,), |r| r.get(0))
                .expect("read");
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let writes = writer_thread.join().expect("join writer");
    ReadRun {
        per_read: elapsed / reads as u32,
        writes,
    }
}

// ---------------------------------------------------------------------------------------------
// The executor-stall check.

/// The result of a stall run.
#[derive(Clone, Debug)]
pub struct StallRun {
    /// How late each 1 ms timer tick woke up, sorted.
    pub lateness: Vec<Duration>,
    /// Write transactions committed meanwhile.
    pub writes: u64,
    /// Longest single write transaction (as the writer task saw it).
    pub longest_write: Duration,
}

impl StallRun {
    /// The `q`-quantile of the lateness (0.5, 0.99, 1.0 for the maximum).
    pub fn quantile(&self, q: f64) -> Duration {
        let i = ((self.lateness.len() - 1) as f64 * q).round() as usize;
        self.lateness[i]
    }
}

/// A write transaction of 16 rows of 4 KiB: the WAL grows by ~17 pages per transaction, so an
/// automatic checkpoint comes every ~60 transactions.
#[transactional(db = db)]
pub async fn blob_tx(db: &Database, i: u64) -> Result<(), Error> {
    let tx = current()?;
    for j in 0..16u64 {
        tx.execute(
            "INSERT OR REPLACE INTO blobs(id, data) VALUES (?1, randomblob(4096))",
            (((i * 16 + j) % 512) as i64,),
        )
        .await?;
    }
    Ok(())
}

/// A timer task that sleeps 1 ms `ticks` times, on a current-thread runtime (one executor
/// thread, so anything that blocks it delays the timer), with or without a writer task that
/// runs [`blob_tx`] back to back on `db`.
pub fn stall(db: &Database, ticks: usize, with_writer: bool) -> StallRun {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = with_writer.then(|| {
            let (db, stop) = (db.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut writes, mut longest) = (0u64, Duration::ZERO);
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    blob_tx(&db, writes).await.expect("write");
                    longest = longest.max(start.elapsed());
                    writes += 1;
                    tokio::task::yield_now().await;
                }
                (writes, longest)
            })
        });
        let mut lateness = Vec::with_capacity(ticks);
        for _ in 0..ticks {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(1);
            tokio::time::sleep_until(deadline).await;
            lateness.push(tokio::time::Instant::now() - deadline);
        }
        stop.store(true, Ordering::Relaxed);
        let (writes, longest_write) = match writer {
            Some(w) => w.await.expect("join writer"),
            None => (0, Duration::ZERO),
        };
        lateness.sort();
        StallRun {
            lateness,
            writes,
            longest_write,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Median of a sample.
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Microseconds, as a float.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
