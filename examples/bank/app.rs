//! A small bank over HTTP: accounts and transfers on SQLite or PostgreSQL (feature
//! `postgres`), every handler one transaction. The handlers and the statements are the same
//! on both, the schema aside ([`Backend`]); on PostgreSQL, where transactions run in
//! parallel, the requests that write are `SERIALIZABLE` and re-run when they lose a conflict
//! (see `api.rs`).
//!
//! | request | answer |
//! |---|---|
//! | `POST /accounts` `{"owner": "ada", "opening_balance": 1000}` | `201` the account; `409` when the bank's total would pass `i64::MAX` |
//! | `GET /accounts/{id}` | `200` the account, `404` |
//! | `POST /transfers` `{"from": 1, "to": 2, "amount": 250}` | `201` the transfer; `404` unknown account, `409` insufficient funds or a balance past `i64::MAX` |
//! | `POST /transfers/batch` `{"transfers": [{..}, {..}]}` | `200` one result per item |
//! | `GET /audit` | `200` totals and whether every balance adds up |
//! | `GET /metrics` | `200` requests in flight, transfers committed |
//!
//! The batch endpoint is the point of the example. Its items run concurrently in a
//! [`TaskGroup`](transactional::TaskGroup) inside the request's transaction, each in its own
//! savepoint. An item that fails (insufficient funds, unknown account) rolls back its
//! savepoint — only its own writes, never a sibling's — and is reported in its result; the
//! other items commit with the request. Money is only ever moved, so the sum of all balances
//! always equals the sum of the opening balances, and every account's balance equals its
//! opening balance plus the transfers in minus the transfers out (`GET /audit` checks both).
//!
//! Bad input — malformed JSON, a missing body, amounts that are not positive, a transfer to
//! the same account, an empty or oversized batch, an unknown account in a single transfer —
//! is a 4xx with a JSON body `{"error": {"code": "..", "message": ".."}}`, and nothing is
//! written. An unknown account *inside* a batch is a fact of the database, found in the
//! item's savepoint, so it fails that item only.
//!
//! Money cannot overflow `i64`: a credit past [`MAX_BALANCE`] fails (`409 balance_limit`, for
//! a batch item that item alone), and opening an account past [`MAX_TOTAL_MONEY`] in all
//! fails (`409 money_limit`); see `domain.rs`.
//!
//! A hostile client meets [`Limits`]: a deadline for the request head (hyper's) and one for
//! the whole body (`408`), [`MAX_BODY_BYTES`] (`413`, before reading when `Content-Length`
//! says so), no request `Content-Encoding` but `identity` (`415`), and a cap on connections
//! served at once. The answers given before the body was read to its end carry
//! `Connection: close` (see `body.rs`). What hyper answers itself, before a request reaches
//! the service — `400` for a malformed request line, header or `Content-Length`, `414`,
//! `431` — has an empty body: hyper 1 writes those responses without a hook to fill them.
//!
//! [`serve`] stops on its shutdown signal gracefully: it stops accepting connections, drops
//! the connections whose request has not begun (idle, or still sending its head or body:
//! no handler has run, so nothing is lost), lets the requests in flight finish (their transactions commit or roll back as they would have),
//! and after [`SHUTDOWN_GRACE`] drops the ones still running, which rolls their transactions
//! back. A client is told "committed" only after the commit, so nothing it was told is
//! committed can be lost.

mod api;
mod body;
mod domain;
mod error;
#[cfg(feature = "postgres")]
mod postgres;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing::Instrument;
use transactional::Database;

pub use api::{
    BatchItemResult, BatchRequest, BatchResponse, DebugView, MetricsView, NewAccount,
    TransferRequest, MAX_AMOUNT, MAX_BATCH, POSTGRES_POOL_SIZE,
};
pub use domain::{
    is_postgres_url, migrate, Account, Audit, Backend, BankError, MigrateError, Transfer,
    MAX_BALANCE, MAX_TOTAL_MONEY,
};
pub use error::{ErrorBody, ErrorDetail};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresBank, PostgresSetupError};

/// How long [`serve`] lets requests in flight run after the shutdown signal before dropping
/// them (which rolls their transactions back).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Request bodies larger than this are refused with `413`: at once when `Content-Length`
/// says so, before any of the body is read, or as soon as a chunked body passes it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What [`serve_with`] allows a client; [`Limits::default`] is what [`serve`] uses.
#[derive(Clone, Debug)]
pub struct Limits {
    /// How long requests in flight may run after the shutdown signal before they are dropped.
    pub grace: Duration,
    /// How long a connection may take to send a request's head (request line and headers),
    /// from when the server starts waiting for it; then hyper closes the connection, with
    /// no answer. So it is also how long a keep-alive connection may stay idle between
    /// requests, and how long a silent connection holds one of `max_connections`.
    pub header_timeout: Duration,
    /// How long a request may take to send its whole body, from when its head has arrived;
    /// then it is answered `408` and the connection is closed. A whole-body deadline rather
    /// than one per read, so that a client trickling a byte at a time cannot hold the
    /// request open either.
    pub body_timeout: Duration,
    /// The most connections served at once. Past it the server accepts no more until one
    /// closes; the kernel's listen backlog holds the newcomers meanwhile.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            grace: SHUTDOWN_GRACE,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            // Well under the usual 1024 open files per process, which the database also uses.
            max_connections: 512,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    pub(crate) db: Database,
    /// What `db` runs on, which picks the options of the write transactions (`api.rs`).
    pub(crate) backend: domain::Backend,
    pub(crate) metrics: Arc<Metrics>,
}

