//! Frames: the root transaction and its savepoints, and the turns that order them.
//!
//! Every frame owns a *turn*, a fair (FIFO) async mutex. A statement in frame F holds F's turn
//! while it runs; a savepoint opened under F takes F's turn and keeps it for its whole life.
//! So while a child savepoint is open, nothing else of F or of F's other children can touch
//! the connection, and the open frames always form one chain root → … → top (ARCHITECTURE.md §2).
//!
//! Every wait for a turn is bounded (`turn_wait`): a wait that long is a cycle the library
//! cannot see (a task awaiting another that needs this turn), and the error names the
//! savepoint holding the turn and where it was opened. A wait that can be seen never to end —
//! the task's own savepoint holds the turn — fails at once with `Error::Deadlock`.
//!
//! A frame ends through [`FrameGuard::end`]: it first takes its *own* turn, which waits for
//! every savepoint opened under it (and every statement queued on it) to end, then sends
//! RELEASE/COMMIT or ROLLBACK, and only then gives back the parent's turn (or the writer lock).
//! A guard dropped before that (the future cancelled, a panic unwinding) rolls back in `Drop`:
//! at once when its turn is free, otherwise in a cleanup task that waits for the turn.
//! How frames end lives in `end.rs`; how roots begin in `begin.rs`.

mod begin;
mod end;

pub(crate) use end::{Deadline, Outcome};

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::future::BoxFuture;
use tokio::sync::OwnedMutexGuard;

use crate::backend::{RootHold, Session};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::hooks::Hooks;
use crate::stats::WaitKind;

/// One open transaction: what its frames share.
pub(crate) struct Txn {
    pub(crate) db: Database,
    /// The connection the transaction runs on.
    pub(crate) session: Session,
    /// The transaction runs on the writer connection (and holds the writer lock).
    pub(crate) on_writer: bool,
    /// The transaction runs on a reader connection (and holds one of the readers).
    pub(crate) on_reader: bool,
    /// SQLite ended the transaction by itself (e.g. after `SQLITE_FULL`), a rollback failed,
    /// or the transaction was abandoned (its connection handed back): nothing more may run in
    /// it, or it would run outside the transaction.
    pub(crate) aborted: AtomicBool,
    /// The last statement of the transaction failed with a transient error (busy/locked):
    /// `retries` may re-run the root if the body ended with that failure.
    pub(crate) last_transient: AtomicBool,
}

/// A frame: the root transaction (depth 0) or a savepoint (depth ≥ 1).
pub(crate) struct Frame {
    pub(crate) id: u64,
    pub(crate) depth: u32,
    /// Depth in the task's whole context, across transactions (see `context`).
    pub(crate) chain_depth: u32,
    pub(crate) name: Option<&'static str>,
    pub(crate) read_only: bool,
    /// Statements run off the executor thread (`offload`); inherited by savepoints.
    pub(crate) offload: bool,
    pub(crate) parent: Option<Arc<Frame>>,
    /// For a root begun inside another transaction: the frame the task was in.
    pub(crate) outer: Option<Arc<Frame>>,
    pub(crate) txn: Arc<Txn>,
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The savepoint that took this frame's turn last, for the error of a wait that runs too
    /// long (it still holds it, unless a statement has it for a moment). Written once per
    /// savepoint and never cleared, to keep savepoints cheap.
    holder: Mutex<Option<Holder>>,
    closed: AtomicBool,
    /// Where the block was written, when known.
    pub(crate) opened_at: Option<&'static Location<'static>>,
    /// When the frame was opened.
    pub(crate) opened: std::time::Instant,
    /// Statements run in this frame (for `Database::activity`).
    pub(crate) statements: AtomicU64,
    /// Tasks waiting for this frame's turn right now.
    pub(crate) waiters: std::sync::atomic::AtomicU32,
    /// The first statement the database rejected in this frame (ARCHITECTURE.md §6: a failed
    /// statement fails its frame). PostgreSQL refuses everything after it until the frame
    /// rolls back, so on every backend the frame refuses further statements and savepoints
    /// and rolls back when it ends.
    failed: OnceLock<String>,
    /// `set_rollback_only()` was called in this frame, or a block joined to it failed: it
    /// rolls back when it ends.
    pub(crate) rollback_only: AtomicBool,
    pub(crate) hooks: Hooks,
}

/// Who holds a frame's turn: one of its savepoints.
#[derive(Clone)]
struct Holder {
    id: u64,
    name: Option<&'static str>,
    opened_at: Option<&'static Location<'static>>,
    /// The savepoint itself, for `Database::activity` (it may have ended since).
    frame: std::sync::Weak<Frame>,
}

