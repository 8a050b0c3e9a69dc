//! A PostgreSQL error kept whole and sorted into what the library does about it.
//!
//! The frame machinery needs one question answered per failure: may the outermost transaction
//! be re-run (`retries`), must the frame fail, is the connection gone? Users need the rest:
//! the SQLSTATE, the server's message, detail and hint, and the statement that failed — so a
//! [`PgError`] keeps all of it next to its [`PgErrorKind`].

use std::error::Error as _;
use std::fmt;

use tokio_postgres::error::{DbError, SqlState};

/// What a PostgreSQL failure means for the transaction it happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PgErrorKind {
    /// 40001 `serialization_failure`: a SERIALIZABLE or REPEATABLE READ transaction lost a
    /// race. Transient: the whole transaction can be re-run.
    SerializationFailure,
    /// 40P01 `deadlock_detected`: the server chose this transaction as a deadlock's victim.
    /// Transient.
    Deadlock,
    /// 55P03 `lock_not_available`: `NOWAIT` or `lock_timeout` gave up on a row or table lock
    /// another session holds. Transient, like SQLite's busy.
    LockNotAvailable,
    /// 57014 `query_canceled`: `statement_timeout` fired or a cancel request arrived. Not
    /// transient: a re-run meets the same timeout, and a cancel was meant.
    Canceled,
    /// 25006 `read_only_sql_transaction`: a write in a READ ONLY transaction or savepoint.
    ReadOnly,
    /// 25P02 `in_failed_sql_transaction`: a statement after an earlier failure. The library
    /// tracks failed frames itself, so seeing this means that tracking was bypassed.
    FailedTransaction,
    /// The connection is gone: closed, an I/O error, a connection exception (class 08) or an
    /// operator intervention that ends the session (57P01–57P03). Whether an in-flight
    /// COMMIT took effect is unknown.
    Connection,
    /// Raised by tokio-postgres before or after the server saw the statement: a parameter
    /// count or type conversion, a row count. The transaction is unaffected.
    Client,
    /// Any other error the server reported (constraint violations, syntax errors, ...).
    Other,
}

impl PgErrorKind {
    /// The kind of a server-reported SQLSTATE.
    pub(crate) fn of_code(code: &SqlState) -> Self {
        match code.code() {
            "40001" => Self::SerializationFailure,
            "40P01" => Self::Deadlock,
            "55P03" => Self::LockNotAvailable,
            "57014" => Self::Canceled,
            "25006" => Self::ReadOnly,
            "25P02" => Self::FailedTransaction,
            "57P01" | "57P02" | "57P03" => Self::Connection,
            c if c.starts_with("08") => Self::Connection,
            _ => Self::Other,
        }
    }

    /// The kind of any tokio-postgres error.
    pub(crate) fn of(err: &tokio_postgres::Error) -> Self {
        if let Some(db) = err.as_db_error() {
            return Self::of_code(db.code());
        }
        if err.is_closed() || err.source().is_some_and(|s| s.is::<std::io::Error>()) {
            return Self::Connection;
        }
        Self::Client
    }

    /// A failure after which re-running the outermost transaction may succeed.
    pub(crate) fn is_transient(self) -> bool {
        matches!(
            self,
            Self::SerializationFailure | Self::Deadlock | Self::LockNotAvailable
        )
    }

    /// Whether the server rejected the statement, which leaves its transaction failed
    /// (PostgreSQL refuses everything until `ROLLBACK TO` or `ROLLBACK`). Client-side errors
    /// do not; after a connection error there is no transaction left to use.
    pub(crate) fn fails_transaction(self) -> bool {
        !matches!(self, Self::Client)
    }
}

/// A PostgreSQL failure with everything the server said about it and the statement it
/// belongs to (in [`Error::Postgres`](crate::Error::Postgres)).
#[derive(Debug)]
pub struct PgError {
    kind: PgErrorKind,
    /// The five-character SQLSTATE, when the server reported the error.
    code: Option<String>,
    /// The server's primary message, or tokio-postgres's description of a client error.
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    statement: Option<String>,
    /// Absent only for errors built in unit tests (tokio-postgres's are not constructible).
    source: Option<tokio_postgres::Error>,
}

