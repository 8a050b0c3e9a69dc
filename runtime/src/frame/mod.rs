//! Frames: the root transaction and its savepoints, and the turns that order them.
//!
//! Every frame owns a *turn*, a fair (FIFO) async mutex. A statement in frame F holds F's turn
//! while it runs; a savepoint opened under F takes F's turn and keeps it for its whole life.
//! So while a child savepoint is open, nothing else of F or of F's other children can touch
//! the connection, and the open frames always form one chain root → … → top (DESIGN §2).
//!
//! A frame ends through [`FrameGuard::end`]: it first takes its *own* turn, which waits for
//! every savepoint opened under it (and every statement queued on it) to end, then sends
//! RELEASE/COMMIT or ROLLBACK, and only then gives back the parent's turn (or the writer lock).
//! A guard dropped before that (the future cancelled, a panic unwinding) rolls back in `Drop`:
//! at once when its turn is free, otherwise in a cleanup task that waits for the turn.
//! How frames end lives in `end.rs`.

mod end;

pub(crate) use end::Outcome;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::OwnedMutexGuard;

use crate::conn::{exec, Conn, SavepointSql};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::hooks::Hooks;
use crate::readers::ReaderLease;

/// One open transaction: what its frames share.
pub(crate) struct Txn {
    pub(crate) db: Database,
    pub(crate) conn: Arc<Conn>,
    /// The transaction runs on the writer connection (and holds the writer lock).
    pub(crate) on_writer: bool,
    /// Set by a failed `propagation = "join"` frame: the root rolls back instead of committing.
    pub(crate) rollback_only: AtomicBool,
    /// SQLite ended the transaction by itself (e.g. after `SQLITE_FULL`), or a rollback failed:
    /// nothing more may run in it, or it would run in autocommit mode outside the transaction.
    pub(crate) aborted: AtomicBool,
    /// A statement failed with a transient error (busy/locked): `retries` may re-run the root.
    pub(crate) saw_transient: AtomicBool,
}

/// A frame: the root transaction (depth 0) or a savepoint (depth ≥ 1).
pub(crate) struct Frame {
    pub(crate) id: u64,
    pub(crate) depth: u32,
    pub(crate) name: Option<&'static str>,
    pub(crate) read_only: bool,
    pub(crate) parent: Option<Arc<Frame>>,
    pub(crate) txn: Arc<Txn>,
    turn: Arc<tokio::sync::Mutex<()>>,
    closed: AtomicBool,
    pub(crate) hooks: Hooks,
}

/// What a frame holds while it is open, and gives back when it ends.
enum Hold {
    /// A savepoint holds its parent's turn.
    ParentTurn(#[allow(dead_code)] OwnedMutexGuard<()>),
    /// A root write transaction holds the database's writer lock.
    WriterLock(#[allow(dead_code)] crate::writer::WriterHold),
    /// A root read-only transaction holds a reader connection.
    Reader(#[allow(dead_code)] ReaderLease),
}

/// The owner of an open frame. Ending it is `end`; dropping it un-ended rolls it back.
pub(crate) struct FrameGuard {
    frame: Arc<Frame>,
    hold: Option<Hold>,
}

fn next_frame_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Frame {
    /// Waits for this frame's turn so that a statement can run in it.
    pub(crate) async fn turn(&self) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        crate::context::check_not_waiting_on_descendant(self)?;
        // Uncontended, take the turn without `.await`: tokio's `lock()` spends the task's
        // cooperative budget and, every ~40 nested calls, forces a yield that wakes the other
        // worker thread, which may then steal the task. `try_lock` fails while anyone is
        // queued (tokio hands released permits to waiters first), so FIFO order is kept.
        let turn = match self.turn.try_lock() {
            Ok(turn) => turn,
            Err(_) => self.turn.lock().await,
        };
        self.check_usable()?;
        Ok(turn)
    }

    async fn owned_turn(self: &Arc<Self>) -> Result<OwnedMutexGuard<()>> {
        crate::context::check_not_waiting_on_descendant(self)?;
        // Uncontended, without `.await` (see `turn`).
        let turn = match self.turn.clone().try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => self.turn.clone().lock_owned().await,
        };
        self.check_usable()?;
        Ok(turn)
    }

    fn check_usable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::TransactionClosed(self.to_string()));
        }
        if self.txn.aborted.load(Ordering::Acquire) {
            return Err(Error::TransactionClosed(format!(
                "{self} (SQLite rolled the whole transaction back after an earlier error)"
            )));
        }
        Ok(())
    }

    /// The child of `self` on the path to `descendant`.
    pub(crate) fn child_towards<'a>(&self, descendant: &'a Frame) -> Option<&'a Frame> {
        let mut at = descendant;
        while let Some(parent) = at.parent.as_deref() {
            if std::ptr::eq(parent, self) {
                return Some(at);
            }
            at = parent;
        }
        None
    }

    /// After a statement: if SQLite left the transaction (it does so by itself on some
    /// errors, such as a full disk), nothing more may run in it.
    pub(crate) fn note_connection_state(&self, conn: &rusqlite::Connection, err: Option<&Error>) {
        if conn.is_autocommit() {
            self.txn.aborted.store(true, Ordering::Release);
        }
        if matches!(err, Some(e) if e.is_transient()) {
            self.txn.saw_transient.store(true, Ordering::Release);
        }
    }

    pub(crate) fn root(&self) -> &Frame {
        let mut at = self;
        while let Some(parent) = at.parent.as_deref() {
            at = parent;
        }
        at
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.depth == 0 {
            "transaction"
        } else {
            "savepoint"
        };
        write!(f, "{kind} #{}", self.id)?;
        if let Some(name) = self.name {
            write!(f, " `{name}`")?;
        }
        write!(f, " (depth {}, {})", self.depth, self.txn.db.label())
    }
}

