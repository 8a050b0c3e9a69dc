//! Opening a SQLite database: the builder, each connection's settings, and the pragmas the
//! runtime relies on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::conn::Conn;
use super::SqliteDb;
use crate::database::{Database, Engine};
use crate::error::{Error, Result};

/// Settings for opening a [`Database`]; see [`Database::builder`].
#[derive(Clone)]
#[must_use = "a DatabaseBuilder does nothing until `.open(..)` or `.open_in_memory()` is awaited"]
pub struct DatabaseBuilder {
    busy_timeout: Duration,
    writer_wait: Duration,
    turn_wait: Duration,
    reader_wait: Duration,
    readers: usize,
    statement_cache: usize,
    slow_statement: Duration,
    pragmas: Vec<(String, String)>,
    on_open: Vec<OnOpen>,
}

type OnOpen = Arc<dyn Fn(&mut Connection) -> rusqlite::Result<()> + Send + Sync + 'static>;

impl fmt::Debug for DatabaseBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseBuilder")
            .field("busy_timeout", &self.busy_timeout)
            .field("writer_wait", &self.writer_wait)
            .field("turn_wait", &self.turn_wait)
            .field("reader_wait", &self.reader_wait)
            .field("readers", &self.readers)
            .field("statement_cache", &self.statement_cache)
            .field("slow_statement", &self.slow_statement)
            .field("pragmas", &self.pragmas)
            .field("on_open", &self.on_open.len())
            .finish()
    }
}

impl Default for DatabaseBuilder {
    fn default() -> Self {
        DatabaseBuilder {
            busy_timeout: Duration::from_secs(5),
            writer_wait: Duration::from_secs(30),
            turn_wait: Duration::from_secs(30),
            reader_wait: Duration::from_secs(30),
            readers: 4,
            statement_cache: 256,
            slow_statement: crate::backend::sqlite::slow::THRESHOLD,
            pragmas: Vec::new(),
            on_open: Vec::new(),
        }
    }
}

impl DatabaseBuilder {
    /// How long a transaction waits to begin while *another* connection or process holds the
    /// database's write lock, before failing with [`Error::Busy`] (default 5 s). The wait is
    /// asynchronous: it never blocks an executor thread. (Inside a `begin = "deferred"`
    /// transaction, a write that meets such a lock fails at once with `Error::Busy`;
    /// `retries` re-runs the transaction.) Transactions of this `Database` never wait on
    /// each other through SQLite: they queue in the library (see `writer_wait`).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// A statement that runs longer than this on an executor thread — not offloaded
    /// (`Atomic::offload`, `offload` in `#[transactional]`, `Tx::offloaded`) — is logged at
    /// `warn` with its frame once it ends: it stalled every task queued on that tokio worker.
    /// 100 ms by default.
    pub fn slow_statement(mut self, threshold: Duration) -> Self {
        self.slow_statement = threshold;
        self
    }

    /// How long an outermost write transaction waits for the transactions queued before it
    /// (default 30 s) before failing with [`Error::Busy`], which names the transaction that
    /// holds the lock. A wait this long usually means that transaction waits for this one:
    /// a task spawned without its transaction context (`tokio::spawn` outside a
    /// `#[transactional]` body, `JoinSet::spawn`, `Handle::spawn`, instead of
    /// `transactional::spawn` or `transactional::carry`). The wait is not cut short for
    /// such a task: it cannot be told from an unrelated one (see [`carry`](crate::carry)).
    pub fn writer_wait(mut self, wait: Duration) -> Self {
        self.writer_wait = wait;
        self
    }

    /// How long a statement or a savepoint waits for its frame's turn — for the savepoints
    /// of sibling tasks opened before it to end — before failing with [`Error::Busy`], which
    /// names the frame holding the turn and where it was opened (default 30 s). A wait this
    /// long almost always means a cycle the library cannot see: a task waiting (on a channel,
    /// a join handle) for another task that needs this turn.
    pub fn turn_wait(mut self, wait: Duration) -> Self {
        self.turn_wait = wait;
        self
    }

    /// How long an outermost read-only transaction waits for a reader connection when all
    /// are in use before failing with [`Error::Busy`] (default 30 s).
    pub fn reader_wait(mut self, wait: Duration) -> Self {
        self.reader_wait = wait;
        self
    }

