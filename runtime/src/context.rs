//! The current frame of a task, carried in tokio task-local storage, and the task's whole
//! context: the chain of frames it runs inside, across transactions.
//!
//! Inside one transaction a frame's `parent` is the frame it is a savepoint of. A root opened
//! inside another transaction — `requires_new`, or a transaction on another database — has
//! no parent but an `outer` frame: the frame the task was in when the root began. Walking
//! `parent`, else `outer`, from the current frame visits every frame the task is inside,
//! which is what both the self-wait checks and the choice of a frame for a nested block need.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;

use crate::database::Database;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::tx::Tx;

/// Where a task's statements go: a frame, and whether this task may only read in it (a
/// `read_only` block joined to a frame that may write).
#[derive(Clone)]
pub(crate) struct Current {
    pub(crate) frame: Arc<Frame>,
    pub(crate) read_only: bool,
    /// This task runs its statements in the frame off the executor (an `offload` block
    /// joined to a frame that does not).
    pub(crate) offload: bool,
}

impl Current {
    pub(crate) fn of(frame: Arc<Frame>) -> Self {
        let read_only = frame.read_only;
        let offload = frame.offload;
        Current {
            frame,
            read_only,
            offload,
        }
    }
}

tokio::task_local! {
    static CURRENT: Current;
}

/// A handle to the innermost frame (transaction or savepoint) of the current task.
///
/// Fails with [`Error::NoTransaction`] outside a transaction, i.e. outside the body of a
/// `#[transactional]` fn or `atomic` block, and outside tasks spawned from one with
/// [`spawn`](crate::spawn) or a [`TaskGroup`](crate::TaskGroup).
pub fn current() -> Result<Tx> {
    current_scope().map(Tx::new).ok_or(Error::NoTransaction)
}

pub(crate) fn current_scope() -> Option<Current> {
    CURRENT.try_with(Current::clone).ok()
}

pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Current>) -> R) -> R {
    let mut f = Some(f);
    match CURRENT.try_with(|current| (f.take().expect("called once"))(Some(current))) {
        Ok(r) => r,
        Err(_) => (f.take().expect("called once"))(None),
    }
}

/// Runs `fut` with `current` as its current frame.
pub(crate) fn scope<F: Future>(current: Current, fut: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(current, fut)
}

/// Wraps `fut` so that it runs in the current task's frame, wherever it is polled, and with
/// the task's default database (`Database::with_default`); outside a transaction and
/// without a task default, `fut` is returned as it is.
pub(crate) fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let fut = match crate::database::scoped_default() {
        Some(db) => Either::Left(crate::database::with_scoped_default(db, fut)),
        None => Either::Right(fut),
    };
    match current_scope() {
        Some(current) => Either::Left(CURRENT.scope(current, fut)),
        None => Either::Right(fut),
    }
}

/// The innermost frame on `db` that the current task runs inside, if any: the frame a
/// nested block on `db` belongs to, even when the task has since entered a transaction on
/// another database (A → B → A is a savepoint of A, as Spring binds one transaction per
/// resource).
pub(crate) fn innermost_on(current: &Current, db: &Database) -> Option<Current> {
    if current.frame.txn.db.same_as(db) {
        return Some(current.clone());
    }
    let mut at = current.frame.enclosing();
    while let Some(frame) = at {
        if frame.txn.db.same_as(db) {
            return Some(Current::of(frame.clone()));
        }
        at = frame.enclosing();
    }
    None
}

/// Every frame the current task runs inside, innermost first.
pub(crate) fn chain(current: &Current) -> impl Iterator<Item = &Arc<Frame>> {
    std::iter::successors(Some(&current.frame), |frame| frame.enclosing())
}

/// A statement or savepoint in `frame` from a task whose current frame lies below it would
/// wait for a turn that its own chain holds until the task itself finishes: a wait that can
/// never end. Report it instead of hanging (ARCHITECTURE.md §2.6).
pub(crate) fn check_not_waiting_on_descendant(frame: &Frame) -> Result<()> {
    CURRENT
        .try_with(|current| {
            // Only a frame deeper in the task's context can lie below `frame`: the common
            // cases (a statement in the task's own frame, a savepoint under it) answer
            // without walking the chain.
            if current.frame.chain_depth <= frame.chain_depth {
                return Ok(());
            }
            check_chain(frame, &current.frame)
        })
        .unwrap_or(Ok(()))
}

fn check_chain(frame: &Frame, current: &Arc<Frame>) -> Result<()> {
    // Walk the task's context up to `frame`. The link that reaches it tells whether the
    // task holds its turn: a savepoint of `frame` (a `parent` link) does; a transaction begun
    // inside `frame` (an `outer` link) does not.
    let mut below = current;
    loop {
        if let Some(parent) = &below.parent {
            if std::ptr::eq(&**parent, frame) {
                frame.txn.db.inner.stats.deadlock();
                return Err(Error::Deadlock(format!(
                    "a task whose current frame is {current} used a handle to {frame}, whose \
                     turn is held by {below} until that task's own frame ends; use \
                     `transactional::current()` inside nested frames instead of a handle \
                     captured outside them"
                )));
            }
            below = parent;
        } else if let Some(outer) = &below.outer {
            if std::ptr::eq(&**outer, frame) {
                return Ok(());
            }
            below = outer;
        } else {
            return Ok(());
        }
    }
}

/// Marks the current frame rollback-only: when it ends it rolls back although its body
/// returns `Ok`, and reports [`Error::RollbackOnly`] to its caller — never `Ok` for work
/// that was rolled back (Django's `set_rollback(True)`, Spring's `setRollbackOnly`).
///
/// The current frame is the innermost `#[transactional]` block of the task: a savepoint
/// marked so rolls back alone, and its caller can handle the error and go on; inside a
/// `propagation = "join"` block it is the frame that block joined. Statements still run in
/// a marked frame (their work is rolled back with it).
///
/// ```
/// # async fn demo() -> transactional::Result<()> {
/// use transactional::{Atomic, Error};
/// let db = transactional::Database::open_in_memory().await?;
/// let outcome = Atomic::new()
///     .db(db)
///     .run(async {
///         // ... a dry run: do the work, check it, and undo it ...
///         transactional::set_rollback_only()?;
///         assert!(transactional::is_rollback_only()?);
///         Ok::<_, Error>(())
///     })
///     .await;
/// assert!(matches!(outcome, Err(Error::RollbackOnly)));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
///
/// Fails with [`Error::NoTransaction`] outside a transaction and with
/// [`Error::TransactionClosed`] when the current frame has already ended.
pub fn set_rollback_only() -> Result<()> {
    let current = current_scope().ok_or(Error::NoTransaction)?;
    if current.frame.is_closed() {
        return Err(Error::TransactionClosed(current.frame.to_string()));
    }
    current
        .frame
        .rollback_only
        .store(true, std::sync::atomic::Ordering::Release);
    Ok(())
}

/// Whether the current frame will roll back when it ends whatever its body returns: it was
/// marked with [`set_rollback_only`], a statement in it failed (see
/// [`Error::FrameFailed`]), or its whole transaction can no longer commit.
///
/// Fails with [`Error::NoTransaction`] outside a transaction.
pub fn is_rollback_only() -> Result<bool> {
    let current = current_scope().ok_or(Error::NoTransaction)?;
    let frame = &current.frame;
    let txn = &frame.txn;
    Ok(frame
        .rollback_only
        .load(std::sync::atomic::Ordering::Acquire)
        || frame.failure().is_some()
        || txn.aborted.load(std::sync::atomic::Ordering::Acquire))
}
