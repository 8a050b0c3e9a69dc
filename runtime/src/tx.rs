//! `Tx`: the statement API of a frame, the same on every backend.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::Connection;

use crate::backend::sqlite::conn::ConnGuard;
use crate::backend::Session;
use crate::context::Current;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::frame::Frame;
#[cfg(feature = "postgres")]
use crate::value::Value;
use crate::value::{FromRow, Params, Row};

/// A handle to one frame (the transaction or a savepoint) of the current task, obtained from
/// [`current()`](crate::current).
///
/// Each method waits for the frame's turn, so it runs only while no savepoint of a sibling
/// task is open under the frame, then runs the statement: on SQLite directly on the
/// connection, on the calling thread; on PostgreSQL on the transaction's pooled connection.
/// Placeholders are `?1`, `?2`, … on both (rewritten to `$1`, … for PostgreSQL).
/// Parameters are tuples of ordinary Rust values ([`ToParam`](crate::ToParam)), or
/// [`params!`](crate::params); they may borrow from the caller.
///
/// A statement the database rejects fails its frame (ARCHITECTURE.md §6): the frame refuses further
/// statements with [`Error::FrameFailed`] and rolls back when it ends — so the same code
/// behaves the same on SQLite and on PostgreSQL, which refuses them anyway. Run a statement
/// that may fail in a nested `#[transactional]` fn to go on after it.
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
    /// Statements run off the executor thread (`offload`).
    offload: bool,
}

impl Tx {
    pub(crate) fn new(current: Current) -> Self {
        Tx {
            read_only: current.read_only || current.frame.read_only,
            offload: current.offload || current.frame.offload,
            frame: current.frame,
        }
    }

    /// A handle whose statements run off the executor thread, for one heavy statement in a
    /// frame that is not `offload` as a whole: `tx.offloaded().query(..)`. See
    /// [`Atomic::offload`](crate::Atomic::offload) for what it does and costs.
    pub fn offloaded(&self) -> Tx {
        Tx {
            offload: true,
            ..self.clone()
        }
    }

    /// Whether this handle's statements run off the executor thread.
    pub fn is_offloaded(&self) -> bool {
        self.offload
    }

    /// Runs one statement and returns the number of rows it changed.
    pub async fn execute<P: Params>(&self, sql: &str, params: P) -> Result<u64> {
        match &self.frame.txn.session {
            Session::Sqlite(_) => {
                self.on_sqlite(|conn| conn.run_execute(sql, &params, self.read_only))
                    .await
            }
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {
                let (sql, values) = crate::backend::postgres::statements::owned(sql, &params)?;
                let restrict = self.restrict();
                self.on_postgres(move |pg| async move {
                    pg.execute(&sql, values.iter().map(Value::as_ref).collect(), restrict)
                        .await
                })
                .await
            }
        }
    }

