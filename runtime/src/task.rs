//! Carrying the current transaction into other tasks: `spawn`, `spawn_local` and `TaskGroup`.

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
/// Outside a transaction it is exactly `tokio::spawn`. Inside a `#[transactional]` body,
/// the attribute rewrites `tokio::spawn(..)` to this. A task that outlives the frame it
/// carries gets [`Error::TransactionClosed`] from its statements.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(context::carry(future))
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
