//! How outermost transactions begin: on a reader connection (read-only, file databases) or on
//! the writer, after the writer queue.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::{next_frame_id, Frame, FrameGuard, FrameSpec, Hold, Txn};
use crate::backend::sqlite::conn::{Begin, Conn};
use crate::context::Current;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::hooks::Hooks;

impl FrameGuard {
    /// Begins an outermost transaction on `db`. `outer` is the frame the task is in, when it
    /// begins this transaction inside another one.
    pub(crate) async fn begin(
        db: &Database,
        begin: Begin,
        spec: FrameSpec,
        outer: Option<&Current>,
    ) -> Result<FrameGuard> {
        let id = next_frame_id();
        if spec.read_only && db.inner.sqlite().readers.is_some() {
            let lease = db.lease_reader().await?;
            crate::backend::sqlite::readers::begin_read(db, &lease.conn).await?;
            let conn = lease.conn.clone();
            return Ok(Self::root(id, db, conn, Hold::Reader(lease), spec, outer));
        }
        let opened_at = spec.opened_at.unwrap_or(std::panic::Location::caller());
        let writer_lock =
            crate::backend::sqlite::writer::acquire(db, id, spec.name, opened_at).await?;
        let conn = db.inner.sqlite().writer.clone();
        // A transaction of an earlier owner may have been abandoned on it: repair first.
        conn.lock().repair();
        // A read-only transaction never needs the write lock, even on the writer.
        let begin = if spec.read_only {
            Begin::Deferred
        } else {
            begin
        };
        crate::backend::sqlite::writer::begin(db, &conn, begin.sql()).await?;
        let hold = Hold::WriterLock(writer_lock);
        Ok(Self::root(id, db, conn, hold, spec, outer))
    }

    fn root(
        id: u64,
        db: &Database,
        conn: Arc<Conn>,
        hold: Hold,
        spec: FrameSpec,
        outer: Option<&Current>,
    ) -> Self {
        let txn = Arc::new(Txn {
            db: db.clone(),
            conn,
            on_writer: matches!(hold, Hold::WriterLock(_)),
            on_reader: matches!(hold, Hold::Reader(_)),
            rollback_only: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            last_transient: AtomicBool::new(false),
        });
        let outer = outer.map(|current| current.frame.clone());
        FrameGuard {
            frame: Arc::new(Frame {
                id,
                depth: 0,
                chain_depth: outer.as_ref().map_or(0, |o| o.chain_depth + 1),
                name: spec.name,
                read_only: spec.read_only,
                parent: None,
                outer,
                txn,
                turn: Arc::new(tokio::sync::Mutex::new(())),
                holder: Mutex::new(None),
                closed: AtomicBool::new(false),
                hooks: Hooks::default(),
            }),
            hold: Some(hold),
        }
    }
}

/// A new outermost transaction on `db` from a task inside `current` would wait for itself
/// when the task's own transactions hold what it needs: the writer lock (SQLite has one
/// writer per database), or every reader connection.
pub(crate) fn check_no_self_wait(db: &Database, read_only: bool, current: &Current) -> Result<()> {
    let on_db = || {
        crate::context::chain(current)
            .filter(|f| f.depth == 0 && f.txn.db.same_as(db) && !f.is_closed())
    };
    let uses_reader = read_only && db.inner.sqlite().readers.is_some();
    if !uses_reader {
        if let Some(root) = on_db().find(|f| f.txn.on_writer) {
            return Err(Error::Unsupported(format!(
                "propagation = \"requires_new\" on {} inside {root} would wait for that \
                 transaction's own write lock forever: SQLite has one writer per database. \
                 Use nested (a savepoint), or read_only on a file database",
                db.label()
            )));
        }
        return Ok(());
    }
    let held = on_db().filter(|f| f.txn.on_reader).count();
    let readers = db.reader_count();
    if held >= readers {
        return Err(Error::Deadlock(format!(
            "a read-only transaction on {} inside {} needs a reader connection, and this \
             task's own transactions hold all {readers} of them: it would wait for itself. \
             Use nested (a savepoint) instead of requires_new, or more `readers`",
            db.label(),
            current.frame
        )));
    }
    Ok(())
}