    /// Runs several `;`-separated statements without parameters.
    pub async fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.frame.txn.session {
            Session::Sqlite(_) => {
                self.on_sqlite(|conn| {
                    crate::backend::sent(conn.id(), sql, false);
                    self.refusing_writes(conn, || {
                        conn.execute_batch(sql)
                            .map_err(|e| Error::sqlite(e, Some(sql)))
                    })
                })
                .await
            }
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {
                let (sql, restrict) = (sql.to_owned(), self.restrict());
                self.on_postgres(move |pg| async move { pg.execute_batch(&sql, restrict).await })
                    .await
            }
        }
    }

    /// Runs a query and returns all its rows.
    pub async fn query<P: Params>(&self, sql: &str, params: P) -> Result<Vec<Row>> {
        self.query_up_to(sql, params, usize::MAX).await
    }

    /// Runs a query and returns its first row, or `None` when it returned no rows.
    pub async fn query_opt<P: Params>(&self, sql: &str, params: P) -> Result<Option<Row>> {
        let rows = self.query_up_to(sql, params, 1).await?;
        Ok(rows.into_iter().next())
    }

    /// Runs a query and returns its first row; no row is [`Error::NoRows`].
    pub async fn query_row<P: Params>(&self, sql: &str, params: P) -> Result<Row> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| Error::NoRows {
                sql: sql.to_owned(),
            })
    }

    /// Runs a query and decodes every row into `T`: a tuple (`(String, i64)`, by position)
    /// or a `#[derive(FromRow)]` struct (by column name). See [`FromRow`].
    pub async fn query_as<T: FromRow, P: Params>(&self, sql: &str, params: P) -> Result<Vec<T>> {
        self.query(sql, params)
            .await?
            .iter()
            .map(T::from_row)
            .collect()
    }

    /// Runs a query and decodes its first row into `T`, or `None` when it returned no rows.
    pub async fn query_opt_as<T: FromRow, P: Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Option<T>> {
        self.query_opt(sql, params)
            .await?
            .map(|row| T::from_row(&row))
            .transpose()
    }

    /// Runs a query and decodes its first row into `T`; no row is [`Error::NoRows`].
    pub async fn query_row_as<T: FromRow, P: Params>(&self, sql: &str, params: P) -> Result<T> {
        T::from_row(&self.query_row(sql, params).await?)
    }

    async fn query_up_to<P: Params>(&self, sql: &str, params: P, limit: usize) -> Result<Vec<Row>> {
        match &self.frame.txn.session {
            Session::Sqlite(_) => {
                self.on_sqlite(|conn| conn.run_query(sql, &params, self.read_only, limit))
                    .await
            }
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {
                let (sql, values) = crate::backend::postgres::statements::owned(sql, &params)?;
                let restrict = self.restrict();
                self.on_postgres(move |pg| async move {
                    let values = values.iter().map(Value::as_ref).collect();
                    pg.query(&sql, values, restrict, limit).await
                })
                .await
            }
        }
    }

    /// Runs `f` on the SQLite connection itself, in this frame's turn: the escape hatch for
    /// everything the methods above do not cover (blobs, custom functions, `Statement`s,
    /// rusqlite's own parameter types). On a PostgreSQL database it fails with
    /// [`Error::Unsupported`].
    ///
    /// The same rules hold inside `f`: SQLite itself refuses transaction control (its
    /// authorizer, and a commit hook that turns a `COMMIT` the library did not send into a
    /// rollback), and in a read-only frame every write. `f` runs inside a guard savepoint of
    /// the library: should it still end or roll back one of the library's savepoints (by
    /// taking the library's own statement from the statement cache), the guard is gone
    /// afterwards, `call` fails with [`Error::Forbidden`], and the transaction is aborted —
    /// it fails from then on rather than commit work that was silently undone.
    pub async fn call<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R> {
        if !matches!(self.frame.txn.session, Session::Sqlite(_)) {
            return Err(Error::Unsupported(format!(
                "`Tx::call` runs a closure on a SQLite connection, and {} is a PostgreSQL \
                 database: `execute`, `query` and `execute_batch` serve both backends",
                self.frame.txn.db.label()
            )));
        }
        self.on_sqlite(|conn| {
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

    /// Runs `f` with the transaction's own tokio-postgres client, in this frame's turn: the
    /// escape hatch for what `execute`/`query` do not cover (types of its own, `COPY`,
    /// `query_raw`, prepared statements of your own). On a SQLite database it fails with
    /// [`Error::Unsupported`]; use [`call`](Tx::call) there.
    ///
    /// `f` runs inside a guard savepoint of the library, and the rules stay the library's:
    /// a statement of `f` that the server rejected fails this frame even if `f` swallowed
    /// the error (the frame rolls back at its end, and the guard's RELEASE sees the
    /// transaction failed); should `f` end the transaction or one of the library's
    /// savepoints, `postgres` fails with [`Error::Forbidden`] and the transaction is
    /// aborted. In a read-only frame the server refuses writes. Like every statement, `f`
    /// runs in a task of its own, to its end, even if this future is dropped.
    ///
    /// ```no_run
    /// # async fn demo(tx: transactional::Tx) -> transactional::Result<()> {
    /// let n: i64 = tx
    ///     .postgres(|client| {
    ///         Box::pin(async move {
    ///             let row = client.query_one("SELECT count(*) FROM kv", &[]).await?;
    ///             Ok(row.get(0))
    ///         })
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    pub async fn postgres<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(
                &'c tokio_postgres::Client,
            )
                -> futures_util::future::BoxFuture<'c, Result<R, tokio_postgres::Error>>
            + Send
            + 'static,
    {
        if !matches!(self.frame.txn.session, Session::Postgres(_)) {
            return Err(Error::Unsupported(format!(
                "`Tx::postgres` runs a closure on a PostgreSQL client, and {} is a SQLite \
                 database: use `Tx::call`",
                self.frame.txn.db.label()
            )));
        }
        let restrict = self.restrict();
        let result = self
            .on_postgres(move |pg| async move { pg.call(f, restrict).await })
            .await;
        if matches!(result, Err(Error::Forbidden { .. })) {
            self.frame.abort();
        }
        result
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

    /// Waits for this frame's turn, then runs `work` on the SQLite connection on this
    /// thread.
    async fn on_sqlite<R>(&self, work: impl FnOnce(&ConnGuard<'_>) -> Result<R>) -> Result<R> {
        // One unit of tokio's cooperative budget per statement, as a socket read would spend:
        // a task running statements back to back still yields to its neighbours (and lets a
        // `timeout` fire) every 128 statements. Turns themselves are taken without spending
        // budget when free (`Frame::turn`), so the forced yields come at this rate and no
        // faster.
        tokio::task::consume_budget().await;
        let _turn = self.frame.turn().await?;
        self.frame.statements.fetch_add(1, Ordering::Relaxed);
        let session = self.frame.txn.session.sqlite();
        let run = || {
            let conn = session.lock();
            session.slow.reset();
            let result = work(&conn).map_err(|e| self.explain(&conn, e));
            if let Some(took) = session.slow.slow_for() {
                self.report_slow(took);
            }
            self.frame.note_in_transaction(conn.in_transaction());
            result
        };
        let result = match self.offload && offload_possible() {
            // The worker's other tasks move to another thread while this one blocks; the
            // statement still runs here, under the turn, and cannot be cut short.
            true => tokio::task::block_in_place(run),
            false => run(),
        };
        if let Err(err) = &result {
            self.frame.note_failure(err);
        }
        self.frame.note_outcome(result.as_ref().err());
        result
    }

    #[cold]
    #[inline(never)]
    fn report_slow(&self, took: std::time::Duration) {
        match self.offload {
            true => tracing::debug!(
                frame = %self.frame,
                took_ms = took.as_millis() as u64,
                "an offloaded statement ran long"
            ),
            false => tracing::warn!(
                frame = %self.frame,
                took_ms = took.as_millis() as u64,
                "a statement held an executor thread for {took:?}, stalling the tasks queued \
                 on it: mark its frame `offload` (or run it through `Tx::offloaded()`)"
            ),
        }
    }

    /// Waits for this frame's turn, then runs `statement` on the PostgreSQL connection in a
    /// task of its own that holds the turn until the reply is in. Once sent, a statement
    /// runs on the server whatever happens to the caller's future; in its own task its
    /// reply is still read, so a cancelled caller leaves the frame as the statement left it
    /// (failed or not) — as on SQLite, where a statement cannot be interrupted.
    #[cfg(feature = "postgres")]
    async fn on_postgres<R, F>(
        &self,
        statement: impl FnOnce(Arc<crate::backend::postgres::session::PgSession>) -> F,
    ) -> Result<R>
    where
        R: Send + 'static,
        F: std::future::Future<Output = Result<R>> + Send + 'static,
    {
        let Session::Postgres(pg) = &self.frame.txn.session else {
            unreachable!("on_postgres is called for PostgreSQL sessions")
        };
        let turn = self.frame.owned_turn().await?;
        self.frame.statements.fetch_add(1, Ordering::Relaxed);
        let frame = self.frame.clone();
        let work = statement(pg.clone());
        let session = pg.clone();
        let task = tokio::spawn(async move {
            let result = work.await.map_err(|e| session.explain(e));
            if matches!(result, Err(Error::Deadlock(_))) {
                frame.txn.db.inner.stats.deadlock();
            }
            if let Err(err) = &result {
                frame.note_failure(err);
                if matches!(err, Error::Postgres(e) if e.connection_lost()) {
                    frame.abort();
                }
            }
            frame.note_outcome(result.as_ref().err());
            drop(turn);
            result
        });
        match task.await {
            Ok(result) => result,
            Err(e) => Err(Error::background("a PostgreSQL statement", e)),
        }
    }

    /// Writes through this handle must be refused by a read-only savepoint of its own: the
    /// task joined a frame that may write as read-only (a read-only frame is read-only on
    /// the server already).
    #[cfg(feature = "postgres")]
    fn restrict(&self) -> bool {
        self.read_only && !self.frame.read_only
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

/// `block_in_place` needs a multi-thread runtime's worker (or its `block_on`); on a
/// current-thread runtime there is no other worker to hand the tasks to, and it would panic.
fn offload_possible() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
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
}
