//! One transaction's pooled connection: BEGIN, the savepoint statements, the end of a frame,
//! and giving the connection back to the pool outside any transaction.
//!
//! Statements of one transaction never overlap: each holds its frame's turn until its reply
//! is in, and a savepoint holds its parent's turn. tokio-postgres sends requests in the order
//! they are made, so a statement sent after another — a rollback after a cancelled SAVEPOINT
//! — runs after it on the server.
//!
//! BEGIN, SAVEPOINT and RELEASE are not sent on their own: they wait in the session's
//! [`Queue`] and go out ahead of the transaction's next message, in the same round trip
//! (`queue.rs`). A failure of one of them is the error of the message it went with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Object;

use super::errors::PgError;
use super::pool::{reclaim_later, CleanReturns, RoundTrips};
use super::queue::Queue;
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
    /// The library's SQL waiting to go out ahead of the next message.
    queue: Mutex<Queue>,
    /// The database's count of round trips.
    pub(crate) round_trips: RoundTrips,
}

impl PgSession {
    pub(crate) fn new(
        object: Object,
        inside_same_db: Option<String>,
        round_trips: RoundTrips,
    ) -> Self {
        PgSession {
            round_trips,
            inside_same_db,
            id: crate::backend::next_session_id(),
            client: Mutex::new(Some(Arc::new(object))),
            ended: AtomicBool::new(false),
            queue: Mutex::default(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the root's BEGIN: it goes out with the transaction's first statement.
    pub(crate) fn begin(&self, sql: String) {
        self.queue().begin(sql);
    }

    /// Runs `work`, a user statement on `client`, with whatever the library has queued sent
    /// ahead of it in the same round trip: the queued SQL is written to the connection
    /// first, then `work`'s messages, and both replies are awaited together. A failure of
    /// the queued SQL is the statement's error (the statement itself then fails too: the
    /// server refuses everything after a failure until the frame rolls back).
    pub(crate) async fn pipelined<R>(
        &self,
        client: &Object,
        work: impl std::future::Future<Output = Result<R>>,
    ) -> Result<R> {
        let queued = self.queue().take();
        self.round_trips.add(1);
        if queued.is_empty() {
            return work.await;
        }
        crate::backend::sent(self.id, &queued, true);
        // `join` polls the queued batch first: its first poll writes it to the connection,
        // before `work`'s first poll writes the statement.
        let (sent, result) = futures_util::future::join(client.batch_execute(&queued), work).await;
        sent.map_err(|e| error(e, Some(&queued)))?;
        result
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

    /// Runs one of the library's statements, after what is queued (simple query protocol:
    /// several are sent as one message, in one round trip).
    pub(crate) async fn exec(&self, sql: &str) -> Result<()> {
        let sql = self.queue().take_with(sql);
        self.send(&sql).await
    }

    /// Sends library SQL as one message and awaits its reply.
    async fn send(&self, sql: &str) -> Result<()> {
        let client = self.client()?;
        self.round_trips.add(1);
        crate::backend::sent(self.id, sql, true);
        client
            .batch_execute(sql)
            .await
            .map_err(|e| error(e, Some(sql)))
    }

    /// Queues the `SAVEPOINT` of `frame` at `depth`: it goes out with the first statement
    /// the frame (or a descendant) sends, and never if there is none. A read-only one is
    /// made read-only by the server (`SET LOCAL transaction_read_only`, which both RELEASE
    /// and ROLLBACK TO undo).
    pub(crate) fn open_savepoint(&self, frame: u64, depth: u32, read_only: bool) {
        let sql = if read_only {
            format!("SAVEPOINT sp_{depth}; SET LOCAL transaction_read_only = on")
        } else {
            format!("SAVEPOINT sp_{depth}")
        };
        self.queue().open(frame, sql);
    }

    /// Ends `frame` without a round trip where that is all its end needs (its RELEASE is
    /// queued; nothing of it was ever sent; the transaction was abandoned): `None` when the
    /// end must talk to the server ([`end_frame`](Self::end_frame)).
    pub(crate) fn end_frame_locally(&self, frame: &Frame, action: EndAction) -> Option<Result<()>> {
        match action {
            EndAction::Abandon => Some(Ok(())),
            EndAction::Keep if frame.depth > 0 => {
                self.queue().release(frame.id, frame.depth);
                Some(Ok(()))
            }
            EndAction::Undo if frame.depth > 0 && self.queue().take_back_open(frame.id) => {
                Some(Ok(()))
            }
            _ => None,
        }
    }

    /// Carries out what the frame machinery decided for the end of `frame`.
    pub(crate) async fn end_frame(&self, frame: &Frame, action: EndAction) -> Result<()> {
        match action {
            EndAction::Abandon => Ok(()),
            // A savepoint's RELEASE waits for the next message of the transaction (none at
            // all when the frame sent nothing). It cannot fail on its own: a RELEASE fails
            // only in a transaction that some statement failed, or on a lost connection, and
            // either fails that next message and everything after it, up to the COMMIT.
            EndAction::Keep if frame.depth > 0 => {
                self.queue().release(frame.id, frame.depth);
                Ok(())
            }
            EndAction::Keep => {
                let Some(sql) = self.queue().end("COMMIT") else {
                    // Nothing was ever sent: no transaction was begun on the server.
                    self.ended.store(true, Ordering::Release);
                    return Ok(());
                };
                match self.send(&sql).await {
                    Ok(()) => {
                        self.ended.store(true, Ordering::Release);
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
            0 => self.queue().end("ROLLBACK"),
            depth => self.queue().rollback(frame.id, depth),
        };
        let Some(sql) = sql else {
            // Nothing of the frame was sent: nothing to undo.
            if frame.depth == 0 {
                self.ended.store(true, Ordering::Release);
            }
            return;
        };
        match self.send(&sql).await {
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
    /// Where a connection that comes back after an answered COMMIT or ROLLBACK is noted.
    pub(crate) clean_returns: CleanReturns,
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
            Ok(object) if self.session.ended.load(Ordering::Acquire) => {
                self.clean_returns.returned(&object);
                drop(object)
            }
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
