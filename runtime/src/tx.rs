//! `Tx`: the statement API of a frame.

use std::fmt;
use std::sync::Arc;

use rusqlite::types::{FromSql, FromSqlError, Type, Value, ValueRef};
use rusqlite::{Connection, Params, Statement};

use crate::backend::sqlite::conn::{is_library_statement, ConnGuard};
use crate::context::Current;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::frame::Frame;

/// A handle to one frame (the transaction or a savepoint) of the current task, obtained from
/// [`current()`](crate::current).
///
/// Each method waits for the frame's turn, so it runs only while no savepoint of a sibling
/// task is open under the frame, then runs the statement on the connection directly, on the
/// calling thread. Parameters are tuples of ordinary Rust values (or
/// [`params!`](crate::params)); they may borrow from the caller.
///
/// Transaction control belongs to the library: a statement that would `BEGIN`, `COMMIT`,
/// `ROLLBACK`, `SAVEPOINT`, `RELEASE`, or set a pragma that changes how the library uses the
/// connection (`journal_mode`, `query_only`, …) fails with [`Error::Forbidden`] — end the
/// body with `Ok`/`Err` instead, and nest a `#[transactional]` fn for a savepoint. In a
/// read-only frame every write fails with [`Error::ReadOnly`], [`call`](Tx::call) included.
///
/// A handle outlives its frame harmlessly: once the frame has ended, every method fails with
/// [`Error::TransactionClosed`].
#[derive(Clone)]
pub struct Tx {
    frame: Arc<Frame>,
    /// Writes are refused: the frame is read-only, or this task joined it read-only.
    read_only: bool,
}

impl Tx {
    pub(crate) fn new(current: Current) -> Self {
        Tx {
            read_only: current.read_only || current.frame.read_only,
            frame: current.frame,
        }
    }

    /// Runs one statement and returns the number of rows it changed (a `u64` on every
    /// backend).
    pub async fn execute<P: Params>(&self, sql: &str, params: P) -> Result<u64> {
        self.with_connection(|conn| {
            let mut stmt = self.prepare(conn, sql)?;
            stmt.execute(params)
                .map(|changed| changed as u64)
                .map_err(|e| Error::sqlite(e, Some(sql)))
        })
        .await
    }

    /// Runs several `;`-separated statements without parameters.
    pub async fn execute_batch(&self, sql: &str) -> Result<()> {
        self.with_connection(|conn| {
            self.refusing_writes(conn, || {
                conn.execute_batch(sql)
                    .map_err(|e| Error::sqlite(e, Some(sql)))
            })
        })
        .await
    }

    /// Runs a query and returns all its rows.
    pub async fn query<P: Params>(&self, sql: &str, params: P) -> Result<Vec<Row>> {
        self.with_connection(|conn| {
            let mut stmt = self.prepare(conn, sql)?;
            collect_rows(&mut stmt, params, usize::MAX).map_err(|e| Error::sqlite(e, Some(sql)))
        })
        .await
    }

    /// Runs a query and returns its first row, or `None` when it returned no rows.
    pub async fn query_opt<P: Params>(&self, sql: &str, params: P) -> Result<Option<Row>> {
        self.with_connection(|conn| {
            let mut stmt = self.prepare(conn, sql)?;
            let rows =
                collect_rows(&mut stmt, params, 1).map_err(|e| Error::sqlite(e, Some(sql)))?;
            Ok(rows.into_iter().next())
        })
        .await
    }

