//! Shared fixtures for the integration tests: databases on real SQLite (a temporary file in
//! WAL mode, or in memory) and, with the `postgres` feature and `DATABASE_URL` set, on real
//! PostgreSQL (a schema of its own per database); a `kv` table; and checks that read the
//! database independently.
//!
//! The conformance suite is every test that loops over [`KINDS`]: written once, it runs
//! unchanged on each backend. Tests that are about SQLite itself (WAL, checkpoints, pragmas,
//! files) use `Kind::File`/`Kind::Memory` or [`SQLITE_KINDS`] and say so.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use transactional::{Atomic, Database, DatabaseBuilder, Error};

#[cfg(feature = "postgres")]
pub mod postgres;

/// A database under test and what keeps its file (or schema) alive.
pub struct TestDb {
    pub db: Database,
    /// The file, for file databases (read independently of the library by `raw_*`).
    pub path: Option<PathBuf>,
    pub kind: Kind,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL schema, dropped with the fixture.
    #[cfg(feature = "postgres")]
    pub pg: Option<postgres::PgTestDb>,
}

/// Which kind of database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Memory,
    /// PostgreSQL at `DATABASE_URL` (feature `postgres`).
    Postgres,
}

/// Every backend the conformance suite runs on here: SQLite in a file and in memory, and
/// PostgreSQL when the `postgres` feature is on and `DATABASE_URL` is set (set but
/// unreachable is a failure, never a skip).
pub const KINDS: Kinds = Kinds;

/// The SQLite kinds, for tests about SQLite itself.
pub const SQLITE_KINDS: [Kind; 2] = [Kind::File, Kind::Memory];

/// See [`KINDS`].
#[derive(Clone, Copy, Debug)]
pub struct Kinds;

impl IntoIterator for Kinds {
    type Item = Kind;
    type IntoIter = std::vec::IntoIter<Kind>;

    fn into_iter(self) -> Self::IntoIter {
        let mut kinds = SQLITE_KINDS.to_vec();
        if postgres_configured() {
            kinds.push(Kind::Postgres);
        }
        kinds.into_iter()
    }
}

/// Whether the PostgreSQL kind runs: the feature is on and `DATABASE_URL` is set.
pub fn postgres_configured() -> bool {
    cfg!(feature = "postgres") && std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

impl Kind {
    pub fn is_sqlite(self) -> bool {
        self != Kind::Postgres
    }
}

impl TestDb {
    /// A fresh database of `kind` with table `kv(key TEXT PRIMARY KEY, val INTEGER)`.
    pub async fn new(kind: Kind) -> TestDb {
        TestDb::with_builder(kind, Database::builder()).await
    }

    /// A fresh database of `kind` opened with `builder`, with the same `kv` table as `new`.
    pub async fn with_builder(kind: Kind, builder: DatabaseBuilder) -> TestDb {
        #[cfg(feature = "postgres")]
        let mut pg = None;
        let (db, path, dir) = match kind {
            Kind::File => {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("test.db");
                let db = builder.open(&path).await.expect("open file database");
                (db, Some(path), Some(dir))
            }
            Kind::Memory => {
                let db = builder
                    .open_in_memory()
                    .await
                    .expect("open in-memory database");
                (db, None, None)
            }
            #[cfg(feature = "postgres")]
            Kind::Postgres => {
                let schema = postgres::PgTestDb::new("kv")
                    .await
                    .expect("Kind::Postgres runs only when DATABASE_URL is set");
                let db = builder
                    .connect_postgres(schema.config())
                    .await
                    .expect("connect to PostgreSQL");
                pg = Some(schema);
                (db, None, None)
            }
            #[cfg(not(feature = "postgres"))]
            Kind::Postgres => unreachable!("Kind::Postgres needs the `postgres` feature"),
        };
        let test = TestDb {
            db,
            path,
            kind,
            _dir: dir,
            #[cfg(feature = "postgres")]
            pg,
        };
        test.exec("CREATE TABLE kv(key TEXT PRIMARY KEY, val INTEGER NOT NULL)")
            .await
            .expect("create kv");
        test
    }

    /// The same file opened again with other settings; the old handle is dropped.
    pub async fn reopen_with(self, builder: DatabaseBuilder) -> TestDb {
        let path = self.path.clone().expect("reopen needs a file database");
        let db = builder.open(&path).await.expect("reopen");
        TestDb { db, ..self }
    }

    /// The handle and what keeps the file: for a test that drops the last handle itself and
    /// then inspects the file.
    pub fn into_parts(self) -> (Database, Option<tempfile::TempDir>) {
        (self.db, self._dir)
    }

    /// Runs `sql` in a transaction of its own.
    pub async fn exec(&self, sql: &str) -> Result<(), Error> {
        let sql = sql.to_owned();
        Atomic::new()
            .db(self.db.clone())
            .run(async move { transactional::current()?.execute_batch(&sql).await })
            .await
    }

    /// The whole `kv` table, read in a transaction of its own.
    pub async fn kv(&self) -> BTreeMap<String, i64> {
        Atomic::new()
            .db(self.db.clone())
            .read_only(true)
            .run(async {
                let rows = transactional::current()?
                    .query("SELECT key, val FROM kv ORDER BY key", ())
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)))
                    .collect::<Result<BTreeMap<_, _>, Error>>()
            })
            .await
            .expect("read kv")
    }

    /// `PRAGMA integrity_check` (on its own connection for file databases) is `ok`, and
    /// the writer is outside any transaction and usable: a write transaction commits.
    pub async fn assert_healthy(&self) {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            postgres::assert_no_session_in_transaction(pg).await;
            self.write_something()
                .await
                .expect("the database accepts a write transaction");
            return;
        }
        let verdict: String = match &self.path {
            Some(path) => {
                let conn = rusqlite::Connection::open(path).expect("open raw");
                conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
                    .expect("integrity_check")
            }
            None => self.integrity_check().await.expect("integrity_check"),
        };
        assert_eq!(verdict, "ok");
        self.write_something()
            .await
            .expect("the database accepts a write transaction");
    }

    /// `PRAGMA integrity_check` through the library: the only way to reach an in-memory
    /// database.
    pub async fn integrity_check(&self) -> Result<String, Error> {
        Atomic::new()
            .db(self.db.clone())
            .run(async {
                transactional::current()?
                    .query_row("PRAGMA integrity_check", ())
                    .await?
                    .get(0)
            })
            .await
    }

    /// A write transaction that leaves `kv` alone: proves the writer is usable.
    pub async fn write_something(&self) -> Result<(), Error> {
        self.exec(
            "CREATE TABLE IF NOT EXISTS health(x INTEGER); INSERT INTO health VALUES (1); \
             DELETE FROM health",
        )
        .await
    }

    /// The number of rows of `kv`, in a read-only transaction of its own (on a reader
    /// connection, for file databases).
    pub async fn count_read_only(&self) -> Result<i64, Error> {
        Atomic::new()
            .db(self.db.clone())
            .read_only(true)
            .run(count_kv())
            .await
    }

    /// The `kv` table as another connection sees it: only committed data.
    pub fn raw_kv(&self) -> Option<BTreeMap<String, i64>> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            return Some(postgres::raw_kv(pg));
        }
        let conn = rusqlite::Connection::open(self.path.as_ref()?).expect("open raw");
        let mut stmt = conn
            .prepare("SELECT key, val FROM kv ORDER BY key")
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .expect("query");
        Some(rows.collect::<Result<_, _>>().expect("rows"))
    }
}

