//! How frames end: RELEASE/COMMIT or ROLLBACK, then giving back the parent's turn (or the
//! writer lock); and the rollback of a frame dropped before it ended.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::OwnedMutexGuard;

use super::{Frame, FrameGuard, Hold};
use crate::conn::{exec, SavepointSql};
use crate::error::{Error, Result};

/// How a frame ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Outcome {
    Commit,
    Rollback,
}

impl FrameGuard {
    /// Ends the frame once every savepoint opened under it has ended. On `Commit` a root
    /// that is rollback-only rolls back and reports [`Error::RollbackOnly`]; a failed COMMIT
    /// or RELEASE rolls the frame back and reports the failure.
    pub(crate) async fn end(mut self, outcome: Outcome) -> Result<()> {
        // Waiting for our own turn is waiting for our children. If this future is dropped
        // here, `Drop` takes over and rolls back.
        // Uncontended (no child left), without `.await`, like `Frame::turn`.
        let own_turn = match self.frame.turn.clone().try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => self.frame.turn.clone().lock_owned().await,
        };
        // On a database whose commits fsync (`synchronous = FULL`), the COMMIT runs on a
        // blocking thread so that the fsync does not stall the executor; the frame keeps
        // everything it holds until it is done.
        let txn = &self.frame.txn;
        let committed_off_thread = if outcome == Outcome::Commit
            && self.frame.depth == 0
            && txn.on_writer
            && txn.db.inner.commit_off_thread
            && !txn.rollback_only.load(Ordering::Acquire)
            && !txn.aborted.load(Ordering::Acquire)
        {
            let conn = txn.conn.clone();
            Some(
                tokio::task::spawn_blocking(move || exec(&conn.lock(), "COMMIT"))
                    .await
                    .unwrap_or_else(|e| Err(Error::Background(e.to_string()))),
            )
        } else {
            None
        };
        let hold = self.hold.take();
        finish(&self.frame, own_turn, hold, outcome, committed_off_thread)
    }
}

/// Sends the SQL that ends `frame`, then gives back what it held. Synchronous: nothing can
/// slip in between the end of the frame and the release of its parent's turn.
/// `committed` is the result of a COMMIT already sent on another thread, if it was.
fn finish(
    frame: &Arc<Frame>,
    own_turn: OwnedMutexGuard<()>,
    hold: Option<Hold>,
    outcome: Outcome,
    committed: Option<Result<()>>,
) -> Result<()> {
    frame.closed.store(true, Ordering::Release);
    let txn = &frame.txn;
    let aborted = txn.aborted.load(Ordering::Acquire);
    let result = {
        let conn = txn.conn.lock();
        let result = match (frame.depth, outcome) {
            // SQLite already rolled the whole transaction back: there is nothing to end, and
            // the statement that caused it has reported its error.
            _ if aborted => {
                if frame.depth == 0 && !conn.is_autocommit() {
                    // A rollback failed earlier: leave the connection clean for its next user.
                    let _ = conn.execute_batch("ROLLBACK");
                }
                match outcome {
                    Outcome::Commit => Err(Error::TransactionClosed(format!(
                        "{frame} (it was aborted by an earlier error)"
                    ))),
                    Outcome::Rollback => Ok(()),
                }
            }
            // Decided and sent before: only a failure is left to handle.
            (0, Outcome::Commit) if committed.is_some() => committed
                .expect("checked is_some")
                .inspect_err(|_| rollback(frame, &conn)),
            (0, Outcome::Commit) if txn.rollback_only.load(Ordering::Acquire) => {
                rollback(frame, &conn);
                Err(Error::RollbackOnly)
            }
            (0, Outcome::Commit) => exec(&conn, "COMMIT").inspect_err(|_| rollback(frame, &conn)),
            (depth, Outcome::Commit) => exec(&conn, &SavepointSql::at(depth).release)
                .inspect_err(|_| rollback(frame, &conn)),
            (_, Outcome::Rollback) => {
                rollback(frame, &conn);
                Ok(())
            }
        };
        if frame.depth > 0 {
            frame.note_connection_state(&conn, result.as_ref().err());
        }
        result
    };
    let committed = outcome == Outcome::Commit && result.is_ok();
    let hooks = frame.hooks.take();
    drop(own_turn);
    match (&frame.parent, committed) {
        // Released into the parent: the hooks now belong to it.
        (Some(parent), true) => parent.hooks.extend(hooks),
        (None, true) => {
            drop(hold);
            hooks.run();
            return result;
        }
        // Rolled back: the hooks of this frame and its released children are dropped.
        (_, false) => drop(hooks),
    }
    drop(hold);
    result
}

/// Rolls `frame` back. Failures cannot be reported (the caller has its own error to give),
/// so they are logged and the transaction is marked aborted so nothing more runs in it.
fn rollback(frame: &Frame, conn: &rusqlite::Connection) {
    let result = if frame.depth == 0 {
        exec(conn, "ROLLBACK")
    } else {
        let sql = SavepointSql::at(frame.depth);
        // ROLLBACK TO leaves the savepoint open; RELEASE removes it.
        exec(conn, &sql.rollback_to).and_then(|()| exec(conn, &sql.release))
    };
    if let Err(error) = result {
        if frame.txn.aborted.load(Ordering::Acquire) && conn.is_autocommit() {
            return; // SQLite had already ended the transaction; nothing was left to undo.
        }
        tracing::error!(%frame, %error, "rollback failed; the transaction can no longer commit");
        frame.txn.aborted.store(true, Ordering::Release);
        if frame.depth == 0 || !conn.is_autocommit() {
            // Repair: leave the connection outside any transaction for its next user.
            let _ = conn.execute_batch("ROLLBACK");
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
        match frame.turn.clone().try_lock_owned() {
            Ok(own_turn) => {
                let _ = finish(&frame, own_turn, Some(hold), Outcome::Rollback, None);
            }
            Err(_) => match tokio::runtime::Handle::try_current() {
                // A child savepoint (or a statement on another thread) holds the turn: roll
                // back as soon as it ends, still holding the parent's turn until then.
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let own_turn = frame.turn.clone().lock_owned().await;
                        let _ = finish(&frame, own_turn, Some(hold), Outcome::Rollback, None);
                    });
                }
                // No runtime to wait in (it is shutting down): the transaction can no longer
                // be ended frame by frame, so it must not commit at all.
                Err(_) => {
                    tracing::error!(%frame, "frame dropped outside a runtime while busy; the transaction will roll back");
                    frame.txn.aborted.store(true, Ordering::Release);
                    drop(hold);
                }
            },
        }
    }
}
