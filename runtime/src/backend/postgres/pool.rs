//! The PostgreSQL connection pool: deadpool-postgres with every wait bounded and a check that
//! no connection is handed out inside a transaction, a failed one, or broken (the class of
//! sqlx #4393 and diesel_async #96/#198 — a later user silently joining someone else's
//! transaction, or meeting "current transaction is aborted").
//!
//! tokio-postgres does not expose the transaction status that every ReadyForQuery message
//! carries, so the check asks the server: outside a transaction block a single-statement
//! query runs in its own implicit transaction, whose start time *is* the statement's start
//! time (`now() = statement_timestamp()`); inside a block `now()` is the earlier BEGIN's
//! time; in a failed block the query itself is refused with 25P02.
//!
//! A transaction dropped without its end (a cancelled future) gives its connection to
//! [`reclaim`], which rolls it back if the server answers in time and otherwise detaches the
//! connection from the pool (`Object::take`) and drops it, so the server aborts the
//! transaction when the session ends.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, StatementCache,
};
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use super::errors::{PgError, PgErrorKind};

/// How to build a [`PgPool`].
#[derive(Clone)]
pub(crate) struct PoolSettings {
    pub(crate) config: Config,
    /// The most connections open at once.
    pub(crate) max_size: usize,
    /// How long [`PgPool::get`] waits for a connection when all are in use.
    pub(crate) wait: Duration,
    /// How long opening a new connection may take.
    pub(crate) connect_timeout: Duration,
    /// How long the state check of a returning connection may take before it is dropped.
    pub(crate) check_timeout: Duration,
    /// How long [`reclaim`]'s ROLLBACK may take before the connection is detached.
    pub(crate) rollback_timeout: Duration,
    /// Runs on every new connection before its first use.
    pub(crate) on_connect: Option<OnConnect>,
}

impl fmt::Debug for PoolSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSettings")
            .field("max_size", &self.max_size)
            .field("wait", &self.wait)
            .field("on_connect", &self.on_connect.is_some())
            .finish_non_exhaustive()
    }
}

/// What runs on every new connection (`PostgresBuilder::on_connect`).
pub(crate) type OnConnect = Arc<
    dyn for<'c> Fn(
            &'c Client,
        )
            -> futures_util::future::BoxFuture<'c, Result<(), tokio_postgres::Error>>
        + Send
        + Sync,
>;

impl PoolSettings {
    /// Settings for the server `url` names (`postgres://user@host:port/db?...`), with
    /// defaults for the rest.
    pub(crate) fn from_url(url: &str) -> Result<Self, PoolError> {
        let config = url.parse().map_err(PoolError::Url)?;
        Ok(Self::new(config))
    }

    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            max_size: 10,
            wait: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            check_timeout: Duration::from_secs(5),
            rollback_timeout: Duration::from_secs(5),
            on_connect: None,
        }
    }
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    #[error("invalid PostgreSQL URL: {0}")]
    Url(#[source] tokio_postgres::Error),
    #[error(
        "no PostgreSQL connection free after waiting {wait:?}: all {size} connections of the \
         pool stayed in use (raise the pool size or the wait, or end transactions sooner)"
    )]
    Exhausted { size: usize, wait: Duration },
    #[error("could not connect to PostgreSQL within {0:?}")]
    ConnectTimeout(Duration),
    #[error("could not connect to PostgreSQL: {0}")]
    Connect(#[source] Box<PgError>),
    #[error("the PostgreSQL pool is closed")]
    Closed,
    #[error("PostgreSQL pool: {0}")]
    Build(String),
}

/// What the server says about a connection's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Not in a transaction block: fit to hand out.
    Idle,
    /// Inside a transaction block (BEGIN without its end).
    InTransaction,
    /// Inside a transaction block that a failed statement aborted.
    Failed,
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::InTransaction => "inside a transaction",
            Self::Failed => "inside a failed transaction",
        })
    }
}

const STATE_QUERY: &str = "SELECT pg_catalog.now() = pg_catalog.statement_timestamp()";

