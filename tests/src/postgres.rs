//! The PostgreSQL fixture of the integration tests: the runtime's own test fixture (a schema
//! of its own per test on the server `DATABASE_URL` names; `None` when it is unset, a failure
//! when it is set but unreachable), included from its one source file.
//!
//! ```ignore
//! let Some(db) = PgTestDb::new("probe_commit_in_failed_transaction").await else { return };
//! let client = db.connect().await;
//! ```

#[path = "../../runtime/src/backend/postgres/test_db.rs"]
mod test_db;

pub use test_db::TestDb as PgTestDb;
