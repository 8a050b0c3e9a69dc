//! One SQLite connection and the fixed statements the runtime sends on it.
//!
//! Statements run on the calling task's own thread (DESIGN §5: no thread hop per statement).
//! The `std` mutex only satisfies the borrow checker: frame turns already guarantee that one
//! task at a time uses a transaction's connection, so the lock is never contended for long
//! and is never held across an `.await`.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::Connection;

use crate::error::{Error, Result};

/// A connection owned by a [`Database`](crate::Database): the writer or one of the readers.
pub(crate) struct Conn {
    inner: Mutex<Connection>,
}

impl Conn {
    pub(crate) fn new(conn: Connection) -> Self {
        Conn {
            inner: Mutex::new(conn),
        }
    }

    /// Locks the connection. A panic inside a user closure poisons the mutex but leaves the
    /// connection itself usable (the frame that panicked rolls back), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs one fixed, parameterless statement through the statement cache.
pub(crate) fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(|e| Error::sqlite(e, Some(sql)))
}

/// How an outermost write transaction starts (`begin = ..`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Begin {
    /// `BEGIN DEFERRED`: take the write lock at the first write.
    Deferred,
    /// `BEGIN IMMEDIATE` (the default): take the write lock at once, so a transaction never
    /// fails half-way with `SQLITE_BUSY` when it upgrades from reading to writing.
    #[default]
    Immediate,
    /// `BEGIN EXCLUSIVE`: also keep readers of other connections out (in WAL mode this is
    /// the same as `IMMEDIATE`).
    Exclusive,
}

impl Begin {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Begin::Deferred => "BEGIN DEFERRED",
            Begin::Immediate => "BEGIN IMMEDIATE",
            Begin::Exclusive => "BEGIN EXCLUSIVE",
        }
    }
}

/// The statements that open and end the savepoint at `depth` (1 for the first savepoint
/// under the root).
///
/// Names come from the depth, never from user strings: the chain of open frames is LIFO, so
/// at most one savepoint per depth is open at any moment, and a small fixed set of names
/// keeps every savepoint statement in the prepared-statement cache.
#[derive(Clone)]
pub(crate) struct SavepointSql {
    pub(crate) open: String,
    pub(crate) release: String,
    pub(crate) rollback_to: String,
}

impl SavepointSql {
    pub(crate) fn at(depth: u32) -> Cow<'static, SavepointSql> {
        const CACHED: u32 = 64;
        static TABLE: OnceLock<Vec<SavepointSql>> = OnceLock::new();
        let table = TABLE.get_or_init(|| (0..CACHED).map(SavepointSql::new).collect());
        match table.get(depth as usize) {
            Some(sql) => Cow::Borrowed(sql),
            // Deeper than anyone nests in practice: build the strings for this frame alone.
            None => Cow::Owned(SavepointSql::new(depth)),
        }
    }

    fn new(depth: u32) -> SavepointSql {
        SavepointSql {
            open: format!("SAVEPOINT sp_{depth}"),
            release: format!("RELEASE sp_{depth}"),
            rollback_to: format!("ROLLBACK TO sp_{depth}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savepoint_names_come_from_the_depth_and_are_shared() {
        let sql = SavepointSql::at(3);
        assert_eq!(sql.open, "SAVEPOINT sp_3");
        assert_eq!(sql.release, "RELEASE sp_3");
        assert_eq!(sql.rollback_to, "ROLLBACK TO sp_3");
        // Cached depths hand out the same strings every time (no allocation per frame).
        assert!(matches!(SavepointSql::at(3), Cow::Borrowed(_)));
        // Beyond the table they are built, with the same shape.
        let deep = SavepointSql::at(1000);
        assert!(matches!(deep, Cow::Owned(_)));
        assert_eq!(deep.open, "SAVEPOINT sp_1000");
    }

    #[test]
    fn begin_statements() {
        assert_eq!(Begin::default(), Begin::Immediate);
        assert_eq!(Begin::Deferred.sql(), "BEGIN DEFERRED");
        assert_eq!(Begin::Immediate.sql(), "BEGIN IMMEDIATE");
        assert_eq!(Begin::Exclusive.sql(), "BEGIN EXCLUSIVE");
    }

    #[test]
    fn exec_reports_the_statement_that_failed() {
        let conn = Connection::open_in_memory().unwrap();
        let err = exec(&conn, "RELEASE sp_9").unwrap_err();
        let Error::Sqlite { sql, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(sql.as_deref(), Some("RELEASE sp_9"));
        assert!(err.to_string().contains("no such savepoint"), "{err}");
    }
}
