//! SQLite through rusqlite (`bundled`): one writer connection per database, which outermost
//! write transactions queue for in the library (`writer`), reader connections for read-only
//! transactions beside it in WAL mode (`readers`), WAL checkpoints on a thread of their own
//! (`checkpoint`), and the connection guard that keeps transaction control with the library
//! and repairs a connection handed back inside a transaction (`conn`). `close` shuts it all
//! down in the order that leaves a complete database file.
//!
//! Statements run on the calling task's thread: a hop to another thread per statement costs
//! about 70 µs against about 1 µs for a cached statement (ARCHITECTURE.md §5).

pub(crate) mod begin;
pub(crate) mod checkpoint;
pub(crate) mod close;
pub(crate) mod conn;
pub(crate) mod frames;
pub(crate) mod open;
pub(crate) mod readers;
pub(crate) mod slow;
pub(crate) mod statements;
pub(crate) mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conn::Conn;

/// What a SQLite database holds: the writer and its queue, the readers, and the settings of
/// the waits that are SQLite's own.
pub(crate) struct SqliteDb {
    pub(crate) writer: Arc<Conn>,
    /// Outermost write transactions queue here (tokio's mutex is FIFO), so the library's own
    /// tasks never meet `SQLITE_BUSY` from each other.
    pub(crate) writer_lock: Arc<tokio::sync::Mutex<()>>,
    /// Who holds `writer_lock`, for the error of a task that waited too long for it.
    pub(crate) writer_holder: Mutex<Option<WriterHolder>>,
    /// How long an outermost write transaction waits for `writer_lock`.
    pub(crate) writer_wait: Duration,
    /// How long a read-only transaction waits for a reader connection.
    pub(crate) reader_wait: Duration,
    /// How long a BEGIN waits for a lock held by another connection or process.
    pub(crate) busy_timeout: Duration,
    /// Commits fsync (`synchronous = FULL` or `EXTRA` on a file): COMMIT runs on a blocking
    /// thread so that the fsync does not stall the executor.
    pub(crate) commit_off_thread: bool,
    pub(crate) readers: Option<readers::ReaderPool>,
    /// The WAL checkpoint thread of a file database; `None` once stopped.
    pub(crate) checkpointer: Mutex<Option<checkpoint::Checkpointer>>,
}

impl Drop for SqliteDb {
    /// The last handle is gone (no transaction can be open: each holds a handle). Closes the
    /// connections in the order `close` uses, synchronously, so that nothing of this
    /// database holds a lock on the file once the drop returns.
    fn drop(&mut self) {
        let _ = close::close_connections(self, close::Reporting::Log);
    }
}

/// The transaction that holds a database's write lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterHolder {
    pub(crate) frame_id: u64,
    pub(crate) name: Option<&'static str>,
    pub(crate) opened_at: &'static std::panic::Location<'static>,
    /// The tokio task that began it (none outside a tokio task), to tell a waiter whether it
    /// is that very task.
    pub(crate) task: Option<tokio::task::Id>,
}
