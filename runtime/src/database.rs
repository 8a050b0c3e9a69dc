//! `Database`: the handle users open and pass around. What it holds depends on the engine
//! (`backend/`); the handle, the default database and `db = ..` are the same for every one.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::backend::sqlite::open::DatabaseBuilder;
use crate::backend::sqlite::SqliteDb;
pub(crate) use crate::backend::Engine;
use crate::error::Result;

/// A SQLite database: one writer connection shared by the transactions of all tasks (in
/// turn), plus reader connections for read-only transactions on file databases.
///
/// Cheap to clone; all clones are the same database.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<DbInner>,
}

pub(crate) struct DbInner {
    pub(crate) id: u64,
    label: String,
    /// How long a statement or savepoint waits for its frame's turn.
    pub(crate) turn_wait: Duration,
    /// What `Database::stats` reports.
    pub(crate) stats: crate::stats::Counters,
    /// The open outermost transactions, for `Database::activity`.
    pub(crate) roots: crate::activity::Roots,
    /// `Database::close` was called: no transaction begins any more.
    pub(crate) closed: std::sync::atomic::AtomicBool,
    engine: Engine,
}

impl DbInner {
    /// What the database is, engine by engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The SQLite parts of this database. Only code that runs for SQLite databases asks
    /// (the SQLite backend itself, and frames whose session is a SQLite connection).
    pub(crate) fn sqlite(&self) -> &SqliteDb {
        match &self.engine {
            Engine::Sqlite(sqlite) => sqlite,
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => unreachable!("SQLite settings asked of a PostgreSQL database"),
        }
    }
}

impl Database {
    pub(crate) fn new(label: String, turn_wait: Duration, engine: Engine) -> Database {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Database {
            inner: Arc::new(DbInner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                label,
                turn_wait,
                stats: crate::stats::Counters::default(),
                roots: crate::activity::Roots::default(),
                closed: std::sync::atomic::AtomicBool::new(false),
                engine,
            }),
        }
    }
}

impl Database {
    /// Settings for opening a database.
    pub fn builder() -> DatabaseBuilder {
        DatabaseBuilder::default()
    }

    /// Opens (creating if needed) the database file at `path` with default settings.
    pub async fn open(path: impl AsRef<Path>) -> Result<Database> {
        Database::builder().open(path).await
    }

    /// Opens a private in-memory database with default settings.
    pub async fn open_in_memory() -> Result<Database> {
        Database::builder().open_in_memory().await
    }

    /// Connects to the PostgreSQL server `url` names (`postgres://user@host:port/db`) with
    /// default settings: a pool of 10 connections. See [`Database::postgres`] for the rest.
    #[cfg(feature = "postgres")]
    pub async fn connect(url: &str) -> Result<Database> {
        Database::postgres(url).connect().await
    }