    /// Runs a query and returns its first row; no row is [`Error::NoRows`].
    pub async fn query_row<P: Params>(&self, sql: &str, params: P) -> Result<Row> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| Error::NoRows {
                sql: sql.to_owned(),
            })
    }

    /// Runs `f` on the connection itself, in this frame's turn: the escape hatch for
    /// everything the methods above do not cover (blobs, custom functions, `Statement`s).
    ///
    /// The same rules hold inside `f`: SQLite itself refuses transaction control (its
    /// authorizer, and a commit hook that turns a `COMMIT` the library did not send into a
    /// rollback), and in a read-only frame every write. `f` runs inside a guard savepoint of
    /// the library: should it still end or roll back one of the library's savepoints (by
    /// taking the library's own statement from the statement cache), the guard is gone
    /// afterwards, `call` fails with [`Error::Forbidden`], and the transaction is aborted —
    /// it fails from then on rather than commit work that was silently undone.
    pub async fn call<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R> {
        self.with_connection(|conn| {
            conn.exec(CALL_GUARD_OPEN)?;
            let result = self.refusing_writes(conn, || f(conn).map_err(Error::from));
            if !conn.in_transaction() {
                // SQLite ended the whole transaction (a full disk, a refused COMMIT): the
                // closure's own error says why, and the frame is aborted after this.
                return result;
            }
            if conn.exec(CALL_GUARD_RELEASE).is_err() {
                self.frame.abort();
                return Err(Error::Forbidden {
                    sql: None,
                    reason: "the closure given to `call` ended or rolled back a savepoint of \
                             the library (a statement taken from the cache?): the \
                             transaction has been aborted"
                        .to_owned(),
                });
            }
            result
        })
        .await
    }

    /// The database this transaction runs on.
    pub fn database(&self) -> &Database {
        &self.frame.txn.db
    }

    /// 0 for the outermost transaction, 1 for a savepoint directly under it, and so on.
    pub fn depth(&self) -> u32 {
        self.frame.depth
    }

    /// A process-unique number of this frame (it also appears in tracing spans and errors).
    pub fn id(&self) -> u64 {
        self.frame.id
    }

    /// True when writes through this handle fail with [`Error::ReadOnly`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Waits for this frame's turn, then runs `work` on the connection on this thread.
    async fn with_connection<R>(
        &self,
        work: impl FnOnce(&ConnGuard<'_>) -> Result<R>,
    ) -> Result<R> {
        // One unit of tokio's cooperative budget per statement, as a socket read would spend:
        // a task running statements back to back still yields to its neighbours (and lets a
        // `timeout` fire) every 128 statements. Turns themselves are taken without spending
        // budget when free (`Frame::turn`), so the forced yields come at this rate and no
        // faster.
        tokio::task::consume_budget().await;
        let _turn = self.frame.turn().await?;
        let conn = self.frame.txn.conn.lock();
        let result = work(&conn).map_err(|e| self.explain(&conn, e));
        self.frame.note_connection_state(&conn);
        self.frame.note_outcome(result.as_ref().err());
        result
    }

    /// The library's errors for what SQLite refused.
    fn explain(&self, conn: &ConnGuard<'_>, err: Error) -> Error {
        let err = conn.explain(err);
        let refused_write = matches!(
            &err,
            Error::Sqlite { source, .. }
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
        );
        if refused_write && (self.read_only || self.frame.txn.on_reader) {
            return Error::ReadOnly;
        }
        err
    }

    /// Runs `work`, whose statements are not known in advance, with writes refused by
    /// SQLite itself when this handle is read-only: `PRAGMA query_only` for the duration (a
    /// reader connection refuses writes anyway).
    fn refusing_writes<R>(
        &self,
        conn: &ConnGuard<'_>,
        work: impl FnOnce() -> Result<R>,
    ) -> Result<R> {
        if !self.read_only || self.frame.txn.on_reader {
            return work();
        }
        // Not through the statement cache, so user code can never be served these.
        conn.as_library(|c| c.execute_batch("PRAGMA query_only = 1"))?;
        struct Restore<'a, 'c>(&'a ConnGuard<'c>);
        impl Drop for Restore<'_, '_> {
            fn drop(&mut self) {
                if let Err(error) = self
                    .0
                    .as_library(|c| c.execute_batch("PRAGMA query_only = 0"))
                {
                    tracing::error!(%error, "could not turn query_only off again");
                }
            }
        }
        let _restore = Restore(conn);
        work()
    }

    fn prepare<'c>(
        &self,
        conn: &'c Connection,
        sql: &str,
    ) -> Result<rusqlite::CachedStatement<'c>> {
        if is_library_statement(sql) {
            // The cache would serve the library's own prepared statement, which the
            // authorizer saw as the library's: refuse it here.
            return Err(Error::Forbidden {
                sql: Some(sql.to_owned()),
                reason: "transaction control belongs to the library: a `#[transactional]` \
                         body commits by returning `Ok` and rolls back by returning `Err`; for \
                         a savepoint, call a nested `#[transactional]` fn"
                    .to_owned(),
            });
        }
        let stmt = conn
            .prepare_cached(sql)
            .map_err(|e| Error::sqlite(e, Some(sql)))?;
        // Checked at every execution, not only when the statement was prepared: a cached
        // statement may have been prepared in a frame that could write.
        if self.read_only && !stmt.readonly() {
            return Err(Error::ReadOnly);
        }
        Ok(stmt)
    }
}

/// The savepoint around a `call` closure, which shows afterwards whether the closure ended or
/// rolled back a savepoint of the library (that would end this one too).
const CALL_GUARD_OPEN: &str = "SAVEPOINT _transactional_call";
const CALL_GUARD_RELEASE: &str = "RELEASE _transactional_call";

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tx({})", self.frame)
    }
}

fn collect_rows<P: Params>(
    stmt: &mut Statement<'_>,
    params: P,
    limit: usize,
) -> rusqlite::Result<Vec<Row>> {
    let columns: Arc<[String]> = stmt.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next()? else { break };
        let values = (0..width)
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<_>>()?;
        out.push(Row {
            columns: columns.clone(),
            values,
        });
    }
    Ok(out)
}

