//! Reader connections: outermost read-only transactions on a file database run on one of
//! these, beside the writer (WAL lets readers and one writer work at the same time).

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backend::sqlite::conn::Conn;
use crate::database::Database;
use crate::error::{Error, Result};

/// Reader connections for read-only transactions (WAL lets them run beside the writer).
pub(crate) struct ReaderPool {
    idle: Mutex<Vec<Arc<Conn>>>,
    available: Arc<Semaphore>,
    count: usize,
}

/// A reader connection checked out for one read-only transaction. Dropping it hands the
/// connection back outside any transaction, then returns it to the pool.
pub(crate) struct ReaderLease {
    pub(crate) conn: Arc<Conn>,
    db: Database,
    _permit: OwnedSemaphorePermit,
}

impl ReaderPool {
    pub(crate) fn new(conns: Vec<Connection>) -> Result<Self> {
        let count = conns.len();
        let idle = conns
            .into_iter()
            .map(|c| Conn::new(c).map(Arc::new))
            .collect::<Result<_>>()?;
        Ok(ReaderPool {
            idle: Mutex::new(idle),
            available: Arc::new(Semaphore::new(count)),
            count,
        })
    }
}

impl ReaderPool {
    /// Every reader permit: held, no read-only transaction runs (for `Database::close`).
    pub(crate) async fn acquire_all(
        &self,
    ) -> std::result::Result<OwnedSemaphorePermit, tokio::sync::AcquireError> {
        let count = u32::try_from(self.count).expect("a handful of readers");
        self.available.clone().acquire_many_owned(count).await
    }

    /// The connections not leased to a transaction (all of them once no read-only
    /// transaction runs).
    pub(crate) fn idle_connections(&self) -> Vec<Arc<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Database {
    /// Number of reader connections (0 for an in-memory database).
    pub(crate) fn reader_count(&self) -> usize {
        self.inner
            .sqlite()
            .readers
            .as_ref()
            .map_or(0, |pool| pool.count)
    }

    /// Waits (FIFO, at most `reader_wait`) for an idle reader connection. Only called on a
    /// database that has readers.
    pub(crate) async fn lease_reader(&self) -> Result<ReaderLease> {
        let pool = self
            .inner
            .sqlite()
            .readers
            .as_ref()
            .expect("only databases with readers lease them");
        let permit = match pool.available.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _waiting = self.inner.stats.waiting(crate::stats::WaitKind::Begin);
                crate::wait::within(
                    self.inner.sqlite().reader_wait,
                    pool.available.clone().acquire_owned(),
                )
                .await
                .map_err(|_| {
                    self.inner.stats.timed_out();
                    Error::Busy {
                        detail: format!(
                            "waited {:?} (`reader_wait`) for one of the {} reader connections \
                             of {}, all held by read-only transactions that have not ended",
                            self.inner.sqlite().reader_wait,
                            pool.count,
                            self.label()
                        ),
                        source: None,
                    }
                })?
                .expect("the reader semaphore is never closed")
            }
        };
        let conn = pool
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .expect("a reader permit always comes with an idle reader");
        Ok(ReaderLease {
            conn,
            db: self.clone(),
            _permit: permit,
        })
    }
}

/// Begins a read transaction on a reader and takes its snapshot at once, so that a database
/// locked by another process is waited for here, asynchronously (readers have no busy
/// timeout inside SQLite, where the wait would block an executor thread).
pub(crate) async fn begin_read(db: &Database, conn: &Conn) -> Result<()> {
    crate::backend::sqlite::writer::while_busy(db, "BEGIN DEFERRED", || {
        let c = conn.lock();
        c.repair();
        c.exec("BEGIN DEFERRED")?;
        let snapshot = c.as_library(|c| {
            c.prepare_cached("PRAGMA schema_version")
                .and_then(|mut stmt| stmt.query_row([], |_| Ok(())))
        });
        snapshot.map_err(|e| {
            let _ = c.exec("ROLLBACK");
            Error::sqlite(e, Some("PRAGMA schema_version"))
        })
    })
    .await
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        self.conn.hand_back();
        if let Some(pool) = &self.db.inner.sqlite().readers {
            pool.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.conn.clone());
        }
    }
}
