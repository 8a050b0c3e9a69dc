//! The HTTP handlers. Each one that touches the database is `#[transactional]`: the request
//! is one transaction, and the domain operations it calls are savepoints inside it.
//!
//! A request that writes has two such fns, the same body under two sets of options, and
//! runs the one for its database's [`Backend`]: on SQLite the writers take turns on the one
//! writer connection, so none ever meets another's writes half-done and nothing needs
//! re-running; on PostgreSQL they run in parallel, one per pooled connection, so they are
//! `isolation = "serializable"` — every outcome is one that running them one at a time could
//! give, the money limit's read of the total included — with `retries = 50`: a transaction
//! that loses a serialization conflict (`40001`), is a deadlock's victim (`40P01`) or gave up
//! on a row lock (`55P03`, see `postgres.rs`) is rolled back and run again after a jittered
//! backoff, and only the attempt that committed answers the client
//! (`Database::stats().retries` counts the re-runs). So many because PostgreSQL tracks what
//! a SERIALIZABLE transaction read by index page, heap page or whole table: the load test's
//! 24 accounts fit one page of each (and are scanned whole once the table is analyzed), so
//! every writer's reads meet every other's writes, and a batch, the longest, loses most —
//! its unluckiest attempt was about the 15th, 20-odd on a busier machine; past 50 a request
//! gets `503 busy`. One attribute cannot
//! serve both: `retries` would also re-run a SQLite transaction that waited out the busy
//! timeout, which today answers `503 busy` at once. And the `Atomic` builder's
//! `run_retrying`, which can choose at run time, judges an error it cannot look into by the
//! transaction's last statement — in a batch a sibling's statement may run after the
//! conflict — while the attribute reads the handler's [`ApiError`] itself, whose `source()`
//! is the database's error.

use std::sync::atomic::Ordering;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use transactional::{transactional, TaskGroup};

use super::domain::{self, Account, Audit, Backend, BankError, Transfer};
use super::error::{classify, ApiError, ErrorDetail};
use super::App;

/// The most transfers one batch request may hold.
pub const MAX_BATCH: usize = 100;

/// The largest amount (in cents) of a transfer or an opening balance. Keeps every sum far
/// from `i64` overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// The connections of the bank's PostgreSQL pool unless `--pool-size` says otherwise: the
/// transactions that run at once. Under the load test (32 clients on 24 accounts) 4, 8 and
/// 16 serve about as many requests a second: more parallel transactions meet more conflicts
/// to re-run.
pub const POSTGRES_POOL_SIZE: usize = 16;

/// `POST /accounts`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub owner: String,
    pub opening_balance: i64,
}

/// `POST /transfers`, and each item of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub from: i64,
    pub to: i64,
    pub amount: i64,
}

/// `POST /transfers/batch`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub transfers: Vec<TransferRequest>,
}

/// The answer to a batch: one result per item, in request order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub committed: usize,
    pub failed: usize,
    pub results: Vec<BatchItemResult>,
}

/// One item of a batch: committed with the request, or rolled back on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BatchItemResult {
    Committed { index: usize, transfer: Transfer },
    Failed { index: usize, error: ErrorDetail },
}

/// `GET /metrics`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsView {
    /// Requests being handled right now, this one included.
    pub in_flight: u64,
    /// Transfers committed since the service started (counted by `on_commit` hooks).
    pub committed_transfers: u64,
}

impl TransferRequest {
    /// The rules that need no database; `Err` names the offending field.
    fn check(&self, field: &str) -> Result<(), BankError> {
        if self.amount <= 0 {
            return Err(BankError::Invalid(format!(
                "{field}amount must be positive, got {}",
                self.amount
            )));
        }
        if self.amount > MAX_AMOUNT {
            return Err(BankError::Invalid(format!(
                "{field}amount must be at most {MAX_AMOUNT}, got {}",
                self.amount
            )));
        }
        if self.from == self.to {
            return Err(BankError::Invalid(format!(
                "{field}from and to are the same account ({})",
                self.from
            )));
        }
        Ok(())
    }
}

