//! Carrying the current transaction into other tasks: `spawn`, `spawn_local`, `TaskGroup`,
//! and `carry` for every other way of running a future elsewhere.
//!
//! The transaction of a task is a tokio task-local: a task spawned with plain `tokio::spawn`,
//! `JoinSet::spawn`, `Handle::spawn` or another executor starts outside any transaction. Its
//! statements then fail with [`Error::NoTransaction`], and its `#[transactional]` calls begin
//! transactions of their own — which, on a SQLite database whose writer the spawning
//! transaction holds, queue behind that transaction. If that transaction waits for the task,
//! neither ever proceeds, until the waiting task gives up after the database's
//! `writer_wait` (default 30 s) with an [`Error::Busy`] that names the holder and this cause.
//!
//! The library cannot fail that wait any sooner: tokio records no parent of a task, so a task
//! spawned without the context cannot be told from an unrelated one that rightly queues
//! behind a long transaction, and failing it would fail a legitimate wait. Carry the context
//! instead: the functions here run the task inside the frame that was current where they
//! were called, as savepoints ordered with those of every other task of the transaction.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio::task::{JoinError, JoinHandle, JoinSet};

use crate::context;
use crate::error::Error;

/// `tokio::spawn`, carrying the current transaction: the spawned task's statements and
/// `#[transactional]` calls run in the frame that was current here, as savepoints ordered
/// with those of every other task of the transaction.
///
/// It is `tokio::spawn(`[`carry`]`(future))`; outside a transaction it is exactly
/// `tokio::spawn`. Inside a `#[transactional]` body, the attribute rewrites `tokio::spawn(..)`
/// to this. A task that outlives the frame it carries gets [`Error::TransactionClosed`] from
/// its statements.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(context::carry(future))
}

/// Wraps `future` so that it runs in the current transaction (the frame current here),
/// wherever and by whatever it is polled: for `JoinSet::spawn`, `Handle::spawn`, `LocalSet`,
/// another executor, or a future stored to be polled later.
///
/// [`spawn`] is `tokio::spawn(carry(future))`, and `carry` has its semantics: the future's
/// statements run in this frame and its `#[transactional]` calls are savepoints of it,
/// ordered with those of every other task of the transaction; a statement after the frame
/// has ended gets [`Error::TransactionClosed`]. Outside a transaction `future` runs as it
/// is, outside any. The frame is the one current when `carry` is called, not when the future
/// is first polled. A default database set for this task with
/// [`Database::with_default`](crate::Database::with_default) is carried too.
///
/// ```
/// # async fn demo() -> Result<(), transactional::Error> {
/// use tokio::task::JoinSet;
/// use transactional::{Atomic, Database};
/// let db = Database::open_in_memory().await?;
/// Atomic::new().db(db.clone()).run(async {
///     transactional::current()?.execute_batch("CREATE TABLE t(x)").await?;
///     let mut set = JoinSet::new();
///     for i in 0..3 {
///         set.spawn(transactional::carry(transactional::atomic(async move {
///             let tx = transactional::current()?;
///             tx.execute("INSERT INTO t VALUES (?1)", (i,)).await?;
///             Ok::<_, transactional::Error>(tx.depth())
///         })));
///     }
///     // Each child ran in a savepoint (depth 1) of this transaction, not in one of its own.
///     while let Some(joined) = set.join_next().await {
///         assert_eq!(joined.expect("child task")?, 1);
///     }
///     let n: i64 = transactional::current()?.query_row("SELECT count(*) FROM t", ()).await?.get(0)?;
///     assert_eq!(n, 3);
///     Ok::<_, transactional::Error>(())
/// }).await?;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub fn carry<F: Future>(future: F) -> impl Future<Output = F::Output> {
    context::carry(future)
}

/// `tokio::task::spawn_local`, carrying the current transaction: the spawned `!Send` task's
/// statements and `#[transactional]` calls run in the frame that was current here, as
/// savepoints ordered with those of every other task of the transaction.
///
/// Like tokio's, it must be called inside a [`LocalSet`](tokio::task::LocalSet) (or a
/// `LocalRuntime`) and panics elsewhere. Outside a transaction it is exactly
/// `tokio::task::spawn_local`. Inside a `#[transactional]` body, the attribute rewrites
/// `tokio::task::spawn_local(..)` to this. A task that outlives the frame it carries gets
/// [`Error::TransactionClosed`] from its statements.
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    tokio::task::spawn_local(context::carry(future))
}

