//! How frames end: RELEASE/COMMIT or ROLLBACK, then giving back the parent's turn (or the
//! writer lock); and the rollback of a frame dropped before it ended.
//!
//! Once a frame has started to end, what it holds moves into an [`Ending`], which owns the
//! connection's use until the end is done. Whatever happens to the future that asked for the
//! end — dropped while a COMMIT runs on a blocking thread, a runtime shut down before a
//! cleanup ran — the `Ending` either finishes (the outcome is what the database did: a
//! COMMIT that ran is a commit, and its hooks run) or, dropped unfinished, marks the
//! transaction aborted and hands the connection back, which rolls it back. Nothing of the
//! next transaction can start on the connection in between.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::OwnedMutexGuard;

use super::{Frame, FrameGuard, Hold};
use crate::backend::{EndAction, Session};
use crate::error::{Error, Result};
use crate::hooks::{self, AfterEnd};

/// How a frame ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Outcome {
    Commit,
    Rollback,
}

/// When a frame's `timeout` runs out, and the limit to report.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) limit: Duration,
}

impl Deadline {
    pub(crate) fn after(limit: Duration) -> Self {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }
}

impl FrameGuard {
    /// Ends the frame once every savepoint opened under it has ended. On `Commit` a root
    /// that is rollback-only rolls back and reports [`Error::RollbackOnly`]; a failed COMMIT
    /// or RELEASE rolls the frame back and reports the failure. The wait for the children
    /// ends at `deadline` with [`Error::Timeout`] (the frame then rolls back).
    pub(crate) async fn end(
        mut self,
        outcome: Outcome,
        deadline: Option<Deadline>,
        span: &tracing::Span,
    ) -> Result<()> {
        // Waiting for our own turn is waiting for our children. If this future is dropped
        // here, `Drop` takes over and rolls back.
        // Uncontended (no child left), without `.await`, like `Frame::turn`.
        let own_turn = match self.frame.turn.clone().try_lock_owned() {
            Ok(turn) => turn,
            // `self` drops on a timeout: `Drop` rolls back once the children have ended.
            Err(_) => wait_for_children(&self.frame, deadline).await?,
        };
        let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
        let traced = started.map(|started| (self.frame.clone(), started));
        let ending = Ending {
            frame: self.frame.clone(),
            hold: self.hold.take(),
        };
        let (result, hooks) = match &ending.frame.txn.session {
            // On a database whose commits fsync (`synchronous = FULL`), the COMMIT runs on a
            // blocking thread so that the fsync does not stall the executor. The `Ending`
            // goes with it: the writer stays owned until the COMMIT has run, even if this
            // future is dropped meanwhile, and the hooks of a commit run wherever it ends.
            Session::Sqlite(_) if outcome == Outcome::Commit && ending.commits_off_thread() => {
                let commit =
                    tokio::task::spawn_blocking(move || ending.finish_now(own_turn, outcome));
                match commit.await {
                    Ok(done) => done,
                    Err(e) => (
                        Err(Error::background("the COMMIT on a blocking thread", e)),
                        None,
                    ),
                }
            }
            Session::Sqlite(_) => ending.finish_now(own_turn, outcome),
            // An end that sends nothing now (a savepoint's RELEASE waits for the next message;
            // a frame that sent nothing ends without SQL) is done here, as on SQLite. One that
            // talks to the server runs in a task of its own: once it has started, dropping
            // this future cannot cut a ROLLBACK TO or COMMIT short, and the outcome is what
            // the server did.
            #[cfg(feature = "postgres")]
            Session::Postgres(pg) => {
                let (action, then) = ending.decide(outcome);
                match pg.end_frame_locally(&ending.frame, action) {
                    Some(result) => ending.complete(own_turn, outcome, result.and(then)),
                    None => {
                        match tokio::spawn(ending.finish_decided(own_turn, outcome, action, then))
                            .await
                        {
                            Ok(done) => done,
                            Err(e) => (Err(Error::background("ending a frame", e)), None),
                        }
                    }
                }
            }
        };
        if let Some((frame, started)) = traced {
            span.in_scope(|| traced_end(&frame, outcome, &result, started));
            span.record("outcome", ended_word(frame.depth, outcome, &result));
        }
        if let Some(hooks) = hooks {
            hooks.run();
        }
        result
    }
}