/// What a frame holds while it is open, and gives back when it ends.
enum Hold {
    /// A savepoint holds its parent's turn.
    ParentTurn(#[allow(dead_code)] OwnedMutexGuard<()>),
    /// A root holds what its engine gave it: the writer lock, a reader connection, a pooled
    /// connection.
    Root(#[allow(dead_code)] RootHold),
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
        // Uncontended, take the turn without `.await`: tokio's `lock()` spends the task's
        // cooperative budget and, every ~40 nested calls, forces a yield that wakes the other
        // worker thread, which may then steal the task. `try_lock` fails while anyone is
        // queued (tokio hands released permits to waiters first), so FIFO order is kept.
        // A free turn cannot be a wait on ourselves: the chain is checked only when it is
        // taken.
        let turn = match self.turn.try_lock() {
            Ok(turn) => turn,
            Err(_) => {
                crate::context::check_not_waiting_on_descendant(self)?;
                self.wait_for_turn().await?
            }
        };
        self.check_usable()?;
        Ok(turn)
    }

    pub(crate) async fn owned_turn(self: &Arc<Self>) -> Result<OwnedMutexGuard<()>> {
        // Uncontended, without `.await` (see `turn`).
        let turn = match self.turn.clone().try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => {
                crate::context::check_not_waiting_on_descendant(self)?;
                self.wait_for_owned_turn().await?
            }
        };
        self.check_usable()?;
        Ok(turn)
    }

    // The waits, boxed and out of line: only a contended turn pays for the timer, and the
    // futures of every statement and savepoint stay small (they are moved at each layer and
    // sit on the stack of every nesting level).

    #[inline(never)]
    fn wait_for_turn(&self) -> BoxFuture<'_, Result<tokio::sync::MutexGuard<'_, ()>>> {
        Box::pin(async move {
            let _waiting = self.txn.db.inner.stats.waiting(WaitKind::Turn);
            let _queued = Queued::on(self);
            crate::wait::within(self.txn.db.inner.turn_wait, self.turn.lock())
                .await
                .map_err(|_| self.waited_too_long())
        })
    }

    #[inline(never)]
    fn wait_for_owned_turn(self: &Arc<Self>) -> BoxFuture<'_, Result<OwnedMutexGuard<()>>> {
        Box::pin(async move {
            let _waiting = self.txn.db.inner.stats.waiting(WaitKind::Turn);
            let _queued = Queued::on(self);
            let wait = self.turn.clone().lock_owned();
            crate::wait::within(self.txn.db.inner.turn_wait, wait)
                .await
                .map_err(|_| self.waited_too_long())
        })
    }

    pub(super) fn waited_too_long(&self) -> Error {
        self.txn.db.inner.stats.timed_out();
        let holder = self
            .holder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let holder = match holder {
            Some(h) => {
                let mut s = format!("savepoint #{}", h.id);
                if let Some(name) = h.name {
                    s += &format!(" `{name}`");
                }
                if let Some(at) = h.opened_at {
                    s += &format!(" opened at {}:{}", at.file(), at.line());
                }
                s
            }
            None => "a statement still running".to_owned(),
        };
        Error::Busy {
            detail: format!(
                "waited {:?} (`turn_wait`) for the turn of {self}, held by {holder}. A wait \
                 this long is almost always a cycle: that savepoint waits (on a channel, a join \
                 handle) for the task that needs this turn",
                self.txn.db.inner.turn_wait
            ),
            source: None,
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::TransactionClosed(self.to_string()));
        }
        if self.txn.aborted.load(Ordering::Acquire) {
            return Err(Error::TransactionClosed(format!(
                "{self} (the whole transaction was rolled back after an earlier error)"
            )));
        }
        if let Some(cause) = self.failed.get() {
            return Err(self.failed_error(cause));
        }
        Ok(())
    }

    fn failed_error(&self, cause: &str) -> Error {
        Error::FrameFailed {
            frame: self.to_string(),
            cause: cause.to_owned(),
        }
    }

    /// After a statement of this frame failed: a failure the database reported (not one
    /// raised before the statement was sent, such as a parameter that does not convert)
    /// fails the frame.
    pub(crate) fn note_failure(&self, err: &Error) {
        if err.fails_frame() {
            self.fail(err.to_string());
        }
    }

    /// Fails this frame (the first cause is kept).
    pub(crate) fn fail(&self, cause: String) {
        let _ = self.failed.set(cause);
    }

    /// The failure that failed this frame, as the error its end reports.
    pub(crate) fn failure(&self) -> Option<Error> {
        self.failed.get().map(|cause| self.failed_error(cause))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The frame this one runs inside: its parent, or for a root begun inside another
    /// transaction, the frame the task was in.
    pub(crate) fn enclosing(&self) -> Option<&Arc<Frame>> {
        self.parent.as_ref().or(self.outer.as_ref())
    }

    /// After a statement: if the database left the transaction (SQLite does so by itself on
    /// some errors, such as a full disk; a PostgreSQL connection may be lost), nothing more
    /// may run in it.
    pub(crate) fn note_in_transaction(&self, in_transaction: bool) {
        if !in_transaction {
            self.txn.aborted.store(true, Ordering::Release);
        }
    }

    /// Nothing more may run in this frame's transaction: it rolls back when its root ends.
    pub(crate) fn abort(&self) {
        self.txn.aborted.store(true, Ordering::Release);
    }

    /// After a user statement: whether it failed with a transient error, which `retries`
    /// reads when the body ends with an error it cannot classify itself.
    pub(crate) fn note_outcome(&self, err: Option<&Error>) {
        let transient = matches!(err, Some(e) if e.is_transient());
        if transient != self.txn.last_transient.load(Ordering::Relaxed) {
            self.txn.last_transient.store(transient, Ordering::Release);
        }
    }
}

