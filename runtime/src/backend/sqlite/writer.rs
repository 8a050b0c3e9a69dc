//! The fair queue of outermost write transactions on one database.
//!
//! SQLite has one writer per database. Transactions of this library queue for it here, first
//! come first served, instead of meeting `SQLITE_BUSY` from each other. A wait longer than
//! the database's `writer_wait` is an error that names the transaction holding the lock:
//! such a wait almost always means that transaction waits for this one.
//!
//! The commonest such cycle is a task spawned from inside the holding transaction without
//! its context (plain `tokio::spawn` in a helper, `JoinSet::spawn`, `Handle::spawn`) that
//! begins a write transaction of its own while the holder awaits it. It is reported only
//! when the wait runs out, never at once: tokio records no parent of a task, so such a task
//! cannot be told from an unrelated one rightly queued behind a long transaction. What is
//! known for certain — whether the waiter runs outside any transaction, whether it is the
//! very task that began the holder — goes into the error, with what to do.

use std::panic::Location;
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use super::WriterHolder;
use crate::backend::sqlite::conn::Conn;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::stats::WaitKind;

/// The write lock of a database, held by one outermost write transaction.
pub(crate) struct WriterHold {
    db: Database,
    _guard: OwnedMutexGuard<()>,
}

impl Drop for WriterHold {
    fn drop(&mut self) {
        // Before `_guard` releases the lock: the next holder gets a connection outside any
        // transaction (an abandoned one is rolled back here)...
        self.db.inner.sqlite().writer.hand_back();
        // ...and its record of who holds the lock is never erased by this one.
        *self
            .db
            .inner
            .sqlite()
            .writer_holder
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Waits (FIFO) for the write lock of `db` on behalf of transaction `frame_id`.
pub(crate) async fn acquire(
    db: &Database,
    frame_id: u64,
    name: Option<&'static str>,
    opened_at: &'static Location<'static>,
) -> Result<WriterHold> {
    let lock = db.inner.sqlite().writer_lock.clone();
    let guard = match lock.clone().try_lock_owned() {
        Ok(guard) => guard,
        Err(_) => {
            let _waiting = db.inner.stats.waiting(WaitKind::Begin);
            crate::wait::within(db.inner.sqlite().writer_wait, lock.lock_owned())
                .await
                .map_err(|_| waited_too_long(db))?
        }
    };
    *db.inner
        .sqlite()
        .writer_holder
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(WriterHolder {
        frame_id,
        name,
        opened_at,
        task: tokio::task::try_id(),
    });
    Ok(WriterHold {
        db: db.clone(),
        _guard: guard,
    })
}

fn waited_too_long(db: &Database) -> Error {
    db.inner.stats.timed_out();
    let holder = *db
        .inner
        .sqlite()
        .writer_holder
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let this_task = tokio::task::try_id();
    let (holder, cause) = match holder {
        Some(h) => (
            format!(
                "transaction #{}{} opened at {}:{}",
                h.frame_id,
                h.name.map(|n| format!(" `{n}`")).unwrap_or_default(),
                h.opened_at.file(),
                h.opened_at.line()
            ),
            cause(this_task.is_some() && this_task == h.task),
        ),
        None => ("a transaction that has just ended".to_owned(), cause(false)),
    };
    Error::Busy {
        detail: format!(
            "waited {:?} for the write lock of {}, held by {holder}. {cause}If that \
             transaction is waiting for this task, the wait could never end: the task was \
             started without the transaction's context. Start it with \
             `transactional::spawn`, `transactional::spawn_local` or a `TaskGroup`, or wrap \
             its future in `transactional::carry(..)` (for `JoinSet::spawn`, \
             `Handle::spawn` or another executor), and it runs as a savepoint of that \
             transaction (inside a #[transactional] fn, `tokio::spawn` and \
             `tokio::task::spawn_local` are rewritten to carry it)",
            db.inner.sqlite().writer_wait,
            db.label()
        ),
        source: None,
    }
}

/// What is certain about the waiting task, for the error of a writer wait that ran out.
/// `same_task`: the waiter is the tokio task that began the holder.
fn cause(same_task: bool) -> &'static str {
    let outside = crate::context::current_scope().is_none();
    match (outside, same_task) {
        (true, true) => {
            "This task began that transaction and waits outside it (two transactions on one \
             database polled together, as by `join!`, run one after the other). "
        }
        (true, false) => {
            "This task runs outside any transaction, as a task spawned with plain \
             `tokio::spawn` outside a #[transactional] body, with `JoinSet::spawn` or with \
             `Handle::spawn` does. "
        }
        (false, _) => "",
    }
}

/// Sends `BEGIN ..` on the writer. When another connection or process holds the database's
/// write lock, waits for it here, asynchronously, up to the busy timeout: the writer has no
/// busy timeout inside SQLite, so no executor thread ever sleeps in a busy handler.
pub(crate) async fn begin(db: &Database, conn: &Conn, sql: &str) -> Result<()> {
    while_busy(db, sql, || conn.lock().exec(sql)).await
}

/// Runs `attempt` until it does not fail with busy/locked, sleeping asynchronously between
/// tries (from 250 µs, doubling up to 50 ms), for at most the database's busy timeout.
/// `what` names the statement in the error.
pub(crate) async fn while_busy(
    db: &Database,
    what: &str,
    mut attempt: impl FnMut() -> Result<()>,
) -> Result<()> {
    let limit = db.inner.sqlite().busy_timeout;
    let mut waited = Duration::ZERO;
    let mut pause = Duration::from_micros(250);
    loop {
        match attempt() {
            Err(err) if err.is_transient() && waited < limit => {
                let step = pause.min(limit - waited);
                crate::wait::sleep(step).await;
                waited += step;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(Error::Busy { source, .. }) => {
                return Err(Error::Busy {
                    detail: format!(
                        "another connection or process held a lock on {} for longer than the \
                         busy timeout ({limit:?}); `{what}` gave up",
                        db.label()
                    ),
                    source,
                })
            }
            other => return other,
        }
    }
}
