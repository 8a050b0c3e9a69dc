//! The HTTP handlers. Each one that touches the database is `#[transactional]`: the request
//! is one transaction, and the domain operations it calls are savepoints inside it.

use std::sync::atomic::Ordering;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use transactional::{transactional, TaskGroup};

use super::domain::{self, Account, Audit, BankError, Transfer};
use super::error::{classify, ApiError, ErrorDetail};
use super::App;

/// The most transfers one batch request may hold.
pub const MAX_BATCH: usize = 100;

/// The largest amount (in cents) of a transfer or an opening balance. Keeps every sum far
/// from `i64` overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

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

#[transactional(db = app.db, name = "open_account_request")]
pub(crate) async fn open_account(
    State(app): State<App>,
    ApiJson(new): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
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
#[transactional(db = app.db, name = "transfer_request")]
pub(crate) async fn transfer(
    State(app): State<App>,
    ApiJson(request): ApiJson<TransferRequest>,
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
#[transactional(db = app.db, name = "transfer_batch_request")]
pub(crate) async fn transfer_batch(
    State(app): State<App>,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let len = batch.transfers.len();
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
    for (index, item) in batch.transfers.iter().enumerate() {
        item.check(&format!("transfers[{index}]: "))?;
    }

    let mut group = TaskGroup::new();
    for (index, item) in batch.transfers.into_iter().enumerate() {
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