/// The `debug` event of a frame's opening, with its statement and how long it took.
#[cold]
#[inline(never)]
pub(crate) fn traced_open(frame: &Frame, sql: &'static str, started: std::time::Instant) {
    let elapsed_us = started.elapsed().as_micros() as u64;
    tracing::debug!(
        frame = frame.id,
        depth = frame.depth,
        sql,
        elapsed_us,
        "frame opened"
    );
}

/// A task queued for a frame's turn, counted in the frame's `waiters` while it waits.
struct Queued<'a>(&'a Frame);

impl<'a> Queued<'a> {
    fn on(frame: &'a Frame) -> Self {
        frame.waiters.fetch_add(1, Ordering::Relaxed);
        Queued(frame)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Frame {
    /// The savepoint holding this frame's turn now, if one is open.
    pub(crate) fn open_child(&self) -> Option<Arc<Frame>> {
        let holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        holder
            .as_ref()
            .and_then(|h| h.frame.upgrade())
            .filter(|child| !child.is_closed())
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
    pub(crate) offload: bool,
    /// Where the transactional block was written (the `#[transactional]` fn or `Atomic::new()`).
    pub(crate) opened_at: Option<&'static Location<'static>>,
}

impl FrameGuard {
    pub(crate) fn frame(&self) -> &Arc<Frame> {
        &self.frame
    }

    /// Opens a savepoint under `parent`, waiting (FIFO) for the parent's turn.
    pub(crate) async fn savepoint(
        parent: &Arc<Frame>,
        read_only: bool,
        spec: FrameSpec,
    ) -> Result<FrameGuard> {
        let parent_turn = parent.owned_turn().await?;
        let started = tracing::enabled!(tracing::Level::DEBUG).then(std::time::Instant::now);
        let depth = parent.depth + 1;
        let read_only = spec.read_only || read_only;
        let id = next_frame_id();
        let guard = FrameGuard {
            frame: Arc::new(Frame {
                id,
                depth,
                chain_depth: parent.chain_depth + 1,
                name: spec.name,
                read_only,
                offload: spec.offload || parent.offload,
                parent: Some(parent.clone()),
                outer: None,
                txn: parent.txn.clone(),
                turn: Arc::new(tokio::sync::Mutex::new(())),
                holder: Mutex::new(None),
                closed: AtomicBool::new(false),
                opened_at: spec.opened_at,
                opened: std::time::Instant::now(),
                statements: AtomicU64::new(0),
                waiters: std::sync::atomic::AtomicU32::new(0),
                failed: OnceLock::new(),
                rollback_only: AtomicBool::new(false),
                hooks: Hooks::default(),
            }),
            hold: Some(Hold::ParentTurn(parent_turn)),
        };
        // A read-only savepoint in a frame that may write is made read-only by the database
        // itself where it can (PostgreSQL); a write in one that was joined read-only is
        // refused by the statement API.
        let restrict = read_only && !parent.read_only;
        let opened = match &parent.txn.session {
            Session::Sqlite(conn) => {
                let conn = conn.lock();
                let result = conn.open_savepoint(depth);
                parent.note_in_transaction(conn.in_transaction());
                result
            }
            // Queued, sent with the frame's first statement (the guard exists by then, so a
            // statement dropped in flight is followed by the guard's rollback); nothing to
            // await here.
            #[cfg(feature = "postgres")]
            Session::Postgres(pg) => {
                pg.open_savepoint(id, depth, restrict);
                Ok(())
            }
        };
        let _ = restrict;
        if let Err(err) = opened {
            // Nothing was opened (or what was is gone with the transaction): give the turn
            // back without a rollback.
            parent.note_failure(&err);
            let mut guard = guard;
            guard.disarm();
            return Err(err);
        }
        if let Some(started) = started {
            traced_open(guard.frame(), "SAVEPOINT", started);
        }
        *parent.holder.lock().unwrap_or_else(|p| p.into_inner()) = Some(Holder {
            id,
            name: spec.name,
            opened_at: spec.opened_at,
            frame: Arc::downgrade(guard.frame()),
        });
        Ok(guard)
    }

    /// Gives back what the guard holds without ending the frame: for a frame whose opening
    /// failed.
    fn disarm(&mut self) {
        self.frame.closed.store(true, Ordering::Release);
        drop(self.hold.take());
    }
}
