//! `Database::activity()`: what every open transaction of a database is doing right now, as
//! a tree a person can read in a log when a service stalls.
//!
//! Inside one transaction the open frames form a chain (the root, the savepoint holding its
//! turn, the savepoint holding that one's turn, ...): savepoints are taken in turn, so at
//! most one child of a frame is open at a time. Each frame also counts the tasks queued for
//! its turn — the savepoints and statements waiting behind the open one.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::frame::Frame;

/// The open transactions of a database, from [`Database::activity`](crate::Database::activity).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Activity {
    /// Every open outermost transaction, oldest first.
    pub transactions: Vec<FrameActivity>,
}

/// One open frame: an outermost transaction or a savepoint.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FrameActivity {
    /// The frame's process-unique id (as in errors and tracing spans).
    pub id: u64,
    /// Its `name = ..`, if any.
    pub name: Option<&'static str>,
    /// 0 for a transaction, 1 for a savepoint directly under it, ...
    pub depth: u32,
    /// Where the block was written (`file:line`), when known.
    pub opened_at: Option<String>,
    /// How long it has been open.
    pub age: Duration,
    /// Statements run in it so far.
    pub statements: u64,
    /// Tasks waiting for its turn now (savepoints and statements queued behind `open`).
    pub waiting_for_turn: u32,
    /// The savepoint that holds its turn now, if any.
    pub open: Option<Box<FrameActivity>>,
}

impl FrameActivity {
    fn of(frame: &Frame) -> Self {
        FrameActivity {
            id: frame.id,
            name: frame.name,
            depth: frame.depth,
            opened_at: frame
                .opened_at
                .map(|at| format!("{}:{}", at.file(), at.line())),
            age: frame.opened.elapsed(),
            statements: frame.statements.load(std::sync::atomic::Ordering::Relaxed),
            waiting_for_turn: frame.waiters.load(std::sync::atomic::Ordering::Relaxed),
            open: frame
                .open_child()
                .map(|child| Box::new(FrameActivity::of(&child))),
        }
    }
}

impl fmt::Display for Activity {
    /// One line per frame, savepoints indented under the frame whose turn they hold.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.transactions.is_empty() {
            return write!(f, "no open transactions");
        }
        for (i, root) in self.transactions.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let mut at = Some(root);
            let mut first = true;
            while let Some(frame) = at {
                if !first {
                    writeln!(f)?;
                }
                first = false;
                write!(f, "{frame}")?;
                at = frame.open.as_deref();
            }
        }
        Ok(())
    }
}

impl fmt::Display for FrameActivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.depth == 0 {
            "transaction"
        } else {
            "savepoint"
        };
        write!(
            f,
            "{:indent$}{kind} #{}",
            "",
            self.id,
            indent = 2 * self.depth as usize
        )?;
        if let Some(name) = self.name {
            write!(f, " `{name}`")?;
        }
        if let Some(at) = &self.opened_at {
            write!(f, " opened at {at}")?;
        }
        write!(
            f,
            ", open {:.1?}, {} statement{}",
            self.age,
            self.statements,
            if self.statements == 1 { "" } else { "s" }
        )?;
        if self.waiting_for_turn > 0 {
            write!(f, ", {} waiting for its turn", self.waiting_for_turn)?;
        }
        if let Some(open) = &self.open {
            write!(f, ", its turn held by savepoint #{}", open.id)?;
        }
        Ok(())
    }
}

/// The open outermost transactions of a database (weak: a transaction is not kept alive by
/// being listed).
#[derive(Default)]
pub(crate) struct Roots(Mutex<Vec<Weak<Frame>>>);

impl Roots {
    /// A transaction began: list it (and forget those that ended).
    pub(crate) fn add(&self, root: &Arc<Frame>) {
        let mut roots = self.0.lock().unwrap_or_else(|p| p.into_inner());
        roots.retain(|r| r.upgrade().is_some_and(|r| !r.is_closed()));
        roots.push(Arc::downgrade(root));
    }

    pub(crate) fn snapshot(&self) -> Activity {
        let roots: Vec<Arc<Frame>> = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|r| !r.is_closed())
            .collect();
        Activity {
            transactions: roots.iter().map(|r| FrameActivity::of(r)).collect(),
        }
    }
}