pub(crate) async fn open_account(
    State(app): State<App>,
    ApiJson(new): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    match app.backend {
        Backend::Sqlite => open_account_in_turn(&app, &new).await,
        Backend::Postgres => open_account_serializable(&app, &new).await,
    }
}

#[transactional(db = app.db, name = "open_account_request")]
async fn open_account_in_turn(
    app: &App,
    new: &NewAccount,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    open_account_once(new).await
}

#[transactional(
    db = app.db,
    name = "open_account_request",
    isolation = "serializable",
    retries = 50
)]
async fn open_account_serializable(
    app: &App,
    new: &NewAccount,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    open_account_once(new).await
}

/// One attempt of [`open_account`], in its transaction.
async fn open_account_once(new: &NewAccount) -> Result<(StatusCode, Json<Account>), ApiError> {
    let owner = new.owner.trim();
    if owner.is_empty() || owner.chars().count() > 100 {
        return Err(BankError::Invalid("owner must be 1 to 100 characters".into()).into());
    }
    if !(0..=MAX_AMOUNT).contains(&new.opening_balance) {
        return Err(BankError::Invalid(format!(
            "opening_balance must be between 0 and {MAX_AMOUNT}, got {}",
            new.opening_balance
        ))
        .into());
    }
    let account = domain::open_account(owner.to_owned(), new.opening_balance).await?;
    tracing::info!(id = account.id, "account opened");
    Ok((StatusCode::CREATED, Json(account)))
}

#[transactional(db = app.db, read_only, name = "get_account_request")]
pub(crate) async fn get_account(
    State(app): State<App>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(domain::get_account(id).await?))
}

/// One transfer; the request fails as a whole (nothing written) when the transfer does.
pub(crate) async fn transfer(
    State(app): State<App>,
    ApiJson(request): ApiJson<TransferRequest>,
) -> Result<(StatusCode, Json<Transfer>), ApiError> {
    match app.backend {
        Backend::Sqlite => transfer_in_turn(&app, request).await,
        Backend::Postgres => transfer_serializable(&app, request).await,
    }
}

#[transactional(db = app.db, name = "transfer_request")]
async fn transfer_in_turn(
    app: &App,
    request: TransferRequest,
) -> Result<(StatusCode, Json<Transfer>), ApiError> {
    transfer_once(app, request).await
}

#[transactional(
    db = app.db,
    name = "transfer_request",
    isolation = "serializable",
    retries = 50
)]
async fn transfer_serializable(
    app: &App,
    request: TransferRequest,
) -> Result<(StatusCode, Json<Transfer>), ApiError> {
    transfer_once(app, request).await
}

/// One attempt of [`transfer`], in its transaction.
async fn transfer_once(
    app: &App,
    request: TransferRequest,
) -> Result<(StatusCode, Json<Transfer>), ApiError> {
    request.check("")?;
    let transfer = domain::transfer(request.from, request.to, request.amount).await?;
    let metrics = app.metrics.clone();
    transactional::on_commit(move || {
        metrics.committed_transfers.fetch_add(1, Ordering::Relaxed);
    })?;
    Ok((StatusCode::CREATED, Json(transfer)))
}

/// A batch: the items run concurrently, each in its own savepoint of this request's
/// transaction. A failed item rolls back alone and is reported; the others commit.
pub(crate) async fn transfer_batch(
    State(app): State<App>,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    match app.backend {
        Backend::Sqlite => transfer_batch_in_turn(&app, &batch.transfers).await,
        Backend::Postgres => transfer_batch_serializable(&app, &batch.transfers).await,
    }
}

#[transactional(db = app.db, name = "transfer_batch_request")]
async fn transfer_batch_in_turn(
    app: &App,
    transfers: &[TransferRequest],
) -> Result<Json<BatchResponse>, ApiError> {
    transfer_batch_once(app, transfers).await
}

