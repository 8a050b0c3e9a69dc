//! One SQLite connection, the guard that hands it out, and the fixed statements the runtime
//! sends on it.
//!
//! Statements run on the calling task's own thread (ARCHITECTURE.md §5: no thread hop per statement).
//! The `std` mutex only satisfies the borrow checker: frame turns already guarantee that one
//! task at a time uses a transaction's connection, so the lock is never contended for long
//! and is never held across an `.await`.
//!
//! Two rules are kept here, where every use of a connection passes:
//!
//! - **Transaction control belongs to the library** (ARCHITECTURE.md §6). Each connection has an
//!   authorizer that refuses `BEGIN`/`COMMIT`/`ROLLBACK`/`SAVEPOINT`/`RELEASE` and the pragmas
//!   that change how the runtime uses the connection whenever a *user* statement is being
//!   prepared, and a commit hook that turns any `COMMIT` the library did not send into a
//!   rollback — the hook runs at execution, so it also holds for a statement taken from the
//!   prepared-statement cache. The library's own statements run in [`Gate::LIBRARY`] mode.
//! - **No connection is handed back inside a transaction.** Whoever gives a connection back
//!   (the writer lock released, a reader returned) calls [`Conn::hand_back`], which rolls
//!   back what is still open; if the connection is busy at that moment (a statement of the
//!   abandoned transaction still runs on another thread), it is marked, and the guard of that
//!   statement repairs it the moment it unlocks. Whoever takes a connection for a new
//!   transaction checks again ([`ConnGuard::repair`]).

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use crate::error::{Error, Result};

/// A connection owned by a [`Database`](crate::Database): the writer or one of the readers.
pub(crate) struct Conn {
    /// For the `transactional::sql` trace (`backend::sent`).
    pub(crate) id: u64,
    inner: Mutex<Connection>,
    gate: Arc<Gate>,
    /// Handed back while in use: the next unlock must repair it.
    dirty: AtomicBool,
    /// Notices a statement that runs long on the calling thread.
    pub(crate) slow: Arc<super::slow::SlowWatch>,
}

/// Who is using the connection, as its authorizer and commit hook see it.
pub(crate) struct Gate {
    mode: AtomicU8,
    /// Why the authorizer last refused a statement, for the error the user gets.
    refused: Mutex<Option<String>>,
}

impl Gate {
    /// The library's own statements: everything is allowed.
    pub(crate) const LIBRARY: u8 = 0;
    /// A user statement: no transaction control, no connection-mode pragmas.
    pub(crate) const USER: u8 = 1;

    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            mode: AtomicU8::new(Gate::USER),
            refused: Mutex::new(None),
        })
    }

    fn refuse(&self, reason: String) -> Authorization {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        Authorization::Deny
    }

    /// The authorizer: called by SQLite while a statement is prepared (or re-prepared after
    /// a schema change).
    fn authorize(&self, ctx: AuthContext<'_>) -> Authorization {
        if self.mode.load(Ordering::Relaxed) == Gate::LIBRARY {
            return Authorization::Allow;
        }
        match ctx.action {
            AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => self.refuse(
                "transaction control belongs to the library: a `#[transactional]` body commits \
                 by returning `Ok` and rolls back by returning `Err`; for a savepoint, call a \
                 nested `#[transactional]` fn (or `transactional::atomic`)"
                    .to_owned(),
            ),
            AuthAction::Pragma {
                pragma_name,
                pragma_value: Some(_),
            } if changes_connection_mode(pragma_name) => self.refuse(format!(
                "`PRAGMA {pragma_name} = ..` would change how the library uses its \
                 connections; set it with `Database::builder()` where it is supported"
            )),
            _ => Authorization::Allow,
        }
    }
}

/// Pragmas a user statement may read but not set: they change the connection's journal,
/// locking, durability or read-only mode, which the runtime relies on.
pub(crate) fn changes_connection_mode(pragma: &str) -> bool {
    const MODE: [&str; 9] = [
        "journal_mode",
        "locking_mode",
        "query_only",
        "synchronous",
        "busy_timeout",
        "wal_autocheckpoint",
        "writable_schema",
        "read_uncommitted",
        "schema_version",
    ];
    MODE.iter().any(|p| p.eq_ignore_ascii_case(pragma))
}

