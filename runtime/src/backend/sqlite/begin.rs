//! How an outermost SQLite transaction begins: on a reader connection (read-only, file
//! databases) or on the writer, after the writer queue; and the waits that would be on the
//! task's own transactions.

use std::sync::Arc;

use super::conn::{Begin, Conn};
use super::readers::ReaderLease;
use super::writer::WriterHold;
use crate::backend::BeginSpec;
use crate::context::Current;
use crate::database::Database;
use crate::error::{Error, Result};

/// What an outermost transaction holds until it ends: the writer lock, or a reader. Dropping
/// it hands the connection back (rolling back whatever is still open on it).
pub(crate) enum RootHold {
    Writer(#[allow(dead_code)] WriterHold),
    Reader(#[allow(dead_code)] ReaderLease),
}

/// Begins transaction `id` on `db`: a read-only one on a reader when the database has
/// readers, anything else on the writer after the writer queue.
pub(crate) async fn begin_root(db: &Database, spec: BeginSpec) -> Result<(Arc<Conn>, RootHold)> {
    let BeginSpec {
        begin,
        read_only,
        id,
        name,
        opened_at,
        // SQLite transactions are serializable, which satisfies every level.
        isolation: _,
        // A second write transaction is refused before this (`check_no_self_wait`).
        inside_same_db: _,
    } = spec;
    if read_only && db.inner.sqlite().readers.is_some() {
        let lease = db.lease_reader().await?;
        super::readers::begin_read(db, &lease.conn).await?;
        return Ok((lease.conn.clone(), RootHold::Reader(lease)));
    }
    let writer_lock = super::writer::acquire(db, id, name, opened_at).await?;
    let conn = db.inner.sqlite().writer.clone();
    // A transaction of an earlier owner may have been abandoned on it: repair first.
    conn.lock().repair();
    // A read-only transaction never needs the write lock, even on the writer.
    let begin = if read_only { Begin::Deferred } else { begin };
    super::writer::begin(db, &conn, begin.sql()).await?;
    Ok((conn, RootHold::Writer(writer_lock)))
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
        db.inner.stats.deadlock();
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
