//! The statements that open and end frames on a SQLite connection. The frame machinery
//! decides *when* (in turn, after the children, the policy on failure); this is *what*.

use std::sync::atomic::Ordering;

use super::conn::{ConnGuard, SavepointSql};
use crate::backend::EndAction;
use crate::error::Result;
use crate::frame::Frame;

impl ConnGuard<'_> {
    /// `SAVEPOINT` for the frame at `depth` (1 for the first savepoint under the root).
    pub(crate) fn open_savepoint(&self, depth: u32) -> Result<()> {
        self.exec(&SavepointSql::at(depth).open)
    }

    /// Ends the frame at `depth` keeping its work: `COMMIT` for the root, `RELEASE` for a
    /// savepoint.
    pub(crate) fn keep(&self, depth: u32) -> Result<()> {
        match depth {
            0 => self.exec("COMMIT"),
            depth => self.exec(&SavepointSql::at(depth).release),
        }
    }

    /// Ends the frame at `depth` undoing its work: `ROLLBACK` for the root; for a savepoint
    /// `ROLLBACK TO` (which leaves it open) and `RELEASE`.
    pub(crate) fn undo(&self, depth: u32) -> Result<()> {
        match depth {
            0 => self.exec("ROLLBACK"),
            depth => {
                let sql = SavepointSql::at(depth);
                self.exec(&sql.rollback_to)
                    .and_then(|()| self.exec(&sql.release))
            }
        }
    }

    /// Whether a transaction is open on the connection (SQLite ends one by itself after
    /// some errors, such as a full disk).
    #[inline]
    pub(crate) fn in_transaction(&self) -> bool {
        !self.is_autocommit()
    }
}

impl ConnGuard<'_> {
    /// Carries out what the frame machinery decided for the end of `frame`.
    #[inline]
    pub(crate) fn end_frame(&self, frame: &Frame, action: EndAction) -> Result<()> {
        let result = match action {
            EndAction::Abandon => {
                if frame.depth == 0 {
                    // A rollback failed earlier: leave the connection clean.
                    self.repair();
                }
                Ok(())
            }
            EndAction::Keep => self.keep(frame.depth).inspect_err(|_| self.rollback(frame)),
            EndAction::Undo => {
                self.rollback(frame);
                Ok(())
            }
        };
        if frame.depth > 0 {
            frame.note_in_transaction(self.in_transaction());
        }
        result
    }

    /// Rolls `frame` back. Failures cannot be reported (the caller has its own error to
    /// give), so they are logged and the transaction is marked aborted so nothing more runs
    /// in it.
    fn rollback(&self, frame: &Frame) {
        if let Err(error) = self.undo(frame.depth) {
            if frame.txn.aborted.load(Ordering::Acquire) && !self.in_transaction() {
                return; // SQLite had already ended the transaction; nothing was left to undo.
            }
            tracing::error!(%frame, %error, "rollback failed; the transaction can no longer commit");
            frame.abort();
            if frame.depth == 0 || self.in_transaction() {
                // Repair: leave the connection outside any transaction for its next user.
                self.repair();
            }
        }
    }
}