impl Conn {
    /// Takes over a configured connection and installs the authorizer and commit hook that
    /// keep transaction control with the library.
    pub(crate) fn new(mut conn: Connection) -> Result<Self> {
        let gate = Gate::new();
        let auth = gate.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| auth.authorize(ctx)))?;
        let commits = gate.clone();
        // `true` turns the COMMIT into a rollback.
        conn.commit_hook(Some(move || {
            commits.mode.load(Ordering::Relaxed) != Gate::LIBRARY
        }))?;
        let slow = Arc::new(super::slow::SlowWatch::default());
        let watch = slow.clone();
        conn.progress_handler(super::slow::OPS, Some(move || watch.tick()))?;
        Ok(Conn {
            id: crate::backend::next_session_id(),
            inner: Mutex::new(conn),
            gate,
            dirty: AtomicBool::new(false),
            slow,
        })
    }

    /// Locks the connection. A panic inside a user closure poisons the mutex but leaves the
    /// connection itself usable (the frame that panicked rolls back), so poisoning is ignored.
    pub(crate) fn lock(&self) -> ConnGuard<'_> {
        ConnGuard {
            conn: self,
            guard: Some(self.inner.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    fn try_lock(&self) -> Option<ConnGuard<'_>> {
        let guard = match self.inner.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(ConnGuard {
            conn: self,
            guard: Some(guard),
        })
    }

    /// The connection is being given back (to the writer queue, to the reader pool): it must
    /// be outside any transaction. Never blocks: if a statement is running on it, the guard
    /// of that statement repairs it when it unlocks.
    pub(crate) fn hand_back(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        if let Some(conn) = self.try_lock() {
            conn.repair();
        }
    }

    /// Closes the connection now, although the `Conn` itself lives on (other handles of a
    /// closed `Database` still point at it): the real connection is swapped for an empty
    /// in-memory one, which nothing reaches (a closed database begins no transaction), so
    /// that the statement path needs no "is it closed" check. Reports what SQLite says when
    /// it closes (an unfinished statement, an I/O error of its final checkpoint).
    pub(crate) fn close_now(&self) -> Result<()> {
        let placeholder = Connection::open_in_memory()?;
        let real = std::mem::replace(
            &mut *self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            placeholder,
        );
        real.close().map_err(|(_, e)| Error::sqlite(e, None))
    }
}

/// The locked connection. Dropping it unlocks, then repairs the connection if it was handed
/// back while locked.
pub(crate) struct ConnGuard<'a> {
    conn: &'a Conn,
    guard: Option<MutexGuard<'a, Connection>>,
}

impl Deref for ConnGuard<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.guard.as_ref().expect("present until drop")
    }
}

impl Drop for ConnGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        drop(self.guard.take());
        // SeqCst pairs with `hand_back`: either its `try_lock` saw the lock free, or this
        // load sees its mark.
        if self.conn.dirty.load(Ordering::SeqCst) {
            self.conn.repair_after_unlock();
        }
    }
}

impl Conn {
    #[cold]
    #[inline(never)]
    fn repair_after_unlock(&self) {
        if let Some(conn) = self.try_lock() {
            conn.repair();
        }
    }
}

impl ConnGuard<'_> {
    /// The id of the connection in the `transactional::sql` trace.
    pub(crate) fn id(&self) -> u64 {
        self.conn.id
    }

    /// Leaves the connection outside any transaction, for its next user: rolls back what an
    /// abandoned transaction left open. Called where a connection is handed back and where
    /// one is taken for a new transaction.
    pub(crate) fn repair(&self) {
        self.conn.dirty.store(false, Ordering::SeqCst);
        if !self.is_autocommit() {
            tracing::warn!("a connection was left inside a transaction; rolling it back");
            if let Err(error) = self.exec("ROLLBACK") {
                tracing::error!(%error, "could not roll back an abandoned transaction");
            }
        }
    }

    /// Runs one of the library's fixed, parameterless statements through the statement
    /// cache, with transaction control allowed.
    pub(crate) fn exec(&self, sql: &str) -> Result<()> {
        crate::backend::sent(self.conn.id, sql, true);
        self.as_library(|conn| {
            conn.prepare_cached(sql)
                .and_then(|mut stmt| stmt.execute([]))
                .map(drop)
                .map_err(|e| Error::sqlite(e, Some(sql)))
        })
    }

    /// Runs `f` as the library: the authorizer and the commit hook let everything through.
    pub(crate) fn as_library<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        let gate = &self.conn.gate;
        gate.mode.store(Gate::LIBRARY, Ordering::Relaxed);
        struct Restore<'g>(&'g Gate);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.mode.store(Gate::USER, Ordering::Relaxed);
            }
        }
        let _restore = Restore(gate);
        f(self)
    }

    /// Turns an error of a user statement into the library's error, explaining refusals by
    /// the authorizer and the commit hook.
    pub(crate) fn explain(&self, err: Error) -> Error {
        let Error::Sqlite { source, sql } = &err else {
            return err;
        };
        let code = match source {
            rusqlite::Error::SqliteFailure(e, _) => e.extended_code,
            _ => return err,
        };
        let refused = self
            .conn
            .gate
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let reason = match code {
            rusqlite::ffi::SQLITE_AUTH => refused,
            rusqlite::ffi::SQLITE_CONSTRAINT_COMMITHOOK => Some(
                "a COMMIT sent by user code was turned into a rollback: transaction control \
                 belongs to the library, and the transaction has been rolled back"
                    .to_owned(),
            ),
            _ => None,
        };
        match reason {
            Some(reason) => Error::Forbidden {
                sql: sql.clone(),
                reason,
            },
            None => err,
        }
    }
}