impl PgError {
    /// Wraps `err`, raised while running `statement` (when it belongs to one).
    pub(crate) fn new(err: tokio_postgres::Error, statement: Option<&str>) -> Self {
        let kind = PgErrorKind::of(&err);
        let (code, message, detail, hint) = match err.as_db_error() {
            Some(db) => parts_of(db),
            None => (None, err.to_string(), None, None),
        };
        Self {
            kind,
            code,
            message,
            detail,
            hint,
            statement: statement.map(str::to_owned),
            source: Some(err),
        }
    }

    pub(crate) fn kind(&self) -> PgErrorKind {
        self.kind
    }

    /// A failure after which re-running the outermost transaction may succeed: a
    /// serialization failure, a deadlock, a lock not available.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// Whether the server rejected the statement, which leaves its transaction failed.
    pub(crate) fn fails_transaction(&self) -> bool {
        self.kind.fails_transaction()
    }

    /// The connection is gone, and with it the transaction.
    pub(crate) fn connection_lost(&self) -> bool {
        self.kind == PgErrorKind::Connection
    }

    /// The five-character SQLSTATE (`"23505"`), when the server reported the error.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The server's primary message, or the client's description of its own error.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The server's detail, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The server's hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The statement that failed, when the error belongs to one.
    pub fn statement(&self) -> Option<&str> {
        self.statement.as_deref()
    }

    /// The server's own report, for callers that need more fields (constraint, table, ...).
    pub fn db_error(&self) -> Option<&DbError> {
        self.source.as_ref().and_then(|e| e.as_db_error())
    }

    #[cfg(test)]
    fn from_parts(
        code: &str,
        message: &str,
        detail: Option<&str>,
        hint: Option<&str>,
        statement: Option<&str>,
    ) -> Self {
        Self {
            kind: PgErrorKind::of_code(&SqlState::from_code(code)),
            code: Some(code.to_owned()),
            message: message.to_owned(),
            detail: detail.map(str::to_owned),
            hint: hint.map(str::to_owned),
            statement: statement.map(str::to_owned),
            source: None,
        }
    }
}

type Parts = (Option<String>, String, Option<String>, Option<String>);

fn parts_of(db: &DbError) -> Parts {
    (
        Some(db.code().code().to_owned()),
        db.message().to_owned(),
        db.detail().map(str::to_owned),
        db.hint().map(str::to_owned),
    )
}

