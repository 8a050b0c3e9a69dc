//! Reader connections: outermost read-only transactions on a file database run on one of
//! these, beside the writer (WAL lets readers and one writer work at the same time).

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::conn::Conn;
use crate::database::Database;

/// Reader connections for read-only transactions (WAL lets them run beside the writer).
pub(crate) struct ReaderPool {
    idle: Mutex<Vec<Arc<Conn>>>,
    available: Arc<Semaphore>,
}

/// A reader connection checked out for one read-only transaction; returned on drop.
pub(crate) struct ReaderLease {
    pub(crate) conn: Arc<Conn>,
    db: Database,
    _permit: OwnedSemaphorePermit,
}

impl ReaderPool {
    pub(crate) fn new(conns: Vec<Connection>) -> Self {
        let available = Arc::new(Semaphore::new(conns.len()));
        let idle = conns.into_iter().map(|c| Arc::new(Conn::new(c))).collect();
        ReaderPool {
            idle: Mutex::new(idle),
            available,
        }
    }
}

impl Database {
    /// Waits for an idle reader connection, or `None` when this database has none.
    pub(crate) async fn lease_reader(&self) -> Option<ReaderLease> {
        let pool = self.inner.readers.as_ref()?;
        let permit = pool
            .available
            .clone()
            .acquire_owned()
            .await
            .expect("the reader semaphore is never closed");
        let conn = pool
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .expect("a reader permit always comes with an idle reader");
        Some(ReaderLease {
            conn,
            db: self.clone(),
            _permit: permit,
        })
    }
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        if let Some(pool) = &self.db.inner.readers {
            pool.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.conn.clone());
        }
    }
}