/// True when `sql` is, to the letter, one of the statements the library prepares itself. A
/// user statement of that text would be served the library's prepared statement from the
/// cache, which the authorizer saw as the library's, so it is refused before it is prepared.
pub(crate) fn is_library_statement(sql: &str) -> bool {
    if sql.len() > 24 {
        return false;
    }
    let numbered = |prefix: &str| {
        sql.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(
        sql,
        "BEGIN DEFERRED" | "BEGIN IMMEDIATE" | "BEGIN EXCLUSIVE" | "COMMIT" | "ROLLBACK"
    ) || numbered("SAVEPOINT sp_")
        || numbered("RELEASE sp_")
        || numbered("ROLLBACK TO sp_")
}

/// How an outermost write transaction starts (`begin = ..`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    fn library_statements_are_recognised_to_the_letter() {
        for sql in [
            "COMMIT",
            "BEGIN IMMEDIATE",
            "SAVEPOINT sp_3",
            "ROLLBACK TO sp_12",
            "RELEASE sp_1",
        ] {
            assert!(is_library_statement(sql), "{sql}");
        }
        for sql in [
            "commit",
            "COMMIT;",
            "SAVEPOINT sp_",
            "SAVEPOINT x",
            "INSERT INTO t VALUES (1)",
        ] {
            assert!(!is_library_statement(sql), "{sql}");
        }
    }

    #[test]
    fn user_statements_cannot_control_the_transaction() {
        let conn = Conn::new(Connection::open_in_memory().unwrap()).unwrap();
        let c = conn.lock();
        c.exec("BEGIN IMMEDIATE").unwrap();
        for sql in [
            "COMMIT",
            "END",
            "ROLLBACK",
            "SAVEPOINT x",
            "RELEASE x",
            "BEGIN",
            "PRAGMA query_only = 1",
            "PRAGMA journal_mode = DELETE",
        ] {
            let err = c
                .execute_batch(sql)
                .map_err(|e| c.explain(Error::sqlite(e, Some(sql))))
                .unwrap_err();
            assert!(matches!(err, Error::Forbidden { .. }), "{sql}: {err:?}");
        }
        // Reading a pragma is fine.
        c.execute_batch("PRAGMA journal_mode").unwrap();
        assert!(!c.is_autocommit(), "still inside the transaction");
        c.exec("COMMIT").unwrap();
    }

    #[test]
    fn a_commit_the_library_did_not_send_rolls_back() {
        let conn = Conn::new(Connection::open_in_memory().unwrap()).unwrap();
        let c = conn.lock();
        c.exec("CREATE TABLE t(x)").unwrap();
        c.exec("BEGIN IMMEDIATE").unwrap();
        c.exec("COMMIT").unwrap(); // now in the statement cache
        c.exec("BEGIN IMMEDIATE").unwrap();
        c.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        // The library's own COMMIT, taken from the cache by user code: the authorizer does
        // not see it again, the commit hook does.
        let err = c
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .unwrap_err();
        let err = c.explain(Error::sqlite(err, Some("COMMIT")));
        assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
        assert!(c.is_autocommit(), "the transaction was rolled back");
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn a_connection_handed_back_inside_a_transaction_is_rolled_back() {
        let conn = Conn::new(Connection::open_in_memory().unwrap()).unwrap();
        conn.lock().exec("BEGIN IMMEDIATE").unwrap();
        conn.hand_back();
        assert!(conn.lock().is_autocommit());
        // Handed back while a statement runs: repaired when that statement unlocks.
        conn.lock().exec("BEGIN IMMEDIATE").unwrap();
        let busy = conn.lock();
        conn.hand_back();
        assert!(!busy.is_autocommit());
        drop(busy);
        assert!(conn.lock().is_autocommit());
    }

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
        let conn = Conn::new(Connection::open_in_memory().unwrap()).unwrap();
        let err = conn.lock().exec("RELEASE sp_9").unwrap_err();
        let Error::Sqlite { sql, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(sql.as_deref(), Some("RELEASE sp_9"));
        assert!(err.to_string().contains("no such savepoint"), "{err}");
    }
}