/// Asks the server whether `client`'s session is inside a transaction block (see the module
/// docs for why this query answers it). An error means the connection is unusable.
pub(crate) async fn connection_state(client: &Client) -> Result<ConnState, PgError> {
    match client.simple_query(STATE_QUERY).await {
        Ok(messages) => {
            let same = messages.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(0),
                _ => None,
            });
            Ok(if same == Some("t") {
                ConnState::Idle
            } else {
                ConnState::InTransaction
            })
        }
        Err(e) => {
            let e = PgError::new(e, Some(STATE_QUERY));
            if e.kind() == PgErrorKind::FailedTransaction {
                Ok(ConnState::Failed)
            } else {
                Err(e)
            }
        }
    }
}

/// The round trips of one database's connections (`Stats::round_trips`).
#[derive(Clone, Default, Debug)]
pub(crate) struct RoundTrips(Arc<std::sync::atomic::AtomicU64>);

impl RoundTrips {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// How recently a connection must have come back from an answered COMMIT or ROLLBACK for the
/// pool to hand it out again without asking the server about it (HikariCP's
/// `aliveBypassWindowMs` is the same idea, and the same 500 ms).
const CHECK_BYPASS: Duration = Duration::from_millis(500);

/// The connections that came back from a transaction known to have ended: each is handed out
/// again without the state check if it comes back within [`CHECK_BYPASS`].
///
/// A connection is known by its statement cache, which is its own for its whole life; the
/// entry holds a `Weak` to it, so no other connection's cache can take that address while
/// the entry exists. An entry is taken at the connection's next lease, so a connection that
/// came back any other way (a transaction abandoned mid-flight, reclaimed by a ROLLBACK) has
/// none, and is checked.
#[derive(Clone, Default)]
pub(crate) struct CleanReturns(Arc<std::sync::Mutex<Vec<CleanReturn>>>);

/// A connection (by its statement cache) and when it came back.
type CleanReturn = (Weak<StatementCache>, Instant);

impl CleanReturns {
    /// `conn` goes back to the pool after an answered COMMIT or ROLLBACK.
    pub(crate) fn returned(&self, conn: &Object) {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(cache, _)| cache.strong_count() > 0);
        entries.push((Arc::downgrade(&conn.statement_cache), Instant::now()));
    }

    /// Takes `conn`'s entry: whether it came back clean within the bypass window.
    fn take_recent(&self, conn: &deadpool_postgres::ClientWrapper) -> bool {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mine = entries.iter().position(|(cache, _)| {
            std::ptr::eq(cache.as_ptr(), Arc::as_ptr(&conn.statement_cache))
        });
        match mine {
            Some(i) => entries.swap_remove(i).1.elapsed() < CHECK_BYPASS,
            None => false,
        }
    }
}

/// A deadpool-postgres pool that hands out only idle, live connections, within bounded waits.
#[derive(Clone)]
pub(crate) struct PgPool {
    pool: Pool,
    round_trips: RoundTrips,
    clean: CleanReturns,
    wait: Duration,
    connect_timeout: Duration,
    rollback_timeout: Duration,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPool")
            .field("status", &self.pool.status())
            .field("wait", &self.wait)
            .finish()
    }
}