/// Counters behind `GET /metrics`.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) in_flight: AtomicU64,
    pub(crate) committed_transfers: AtomicU64,
}

/// The service's routes on `db`, whose schema [`migrate`] has created, with the default
/// [`Limits`].
pub fn router(db: Database) -> Router {
    router_with(db, &Limits::default())
}

/// [`router`] with the body deadline of `limits`.
pub fn router_with(db: Database, limits: &Limits) -> Router {
    let app = App {
        backend: domain::Backend::of(&db),
        db,
        metrics: Arc::default(),
    };
    Router::new()
        .route("/accounts", post(api::open_account))
        .route("/accounts/{id}", get(api::get_account))
        .route("/transfers", post(api::transfer))
        .route("/transfers/batch", post(api::transfer_batch))
        .route("/audit", get(api::audit))
        .route("/metrics", get(api::metrics))
        .route("/debug/transactions", get(api::debug_transactions))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            limits.body_timeout,
            body::read_body,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}

/// Serves the bank on `listener` until `shutdown` completes, then shuts down gracefully (see
/// the module docs). Creates the schema first if needed.
pub async fn serve(
    listener: TcpListener,
    db: Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, db, shutdown, Limits::default()).await
}

/// [`serve`] with another grace period for the requests in flight at shutdown.
pub async fn serve_with_grace(
    listener: TcpListener,
    db: Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = Limits {
        grace,
        ..Limits::default()
    };
    serve_with(listener, db, shutdown, limits).await
}

/// [`serve`] with other [`Limits`].
///
/// Each connection runs in a task of its own (HTTP/1.1 with keep-alive), and holds one of
/// `limits.max_connections` permits while it lives. On the shutdown signal the listener is
/// closed, and every connection whose request has not begun — idle, still sending its head,
/// or still sending the body its handler waits for — is dropped at once: nothing of it has
/// run, so nothing is lost. Connections whose handler is running finish that request and
/// close. When the grace period ends first, the remaining connection tasks are aborted —
/// dropping a handler's future rolls its transaction back — and this returns once they are
/// gone, so nothing of the server is still running, or still holding the database, when it
/// returns.
pub async fn serve_with(
    listener: TcpListener,
    db: Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    migrate(&db).await.map_err(std::io::Error::other)?;
    let app = router_with(db.clone(), &limits);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Tells every connection task that shutdown has begun.
    let (stopping, stopping_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A permit first: at the cap, the server stops accepting until a connection ends.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => {
                permit.expect("the semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let begun = body::Begun::default();
        let service = app.clone().map_request({
            let begun = begun.clone();
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(begun.clone());
                request
            }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        let mut stopping = stopping_rx.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = &mut connection => result,
                // The watch's read guard is dropped inside the block: it must not be held
                // across the `.await` below.
                () = async { let _ = stopping.wait_for(|&stopping| stopping).await; } => {
                    // This task polls the connection, so between its polls the request's
                    // state cannot change: no handler can start while we look.
                    if !begun.is_running() {
                        tracing::debug!(%peer, "shutdown: dropping a connection whose request had not begun");
                        return;
                    }
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {} // forget the finished ones
    }
    drop(listener);
    let _ = stopping.send(true);
    while connections.try_join_next().is_some() {}
    tracing::info!(
        connections = connections.len(),
        "shutting down: listener closed; dropping the connections whose request has not \
         begun, waiting for the requests in flight"
    );
    tokio::select! {
        () = graceful.shutdown() => {
            tracing::info!("shut down: every request in flight has finished");
        }
        () = tokio::time::sleep(limits.grace) => {
            // Say what is known, not more: a dropped request may still have been waiting to
            // begin its transaction, and then nothing of it rolls back. The database's open
            // transactions at this moment (the server's, and any other user's) are counted.
            let open_transactions = db.activity().transactions.len();
            tracing::warn!(
                grace = ?limits.grace,
                connections = connections.len(),
                open_transactions,
                "grace period over: dropping the requests still running; the transactions \
                 they had begun roll back, and those still waiting to begin one write nothing"
            );
            connections.abort_all();
        }
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Per request: a tracing span, the in-flight gauge, and one log line with the outcome.
async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
    let span =
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
    let started = Instant::now();
    let _in_flight = InFlight::enter(&app.metrics);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let micros = started.elapsed().as_micros() as u64;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(%status, micros, "request failed");
        } else {
            tracing::info!(%status, micros, "request done");
        }
    });
    response
}

/// Counts a request in flight until it ends, however it ends (a dropped request included).
struct InFlight(Arc<Metrics>);

impl InFlight {
    fn enter(metrics: &Arc<Metrics>) -> Self {
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(metrics.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