#[transactional(
    db = app.db,
    name = "transfer_batch_request",
    isolation = "serializable",
    retries = 50
)]
async fn transfer_batch_serializable(
    app: &App,
    transfers: &[TransferRequest],
) -> Result<Json<BatchResponse>, ApiError> {
    transfer_batch_once(app, transfers).await
}

/// One attempt of [`transfer_batch`], in its transaction.
async fn transfer_batch_once(
    app: &App,
    transfers: &[TransferRequest],
) -> Result<Json<BatchResponse>, ApiError> {
    let len = transfers.len();
    if len == 0 {
        return Err(BankError::Invalid("transfers must not be empty".into()).into());
    }
    if len > MAX_BATCH {
        return Err(BankError::BatchTooLarge {
            len,
            max: MAX_BATCH,
        }
        .into());
    }
    for (index, item) in transfers.iter().enumerate() {
        item.check(&format!("transfers[{index}]: "))?;
    }

    let mut group = TaskGroup::new();
    for (index, &item) in transfers.iter().enumerate() {
        group.spawn(async move {
            match domain::transfer(item.from, item.to, item.amount).await {
                Ok(transfer) => Ok(BatchItemResult::Committed { index, transfer }),
                // The database itself failed: not this item's fault, so the whole request
                // fails (the group cancels the other items and they roll back).
                Err(BankError::Db(err)) => Err(err),
                Err(err) => Ok(BatchItemResult::Failed {
                    index,
                    error: ErrorDetail {
                        code: classify(&err).1.to_owned(),
                        message: err.to_string(),
                    },
                }),
            }
        });
    }
    let results = group.join_all().await?;

    let committed = results
        .iter()
        .filter(|r| matches!(r, BatchItemResult::Committed { .. }))
        .count();
    let metrics = app.metrics.clone();
    transactional::on_commit(move || {
        metrics
            .committed_transfers
            .fetch_add(committed as u64, Ordering::Relaxed);
    })?;
    tracing::info!(committed, failed = len - committed, "batch applied");
    Ok(Json(BatchResponse {
        committed,
        failed: len - committed,
        results,
    }))
}

/// The invariant, checked on one snapshot (a reader connection, beside the writer). It scans
/// every account and transfer, for seconds on a large database: `offload` runs it off the
/// executor threads, so `/metrics` and transfers go on meanwhile.
#[transactional(db = app.db, read_only, offload, name = "audit_request")]
pub(crate) async fn audit(State(app): State<App>) -> Result<Json<Audit>, ApiError> {
    let audit = domain::audit().await?;
    if !audit.conserved {
        tracing::error!(?audit, "the invariant does not hold");
    }
    Ok(Json(audit))
}

pub(crate) async fn metrics(State(app): State<App>) -> Json<MetricsView> {
    Json(MetricsView {
        in_flight: app.metrics.in_flight.load(Ordering::Relaxed),
        committed_transfers: app.metrics.committed_transfers.load(Ordering::Relaxed),
    })
}

/// `GET /debug/transactions`: what every open transaction is doing now (the tree of
/// `Database::activity`, one line per frame) and the database's counters
/// (`Database::stats`) — what an operator reads when the service stalls.
pub(crate) async fn debug_transactions(State(app): State<App>) -> Json<DebugView> {
    let activity = app.db.activity();
    Json(DebugView {
        open_transactions: activity.transactions.len(),
        activity: activity.to_string().lines().map(str::to_owned).collect(),
        stats: app
            .db
            .stats()
            .to_string()
            .lines()
            .map(str::to_owned)
            .collect(),
    })
}

/// The body of `GET /debug/transactions`.
#[derive(Serialize, Deserialize, Debug)]
pub struct DebugView {
    /// Outermost transactions open now.
    pub open_transactions: usize,
    /// The tree of open frames, one line each (savepoints indented under their parent).
    pub activity: Vec<String>,
    /// The database's counters, as lines.
    pub stats: Vec<String>,
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// `Json<T>` whose rejection is an [`ApiError`] with a JSON body.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// `Path<T>` whose rejection is an [`ApiError`] with a JSON body.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}
