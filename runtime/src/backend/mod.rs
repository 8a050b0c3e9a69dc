//! Backends: everything that speaks to a particular database engine, and the one place where
//! the runtime dispatches on which engine a database is.
//!
//! The rest of the runtime — frames and turns (`frame/`), the task's context (`context`),
//! task groups (`task`), the `atomic` builder, hooks, bounded waits (`wait`), values
//! (`value/`) — is about ordering and ending frames, and is the same for every engine. What
//! differs lives here, one folder per engine (ARCHITECTURE.md §6): what an outermost transaction holds
//! (SQLite: the writer queue or a reader connection; PostgreSQL: a pooled connection), the
//! text of BEGIN and of the savepoint statements, executing and caching statements, binding
//! and decoding values, classifying errors, checking a connection's state when it is handed
//! back, and engine-only parts (SQLite's checkpoint thread and pragmas, PostgreSQL's pool).
//!
//! The frame machinery decides *what* a frame's end does ([`EndAction`]); a backend carries
//! it out. SQLite's arm never awaits (its statements run on the calling thread); PostgreSQL's
//! awaits the round trip while the frame still holds its turn.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::panic::Location;
use std::sync::Arc;

use crate::atomic::Isolation;
use crate::context::Current;
use crate::database::Database;
use crate::error::Result;

pub(crate) use sqlite::conn::Begin;

/// What a database is, engine by engine.
pub(crate) enum Engine {
    Sqlite(sqlite::SqliteDb),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgDb),
}

/// The connection one open transaction runs on, shared by its frames.
pub(crate) enum Session {
    Sqlite(Arc<sqlite::conn::Conn>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<postgres::session::PgSession>),
}

impl Session {
    /// The SQLite connection of a session that is known to be SQLite's.
    #[allow(clippy::infallible_destructuring_match)] // not infallible with `postgres`
    pub(crate) fn sqlite(&self) -> &Arc<sqlite::conn::Conn> {
        match self {
            Session::Sqlite(conn) => conn,
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {
                unreachable!("a SQLite connection asked of a PostgreSQL session")
            }
        }
    }
}

/// What an outermost transaction holds until it ends. Dropping it hands the connection
/// back, rolling back whatever is still open on it.
pub(crate) enum RootHold {
    Sqlite(#[allow(dead_code)] sqlite::begin::RootHold),
    #[cfg(feature = "postgres")]
    Postgres(#[allow(dead_code)] postgres::session::PgHold),
}

impl RootHold {
    /// The root holds the writer (SQLite's single write connection).
    pub(crate) fn on_writer(&self) -> bool {
        matches!(self, RootHold::Sqlite(sqlite::begin::RootHold::Writer(_)))
    }

    /// The root holds one of SQLite's reader connections.
    pub(crate) fn on_reader(&self) -> bool {
        matches!(self, RootHold::Sqlite(sqlite::begin::RootHold::Reader(_)))
    }
}

/// How an outermost transaction begins.
#[derive(Clone, Debug)]
pub(crate) struct BeginSpec {
    pub(crate) begin: Begin,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) isolation: Option<Isolation>,
    pub(crate) read_only: bool,
    pub(crate) id: u64,
    pub(crate) name: Option<&'static str>,
    pub(crate) opened_at: &'static Location<'static>,
    /// The task begins this transaction inside another transaction on the same database
    /// (`requires_new`): a wait for a lock that one holds would never end.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) inside_same_db: Option<String>,
}

/// Begins an outermost transaction on `db`.
pub(crate) async fn begin_root(db: &Database, spec: BeginSpec) -> Result<(Session, RootHold)> {
    if db.is_closed() {
        return Err(crate::Error::Closed(db.label().to_owned()));
    }
    match db.inner.engine() {
        Engine::Sqlite(_) => {
            let (conn, hold) = sqlite::begin::begin_root(db, spec).await?;
            Ok((Session::Sqlite(conn), RootHold::Sqlite(hold)))
        }
        #[cfg(feature = "postgres")]
        Engine::Postgres(pg) => {
            let (session, hold) = Box::pin(pg.begin_root(db, spec)).await?;
            Ok((Session::Postgres(session), RootHold::Postgres(hold)))
        }
    }
}

/// `Database::close`: waits for the open transactions, then closes the connections.
pub(crate) async fn close(db: &Database) -> Result<()> {
    match db.inner.engine() {
        Engine::Sqlite(_) => sqlite::close::close(db).await,
        #[cfg(feature = "postgres")]
        Engine::Postgres(pg) => pg.close(db).await,
    }
}

/// The round trips to the database's server so far (`Stats::round_trips`).
pub(crate) fn round_trips(db: &Database) -> u64 {
    match db.inner.engine() {
        Engine::Sqlite(_) => 0,
        #[cfg(feature = "postgres")]
        Engine::Postgres(pg) => pg.pool.round_trips().get(),
    }
}

/// Fails at once when a new outermost transaction on `db` from a task inside `current`
/// would wait for what the task's own transactions hold.
pub(crate) fn check_no_self_wait(db: &Database, read_only: bool, current: &Current) -> Result<()> {
    match db.inner.engine() {
        Engine::Sqlite(_) => sqlite::begin::check_no_self_wait(db, read_only, current),
        // A second pooled connection: the pool's own wait is bounded.
        #[cfg(feature = "postgres")]
        Engine::Postgres(_) => Ok(()),
    }
}

/// What ending a frame sends, decided by the frame machinery (`frame/end.rs`) and carried
/// out by the frame's backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndAction {
    /// RELEASE the savepoint, or COMMIT the root. On failure the frame is rolled back and
    /// the failure returned.
    Keep,
    /// ROLLBACK TO and RELEASE the savepoint, or ROLLBACK the root. A failure is logged and
    /// aborts the transaction (the caller has its own result to report).
    Undo,
    /// The transaction was already aborted: send nothing for a savepoint; leave the
    /// connection outside any transaction for a root.
    Abandon,
}

/// Records a statement as a session sends it: the `tracing` event of target
/// `transactional::sql` (level TRACE) with the session's id and the SQL, emitted in the order
/// the database receives them (under the connection's lock on SQLite; while the frame's turn
/// is held on PostgreSQL). The savepoint SQL of every backend can be checked from it
/// (`tests/tests/lifo_sql.rs`), and users can log it. A library batch of several statements
/// is recorded statement by statement. Costs one static check when nothing listens.
#[inline]
pub(crate) fn sent(session: u64, sql: &str, library: bool) {
    if tracing::enabled!(target: "transactional::sql", tracing::Level::TRACE) {
        sent_slow(session, sql, library);
    }
}

#[cold]
#[inline(never)]
fn sent_slow(session: u64, sql: &str, library: bool) {
    if library {
        for statement in sql.split("; ") {
            tracing::trace!(target: "transactional::sql", session, sql = statement);
        }
    } else {
        tracing::trace!(target: "transactional::sql", session, sql);
    }
}

/// A process-unique id for a session (a connection as one transaction, or SQLite's writer).
pub(crate) fn next_session_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