impl fmt::Display for PgError {
    /// One line: `postgres: MESSAGE (SQLSTATE CODE; detail: ..; hint: ..) (in STATEMENT)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres: {}", self.message)?;
        if let Some(code) = &self.code {
            write!(f, " (SQLSTATE {code}")?;
            if let Some(detail) = &self.detail {
                write!(f, "; detail: {detail}")?;
            }
            if let Some(hint) = &self.hint {
                write!(f, "; hint: {hint}")?;
            }
            f.write_str(")")?;
        }
        if let Some(sql) = &self.statement {
            write!(f, " (in `{sql}`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_kinds() {
        let cases = [
            (
                SqlState::T_R_SERIALIZATION_FAILURE,
                PgErrorKind::SerializationFailure,
            ),
            (SqlState::T_R_DEADLOCK_DETECTED, PgErrorKind::Deadlock),
            (SqlState::LOCK_NOT_AVAILABLE, PgErrorKind::LockNotAvailable),
            (SqlState::QUERY_CANCELED, PgErrorKind::Canceled),
            (SqlState::READ_ONLY_SQL_TRANSACTION, PgErrorKind::ReadOnly),
            (
                SqlState::IN_FAILED_SQL_TRANSACTION,
                PgErrorKind::FailedTransaction,
            ),
            (SqlState::ADMIN_SHUTDOWN, PgErrorKind::Connection),
            (SqlState::CRASH_SHUTDOWN, PgErrorKind::Connection),
            (SqlState::CANNOT_CONNECT_NOW, PgErrorKind::Connection),
            (SqlState::CONNECTION_FAILURE, PgErrorKind::Connection),
            (SqlState::UNIQUE_VIOLATION, PgErrorKind::Other),
            (SqlState::SYNTAX_ERROR, PgErrorKind::Other),
            // Other class-40 codes are not retried: the outcome is unknown or a constraint
            // failed at commit.
            (
                SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN,
                PgErrorKind::Other,
            ),
            (
                SqlState::T_R_INTEGRITY_CONSTRAINT_VIOLATION,
                PgErrorKind::Other,
            ),
        ];
        for (code, kind) in cases {
            assert_eq!(PgErrorKind::of_code(&code), kind, "{}", code.code());
        }
    }

    #[test]
    fn only_serialization_deadlock_and_lock_waits_are_transient() {
        let transient: Vec<_> = [
            PgErrorKind::SerializationFailure,
            PgErrorKind::Deadlock,
            PgErrorKind::LockNotAvailable,
            PgErrorKind::Canceled,
            PgErrorKind::ReadOnly,
            PgErrorKind::FailedTransaction,
            PgErrorKind::Connection,
            PgErrorKind::Client,
            PgErrorKind::Other,
        ]
        .into_iter()
        .filter(|k| k.is_transient())
        .collect();
        assert_eq!(
            transient,
            [
                PgErrorKind::SerializationFailure,
                PgErrorKind::Deadlock,
                PgErrorKind::LockNotAvailable
            ]
        );
        assert!(!PgErrorKind::Client.fails_transaction());
        assert!(PgErrorKind::Other.fails_transaction());
    }

    #[test]
    fn display_keeps_everything_on_one_line() {
        let err = PgError::from_parts(
            "23505",
            "duplicate key value violates unique constraint \"kv_pkey\"",
            Some("Key (key)=(1) already exists."),
            None,
            Some("INSERT INTO kv VALUES ($1)"),
        );
        assert_eq!(
            err.to_string(),
            "postgres: duplicate key value violates unique constraint \"kv_pkey\" \
             (SQLSTATE 23505; detail: Key (key)=(1) already exists.) (in `INSERT INTO kv VALUES ($1)`)"
        );
        let err = PgError::from_parts(
            "42883",
            "function f() does not exist",
            None,
            Some("Add casts."),
            None,
        );
        assert_eq!(
            err.to_string(),
            "postgres: function f() does not exist (SQLSTATE 42883; hint: Add casts.)"
        );
        assert_eq!(err.kind(), PgErrorKind::Other);
    }

    /// Each kind provoked on the server (`DATABASE_URL`), in a schema of its own.
    mod server {
        use super::super::*;
        use crate::backend::postgres::test_db::TestDb;
        use tokio_postgres::Client;

        async fn run(client: &Client, sql: &str) -> Result<(), PgError> {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| PgError::new(e, Some(sql)))
        }

        async fn two_rows(db: &TestDb) -> (Client, Client) {
            let (a, b) = (db.connect().await, db.connect().await);
            run(
                &a,
                "CREATE TABLE t(id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0)",
            )
            .await
            .unwrap();
            (a, b)
        }

        #[tokio::test]
        async fn concurrent_update_in_serializable_is_a_serialization_failure() {
            let Some(db) = TestDb::new("errors_serialization").await else {
                return;
            };
            let (a, b) = two_rows(&db).await;
            run(
                &a,
                "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT v FROM t WHERE id = 1",
            )
            .await
            .unwrap();
            run(
                &b,
                "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT v FROM t WHERE id = 1",
            )
            .await
            .unwrap();
            run(&a, "UPDATE t SET v = 1 WHERE id = 1; COMMIT")
                .await
                .unwrap();
            let sql = "UPDATE t SET v = 2 WHERE id = 1";
            let err = run(&b, sql).await.unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::SerializationFailure, "{err}");
            assert!(err.is_transient());
            assert_eq!(err.code(), Some("40001"));
            assert_eq!(err.statement(), Some(sql));
            assert!(err.message().contains("could not serialize"), "{err}");
        }

        #[tokio::test]
        async fn crossed_row_locks_are_a_deadlock() {
            let Some(db) = TestDb::new("errors_deadlock").await else {
                return;
            };
            let (a, b) = two_rows(&db).await;
            // Superuser-only; the default (1 s) works too, only slower.
            let _ = run(&a, "SET deadlock_timeout = '50ms'").await;
            let _ = run(&b, "SET deadlock_timeout = '50ms'").await;
            run(&a, "BEGIN; UPDATE t SET v = 1 WHERE id = 1")
                .await
                .unwrap();
            run(&b, "BEGIN; UPDATE t SET v = 1 WHERE id = 2")
                .await
                .unwrap();
            let (ra, rb) = tokio::join!(
                run(&a, "UPDATE t SET v = 2 WHERE id = 2"),
                run(&b, "UPDATE t SET v = 2 WHERE id = 1"),
            );
            let errors: Vec<PgError> = [ra, rb].into_iter().filter_map(Result::err).collect();
            assert_eq!(errors.len(), 1, "exactly one victim: {errors:?}");
            assert_eq!(errors[0].kind(), PgErrorKind::Deadlock, "{}", errors[0]);
            assert!(errors[0].is_transient());
            assert!(errors[0]
                .detail()
                .is_some_and(|d| d.contains("blocked by process")));
        }