/// One row of a query result, owned: it no longer needs the connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// The value of a column, by position (`0`) or name (`"val"`), converted to `T`.
    ///
    /// A column the row does not have is [`Error::NoSuchColumn`]; a value that does not
    /// convert (a `NULL` read as `i64`, text read as a number) is [`Error::Conversion`], naming
    /// the column, the type asked for and the SQL type found.
    pub fn get<T: FromSql>(&self, column: impl ColumnIndex) -> Result<T> {
        let idx = column.index(self)?;
        let value = ValueRef::from(&self.values[idx]);
        T::column_result(value).map_err(|err| {
            let found = match value.data_type() {
                Type::Null => "NULL",
                Type::Integer => "INTEGER",
                Type::Real => "REAL",
                Type::Text => "TEXT",
                Type::Blob => "BLOB",
            };
            let source: Box<dyn std::error::Error + Send + Sync> = match err {
                FromSqlError::InvalidType => "the types do not match".into(),
                FromSqlError::Other(source) => source,
                other => Box::new(other),
            };
            Error::Conversion {
                column: format!("{idx} `{}`", self.columns[idx]),
                target: std::any::type_name::<T>(),
                found,
                source,
            }
        })
    }

    fn no_such_column(&self, column: String) -> Error {
        Error::NoSuchColumn {
            column,
            columns: self.columns.join(", "),
        }
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The raw values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a row of no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A column position or name for [`Row::get`].
pub trait ColumnIndex: sealed::Sealed {
    /// The position of the column in `row`.
    fn index(&self, row: &Row) -> Result<usize>;
}

impl ColumnIndex for usize {
    fn index(&self, row: &Row) -> Result<usize> {
        if *self < row.len() {
            Ok(*self)
        } else {
            Err(row.no_such_column(self.to_string()))
        }
    }
}

impl ColumnIndex for &str {
    fn index(&self, row: &Row) -> Result<usize> {
        row.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(self))
            .ok_or_else(|| row.no_such_column(format!("`{self}`")))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for &str {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Statements that never wait (every turn free) still let the other tasks of a
    /// single-threaded executor run: each spends tokio's cooperative budget, so the task
    /// yields long before 1,000 of them are done.
    #[tokio::test(flavor = "current_thread")]
    async fn back_to_back_statements_yield_to_other_tasks() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let db = Database::open_in_memory().await.unwrap();
        let neighbour_ran = Arc::new(AtomicBool::new(false));
        let flag = neighbour_ran.clone();
        let neighbour = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        let seen_at = crate::Atomic::new()
            .db(db)
            .run(async {
                let tx = crate::current()?;
                tx.execute_batch("CREATE TABLE t(x)").await?;
                for i in 0..1_000 {
                    if neighbour_ran.load(Ordering::SeqCst) {
                        return Ok(Some(i));
                    }
                    tx.execute("INSERT INTO t VALUES (?1)", (i,)).await?;
                }
                Ok::<_, Error>(None)
            })
            .await
            .unwrap();
        neighbour.await.unwrap();
        assert!(
            seen_at.is_some(),
            "the other task did not run during 1,000 statements"
        );
    }

    fn row() -> Row {
        Row {
            columns: vec!["key".to_owned(), "val".to_owned()].into(),
            values: vec![Value::Text("k".into()), Value::Integer(7)],
        }
    }

    #[test]
    fn get_by_position_or_name_converts_with_from_sql() {
        let row = row();
        assert_eq!(row.get::<String>(0).unwrap(), "k");
        assert_eq!(row.get::<i64>("val").unwrap(), 7);
        assert_eq!(
            row.get::<i64>("VAL").unwrap(),
            7,
            "names match like SQLite's: any case"
        );
        assert_eq!(row.columns(), ["key", "val"]);
    }

    #[test]
    fn bad_columns_and_types_are_errors_not_panics() {
        let row = row();
        let err = row.get::<i64>(2).unwrap_err();
        assert!(
            matches!(&err, Error::NoSuchColumn { column, columns } if column == "2" && columns == "key, val"),
            "{err:?}"
        );
        let err = row.get::<i64>("nope").unwrap_err();
        assert!(
            matches!(&err, Error::NoSuchColumn { column, .. } if column == "`nope`"),
            "{err:?}"
        );
        let err = row.get::<i64>(0).unwrap_err();
        let Error::Conversion {
            column,
            target,
            found,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            (column.as_str(), *target, *found),
            ("0 `key`", "i64", "TEXT")
        );
        assert_eq!(
            err.to_string(),
            "column 0 `key`: cannot read a TEXT value as i64: the types do not match"
        );
    }
}
