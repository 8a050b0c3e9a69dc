//! What `#[transactional]` expands to. Not public API: paths here may change in any release.

pub use crate::atomic::{Atomic, Isolation, Propagation};
pub use crate::conn::Begin;
pub use crate::task::{spawn, spawn_local};
pub use ::core::time::Duration;

use crate::database::Database;

/// Turns the expression of `db = <expr>` into an owned handle: a `Database`, a reference to
/// one (at any depth), an `Arc<Database>` or a `Box<Database>`.
pub fn database<D: crate::AsDatabase + ?Sized>(db: &D) -> Database {
    db.as_database().clone()
}

/// Checks that the error type of a `#[transactional]` fn can hold a transaction failure.
pub fn assert_error_type<E: From<crate::Error>>() {}

/// `params![..]`: an array of parameters that is `Send` (so futures holding it can be
/// spawned), unlike `rusqlite::params!`.
pub fn params<const N: usize>(
    params: [&(dyn rusqlite::types::ToSql + Sync); N],
) -> [&(dyn rusqlite::types::ToSql + Sync); N] {
    params
}