/// The `debug` event of a frame's end, with the statement that ended it and how long that
/// took; the outcome is also recorded on the frame's span (`outcome`).
#[cold]
#[inline(never)]
fn traced_end(frame: &Frame, outcome: Outcome, result: &Result<()>, started: Instant) {
    let committed = outcome == Outcome::Commit && result.is_ok();
    let sql = match (frame.depth, committed) {
        (0, true) => "COMMIT",
        (0, false) => "ROLLBACK",
        (_, true) => "RELEASE",
        (_, false) => "ROLLBACK TO",
    };
    let ended = ended_word(frame.depth, outcome, result);
    let elapsed_us = started.elapsed().as_micros() as u64;
    tracing::debug!(
        frame = frame.id,
        depth = frame.depth,
        sql,
        elapsed_us,
        "frame {ended}"
    );
}

/// How a frame ended, as recorded on its span.
fn ended_word(depth: u32, outcome: Outcome, result: &Result<()>) -> &'static str {
    match (depth, outcome == Outcome::Commit && result.is_ok()) {
        (0, true) => "committed",
        (_, true) => "released",
        (_, false) => "rolled back",
    }
}

/// Waits for the frame's own turn: for its children to end. Bounded like every turn wait
/// (`turn_wait`, an error naming the child that holds it) and by the frame's `timeout`.
/// Boxed and out of line, so that only a frame whose children are still running pays for it.
#[inline(never)]
fn wait_for_children(
    frame: &Arc<Frame>,
    deadline: Option<Deadline>,
) -> BoxFuture<'static, Result<OwnedMutexGuard<()>>> {
    let wait = frame.turn.clone().lock_owned();
    let frame = frame.clone();
    Box::pin(async move {
        let _waiting = frame
            .txn
            .db
            .inner
            .stats
            .waiting(crate::stats::WaitKind::Turn);
        let turn_wait = Instant::now() + frame.txn.db.inner.turn_wait;
        let timeout_first = deadline.is_some_and(|d| d.at <= turn_wait);
        let until = match deadline {
            Some(d) if timeout_first => d.at,
            _ => turn_wait,
        };
        match crate::wait::until(Some(until), wait).await {
            Ok(turn) => Ok(turn),
            Err(_) if timeout_first => Err(Error::Timeout(
                deadline.expect("timeout_first has a deadline").limit,
            )),
            Err(_) => Err(frame.waited_too_long()),
        }
    })
}

/// A frame that has started to end, with what it holds. Dropped unfinished, it marks the
/// transaction aborted and gives back what it holds; giving back a root's connection rolls
/// back whatever is open on it.
pub(crate) struct Ending {
    frame: Arc<Frame>,
    hold: Option<Hold>,
}

impl Ending {
    fn commits_off_thread(&self) -> bool {
        let txn = &self.frame.txn;
        self.frame.depth == 0
            && txn.on_writer
            && txn.db.inner.sqlite().commit_off_thread
            && !txn.aborted.load(Ordering::Acquire)
            && !self.frame.rollback_only.load(Ordering::Acquire)
            && self.frame.failure().is_none()
    }

    /// Ends the frame: decides what to send, has the backend send it, then gives back what
    /// the frame held. Returns the hooks to run when an outermost transaction committed.
    ///
    /// On SQLite this never awaits: nothing can slip in between the end of the frame and
    /// the release of its parent's turn. On PostgreSQL it awaits the round trips while it
    /// still holds both turns.
    pub(crate) async fn finish(
        self,
        own_turn: OwnedMutexGuard<()>,
        outcome: Outcome,
    ) -> (Result<()>, Option<AfterEnd>) {
        let (action, then) = self.decide(outcome);
        self.finish_decided(own_turn, outcome, action, then).await
    }

    /// [`finish`](Self::finish) once [`decide`](Self::decide) has been asked.
    async fn finish_decided(
        self,
        own_turn: OwnedMutexGuard<()>,
        outcome: Outcome,
        action: EndAction,
        then: Result<()>,
    ) -> (Result<()>, Option<AfterEnd>) {
        let result = match &self.frame.txn.session {
            Session::Sqlite(conn) => conn.lock().end_frame(&self.frame, action),
            #[cfg(feature = "postgres")]
            Session::Postgres(pg) => pg.end_frame(&self.frame, action).await,
        };
        self.complete(own_turn, outcome, result.and(then))
    }

    /// [`finish`](Self::finish) for a SQLite frame, without a future.
    pub(crate) fn finish_now(
        self,
        own_turn: OwnedMutexGuard<()>,
        outcome: Outcome,
    ) -> (Result<()>, Option<AfterEnd>) {
        let conn = self.frame.txn.session.sqlite();
        let (action, then) = self.decide(outcome);
        let result = conn.lock().end_frame(&self.frame, action);
        self.complete(own_turn, outcome, result.and(then))
    }

