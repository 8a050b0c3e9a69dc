//! The current frame of a task, carried in tokio task-local storage.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::tx::Tx;

tokio::task_local! {
    static CURRENT: Arc<Frame>;
}

/// A handle to the innermost frame (transaction or savepoint) of the current task.
///
/// Fails with [`Error::NoTransaction`] outside a transaction, i.e. outside the body of a
/// `#[transactional]` fn or `atomic` block, and outside tasks spawned from one with
/// [`spawn`](crate::spawn) or a [`TaskGroup`](crate::TaskGroup).
pub fn current() -> Result<Tx> {
    current_frame().map(Tx::new).ok_or(Error::NoTransaction)
}

pub(crate) fn current_frame() -> Option<Arc<Frame>> {
    CURRENT.try_with(Arc::clone).ok()
}

pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Frame>>) -> R) -> R {
    let mut f = Some(f);
    match CURRENT.try_with(|frame| (f.take().expect("called once"))(Some(frame))) {
        Ok(r) => r,
        Err(_) => (f.take().expect("called once"))(None),
    }
}

/// Runs `fut` with `frame` as its current frame.
pub(crate) fn scope<F: Future>(frame: Arc<Frame>, fut: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(frame, fut)
}

/// Wraps `fut` so that it runs in the current task's frame, wherever it is polled; outside a
/// transaction `fut` is returned as it is.
pub(crate) fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    match current_frame() {
        Some(frame) => Either::Left(CURRENT.scope(frame, fut)),
        None => Either::Right(fut),
    }
}

/// A statement or savepoint in `frame` from a task whose current frame lies below it would
/// wait for a turn that its own chain holds until the task itself finishes: a wait that can
/// never end. Report it instead of hanging (DESIGN §2.6).
pub(crate) fn check_not_waiting_on_descendant(frame: &Frame) -> Result<()> {
    CURRENT
        .try_with(|current| {
            // Only a deeper frame can lie below `frame`: the common cases (a statement in
            // the task's own frame, a savepoint under it) answer without walking the chain.
            if current.depth <= frame.depth {
                return Ok(());
            }
            check_chain(frame, current)
        })
        .unwrap_or(Ok(()))
}

fn check_chain(frame: &Frame, current: &Frame) -> Result<()> {
    match frame.child_towards(current) {
        Some(holder) => Err(Error::Deadlock(format!(
            "a task whose current frame is {current} used a handle to {frame}, whose turn is \
             held by {holder} until that task's own frame ends; use `transactional::current()` \
             inside nested frames instead of a handle captured outside them"
        ))),
        None => Ok(()),
    }
}