/// The statement `insert` runs (for tests that need the very same text, e.g. to hit the
/// statement cache).
pub const INSERT_SQL: &str = "INSERT INTO kv(key, val) VALUES (?1, 1)";

/// Inserts `(key, 1)` into `kv` in the current task's innermost frame.
pub async fn insert(key: impl AsRef<str>) -> Result<(), Error> {
    transactional::current()?
        .execute(INSERT_SQL, (key.as_ref(),))
        .await
        .map(drop)
}

/// The number of rows of `kv`, in the current task's innermost frame.
pub async fn count_kv() -> Result<i64, Error> {
    transactional::current()?
        .query_row("SELECT count(*) FROM kv", ())
        .await?
        .get::<i64>(0)
}

/// `kv` as expected: pairs of key and value.
pub fn table<'a>(pairs: impl IntoIterator<Item = (&'a str, i64)>) -> BTreeMap<String, i64> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Runs `fut`, failing the test if it takes over 20 s: a hang is reported, never hangs the
/// run.
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for 20 s"))
}

/// Checks `holds` every 10 ms until it is true or `limit` has passed; whether it held. For
/// what follows a moment after its cause (an `on_commit` hook run on the blocking thread, a
/// rollback once a child is gone).
pub async fn eventually<F: Future<Output = bool>>(
    limit: Duration,
    mut holds: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if holds().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `sql` (a write transaction) on the file through a connection of its own, outside
/// the library, retrying for up to `wait` without waiting inside SQLite (busy timeout 0):
/// the check that the library left no connection holding the write lock. `Err` carries the
/// last failure.
pub fn raw_write(path: &Path, sql: &str, wait: Duration) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    let conn = rusqlite::Connection::open(path).map_err(|e| format!("raw open: {e}"))?;
    conn.busy_timeout(Duration::ZERO)
        .map_err(|e| e.to_string())?;
    loop {
        match conn.execute_batch(sql) {
            Ok(()) => return Ok(()),
            Err(err) if Instant::now() >= deadline => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(err.to_string());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A `tracing` writer that keeps everything logged, for tests that read the log:
/// `tracing_subscriber::fmt().with_writer(move || capture.clone())`.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