    /// What ending the frame sends, and what to report once it is sent.
    #[inline]
    fn decide(&self, outcome: Outcome) -> (EndAction, Result<()>) {
        let frame = &self.frame;
        frame.closed.store(true, Ordering::Release);
        let txn = &frame.txn;
        if txn.aborted.load(Ordering::Acquire) {
            // The database already rolled the whole transaction back (or it was abandoned):
            // there is nothing to end, and the statement that caused it reported its error.
            return (
                EndAction::Abandon,
                match outcome {
                    Outcome::Commit => Err(Error::TransactionClosed(format!(
                        "{frame} (it was aborted by an earlier error)"
                    ))),
                    Outcome::Rollback => Ok(()),
                },
            );
        }
        match outcome {
            Outcome::Rollback => (EndAction::Undo, Ok(())),
            // Marked by `set_rollback_only` or a failed joined block.
            Outcome::Commit if frame.rollback_only.load(Ordering::Acquire) => {
                (EndAction::Undo, Err(Error::RollbackOnly))
            }
            // A statement the database rejected failed the frame: never report `Ok` for it.
            Outcome::Commit if frame.failure().is_some() => (
                EndAction::Undo,
                Err(frame.failure().expect("checked just above")),
            ),
            Outcome::Commit => (EndAction::Keep, Ok(())),
        }
    }

    /// Gives back the frame's turn and what it held, and hands its hooks on: to the parent
    /// of a released savepoint, to the caller of a committed root.
    fn complete(
        mut self,
        own_turn: OwnedMutexGuard<()>,
        outcome: Outcome,
        result: Result<()>,
    ) -> (Result<()>, Option<AfterEnd>) {
        let frame = self.frame.clone();
        if let Err(err) = &result {
            // A COMMIT refused with a transient error (PostgreSQL's 40001 at commit) lets
            // `retries` re-run the transaction like a statement's would.
            if err.is_transient() {
                frame.note_outcome(Some(err));
            }
        }
        let committed = outcome == Outcome::Commit && result.is_ok();
        frame
            .txn
            .db
            .inner
            .stats
            .frame_ended(frame.depth == 0, committed);
        let hooks = frame.hooks.close();
        drop(own_turn);
        let to_run = match (&frame.parent, committed) {
            // Released into the parent: the hooks now belong to it.
            (Some(parent), true) => {
                parent.hooks.extend(hooks);
                None
            }
            (None, true) => AfterEnd::of(hooks, frame.id, hooks::Outcome::Commit),
            // Rolled back: the `on_rollback` hooks of this frame and of its released
            // children run; their `on_commit` hooks are dropped.
            (_, false) => AfterEnd::of(hooks, frame.id, hooks::Outcome::Rollback),
        };
        drop(self.hold.take());
        (result, to_run)
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            // Never finished (its task was dropped unrun at runtime shutdown, or there was no
            // runtime to run it): the transaction can no longer be ended frame by frame, so
            // it must not go on at all.
            tracing::error!(frame = %self.frame, "frame abandoned before it could end; the transaction is rolled back");
            self.frame.closed.store(true, Ordering::Release);
            self.frame.txn.aborted.store(true, Ordering::Release);
            drop(hold);
        }
    }
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        let Some(hold) = self.hold.take() else {
            return; // ended normally
        };
        let frame = self.frame.clone();
        // Work queued on this frame must not start any more: it belongs to a frame that is
        // being cancelled. Statements and savepoints waiting for the turn now fail.
        frame.closed.store(true, Ordering::Release);
        let turn = frame.turn.clone();
        let ending = Ending {
            frame,
            hold: Some(hold),
        };
        let sqlite = matches!(ending.frame.txn.session, Session::Sqlite(_));
        match turn.clone().try_lock_owned() {
            Ok(own_turn) if sqlite => {
                let _ = ending.finish_now(own_turn, Outcome::Rollback);
            }
            // A PostgreSQL frame cannot send its rollback from `drop`.
            free => match tokio::runtime::Handle::try_current() {
                // A child savepoint (or a statement on another thread) holds the turn: roll
                // back as soon as it ends, still holding the parent's turn until then. If the
                // runtime drops this task unrun (it is shutting down), `Ending` aborts the
                // transaction and hands the connection back.
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let own_turn = match free {
                            Ok(own_turn) => own_turn,
                            Err(_) => turn.lock_owned().await,
                        };
                        let _ = ending.finish(own_turn, Outcome::Rollback).await;
                    });
                }
                // No runtime to wait in: `Ending`'s drop aborts the transaction.
                Err(_) => drop(ending),
            },
        }
    }
}