/// A group of concurrent tasks that share the current transaction, structured like Python's
/// `asyncio.TaskGroup`.
///
/// - [`spawn`](TaskGroup::spawn) starts a task in the current frame (the transaction or
///   savepoint of the task that calls it).
/// - [`join_all`](TaskGroup::join_all) waits for all and returns their results in spawn
///   order; the first error cancels the rest (their savepoints roll back) and is returned.
/// - A child's panic cancels the rest and resumes in the task that joins.
/// - Dropping the group aborts its children; their savepoints roll back.
///
/// ```
/// # async fn demo() -> Result<(), transactional::Error> {
/// use transactional::{Atomic, Database, TaskGroup};
/// let db = Database::open_in_memory().await?;
/// Atomic::new().db(db.clone()).run(async {
///     transactional::current()?.execute_batch("CREATE TABLE t(x)").await?;
///     let mut group = TaskGroup::new();
///     for i in 0..10 {
///         group.spawn(transactional::atomic(async move {
///             transactional::current()?.execute("INSERT INTO t VALUES (?1)", (i,)).await
///         }));
///     }
///     let inserted: Vec<u64> = group.join_all().await?;
///     assert_eq!(inserted, vec![1; 10]);
///     Ok::<_, transactional::Error>(())
/// }).await?;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub struct TaskGroup<T = (), E = Error> {
    tasks: JoinSet<(usize, Result<T, E>)>,
    spawned: usize,
    progress: Arc<Progress>,
}

/// How many children are still running and whether one has failed, so that `join_all`
/// sleeps until there is something to act on instead of being woken by every child's end
/// (a wake-up per child, which also pushes the next child in line off its worker thread).
#[derive(Default)]
struct Progress {
    running: AtomicUsize,
    failed: AtomicBool,
    changed: Notify,
}

/// Held by a running child; its drop counts the child as ended (`ok` if it returned `Ok`,
/// failed if it returned `Err`, panicked or was aborted).
struct Running {
    progress: Arc<Progress>,
    ok: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.ok {
            self.progress.failed.store(true, Ordering::Release);
        }
        let was = self.progress.running.fetch_sub(1, Ordering::AcqRel);
        if was == 1 || !self.ok {
            self.progress.changed.notify_one();
        }
    }
}

impl<T, E> std::fmt::Debug for TaskGroup<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskGroup")
            .field("spawned", &self.spawned)
            .field("not_joined", &self.tasks.len())
            .field("running", &self.progress.running.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T, E> Default for TaskGroup<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<T, E> TaskGroup<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// An empty group.
    pub fn new() -> Self {
        TaskGroup {
            tasks: JoinSet::new(),
            spawned: 0,
            progress: Arc::default(),
        }
    }

    /// Starts `future` as a task in the current frame.
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let index = self.spawned;
        self.spawned += 1;
        // A combinator, not `async move { (index, future.await) }`: an async block keeps its
        // captured future *and* the awaited copy, doubling every child's size.
        self.progress.running.fetch_add(1, Ordering::AcqRel);
        let mut running = Running {
            progress: self.progress.clone(),
            ok: false,
        };
        self.tasks.spawn(context::carry(future.map(move |result| {
            running.ok = result.is_ok();
            drop(running);
            (index, result)
        })));
    }

    /// Number of tasks not yet joined.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when every task has been joined.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next task to finish and returns its result, or `None` when the group is
    /// empty. A child's panic resumes here.
    pub async fn join_next(&mut self) -> Option<Result<T, E>> {
        let joined = self.tasks.join_next().await?;
        Some(unwrap_joined(joined).await.1)
    }

    /// Waits for every task; `Ok` holds their values in spawn order. The first error
    /// cancels the tasks still running, waits until they have rolled back, and is returned.
    pub async fn join_all(mut self) -> Result<Vec<T>, E> {
        // Sleep until every child has ended or one has failed; then collect. (`notify_one`
        // keeps a permit when nobody waits yet, so no wake-up is lost between check and wait.)
        while self.progress.running.load(Ordering::Acquire) > 0
            && !self.progress.failed.load(Ordering::Acquire)
        {
            self.progress.changed.notified().await;
        }
        let mut done = BTreeMap::new();
        while let Some(joined) = self.tasks.join_next().await {
            let (index, result) = match joined {
                Ok(joined) => joined,
                Err(err) => {
                    self.tasks.shutdown().await;
                    let _ = unwrap_joined::<(usize, Result<T, E>)>(Err(err)).await;
                    unreachable!("unwrap_joined resumes a panic or never returns");
                }
            };
            match result {
                Ok(value) => {
                    done.insert(index, value);
                }
                Err(err) => {
                    self.tasks.shutdown().await;
                    return Err(err);
                }
            }
        }
        Ok(done.into_values().collect())
    }

    /// Cancels every task and waits until they have stopped (and rolled back).
    pub async fn shutdown(&mut self) {
        self.tasks.shutdown().await;
    }
}

/// A child's panic resumes in the joining task. A child cancelled from outside the group
/// can only mean that the runtime is shutting down (the group hands out no abort handles):
/// then the joining task is about to be dropped too, and it waits for that rather than
/// panicking inside the library or inventing an error of the caller's type.
async fn unwrap_joined<R>(joined: Result<R, JoinError>) -> R {
    match joined {
        Ok(value) => value,
        Err(err) if err.is_panic() => resume_unwind(err.into_panic()),
        Err(_) => std::future::pending().await,
    }
}
