//! A small bank over HTTP: accounts and transfers on SQLite, every handler `#[transactional]`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /accounts` `{"owner": "ada", "opening_balance": 1000}` | `201` the account |
//! | `GET /accounts/{id}` | `200` the account, `404` |
//! | `POST /transfers` `{"from": 1, "to": 2, "amount": 250}` | `201` the transfer; `404` unknown account, `409` insufficient funds |
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
//! [`serve`] stops on its shutdown signal gracefully: it stops accepting connections, lets the
//! requests in flight finish (their transactions commit or roll back as they would have),
//! and after [`SHUTDOWN_GRACE`] drops the ones still running, which rolls their transactions
//! back. A client is told "committed" only after the commit, so nothing it was told is
//! committed can be lost.

mod api;
mod domain;
mod error;

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
use tokio::task::JoinSet;
use tracing::Instrument;
use transactional::Database;

pub use api::{
    BatchItemResult, BatchRequest, BatchResponse, DebugView, MetricsView, NewAccount,
    TransferRequest, MAX_AMOUNT, MAX_BATCH,
};
pub use domain::{migrate, Account, Audit, BankError, Transfer};
pub use error::{ErrorBody, ErrorDetail};

/// How long [`serve`] lets requests in flight run after the shutdown signal before dropping
/// them (which rolls their transactions back).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Request bodies larger than this are refused with `413` before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    pub(crate) db: Database,
    pub(crate) metrics: Arc<Metrics>,
}

/// Counters behind `GET /metrics`.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) in_flight: AtomicU64,
    pub(crate) committed_transfers: AtomicU64,
}

/// The service's routes on `db`, whose schema [`migrate`] has created.
pub fn router(db: Database) -> Router {
    let app = App {
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
    serve_with_grace(listener, db, shutdown, SHUTDOWN_GRACE).await
}

/// [`serve`] with another grace period for the requests in flight at shutdown.
///
/// Each connection runs in a task of its own (HTTP/1.1 with keep-alive). On the shutdown
/// signal the listener is closed, idle connections are closed, and connections with a
/// request in flight finish that request and close. When the grace period ends first, the
/// remaining connection tasks are aborted — dropping a handler's future rolls its
/// transaction back — and this returns once they are gone, so nothing of the server is still
/// running, or still holding the database, when it returns.
pub async fn serve_with_grace(
    listener: TcpListener,
    db: Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    migrate(&db).await.map_err(std::io::Error::other)?;
    let app = router(db);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
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
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {} // forget the finished ones
    }
    drop(listener);
    while connections.try_join_next().is_some() {}
    tracing::info!(
        connections = connections.len(),
        "shutting down: listener closed; waiting for the requests in flight"
    );
    tokio::select! {
        () = graceful.shutdown() => {
            tracing::info!("shut down: every request in flight has finished");
        }
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                ?grace,
                connections = connections.len(),
                "grace period over: dropping the requests still running; their transactions roll back"
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
