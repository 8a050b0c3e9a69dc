//! WAL checkpoints on a background thread (ARCHITECTURE.md §5).
//!
//! SQLite's automatic checkpoint runs inside the `COMMIT` that pushes the WAL past
//! `wal_autocheckpoint` pages (1000 by default): that commit copies the WAL back into the
//! database file and fsyncs it, for milliseconds, on the thread that committed — here an
//! executor thread, stalling every task queued on it. Instead, the writer connection gets a
//! WAL hook (which replaces the automatic checkpoint) that only signals a thread of ours once
//! the WAL has grown past the same threshold; that thread runs a `PASSIVE` checkpoint on its
//! own connection, beside the writer and the readers.
//!
//! A checkpoint that runs beside a busy writer never catches up with it, and SQLite restarts
//! the WAL from its beginning only when a write transaction starts after a checkpoint has
//! copied *everything* back. So when the WAL has grown past twice the threshold, the thread
//! takes the database's writer lock (the fair queue that write transactions wait on
//! asynchronously) for a second, short pass over what the writer appended meanwhile. Write
//! transactions then wait for it like for any other writer — on the queue, not on an
//! executor thread — and the next one restarts the WAL, which stays bounded.
//!
//! The thread ends when the database shuts down ([`Checkpointer::stop`], from
//! `Database::close` or the drop of the last handle), and is joined there: its connection
//! is closed before the writer's, so that the writer is the last connection of this process
//! and folds the WAL back into the database file as it closes. (It also ends if the writer's
//! hook, which owns the sending half of the signal, is dropped.)

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// The running checkpoint thread, to stop and join when the database shuts down.
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    signal: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Asks the thread to end and waits until it has closed its connection. It ends after
    /// the pass it may be running; a pass that waits for the writer lock gets it once the
    /// holder lets go, so the caller must not hold that lock.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        // Full: a wake-up is already pending, and the thread sees `stop` when it takes it.
        let _ = self.signal.try_send(());
        if self.thread.join().is_err() {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

/// Moves the automatic checkpoints of `writer` (the writer of a file database in WAL mode at
/// `path`, whose write transactions queue on `writer_lock`) to a background thread, keeping
/// its `wal_autocheckpoint` threshold. A threshold of 0 (checkpoints turned off by the user)
/// is left alone, and no thread is started.
pub(crate) fn install(
    writer: &mut Connection,
    path: &Path,
    writer_lock: Arc<tokio::sync::Mutex<()>>,
) -> Result<Option<Checkpointer>> {
    let threshold: i64 = writer.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?;
    if threshold <= 0 {
        return Ok(None);
    }
    let (signal, wake) = sync_channel::<()>(1);
    let path = path.to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("transactional-checkpoint".into())
        .spawn(move || run(&path, wake, &stopped, writer_lock, threshold))
        .map_err(|e| Error::background("starting the checkpoint thread", e))?;
    let checkpointer = Checkpointer {
        stop,
        signal: signal.clone(),
        thread,
    };
    // Replaces SQLite's automatic checkpoint on this connection (both are WAL hooks).
    writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
        if i64::from(pages) >= threshold {
            match signal.try_send(()) {
                // Full: a checkpoint is already due. Disconnected: the thread could not open
                // its connection (it logged why); nothing to do.
                Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
            }
        }
        Ok(())
    }))?;
    Ok(Some(checkpointer))
}

/// The checkpoint thread: passive checkpoints on signal, until the writer closes.
fn run(
    path: &Path,
    wake: Receiver<()>,
    stop: &AtomicBool,
    writer_lock: Arc<tokio::sync::Mutex<()>>,
    threshold: i64,
) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = match Connection::open_with_flags(path, flags) {
        Ok(conn) => conn,
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "checkpoint thread could not open the database; the WAL will not be checkpointed until it is closed");
            return;
        }
    };
    while wake.recv().is_ok() && !stop.load(Ordering::Acquire) {
        let Some(log) = checkpoint(&conn, path) else {
            continue;
        };
        if log >= 2 * threshold {
            // Catch up with the writer: no write transaction can start while we hold its
            // lock, so this pass copies everything back and the next writer restarts the WAL.
            let _writer = writer_lock.blocking_lock();
            checkpoint(&conn, path);
        }
    }
}

/// One passive checkpoint; the number of frames in the WAL, or `None` if it failed.
fn checkpoint(conn: &Connection, path: &Path) -> Option<i64> {
    // Columns: busy flag, frames in the WAL, frames checkpointed.
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match result {
        Ok((log, done)) => {
            tracing::trace!(path = %path.display(), log, done, "WAL checkpoint");
            Some(log)
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "WAL checkpoint failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Atomic, Database};

    /// Without checkpoints this writes ~40 MB of WAL (600 transactions of ~17 pages); with
    /// them, the WAL is restarted from its beginning whenever a checkpoint has caught up, so
    /// its file stays near the 1000-page threshold. The bound leaves room for a checkpoint
    /// thread that lags far behind on a loaded machine (22 MB was seen once in a CI run on a
    /// fresh clone; with the checkpoints turned off the WAL reaches 39.7 MB, measured).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_checkpoints_keep_the_wal_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.db");
        let db = Database::open(&path).await.unwrap();
        let create = Atomic::new().db(db.clone()).run(async {
            crate::current()?
                .execute_batch("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
                .await
        });
        create.await.unwrap();
        for i in 0..600i64 {
            Atomic::new()
                .db(db.clone())
                .run(async move {
                    let tx = crate::current()?;
                    for j in 0..16 {
                        tx.execute(
                            "INSERT OR REPLACE INTO blobs(id, data) VALUES (?1, randomblob(4000))",
                            ((i * 16 + j) % 256,),
                        )
                        .await?;
                    }
                    Ok::<_, crate::Error>(())
                })
                .await
                .unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("ckpt.db-wal"))
            .unwrap()
            .len();
        assert!(wal < 30 << 20, "the WAL grew to {wal} bytes");
        let rows: i64 = Atomic::new()
            .db(db.clone())
            .read_only(true)
            .run(async {
                crate::current()?
                    .query_row("SELECT count(*) FROM blobs", ())
                    .await?
                    .get(0)
            })
            .await
            .unwrap();
        assert_eq!(rows, 256);
    }
}
