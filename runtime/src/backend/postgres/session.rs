//! One transaction's pooled connection: BEGIN, the savepoint statements, the end of a frame,
//! and giving the connection back to the pool outside any transaction.
//!
//! Statements of one transaction never overlap: each holds its frame's turn until its reply
//! is in, and a savepoint holds its parent's turn. tokio-postgres sends requests in the order
//! they are made, so a statement sent after another — a rollback after a cancelled SAVEPOINT
//! — runs after it on the server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Object;

use super::errors::PgError;
use super::pool::reclaim_later;
use crate::backend::EndAction;
use crate::error::{Error, Result};
use crate::frame::Frame;

/// The pooled connection of one open transaction, shared by its frames.
pub(crate) struct PgSession {
    /// For the `transactional::sql` trace (`backend::sent`).
    pub(crate) id: u64,
    /// Taken when the transaction's root gives the connection back.
    client: Mutex<Option<Arc<Object>>>,
    /// The frame of this task's enclosing transaction on the same database, for a
    /// `requires_new` transaction (its lock waits are bounded; see `explain`).
    inside_same_db: Option<String>,
    /// The transaction ended with an answered COMMIT or ROLLBACK: the connection is idle and
    /// goes straight back to the pool (which checks it again before handing it out).
    ended: AtomicBool,
}

impl PgSession {
    pub(crate) fn new(object: Object, inside_same_db: Option<String>) -> Self {
        PgSession {
            inside_same_db,
            id: crate::backend::next_session_id(),
            client: Mutex::new(Some(Arc::new(object))),
            ended: AtomicBool::new(false),
        }
    }

    /// The connection, for one statement.
    pub(crate) fn client(&self) -> Result<Arc<Object>> {
        self.client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                Error::TransactionClosed("its PostgreSQL connection was given back".to_owned())
            })
    }

    /// The library's error for a failed user statement: a lock wait that ran out in a
    /// transaction begun inside another of the same task on the same database is, almost
    /// certainly, a wait for that very transaction.
    pub(crate) fn explain(&self, err: Error) -> Error {
        let lock_wait = match (&err, &self.inside_same_db) {
            (
                Error::Busy {
                    source: Some(source),
                    ..
                },
                Some(enclosing),
            ) => source
                .downcast_ref::<PgError>()
                .filter(|e| e.code() == Some("55P03"))
                .map(|e| (e, enclosing)),
            _ => None,
        };
        match lock_wait {
            Some((e, enclosing)) => Error::Deadlock(format!(
                "a transaction begun inside {enclosing} (requires_new) waited `turn_wait` for \
                 a lock, most likely one that {enclosing} holds, which waits for this \
                 transaction to end: {e}"
            )),
            None => err,
        }
    }

    /// Runs one of the library's statements (simple query protocol: several may be sent
    /// as one, in one round trip).
    pub(crate) async fn exec(&self, sql: &str) -> Result<()> {
        let client = self.client()?;
        crate::backend::sent(self.id, sql, true);
        client
            .batch_execute(sql)
            .await
            .map_err(|e| error(e, Some(sql)))
    }

    /// `SAVEPOINT` for the frame at `depth`; a read-only one is made read-only by the server
    /// (`SET LOCAL transaction_read_only`, which both RELEASE and ROLLBACK TO undo).
    pub(crate) async fn open_savepoint(&self, depth: u32, read_only: bool) -> Result<()> {
        let sql = if read_only {
            format!("SAVEPOINT sp_{depth}; SET LOCAL transaction_read_only = on")
        } else {
            format!("SAVEPOINT sp_{depth}")
        };
        self.exec(&sql).await
    }

    /// Carries out what the frame machinery decided for the end of `frame`.
    pub(crate) async fn end_frame(&self, frame: &Frame, action: EndAction) -> Result<()> {
        match action {
            EndAction::Abandon => Ok(()),
            EndAction::Keep => {
                let sql = match frame.depth {
                    0 => "COMMIT".to_owned(),
                    depth => format!("RELEASE sp_{depth}"),
                };
                match self.exec(&sql).await {
                    Ok(()) => {
                        if frame.depth == 0 {
                            self.ended.store(true, Ordering::Release);
                        }
                        Ok(())
                    }
                    Err(err) => {
                        // A failed COMMIT has ended the transaction on the server; a failed
                        // RELEASE leaves the savepoint to roll back.
                        self.rollback(frame).await;
                        Err(err)
                    }
                }
            }
            EndAction::Undo => {
                self.rollback(frame).await;
                Ok(())
            }
        }
    }

    /// Rolls `frame` back. A failure cannot be reported (the caller has its own result), so
    /// it is logged and the transaction aborted: its root gives the connection back through
    /// the pool's reclaim, which rolls back or detaches it.
    async fn rollback(&self, frame: &Frame) {
        let sql = match frame.depth {
            0 => "ROLLBACK".to_owned(),
            depth => format!("ROLLBACK TO sp_{depth}; RELEASE sp_{depth}"),
        };
        match self.exec(&sql).await {
            Ok(()) if frame.depth == 0 => self.ended.store(true, Ordering::Release),
            Ok(()) => {}
            Err(error) => {
                tracing::error!(%frame, %error, "rollback failed; the transaction can no longer commit");
                frame.abort();
            }
        }
    }
}

/// What an outermost PostgreSQL transaction holds: its pooled connection. Dropped, it gives
/// the connection back: straight to the pool after an answered COMMIT or ROLLBACK, otherwise
/// through `reclaim` (ROLLBACK within a bound, else the connection is detached and closed, so
/// the server aborts the transaction).
pub(crate) struct PgHold {
    pub(crate) session: Arc<PgSession>,
    pub(crate) rollback_timeout: Duration,
    /// Unregisters the transaction from its database's list of holders.
    pub(crate) _holding: super::Holding,
}

impl Drop for PgHold {
    fn drop(&mut self) {
        let taken = self
            .session
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(client) = taken else { return };
        match Arc::try_unwrap(client) {
            Ok(object) if self.session.ended.load(Ordering::Acquire) => drop(object),
            Ok(object) => reclaim_later(object, self.rollback_timeout),
            // A statement future still holds the connection: impossible while turns are
            // kept, since the root's end waits for every frame. Should it happen, the pool's
            // check refuses the connection while it is inside a transaction.
            Err(_) => tracing::error!(
                "a PostgreSQL connection was still in use when its transaction ended"
            ),
        }
    }
}

/// The library's error for a PostgreSQL failure of `sql`.
pub(crate) fn error(err: tokio_postgres::Error, sql: Option<&str>) -> Error {
    let err = PgError::new(err, sql);
    match err.kind() {
        super::errors::PgErrorKind::ReadOnly => Error::ReadOnly,
        // A lock another transaction holds, given up on (`lock_timeout`, `NOWAIT`): busy,
        // like SQLite's locked database, and transient.
        super::errors::PgErrorKind::LockNotAvailable => Error::Busy {
            detail: format!(
                "{} gave up waiting for a lock another transaction holds",
                err.statement()
                    .map_or("a statement".to_owned(), |s| format!("`{s}`"))
            ),
            source: Some(Box::new(err)),
        },
        _ => Error::Postgres(Box::new(err)),
    }
}
