//! PostgreSQL backend (feature `postgres`): the pieces DESIGN.md §6 assigns to a backend,
//! built and tested on their own before they are joined to the frame machinery.
//!
//! - `placeholders`: the library's `?N` statements rewritten to PostgreSQL's `$N`.
//! - `errors`: a server error kept whole (SQLSTATE, message, detail, hint, statement) and
//!   classified as transient, busy, read-only, connection or other.
//! - `pool`: a deadpool-postgres pool whose waits are bounded and that never hands out a
//!   connection inside a transaction, a failed one, or a broken one.

// Not yet called from the frame machinery; each piece is exercised by its own tests.
#![allow(dead_code)]

pub(crate) mod errors;
pub(crate) mod placeholders;

pub(crate) mod pool;
#[cfg(test)]
pub(crate) mod test_db;