        #[tokio::test]
        async fn write_in_read_only_transaction_is_read_only() {
            let Some(db) = TestDb::new("errors_read_only").await else {
                return;
            };
            let (a, _) = two_rows(&db).await;
            run(&a, "BEGIN READ ONLY").await.unwrap();
            let err = run(&a, "INSERT INTO t VALUES (3, 0)").await.unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::ReadOnly, "{err}");
            assert!(!err.is_transient());
            // The next statement meets the failed transaction.
            let err = run(&a, "SELECT 1").await.unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::FailedTransaction, "{err}");
        }

        #[tokio::test]
        async fn nowait_and_lock_timeout_are_lock_not_available() {
            let Some(db) = TestDb::new("errors_lock_not_available").await else {
                return;
            };
            let (a, b) = two_rows(&db).await;
            run(&a, "BEGIN; SELECT * FROM t WHERE id = 1 FOR UPDATE")
                .await
                .unwrap();
            let err = run(&b, "SELECT * FROM t WHERE id = 1 FOR UPDATE NOWAIT")
                .await
                .unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::LockNotAvailable, "{err}");
            assert!(err.is_transient());
            run(&b, "SET lock_timeout = '50ms'").await.unwrap();
            let err = run(&b, "UPDATE t SET v = 5 WHERE id = 1")
                .await
                .unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::LockNotAvailable, "{err}");
            assert!(err.message().contains("lock timeout"), "{err}");
        }

        #[tokio::test]
        async fn statement_timeout_is_canceled_and_not_transient() {
            let Some(db) = TestDb::new("errors_statement_timeout").await else {
                return;
            };
            let a = db.connect().await;
            run(&a, "SET statement_timeout = '50ms'").await.unwrap();
            let err = run(&a, "SELECT pg_sleep(5)").await.unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::Canceled, "{err}");
            assert!(!err.is_transient());
            assert!(err.message().contains("statement timeout"), "{err}");
        }

        #[tokio::test]
        async fn other_errors_keep_detail_hint_and_statement() {
            let Some(db) = TestDb::new("errors_other").await else {
                return;
            };
            let (a, _) = two_rows(&db).await;
            let sql = "INSERT INTO t VALUES (1, 0)";
            let err = run(&a, sql).await.unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::Other);
            assert_eq!(err.code(), Some("23505"));
            assert_eq!(err.detail(), Some("Key (id)=(1) already exists."));
            assert_eq!(err.db_error().and_then(|d| d.constraint()), Some("t_pkey"));
            assert!(
                err.to_string()
                    .ends_with("(in `INSERT INTO t VALUES (1, 0)`)"),
                "{err}"
            );
            let err = run(&a, "SELECT no_such_function(1)").await.unwrap_err();
            assert_eq!(err.code(), Some("42883"));
            assert!(err.hint().is_some(), "{err}");
        }

        #[tokio::test]
        async fn client_side_errors_are_client_and_do_not_fail_the_transaction() {
            let Some(db) = TestDb::new("errors_client").await else {
                return;
            };
            let a = db.connect().await;
            run(&a, "BEGIN").await.unwrap();
            let sql = "SELECT $1::int";
            let err = a
                .execute(sql, &[])
                .await
                .map_err(|e| PgError::new(e, Some(sql)))
                .unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::Client, "{err}");
            assert!(!err.kind().fails_transaction());
            assert_eq!(err.code(), None);
            run(&a, "SELECT 1; COMMIT").await.unwrap();
        }

        #[tokio::test]
        async fn a_terminated_session_is_a_connection_error() {
            let Some(db) = TestDb::new("errors_terminated").await else {
                return;
            };
            let (a, b) = (db.connect().await, db.connect().await);
            let pid: i32 = a
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .unwrap()
                .get(0);
            b.execute("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap();
            let err = run(&a, "SELECT 1").await.unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::Connection, "{err}");
            // After the FATAL the client is closed; later calls say so.
            let err = run(&a, "SELECT 1").await.unwrap_err();
            assert_eq!(err.kind(), PgErrorKind::Connection, "{err}");
            assert!(a.is_closed());
        }
    }
}
