//! The one error type of the library.

use std::time::Duration;

/// Everything that can go wrong in a transaction.
///
/// A body's own error is never replaced by one of these: when a body fails and the rollback
/// that follows fails too, the body's error is returned and the rollback failure is logged.
///
/// `Debug` (what `unwrap()` and `expect()` print) shows the variant and the whole message with
/// its guidance, e.g. `NoDatabase: no database for this transaction: pass \`db = ..\`, ..`,
/// followed by the `Debug` of the underlying error when there is one.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite reported an error for a statement; `sql` is the statement when there was one.
    #[error("sqlite: {source}{}", sql_suffix(.sql))]
    Sqlite {
        /// What rusqlite reported.
        #[source]
        source: rusqlite::Error,
        /// The statement that failed, when the error belongs to one.
        sql: Option<String>,
    },

    /// The database stayed locked by another connection or process for longer than the
    /// busy timeout.
    #[error("database is busy: {detail}")]
    Busy {
        /// What was locked and for how long we waited.
        detail: String,
        /// What the database reported, when it reported the wait.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The frame ran longer than its `timeout` and was rolled back.
    #[error("transaction timed out after {0:?} and was rolled back")]
    Timeout(Duration),

    /// A write was attempted in a read-only transaction.
    #[error("attempt to write in a read-only transaction")]
    ReadOnly,

    /// Something that needs the current transaction ran outside one: `current()`,
    /// `on_commit`, `set_rollback_only`, or a `propagation = "mandatory"` fn — also in a task
    /// spawned from inside a transaction without its context.
    #[error("no transaction is active in this task: `current()`, `on_commit`, `on_rollback` and `set_rollback_only` work inside a #[transactional] fn or an `Atomic` block, and a `propagation = \"mandatory\"` fn must be called inside one. A task spawned with plain `tokio::spawn`, `JoinSet::spawn` or `Handle::spawn` starts outside any transaction: use `transactional::spawn` or a `TaskGroup`, or wrap its future in `transactional::carry(..)`")]
    NoTransaction,

    /// An outermost transaction had no database: no `db = ..`, no enclosing transaction and no
    /// default database.
    #[error("no database for this transaction: pass `db = ..`, call it inside a transaction, run it inside `db.with_default(..)`, or call `Database::set_default`")]
    NoDatabase,

    /// The wait could never end: the task waits for a frame whose turn is held by one of its
    /// own descendants.
    #[error("deadlock: {0}")]
    Deadlock(String),

    /// The frame this handle belongs to has already ended (committed, released or rolled back).
    #[error("transaction {0} has already ended")]
    TransactionClosed(String),

    /// The database was closed with [`Database::close`](crate::Database::close): it begins no
    /// more transactions. Holds the database's label.
    #[error(
        "database {0} is closed: `Database::close` was called, and it begins no more transactions"
    )]
    Closed(String),

    /// The frame was marked rollback-only — by [`set_rollback_only`](crate::set_rollback_only),
    /// or by a `propagation = "join"` block joined to it that failed — so it was rolled back
    /// instead of committed (or released) although its body returned `Ok`.
    #[error("the frame was marked rollback-only and has been rolled back")]
    RollbackOnly,

    /// A user statement tried what belongs to the library: transaction control (`BEGIN`,
    /// `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`) or a pragma that changes how the library
    /// uses its connections. Nothing of it ran; `reason` says what to do instead.
    #[error("refused{}: {reason}", sql_suffix(.sql))]
    Forbidden {
        /// The statement refused, when known.
        sql: Option<String>,
        /// Why, and what to use instead.
        reason: String,
    },

    /// PostgreSQL reported an error: its SQLSTATE, message, detail and hint, and the
    /// statement, are in [`PgError`](crate::PgError).
    #[cfg(feature = "postgres")]
    #[error("{0}")]
    Postgres(Box<crate::backend::postgres::errors::PgError>),

    /// An earlier statement of this frame was rejected by the database, so the frame refuses
    /// further statements and savepoints and rolls back when it ends (PostgreSQL refuses
    /// them too until then). A body that swallowed that failure and returned `Ok` gets this
    /// error from its end, never `Ok`. To go on after an expected failure, run the statement
    /// in a nested `#[transactional]` fn: its savepoint contains the failure.
    #[error("{frame} failed earlier and rolls back: {cause}")]
    FrameFailed {
        /// The frame.
        frame: String,
        /// The failure that failed it.
        cause: String,
    },

    /// A statement was given a different number of parameters than its placeholders ask
    /// for. Nothing ran.
    #[error("`{sql}` takes {expected} parameters, {given} were given")]
    ParameterCount {
        /// The statement.
        sql: String,
        /// How many its placeholders ask for.
        expected: usize,
        /// How many were given.
        given: usize,
    },

    /// A parameter could not be bound (a `u64` above `i64::MAX`, a value the column's type
    /// does not take). Nothing ran.
    #[error("parameter ?{index} of `{sql}`: {source}")]
    Parameter {
        /// The statement.
        sql: String,
        /// Its position, from 1.
        index: usize,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The requested combination cannot be honoured by this backend.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// A query that must return a row (`query_row`) returned none.
    #[error("the query returned no rows (in `{sql}`)")]
    NoRows {
        /// The query.
        sql: String,
    },

    /// A row decoded by position (into a tuple) has another number of columns than the
    /// tuple has elements.
    #[error("the row has {found} columns ({columns}), but {expected} were expected: select exactly the columns the tuple or struct takes")]
    ColumnCount {
        /// The number of values the target takes.
        expected: usize,
        /// The number of columns the query returned.
        found: usize,
        /// The columns the query returned.
        columns: String,
    },

    /// [`Row::get`](crate::Row::get) named a column the row does not have.
    #[error("no column {column} in this row (its columns: {columns})")]
    NoSuchColumn {
        /// The position or name asked for.
        column: String,
        /// The row's column names, comma-separated.
        columns: String,
    },

    /// A column's value could not be converted to the type asked for.
    #[error("column {column}: cannot read a {found} value as {target}: {source}")]
    Conversion {
        /// The column's name.
        column: String,
        /// The Rust type asked for.
        target: &'static str,
        /// The SQL type of the value found (`NULL`, `INTEGER`, `REAL`, `TEXT`, `BLOB`).
        found: &'static str,
        /// What the conversion reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Work handed to a background thread did not come back (the thread panicked or the
    /// runtime shut down).
    #[error("background task failed: {what}{}", source_suffix(.source))]
    Background {
        /// What the work was.
        what: String,
        /// Why it did not come back, when known.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn source_suffix(source: &Option<Box<dyn std::error::Error + Send + Sync>>) -> String {
    match source {
        Some(source) => format!(": {source}"),
        None => String::new(),
    }
}

fn sql_suffix(sql: &Option<String>) -> String {
    match sql {
        Some(sql) => format!(" (in `{sql}`)"),
        None => String::new(),
    }
}

impl Error {
    /// Wraps a rusqlite error that belongs to statement `sql`, classifying lock errors as
    /// [`Error::Busy`].
    pub(crate) fn sqlite(source: rusqlite::Error, sql: Option<&str>) -> Self {
        if is_busy(&source) {
            let detail = match sql {
                Some(sql) => format!("`{sql}` waited for a lock held by another connection"),
                None => "waited for a lock held by another connection".to_owned(),
            };
            return Error::Busy {
                detail,
                source: Some(Box::new(source)),
            };
        }
        Error::Sqlite {
            source,
            sql: sql.map(str::to_owned),
        }
    }

    pub(crate) fn background(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Background {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// True for failures that go away when the whole transaction is tried again: a busy or
    /// locked database; on PostgreSQL also a serialization failure (40001) or a deadlock
    /// (40P01).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Busy { .. } => true,
            #[cfg(feature = "postgres")]
            Error::Postgres(e) => e.is_transient(),
            _ => false,
        }
    }

    /// The SQLSTATE of a PostgreSQL error (`"23505"`), when the server reported one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            #[cfg(feature = "postgres")]
            Error::Postgres(e) => e.code(),
            #[cfg(feature = "postgres")]
            Error::Busy {
                source: Some(source),
                ..
            } => source
                .downcast_ref::<crate::backend::postgres::errors::PgError>()
                .and_then(|e| e.code()),
            _ => None,
        }
    }

    /// Whether the database itself rejected a statement (as opposed to the library refusing
    /// it before it was sent): such a failure fails the frame it ran in (ARCHITECTURE.md §6).
    pub(crate) fn fails_frame(&self) -> bool {
        match self {
            Error::Sqlite { source, .. } => {
                matches!(source, rusqlite::Error::SqliteFailure(..))
            }
            Error::Busy { source, .. } => source.is_some(),
            // SQLite's refusal is the library's own check, PostgreSQL's the server's: the
            // same on both, so both fail the frame.
            Error::ReadOnly => true,
            #[cfg(feature = "postgres")]
            Error::Postgres(e) => e.fails_transaction(),
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(source: rusqlite::Error) -> Self {
        Error::sqlite(source, None)
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The message carries the guidance (what to pass, what to call instead); a bare
        // variant name in a panic from `unwrap()` would drop it.
        write!(f, "{}: {self}", self.variant_name())?;
        if let Some(source) = std::error::Error::source(self) {
            write!(f, " (source: {source:?})")?;
        }
        Ok(())
    }
}

impl Error {
    fn variant_name(&self) -> &'static str {
        match self {
            Error::Sqlite { .. } => "Sqlite",
            Error::Busy { .. } => "Busy",
            Error::Timeout(_) => "Timeout",
            Error::ReadOnly => "ReadOnly",
            Error::NoTransaction => "NoTransaction",
            Error::NoDatabase => "NoDatabase",
            Error::Deadlock(_) => "Deadlock",
            Error::TransactionClosed(_) => "TransactionClosed",
            Error::Closed(_) => "Closed",
            Error::RollbackOnly => "RollbackOnly",
            Error::Forbidden { .. } => "Forbidden",
            #[cfg(feature = "postgres")]
            Error::Postgres(_) => "Postgres",
            Error::FrameFailed { .. } => "FrameFailed",
            Error::ParameterCount { .. } => "ParameterCount",
            Error::Parameter { .. } => "Parameter",
            Error::Unsupported(_) => "Unsupported",
            Error::NoRows { .. } => "NoRows",
            Error::ColumnCount { .. } => "ColumnCount",
            Error::NoSuchColumn { .. } => "NoSuchColumn",
            Error::Conversion { .. } => "Conversion",
            Error::Background { .. } => "Background",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn debug_keeps_the_guidance_of_the_message() {
        // What `unwrap()` prints.
        let shown = format!("{:?}", Error::NoDatabase);
        assert!(shown.starts_with("NoDatabase: "), "{shown}");
        assert!(shown.contains("pass `db = ..`"), "{shown}");
        let shown = format!("{:?}", Error::NoTransaction);
        assert!(shown.contains("inside a #[transactional] fn"), "{shown}");
        // An underlying error is shown too, with its detail (SQLite's code).
        let shown = format!(
            "{:?}",
            Error::sqlite(
                sqlite_failure(rusqlite::ffi::SQLITE_CONSTRAINT),
                Some("INSERT 1")
            )
        );
        assert!(shown.starts_with("Sqlite: "), "{shown}");
        assert!(
            shown.contains("INSERT 1") && shown.contains("ConstraintViolation"),
            "{shown}"
        );
    }

    #[test]
    fn busy_and_locked_are_transient_busy_errors() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let err = Error::sqlite(sqlite_failure(code), Some("BEGIN IMMEDIATE"));
            assert!(matches!(err, Error::Busy { .. }), "{err:?}");
            assert!(err.is_transient());
            assert!(err.to_string().contains("BEGIN IMMEDIATE"), "{err}");
        }
    }

    #[test]
    fn other_failures_keep_their_sql_and_are_not_transient() {
        let err = Error::sqlite(
            sqlite_failure(rusqlite::ffi::SQLITE_CONSTRAINT),
            Some("INSERT x"),
        );
        assert!(!err.is_transient());
        let cause = sqlite_failure(rusqlite::ffi::SQLITE_CONSTRAINT);
        assert_eq!(err.to_string(), format!("sqlite: {cause} (in `INSERT x`)"));
        assert!(
            std::error::Error::source(&err).is_some(),
            "the cause is kept as the source"
        );
    }
}