impl PgPool {
    /// Builds the pool; no connection is opened until the first [`get`](Self::get).
    pub(crate) fn new(settings: PoolSettings) -> Result<Self, PoolError> {
        // `Fast` recycling only asks tokio-postgres whether the connection task has ended
        // (`Client::is_closed`); the state check below is the one that matters. deadpool's
        // own `Verified` sends an empty query, which a session inside a transaction, even a
        // failed one, answers without complaint.
        let manager = Manager::from_config(
            settings.config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let check_timeout = settings.check_timeout;
        let round_trips = RoundTrips::default();
        let checks = round_trips.clone();
        let clean = CleanReturns::default();
        let recent = clean.clone();
        let mut builder = Pool::builder(manager);
        if let Some(on_connect) = settings.on_connect.clone() {
            builder = builder.post_create(Hook::async_fn(move |client, _| {
                let on_connect = on_connect.clone();
                Box::pin(async move {
                    on_connect(client).await.map_err(|e| {
                        tracing::warn!(error = %e, "on_connect failed on a new PostgreSQL connection");
                        HookError::Backend(e)
                    })
                })
            }));
        }
        // No deadpool timeouts: they run on tokio's timer, which a runtime built without
        // `enable_time` lacks (deadpool would panic there). Every wait is bounded by the
        // library's own timer instead (`crate::wait`): `get` as a whole, the state check in
        // the hook below, `reclaim`'s ROLLBACK.
        let pool = builder
            .max_size(settings.max_size)
            .post_recycle(Hook::async_fn(move |client, _| {
                // Just back from a transaction that ended with an answered COMMIT or
                // ROLLBACK: idle, and alive a moment ago (a connection whose server session
                // has ended since is most often seen closed by `Fast` recycling already).
                if recent.take_recent(client) {
                    return Box::pin(async { Ok(()) });
                }
                checks.add(1);
                Box::pin(async move {
                    match crate::wait::within(check_timeout, connection_state(client)).await {
                        Ok(Ok(ConnState::Idle)) => Ok(()),
                        Ok(Ok(state)) => {
                            tracing::warn!(%state, "PostgreSQL connection refused by the pool");
                            Err(HookError::message(format!("connection is {state}")))
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "PostgreSQL connection failed its check");
                            Err(HookError::message(e.to_string()))
                        }
                        Err(_) => Err(HookError::message(format!(
                            "connection state check took over {check_timeout:?}"
                        ))),
                    }
                })
            }))
            .build()
            .map_err(|e| PoolError::Build(e.to_string()))?;
        Ok(Self {
            pool,
            round_trips,
            clean,
            wait: settings.wait,
            connect_timeout: settings.connect_timeout,
            rollback_timeout: settings.rollback_timeout,
        })
    }

    /// An idle, live connection: a pooled one that passed its check, or a new one.
    ///
    /// When every connection is in use, waits at most the pool's `wait` for one to come
    /// back; otherwise at most `connect_timeout` for a check and, if needed, a connect.
    pub(crate) async fn get(&self) -> Result<Object, PoolError> {
        let status = self.pool.status();
        let full = status.available == 0 && status.size >= status.max_size;
        let limit = if full {
            self.wait
        } else {
            self.connect_timeout
        };
        let got = crate::wait::within(limit, self.pool.get())
            .await
            .map_err(|_| {
                if full {
                    PoolError::Exhausted {
                        size: status.max_size,
                        wait: self.wait,
                    }
                } else {
                    PoolError::ConnectTimeout(self.connect_timeout)
                }
            })?;
        got.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => {
                PoolError::Connect(Box::new(PgError::new(e, None)))
            }
            deadpool_postgres::PoolError::Closed => PoolError::Closed,
            other => PoolError::Build(other.to_string()),
        })
    }

    /// Where connections that come back clean are noted.
    pub(crate) fn clean_returns(&self) -> &CleanReturns {
        &self.clean
    }

    /// The counter of round trips on this pool's connections.
    pub(crate) fn round_trips(&self) -> &RoundTrips {
        &self.round_trips
    }

    /// How long a transaction waits for a connection when all are in use.
    pub(crate) fn wait(&self) -> Duration {
        self.wait
    }

    /// Closes the pool: idle connections are dropped now, those in use when they come back,
    /// and every later `get` fails.
    pub(crate) fn close(&self) {
        self.pool.close();
    }

    /// Every connection is in use: a transaction asking now has to wait.
    pub(crate) fn is_full(&self) -> bool {
        let status = self.pool.status();
        status.available == 0 && status.size >= status.max_size
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    /// How long [`reclaim`] may wait for its ROLLBACK with this pool's settings.
    pub(crate) fn rollback_timeout(&self) -> Duration {
        self.rollback_timeout
    }
}

/// What [`reclaim`] did with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reclaimed {
    /// Rolled back and given back to the pool (which checks it again before reuse).
    Returned,
    /// Detached from the pool and closed: the server aborts its transaction.
    Detached,
}

