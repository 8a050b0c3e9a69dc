//! What `#[transactional]` expands to. Not public API: paths here may change in any release.

pub use crate::atomic::{Atomic, Isolation, Propagation};
pub use crate::backend::sqlite::conn::Begin;
pub use crate::task::{carry, spawn, spawn_local};
pub use ::core::time::Duration;

use crate::database::Database;

/// Turns the expression of `db = <expr>` into an owned handle: a `Database`, a reference to
/// one (at any depth), an `Arc<Database>` or a `Box<Database>`.
pub fn database<D: crate::AsDatabase + ?Sized>(db: &D) -> Database {
    db.as_database().clone()
}

/// Checks that the error type of a `#[transactional]` fn can hold a transaction failure.
pub fn assert_error_type<E: From<crate::Error>>() {}

/// `params![..]`: an array of parameters of mixed types.
pub fn params<const N: usize>(params: [&dyn crate::ToParam; N]) -> [&dyn crate::ToParam; N] {
    params
}

pub use crate::atomic::retry::{Probe, Unknown, ViaSource};

/// The error type of a fn's `Result` return type, however it is spelled (`AppResult<T>`).
pub trait IsResult {
    /// `E` of `Result<T, E>`.
    type Err;
}

impl<T, E> IsResult for Result<T, E> {
    type Err = E;
}

/// `#[transactional(retries = N)]`: `run_retrying`, with `classify` (built by the attribute
/// from [`Probe`]) judging whether the body's error is transient.
pub async fn run_retrying<M, F, T, E>(
    atomic: Atomic,
    make_body: M,
    classify: impl Fn(&E) -> Option<bool>,
) -> Result<T, E>
where
    M: FnMut() -> F,
    F: ::core::future::Future<Output = Result<T, E>>,
    E: From<crate::Error>,
{
    atomic.retry(make_body, classify).await
}
