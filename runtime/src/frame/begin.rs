//! The root frame of an outermost transaction, once its engine has begun it.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

use super::{next_frame_id, Frame, FrameGuard, FrameSpec, Hold, Txn};
use crate::atomic::Isolation;
use crate::backend::{begin_root, Begin, BeginSpec, RootHold, Session};
use crate::context::Current;
use crate::database::Database;
use crate::error::Result;
use crate::hooks::Hooks;

impl FrameGuard {
    /// Begins an outermost transaction on `db`. `outer` is the frame the task is in, when it
    /// begins this transaction inside another one.
    pub(crate) async fn begin(
        db: &Database,
        begin: Begin,
        isolation: Option<Isolation>,
        spec: FrameSpec,
        outer: Option<&Current>,
    ) -> Result<FrameGuard> {
        let id = next_frame_id();
        let opened_at = spec.opened_at.unwrap_or(std::panic::Location::caller());
        let started = tracing::enabled!(tracing::Level::DEBUG).then(std::time::Instant::now);
        let inside_same_db = outer
            .and_then(|current| crate::context::innermost_on(current, db))
            .map(|enclosing| enclosing.frame.to_string());
        let (session, hold) = begin_root(
            db,
            BeginSpec {
                begin,
                isolation,
                read_only: spec.read_only,
                id,
                name: spec.name,
                opened_at,
                inside_same_db,
            },
        )
        .await?;
        let spec = FrameSpec {
            opened_at: Some(opened_at),
            ..spec
        };
        let guard = Self::root(id, db, session, hold, spec, outer);
        if let Some(started) = started {
            super::traced_open(guard.frame(), "BEGIN", started);
        }
        Ok(guard)
    }

    fn root(
        id: u64,
        db: &Database,
        session: Session,
        hold: RootHold,
        spec: FrameSpec,
        outer: Option<&Current>,
    ) -> Self {
        let txn = Arc::new(Txn {
            db: db.clone(),
            session,
            on_writer: hold.on_writer(),
            on_reader: hold.on_reader(),
            aborted: AtomicBool::new(false),
            last_transient: AtomicBool::new(false),
        });
        let outer = outer.map(|current| current.frame.clone());
        let guard = FrameGuard {
            frame: Arc::new(Frame {
                id,
                depth: 0,
                chain_depth: outer.as_ref().map_or(0, |o| o.chain_depth + 1),
                name: spec.name,
                read_only: spec.read_only,
                offload: spec.offload,
                parent: None,
                outer,
                txn,
                turn: Arc::new(tokio::sync::Mutex::new(())),
                holder: Mutex::new(None),
                closed: AtomicBool::new(false),
                opened_at: spec.opened_at,
                opened: std::time::Instant::now(),
                statements: std::sync::atomic::AtomicU64::new(0),
                waiters: std::sync::atomic::AtomicU32::new(0),
                failed: OnceLock::new(),
                rollback_only: AtomicBool::new(false),
                hooks: Hooks::default(),
            }),
            hold: Some(Hold::Root(hold)),
        };
        db.inner.roots.add(guard.frame());
        guard
    }
}