    /// Settings for a PostgreSQL database at `url`.
    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str) -> crate::backend::postgres::open::PostgresBuilder {
        crate::backend::postgres::open::PostgresBuilder::new(url)
    }

    /// Makes this the database of outermost transactions that name none (`db = ..`) and
    /// start outside any transaction, in the whole process. Replaces an earlier default.
    /// A default set for a task with [`with_default`](Self::with_default) comes first.
    pub fn set_default(&self) {
        *DEFAULT.write().unwrap_or_else(|p| p.into_inner()) = Some(self.clone());
    }

    /// Runs `fut` with this database as the default of the outermost transactions it starts
    /// without naming one — and so do the tasks it spawns with [`spawn`](crate::spawn),
    /// [`spawn_local`](crate::spawn_local) or a [`TaskGroup`](crate::TaskGroup). Unlike
    /// [`set_default`](Self::set_default) it is scoped to this future, so tests running in
    /// parallel can each give their own temporary database to fns without `db = ..`.
    ///
    /// ```
    /// use transactional::{transactional, Database, Error};
    ///
    /// #[transactional] // no `db = ..`: the default database
    /// async fn add(item: &str) -> Result<(), Error> {
    ///     transactional::current()?.execute("INSERT INTO item VALUES (?1)", (item,)).await?;
    ///     Ok(())
    /// }
    ///
    /// # async fn demo() -> transactional::Result<()> {
    /// let db = Database::open_in_memory().await?;
    /// db.execute_batch("CREATE TABLE item(name TEXT)").await?;
    /// db.with_default(async {
    ///     add("tea").await?;
    ///     transactional::spawn(add("milk")).await.unwrap() // the child inherits it
    /// })
    /// .await?;
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn with_default<F: std::future::Future>(
        &self,
        fut: F,
    ) -> impl std::future::Future<Output = F::Output> {
        SCOPED_DEFAULTS_USED.store(true, Ordering::Relaxed);
        SCOPED_DEFAULT.scope(self.clone(), fut)
    }

    /// The default database of the current task: the one [`with_default`](Self::with_default)
    /// set for it, else the process default set by [`set_default`](Self::set_default).
    pub fn default_database() -> Option<Database> {
        scoped_default().or_else(|| DEFAULT.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Counters of what this database's frames did and are waiting for: commits,
    /// rollbacks, savepoints, retries, contended and timed-out waits, deadlocks reported,
    /// the frames waiting now and the longest current wait, and a histogram of wait times.
    /// Cheap: a snapshot of atomic counters.
    ///
    /// ```
    /// # async fn demo() -> transactional::Result<()> {
    /// let db = transactional::Database::open_in_memory().await?;
    /// transactional::Atomic::new().db(db.clone()).run(async { Ok::<_, transactional::Error>(()) }).await?;
    /// let stats = db.stats();
    /// assert_eq!(stats.transactions_committed, 1);
    /// println!("{stats}");
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn stats(&self) -> crate::stats::Stats {
        let mut stats = self.inner.stats.snapshot();
        stats.round_trips = crate::backend::round_trips(self);
        stats
    }

    /// What every open transaction of this database is doing right now: a tree of its open
    /// frames — id, name, depth, where it was opened, how long it has been open, statements
    /// run, tasks waiting for its turn, and the savepoint holding it. `Display` renders it
    /// as an indented tree for a log; the `bank` example serves it at
    /// `GET /debug/transactions`.
    ///
    /// ```
    /// # async fn demo() -> transactional::Result<()> {
    /// let db = transactional::Database::open_in_memory().await?;
    /// let seen = db.clone();
    /// transactional::Atomic::new().db(db.clone()).name("report").run(async move {
    ///     let activity = seen.activity();
    ///     assert_eq!(activity.transactions[0].name, Some("report"));
    ///     println!("{activity}"); // transaction #1 `report` opened at src/main.rs:5, open 12µs, 0 statements
    ///     Ok::<_, transactional::Error>(())
    /// }).await?;
    /// assert!(db.activity().transactions.is_empty());
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn activity(&self) -> crate::activity::Activity {
        self.inner.roots.snapshot()
    }

    /// Runs `sql` — one or more statements separated by `;`, without parameters — in an
    /// outermost transaction of its own, which commits if every statement succeeds: for a
    /// schema, a migration step or a one-off fix, without writing an `Atomic` block.
    ///
    /// Always a transaction of its own (`requires_new`), also when called inside another
    /// one; inside a transaction of this same SQLite database it fails at once, since it
    /// would wait for that transaction's own write lock — use
    /// [`current()?.execute_batch(..)`](crate::Tx::execute_batch) there. Transaction control
    /// in `sql` is refused, as for every user statement.
    ///
    /// ```
    /// # async fn demo() -> transactional::Result<()> {
    /// let db = transactional::Database::open_in_memory().await?;
    /// db.execute_batch("CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
    ///                   CREATE INDEX account_balance ON account(balance)").await?;
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn execute_batch(&self, sql: &str) -> Result<()> {
        crate::Atomic::new()
            .db(self.clone())
            .propagation(crate::Propagation::RequiresNew)
            .name("execute_batch")
            .run(async move { crate::current()?.execute_batch(sql).await })
            .await
    }

    /// Closes the database: it begins no more transactions ([`Error::Closed`]), waits for
    /// those already open or queued to end, then closes every connection and reports what
    /// went wrong doing so. Every clone of this handle sees the database closed.
    ///
    /// On SQLite the connections close in the order that leaves a complete database file:
    /// the WAL is checkpointed into the main file and removed, and once `close` returns no
    /// connection or thread of this database holds a lock on the file — another process may
    /// open and write it at once, and a copy of the main file alone holds every committed
    /// row. (Dropping the last handle does the same, synchronously, logging errors instead.)
    /// On PostgreSQL the pool is closed and its connections with it.
    ///
    /// The wait for open transactions is bounded by the database's `writer_wait` (SQLite) or
    /// `pool_wait` (PostgreSQL); past it, [`Error::Busy`] names the transactions still open,
    /// and the database stays closed to new ones. Called inside a transaction of this
    /// database, it fails at once (it would wait for itself). Calling it again is harmless.
    ///
    /// ```
    /// # async fn demo() -> transactional::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let db = transactional::Database::open(dir.path().join("app.db")).await?;
    /// transactional::Atomic::new().db(db.clone()).run(async {
    ///     transactional::current()?.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)").await
    /// }).await?;
    /// db.close().await?;
    /// assert!(!dir.path().join("app.db-wal").exists()); // folded back into app.db
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    ///
    /// [`Error::Closed`]: crate::Error::Closed
    /// [`Error::Busy`]: crate::Error::Busy
    pub async fn close(&self) -> Result<()> {
        let inside = crate::context::with_current(|current| {
            current.is_some_and(|current| {
                crate::context::chain(current).any(|f| f.txn.db.same_as(self) && !f.is_closed())
            })
        });
        if inside {
            return Err(crate::Error::Unsupported(format!(
                "`Database::close` on {} inside one of its own transactions would wait for \
                 itself: close it after the transaction has ended",
                self.label()
            )));
        }
        self.inner.closed.store(true, Ordering::SeqCst);
        crate::backend::close(self).await
    }

    /// Whether [`close`](Self::close) has been called on this database.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// The file path this database was opened with, or `:memory:`.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    pub(crate) fn same_as(&self, other: &Database) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

static DEFAULT: RwLock<Option<Database>> = RwLock::new(None);

tokio::task_local! {
    /// The default database of a task, set by `Database::with_default` and carried into the
    /// tasks it spawns (`context::carry`).
    static SCOPED_DEFAULT: Database;
}

/// Whether any task default was ever set: until then every spawn skips looking for one
/// (`carry` is on the path of every `TaskGroup` child).
static SCOPED_DEFAULTS_USED: AtomicBool = AtomicBool::new(false);

/// The task's own default database, if `with_default` set one.
pub(crate) fn scoped_default() -> Option<Database> {
    if !SCOPED_DEFAULTS_USED.load(Ordering::Relaxed) {
        return None;
    }
    SCOPED_DEFAULT.try_with(Database::clone).ok()
}

/// Wraps `fut` so that it runs with `db` as its task's default database.
pub(crate) fn with_scoped_default<F: std::future::Future>(
    db: Database,
    fut: F,
) -> impl std::future::Future<Output = F::Output> {
    SCOPED_DEFAULT.scope(db, fut)
}

impl AsRef<Database> for Database {
    fn as_ref(&self) -> &Database {
        self
    }
}

/// What `#[transactional(db = ..)]` accepts: a `Database`, a reference to one (at any
/// depth), an `Arc<Database>` or a `Box<Database>`. Generic code bounds on this trait.
///
/// A trait of its own (rather than `AsRef<Database>`) so that a wrong type gets a message
/// about `db`, not a list of the `AsRef` impls of the wrong type.
#[diagnostic::on_unimplemented(
    message = "`db = ..` needs a `transactional::Database`, found `{Self}`",
    label = "not a `Database`",
    note = "pass a `Database`, a reference to one, or an `Arc<Database>`, e.g. `db = &state.db`"
)]
pub trait AsDatabase {
    /// The database.
    fn as_database(&self) -> &Database;
}

impl AsDatabase for Database {
    fn as_database(&self) -> &Database {
        self
    }
}

impl<T: AsDatabase + ?Sized> AsDatabase for &T {
    fn as_database(&self) -> &Database {
        (**self).as_database()
    }
}

impl<T: AsDatabase + ?Sized> AsDatabase for &mut T {
    fn as_database(&self) -> &Database {
        (**self).as_database()
    }
}

impl AsDatabase for std::sync::Arc<Database> {
    fn as_database(&self) -> &Database {
        self
    }
}

impl AsDatabase for Box<Database> {
    fn as_database(&self) -> &Database {
        self
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("id", &self.inner.id)
            .field("label", &self.inner.label)
            .finish()
    }
}