/// What a new frame is called and whether it may write.
#[derive(Clone, Copy, Default)]
pub(crate) struct FrameSpec {
    pub(crate) name: Option<&'static str>,
    pub(crate) read_only: bool,
    /// Where the transactional block was written (the `#[transactional]` fn or `Atomic::new()`).
    pub(crate) opened_at: Option<&'static std::panic::Location<'static>>,
}

impl FrameGuard {
    pub(crate) fn frame(&self) -> &Arc<Frame> {
        &self.frame
    }

    /// Begins an outermost transaction on `db`.
    pub(crate) async fn begin(
        db: &Database,
        begin: crate::conn::Begin,
        spec: FrameSpec,
    ) -> Result<FrameGuard> {
        if spec.read_only {
            if let Some(lease) = db.lease_reader().await {
                let conn = lease.conn.clone();
                exec(&conn.lock(), "BEGIN DEFERRED")?;
                let id = next_frame_id();
                return Ok(Self::root(id, db, conn, false, spec, Hold::Reader(lease)));
            }
        }
        let id = next_frame_id();
        let opened_at = spec.opened_at.unwrap_or(std::panic::Location::caller());
        let writer_lock = crate::writer::acquire(db, id, spec.name, opened_at).await?;
        let conn = db.inner.writer.clone();
        {
            let c = conn.lock();
            if !c.is_autocommit() {
                // A transaction of an earlier owner was left open (its rollback failed):
                // repair before anyone builds on it.
                tracing::warn!(
                    db = db.label(),
                    "writer connection was left inside a transaction; rolling it back"
                );
                exec(&c, "ROLLBACK")?;
            }
        }
        // A read-only transaction never needs the write lock, even on the writer.
        let begin = if spec.read_only {
            crate::conn::Begin::Deferred
        } else {
            begin
        };
        crate::writer::begin(db, &conn, begin.sql()).await?;
        Ok(Self::root(
            id,
            db,
            conn,
            true,
            spec,
            Hold::WriterLock(writer_lock),
        ))
    }

    fn root(
        id: u64,
        db: &Database,
        conn: Arc<Conn>,
        on_writer: bool,
        spec: FrameSpec,
        hold: Hold,
    ) -> Self {
        let txn = Arc::new(Txn {
            db: db.clone(),
            conn,
            on_writer,
            rollback_only: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            saw_transient: AtomicBool::new(false),
        });
        FrameGuard {
            frame: Arc::new(Frame {
                id,
                depth: 0,
                name: spec.name,
                read_only: spec.read_only,
                parent: None,
                txn,
                turn: Arc::new(tokio::sync::Mutex::new(())),
                closed: AtomicBool::new(false),
                hooks: Hooks::default(),
            }),
            hold: Some(hold),
        }
    }

    /// Opens a savepoint under `parent`, waiting (FIFO) for the parent's turn.
    pub(crate) async fn savepoint(parent: &Arc<Frame>, spec: FrameSpec) -> Result<FrameGuard> {
        let parent_turn = parent.owned_turn().await?;
        let depth = parent.depth + 1;
        {
            let conn = parent.txn.conn.lock();
            let result = exec(&conn, &SavepointSql::at(depth).open);
            parent.note_connection_state(&conn, result.as_ref().err());
            result?;
        }
        Ok(FrameGuard {
            frame: Arc::new(Frame {
                id: next_frame_id(),
                depth,
                name: spec.name,
                read_only: spec.read_only || parent.read_only,
                parent: Some(parent.clone()),
                txn: parent.txn.clone(),
                turn: Arc::new(tokio::sync::Mutex::new(())),
                closed: AtomicBool::new(false),
                hooks: Hooks::default(),
            }),
            hold: Some(Hold::ParentTurn(parent_turn)),
        })
    }
}
