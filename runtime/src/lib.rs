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
//! # Other tasks
//!
//! The transaction is a task-local context. Tasks started with [`spawn`], [`spawn_local`] or
//! a [`TaskGroup`] carry it: their statements and `#[transactional]` calls run as savepoints
//! of the frame they were spawned from. Inside a `#[transactional]` body the attribute
//! rewrites `tokio::spawn`, `tokio::task::spawn` and `tokio::task::spawn_local` to these (also
//! inside macro invocations such as `tokio::join!`, and through `use tokio::spawn` written
//! in the body). For every other way of running a future — `JoinSet::spawn`,
//! `Handle::spawn`, a `LocalSet`, another executor — wrap it in [`carry`]:
//! `set.spawn(transactional::carry(fut))`.
//!
//! A task started without the context runs outside the transaction: its `#[transactional]`
//! calls begin transactions of their own. On SQLite such a write queues for the writer that
//! the spawning transaction holds; if that transaction waits for the task, the task fails
//! after the database's `writer_wait` (30 s by default) with an [`Error::Busy`] naming the
//! holder and this cause. The library cannot fail it sooner: tokio keeps no parent link
//! between tasks, so the task cannot be told from an unrelated one rightly queued behind a
//! long transaction (see [`carry`]).
//!
//! See the README for the problem this solves, the guarantee, and the options.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

mod activity;
mod atomic;
mod backend;
mod context;
mod database;
mod error;
mod frame;
mod hooks;
mod stats;
mod task;
mod testing;
mod tx;
mod value;
mod wait;

#[doc(hidden)]
pub mod __private;

pub use activity::{Activity, FrameActivity};
pub use atomic::{atomic, Atomic, Isolation, Propagation};
pub use backend::sqlite::conn::Begin;
pub use backend::sqlite::open::DatabaseBuilder;
pub use context::{current, is_rollback_only, set_rollback_only};
pub use database::{AsDatabase, Database};
pub use error::{Error, Result};
pub use hooks::{on_commit, on_commit_async, on_rollback};
pub use stats::{Stats, WaitHistogram};
pub use task::{carry, spawn, spawn_local, TaskGroup};
pub use testing::{test_transaction, TestOutcome};
pub use tx::Tx;
#[doc(hidden)]
pub use value::ParamVisitor;
pub use value::{
    ColumnIndex, FromRow, FromValue, ParamValue, Params, Row, ToParam, Value, ValueRef,
};

#[cfg(feature = "postgres")]
pub use backend::postgres::{errors::PgError, open::PostgresBuilder};
/// The tokio-postgres version this crate uses (its `Config` for [`PostgresBuilder::config`]).
#[cfg(feature = "postgres")]
pub use tokio_postgres;

/// Runs an `async fn`'s body in a transaction; see the crate docs and the README.
pub use transactional_macros::transactional;
/// Derives [`FromRow`] for a struct (see the trait).
pub use transactional_macros::FromRow;

/// The rusqlite version this crate uses, for [`Tx::call`] closures.
pub use rusqlite;

/// Statement parameters of mixed types (each a [`ToParam`]), on every backend. `Send`: a
/// future that holds them can be spawned.
///
/// ```
/// # async fn f(tx: &transactional::Tx) -> transactional::Result<()> {
/// tx.execute("INSERT INTO kv(key, val) VALUES (?1, ?2)", transactional::params!["k", 42]).await?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! params {
    ($($param:expr),* $(,)?) => {
        $crate::__private::params([$(&$param as &dyn $crate::ToParam),*])
    };
}

/// The handles users share between tasks, and the futures they spawn, are `Send` and `Sync`
/// (a compile-time check: this fails to build when a change breaks it).
#[allow(dead_code)]
fn _assert_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Database>();
    send_sync::<Tx>();
    send_sync::<Error>();
    send_sync::<TaskGroup<(), Error>>();
    send_sync::<Atomic>();
    send_sync::<DatabaseBuilder>();
    send_sync::<Row>();
    let body = async { current()?.execute("SELECT 1", ()).await.map(drop) };
    send(&Atomic::new().run(body));
    send(&atomic(async { Ok::<_, Error>(()) }));
    send(&spawn(async {}));
    send(&carry(async {}));
    let tx = current();
    if let Ok(tx) = &tx {
        send(&tx.execute("SELECT 1", ()));
        send(&tx.query("SELECT 1", ()));
        send(&tx.call(|_| Ok(())));
        #[cfg(feature = "postgres")]
        send(&tx.postgres(|client| Box::pin(async move { client.batch_execute("").await })));
    }
    #[cfg(feature = "postgres")]
    send(&Database::connect("postgres://"));
}