    /// Number of reader connections for outermost read-only transactions on a file database
    /// (default 4; 0 runs read-only transactions on the writer). In-memory databases have none.
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// Capacity of each connection's prepared-statement cache (default 256).
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.statement_cache = capacity;
        self
    }

    /// A `PRAGMA name = value` applied to every connection after the built-in settings, e.g.
    /// `.pragma("synchronous", "FULL")` (every COMMIT then fsyncs; the library runs those
    /// COMMITs on a blocking thread so that the fsync does not stall the executor) or
    /// `.pragma("foreign_keys", "OFF")`. The name must be
    /// a plain identifier; `open` fails with an error otherwise.
    pub fn pragma(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pragmas.push((name.into(), value.into()));
        self
    }

    /// Runs `init` on every connection (the writer and each reader) once it is configured:
    /// register SQL functions, collations, a trace hook, … Runs on a blocking thread.
    ///
    /// The library then installs its own authorizer and commit hook on the connection (they
    /// keep transaction control with the library), replacing any that `init` set.
    pub fn on_open(
        mut self,
        init: impl Fn(&mut Connection) -> rusqlite::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.on_open.push(Arc::new(init));
        self
    }

    /// Opens (creating if needed) the database file at `path` in WAL mode.
    pub async fn open(self, path: impl AsRef<Path>) -> Result<Database> {
        let path = path.as_ref().to_path_buf();
        blocking(move || self.open_file(path)).await
    }

    /// Opens a private in-memory database. It has only the writer connection, so read-only
    /// transactions take their turn on it.
    pub async fn open_in_memory(self) -> Result<Database> {
        blocking(move || {
            let writer = self.configure(Connection::open_in_memory()?, false)?;
            self.assemble(":memory:".to_owned(), writer, Vec::new(), None)
        })
        .await
    }

    /// Connects to PostgreSQL (feature `postgres`) with the settings of this builder that
    /// mean the same on every backend: `turn_wait`, and `writer_wait` as the wait for a
    /// pooled connection (what an outermost transaction waits for before it begins). The
    /// SQLite-only settings are ignored; [`Database::postgres`] has the pool's own.
    #[cfg(feature = "postgres")]
    pub async fn connect_postgres(self, config: tokio_postgres::Config) -> Result<Database> {
        let label = format!(
            "postgres://{}@{}/{}",
            config.get_user().unwrap_or(""),
            config
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(host) => host.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .unwrap_or_default(),
            config.get_dbname().unwrap_or("")
        );
        Database::postgres(&label)
            .config(config)
            .turn_wait(self.turn_wait)
            .pool_wait(self.writer_wait)
            .connect()
            .await
    }

    fn open_file(&self, path: PathBuf) -> Result<Database> {
        let writer = self.configure(Connection::open(&path)?, true)?;
        let readers = (0..self.readers)
            .map(|_| {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI;
                self.configure(Connection::open_with_flags(&path, flags)?, false)
            })
            .collect::<Result<Vec<_>>>()?;
        self.assemble(path.display().to_string(), writer, readers, Some(&path))
    }

    fn configure(&self, mut conn: Connection, writer_of_file: bool) -> Result<Connection> {
        conn.set_prepared_statement_cache_capacity(self.statement_cache);
        // No connection waits inside SQLite, which would block the executor thread: a BEGIN
        // (and a reader's first read) that meets another process's lock waits asynchronously
        // instead (`writer::while_busy`), up to `busy_timeout`.
        conn.busy_timeout(Duration::ZERO)?;
        if writer_of_file {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::Unsupported(format!(
                    "could not switch the database to WAL mode (journal_mode is {mode})"
                )));
            }
            // WAL makes NORMAL durable against application crashes; users who need
            // durability against power loss set `.pragma("synchronous", "FULL")`.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        for (name, value) in &self.pragmas {
            if !is_identifier(name) {
                return Err(Error::Unsupported(format!(
                    "`{name}` is not a pragma name (expected letters, digits and `_`)"
                )));
            }
            if let Some(why) = pragma_the_runtime_owns(name, value) {
                return Err(Error::Unsupported(format!(
                    "`.pragma(\"{name}\", ..)` is refused: {why}"
                )));
            }
            conn.pragma_update(None, name, value)
                .map_err(|e| Error::sqlite(e, Some(&format!("PRAGMA {name} = {value}"))))?;
        }
        for init in &self.on_open {
            init(&mut conn)?;
        }
        Ok(conn)
    }

    /// Puts the configured connections together; for a file at `path`, moves its WAL
    /// checkpoints to a background thread.
    fn assemble(
        &self,
        label: String,
        mut writer: Connection,
        readers: Vec<Connection>,
        path: Option<&Path>,
    ) -> Result<Database> {
        let writer_lock = Arc::new(tokio::sync::Mutex::new(()));
        let checkpointer = match path {
            Some(path) => {
                crate::backend::sqlite::checkpoint::install(&mut writer, path, writer_lock.clone())?
            }
            None => None,
        };
        let readers = match readers.is_empty() {
            true => None,
            false => Some(crate::backend::sqlite::readers::ReaderPool::new(readers)?),
        };
        // 2 = FULL, 3 = EXTRA: every COMMIT fsyncs. In memory, nothing does.
        let synchronous: i64 = writer
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap_or(0);
        let commit_off_thread = label != ":memory:" && synchronous >= 2;
        let sqlite = SqliteDb {
            writer: Arc::new(Conn::new(writer)?),
            writer_lock,
            writer_holder: Mutex::new(None),
            writer_wait: self.writer_wait,
            reader_wait: self.reader_wait,
            busy_timeout: self.busy_timeout,
            commit_off_thread,
            readers,
            checkpointer: Mutex::new(checkpointer),
        };
        sqlite.writer.slow.set_threshold(self.slow_statement);
        if let Some(readers) = &sqlite.readers {
            for reader in readers.idle_connections() {
                reader.slow.set_threshold(self.slow_statement);
            }
        }
        Ok(Database::new(label, self.turn_wait, Engine::Sqlite(sqlite)))
    }
}

/// Runs blocking work (opening files, setting WAL) off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::background("opening the database", e))?
}

/// Why a builder pragma would break what the runtime relies on, if it would.
fn pragma_the_runtime_owns(name: &str, value: &str) -> Option<&'static str> {
    let value = value.trim().trim_matches(['\'', '"']);
    let why = match name.to_ascii_lowercase().as_str() {
        "journal_mode" if value.eq_ignore_ascii_case("wal") => return None,
        "locking_mode" if value.eq_ignore_ascii_case("normal") => return None,
        "journal_mode" => "file databases run in WAL mode, which readers beside the writer and the background checkpoints rely on",
        "locking_mode" => "EXCLUSIVE locking would lock the reader connections out of the file",
        "query_only" => "the writer must be able to write; use `read_only` transactions",
        "busy_timeout" => "use `DatabaseBuilder::busy_timeout`, which waits without blocking an executor thread",
        "writable_schema" => "it can corrupt the database",
        _ => return None,
    };
    Some(why)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}