/// Takes back a connection whose transaction was abandoned (its frame dropped mid-flight):
/// `ROLLBACK` within `timeout` and back to the pool; otherwise a cancel request for whatever
/// statement may still run, and the connection detached and closed.
pub(crate) async fn reclaim(conn: Object, timeout: Duration) -> Reclaimed {
    if !conn.is_closed() {
        match crate::wait::within(timeout, conn.batch_execute("ROLLBACK")).await {
            Ok(Ok(())) => return Reclaimed::Returned,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "ROLLBACK of an abandoned transaction failed")
            }
            Err(_) => {
                tracing::warn!(
                    ?timeout,
                    "ROLLBACK of an abandoned transaction timed out; cancelling"
                );
                // A statement of the dropped future may still run: closing our side alone
                // would not stop it until it next talks to the client.
                let token = conn.cancel_token();
                let _ = crate::wait::within(timeout, token.cancel_query(NoTls)).await;
            }
        }
    }
    drop(Object::take(conn));
    Reclaimed::Detached
}

/// [`reclaim`] from a context that cannot await (a `Drop`): spawned on the current tokio
/// runtime, or, outside one, the connection is detached and closed at once.
pub(crate) fn reclaim_later(conn: Object, timeout: Duration) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(reclaim(conn, timeout));
        }
        Err(_) => drop(Object::take(conn)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::postgres::test_db::TestDb;
    use std::time::Instant;

    fn settings(db: &TestDb, max_size: usize, wait: Duration) -> PoolSettings {
        PoolSettings {
            max_size,
            wait,
            ..PoolSettings::new(db.config())
        }
    }

    async fn pid(conn: &Client) -> i32 {
        conn.query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Polls until the server has no session `pid` (a closed connection ends it shortly).
    async fn assert_session_ends(observer: &Client, pid: i32) {
        for _ in 0..100 {
            let n: i64 = observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            if n == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("session {pid} is still on the server after 5 s");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_error_not_a_hang() {
        let config: Config = "postgres://postgres@127.0.0.1:1/none".parse().unwrap();
        let pool = PgPool::new(PoolSettings::new(config)).unwrap();
        let started = Instant::now();
        let err = pool.get().await.unwrap_err();
        assert!(matches!(err, PoolError::Connect(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_bad_url_is_reported() {
        let err = PoolSettings::from_url("postgres://[::1").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid PostgreSQL URL"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_exhausted_pool_fails_within_its_wait_naming_size_and_wait() {
        let Some(db) = TestDb::new("pool_exhausted").await else {
            return;
        };
        let wait = Duration::from_millis(200);
        let pool = PgPool::new(settings(&db, 2, wait)).unwrap();
        let (a, _b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
        let started = Instant::now();
        let err = pool.get().await.unwrap_err();
        let waited = started.elapsed();
        assert!(
            matches!(err, PoolError::Exhausted { size: 2, wait: w } if w == wait),
            "{err}"
        );
        assert!(
            waited >= wait && waited < wait + Duration::from_secs(1),
            "{waited:?}"
        );
        assert_eq!(
            err.to_string(),
            "no PostgreSQL connection free after waiting 200ms: all 2 connections of the pool \
             stayed in use (raise the pool size or the wait, or end transactions sooner)"
        );
        // A connection given back makes the next get succeed.
        drop(a);
        let _c = pool.get().await.unwrap();
    }

    #[tokio::test]
    async fn connection_state_tells_idle_open_and_failed_transactions_apart() {
        let Some(db) = TestDb::new("pool_state").await else {
            return;
        };
        let c = db.connect().await;
        assert_eq!(connection_state(&c).await.unwrap(), ConnState::Idle);
        c.batch_execute("BEGIN").await.unwrap();
        assert_eq!(
            connection_state(&c).await.unwrap(),
            ConnState::InTransaction
        );
        // A transaction that has done nothing but a read is still a transaction block.
        c.batch_execute("SELECT 1").await.unwrap();
        assert_eq!(
            connection_state(&c).await.unwrap(),
            ConnState::InTransaction
        );
        c.batch_execute("SELECT 1/0").await.unwrap_err();
        assert_eq!(connection_state(&c).await.unwrap(), ConnState::Failed);
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(connection_state(&c).await.unwrap(), ConnState::Idle);
        c.batch_execute("BEGIN; SAVEPOINT s; RELEASE s")
            .await
            .unwrap();
        assert_eq!(
            connection_state(&c).await.unwrap(),
            ConnState::InTransaction
        );
    }

    #[tokio::test]
    async fn a_connection_left_in_a_transaction_is_never_handed_out_again() {
        let Some(db) = TestDb::new("pool_left_in_tx").await else {
            return;
        };
        let observer = db.connect().await;
        observer
            .batch_execute("CREATE TABLE t(v int)")
            .await
            .unwrap();
        let pool = PgPool::new(settings(&db, 1, Duration::from_secs(5))).unwrap();
        for leave in [
            "BEGIN; INSERT INTO t VALUES (1)",
            "BEGIN; INSERT INTO t VALUES (2); SELECT 1/0",
        ] {
            let conn = pool.get().await.unwrap();
            let first = pid(&conn).await;
            let _ = conn.batch_execute(leave).await;
            drop(conn); // back to the pool, still inside the transaction
            let conn = pool.get().await.unwrap();
            assert_ne!(
                pid(&conn).await,
                first,
                "after `{leave}` the same session came back"
            );
            assert_eq!(connection_state(&conn).await.unwrap(), ConnState::Idle);
            assert_session_ends(&observer, first).await;
        }
        let n: i64 = observer
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            n, 0,
            "the abandoned transactions were aborted, not committed"
        );
        assert_eq!(pool.status().size, 1);
    }

    #[tokio::test]
    async fn a_terminated_backend_is_not_reused() {
        let Some(db) = TestDb::new("pool_terminated").await else {
            return;
        };
        let observer = db.connect().await;
        let pool = PgPool::new(settings(&db, 1, Duration::from_secs(5))).unwrap();
        let conn = pool.get().await.unwrap();
        let first = pid(&conn).await;
        drop(conn);
        observer
            .execute("SELECT pg_terminate_backend($1, 5000)", &[&first])
            .await
            .unwrap();
        let conn = pool.get().await.unwrap();
        assert_ne!(pid(&conn).await, first);
        conn.batch_execute("SELECT 1").await.unwrap();
    }

    #[tokio::test]
    async fn reclaim_rolls_back_and_returns_the_connection() {
        let Some(db) = TestDb::new("pool_reclaim").await else {
            return;
        };
        let observer = db.connect().await;
        observer
            .batch_execute("CREATE TABLE t(v int)")
            .await
            .unwrap();
        let pool = PgPool::new(settings(&db, 1, Duration::from_secs(5))).unwrap();
        let conn = pool.get().await.unwrap();
        let first = pid(&conn).await;
        conn.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        assert_eq!(
            reclaim(conn, pool.rollback_timeout()).await,
            Reclaimed::Returned
        );
        let conn = pool.get().await.unwrap();
        assert_eq!(
            pid(&conn).await,
            first,
            "a rolled-back connection is reused"
        );
        let n: i64 = observer
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn reclaim_detaches_a_connection_whose_statement_still_runs() {
        let Some(db) = TestDb::new("pool_reclaim_busy").await else {
            return;
        };
        let observer = db.connect().await;
        let pool = PgPool::new(settings(&db, 1, Duration::from_secs(5))).unwrap();
        let conn = pool.get().await.unwrap();
        let first = pid(&conn).await;
        // A statement whose future is dropped after it was sent: the server still runs it.
        let sleeping = conn.batch_execute("BEGIN; SELECT pg_sleep(30)");
        assert!(tokio::time::timeout(Duration::from_millis(200), sleeping)
            .await
            .is_err());
        let started = Instant::now();
        assert_eq!(
            reclaim(conn, Duration::from_millis(200)).await,
            Reclaimed::Detached
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(pool.status().size, 0, "detached from the pool");
        assert_session_ends(&observer, first).await;
        let conn = pool.get().await.unwrap();
        assert_ne!(pid(&conn).await, first);
    }

    #[tokio::test]
    async fn reclaim_later_runs_without_awaiting() {
        let Some(db) = TestDb::new("pool_reclaim_later").await else {
            return;
        };
        let pool = PgPool::new(settings(&db, 1, Duration::from_secs(5))).unwrap();
        let conn = pool.get().await.unwrap();
        let first = pid(&conn).await;
        conn.batch_execute("BEGIN").await.unwrap();
        reclaim_later(conn, pool.rollback_timeout());
        let conn = pool.get().await.unwrap();
        assert_eq!(pid(&conn).await, first);
        assert_eq!(connection_state(&conn).await.unwrap(), ConnState::Idle);
    }
}
