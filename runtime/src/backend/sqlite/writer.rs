//! The fair queue of outermost write transactions on one database.
//!
//! SQLite has one writer per database. Transactions of this library queue for it here, first
//! come first served, instead of meeting `SQLITE_BUSY` from each other. A wait longer than
//! the database's `writer_wait` is an error that names the transaction holding the lock:
//! such a wait almost always means that transaction waits for this one.

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
    let holder = match holder {
        Some(h) => format!(
            "transaction #{}{} opened at {}:{}",
            h.frame_id,
            h.name.map(|n| format!(" `{n}`")).unwrap_or_default(),
            h.opened_at.file(),
            h.opened_at.line()
        ),
        None => "a transaction that has just ended".to_owned(),
    };
    Error::Busy {
        detail: format!(
            "waited {:?} for the write lock of {}, held by {holder}. If that transaction is \
             waiting for this task, the task was spawned without its transaction context: \
             use `transactional::spawn`, `transactional::spawn_local` or a `TaskGroup` (or \
             `tokio::spawn` / `tokio::task::spawn_local` inside a #[transactional] fn, which \
             the attribute rewrites)",
            db.inner.sqlite().writer_wait,
            db.label()
        ),
        source: None,
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
