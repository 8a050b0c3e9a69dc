//! Shutting a SQLite database down: `Database::close`, and the drop of its last handle.
//!
//! In WAL mode the committed data lives partly in the `-wal` file until a checkpoint copies it
//! back; SQLite does that, and deletes the WAL, when the *last* connection to the file
//! closes — if that connection may write. Left to the drop order of its fields, a database
//! closed its writer first and a read-only reader last, which cannot checkpoint: the main
//! file alone then lacked recent commits, and the checkpoint thread, still closing in the
//! background, held a lock for a few milliseconds after the drop.
//!
//! So the order is fixed here: the checkpoint thread is stopped and joined (its connection
//! closed), then the readers are closed, then the writer runs a `TRUNCATE` checkpoint and
//! closes last, folding the WAL back and removing it. Everything has happened when the call
//! returns.

use std::time::Duration;

use super::SqliteDb;
use crate::database::Database;
use crate::error::{Error, Result};

/// Whether shutdown errors are returned (`close`) or only logged (a drop).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reporting {
    Return,
    Log,
}

/// `Database::close` for SQLite: waits (at most `writer_wait` for each) until the write
/// transactions queued before it and the open read-only transactions have ended, then closes
/// every connection. New transactions are already refused (`Error::Closed`).
pub(crate) async fn close(db: &Database) -> Result<()> {
    let sqlite = db.inner.sqlite();
    let bound = sqlite.writer_wait;
    let writer = drain(
        db,
        bound,
        "the write lock",
        sqlite.writer_lock.clone().lock_owned(),
    )
    .await?;
    let _readers = match &sqlite.readers {
        Some(pool) => Some(
            drain(db, bound, "the reader connections", pool.acquire_all())
                .await?
                .expect("the reader semaphore is never closed"),
        ),
        None => None,
    };
    // The checkpoint thread may be queued for the write lock, for a catch-up pass: it gets
    // the lock, finishes and sees it is to stop. Nothing else can take the lock now.
    let checkpointer = sqlite
        .checkpointer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let writer = match checkpointer {
        Some(checkpointer) => {
            drop(writer);
            blocking(move || {
                checkpointer.stop();
                Ok(())
            })
            .await?;
            drain(
                db,
                bound,
                "the write lock",
                sqlite.writer_lock.clone().lock_owned(),
            )
            .await?
        }
        None => writer,
    };
    let inner = db.inner.clone();
    let closed = blocking(move || close_connections(inner.sqlite(), Reporting::Return)).await;
    drop(writer);
    closed
}

/// Waits for `what` while transactions end; past `bound`, an error naming those still open.
async fn drain<T>(
    db: &Database,
    bound: Duration,
    what: &str,
    wait: impl std::future::Future<Output = T>,
) -> Result<T> {
    crate::wait::within(bound, wait)
        .await
        .map_err(|_| Error::Busy {
            detail: format!(
                "`Database::close` waited {bound:?} for {what} of {}: these transactions have not \
             ended (the database stays closed to new ones; its connections close when they \
             end and the last handle is dropped):\n{}",
                db.label(),
                db.activity()
            ),
            source: None,
        })
}

/// Closes the checkpoint thread's connection, the readers, then the writer (see the module
/// docs). With [`Reporting::Return`], the first error; with [`Reporting::Log`], none.
pub(crate) fn close_connections(sqlite: &SqliteDb, reporting: Reporting) -> Result<()> {
    let mut first_error = None;
    let mut failed = |what: &str, error: Error| {
        if reporting == Reporting::Log {
            tracing::error!(%error, "closing the database: {what} failed");
        }
        first_error.get_or_insert(error);
    };
    let checkpointer = sqlite
        .checkpointer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(checkpointer) = checkpointer {
        checkpointer.stop();
    }
    if let Some(readers) = &sqlite.readers {
        for reader in readers.idle_connections() {
            if let Err(e) = reader.close_now() {
                failed("closing a reader connection", e);
            }
        }
    }
    // Folds the WAL back while the writer is open, so a failure is reported with its
    // reason; another process reading the file makes it partial (`busy` = 1), which is not an
    // error: the data is safe in the WAL and the next checkpoint moves it.
    let checkpoint = sqlite.writer.lock().as_library(|c| {
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    match checkpoint {
        Ok(0) => {}
        Ok(_) => tracing::info!(
            "closing the database: the final checkpoint was partial (another connection is \
             reading the file); the WAL keeps the rest"
        ),
        Err(e) => failed(
            "the final checkpoint",
            Error::sqlite(e, Some("PRAGMA wal_checkpoint(TRUNCATE)")),
        ),
    }
    if let Err(e) = sqlite.writer.close_now() {
        failed("closing the writer connection", e);
    }
    match (reporting, first_error) {
        (Reporting::Return, Some(error)) => Err(error),
        _ => Ok(()),
    }
}

/// Runs blocking work (joining a thread, closing files) off the async executor.
async fn blocking(work: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::background("closing the database", e))?
}
