//! Database transactions that stay correct when concurrent async tasks share them.
//!
//! `#[transactional]` on an `async fn` runs its body in a transaction. Inside an enclosing
//! transaction it becomes a savepoint, and savepoints of concurrent tasks are opened *in
//! turn*: the stack of open savepoints stays LIFO, a statement runs only in the frame at the
//! top of it, and rolling a frame back undoes exactly that frame's work — never a sibling's.
//!
//! ```
//! use transactional::{transactional, Database, TaskGroup};
//!
//! #[transactional]
//! async fn update_or_create(key: String, val: String) -> Result<(), transactional::Error> {
//!     let tx = transactional::current()?;
//!     tx.execute(
//!         "INSERT INTO kv(key, val) VALUES (?1, ?2) \
//!          ON CONFLICT(key) DO UPDATE SET val = excluded.val",
//!         (key, val),
//!     )
//!     .await?;
//!     Ok(())
//! }
//!
//! #[transactional(db = db)]
//! async fn handler(db: &Database) -> Result<(), transactional::Error> {
//!     let mut tg = TaskGroup::new();
//!     tg.spawn(update_or_create("1".into(), "1".into()));
//!     tg.spawn(update_or_create("2".into(), "2".into()));
//!     tg.join_all().await?;
//!     Ok(())
//! }
//!
//! # async fn demo() -> Result<(), transactional::Error> {
//! let db = Database::open_in_memory().await?;
//! transactional::Atomic::new().db(db.clone()).run(async {
//!     transactional::current()?.execute_batch("CREATE TABLE kv(key TEXT PRIMARY KEY, val TEXT)").await
//! }).await?;
//! handler(&db).await?;
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! See the README for the problem this solves, the guarantee, and the options.

mod atomic;
#[cfg(feature = "postgres")]
#[path = "backend/postgres/mod.rs"]
mod backend_postgres;
mod checkpoint;
mod conn;
mod context;
mod database;
mod error;
mod frame;
mod hooks;
mod readers;
mod task;
mod tx;
mod wait;
mod writer;

#[doc(hidden)]
pub mod __private;

pub use atomic::{atomic, Atomic, Isolation, Propagation};
pub use conn::Begin;
pub use context::current;
pub use database::{AsDatabase, Database, DatabaseBuilder};
pub use error::{Error, Result};
pub use hooks::on_commit;
pub use task::{spawn, spawn_local, TaskGroup};
pub use tx::{ColumnIndex, Row, Tx};

/// Runs an `async fn`'s body in a transaction; see the crate docs and the README.
pub use transactional_macros::transactional;

/// The rusqlite version this crate uses, for `Tx::call` closures and `FromSql`/`ToSql` impls.
pub use rusqlite;

/// Statement parameters of mixed types, like `rusqlite::params!`, but `Send`: a future
/// that holds them can be spawned.
///
/// ```
/// # async fn f(tx: &transactional::Tx) -> transactional::Result<()> {
/// tx.execute("INSERT INTO kv(key, val) VALUES (?1, ?2)", transactional::params!["k", 42]).await?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! params {
    ($($param:expr),* $(,)?) => {
        $crate::__private::params([$(&$param as &(dyn $crate::rusqlite::types::ToSql + Sync)),*])
    };
}
