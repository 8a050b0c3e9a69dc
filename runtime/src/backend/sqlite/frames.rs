//! The statements that open and end frames on a SQLite connection. The frame machinery
//! decides *when* (in turn, after the children, the policy on failure); this is *what*.

use super::conn::{ConnGuard, SavepointSql};
use crate::error::Result;

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
    pub(crate) fn in_transaction(&self) -> bool {
        !self.is_autocommit()
    }
}
