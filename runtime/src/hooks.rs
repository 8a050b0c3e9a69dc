//! Hooks: `on_commit` work that runs once the outermost transaction has committed, and
//! `on_rollback` work that runs once the registering frame's work has been rolled back.
//!
//! Both follow the frame's work. A savepoint that is released hands its hooks to its parent
//! (its work is now the parent's); a frame that rolls back runs its `on_rollback` hooks and
//! drops its `on_commit` ones; the outermost commit runs the `on_commit` hooks and drops the
//! `on_rollback` ones.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use crate::error::{Error, Result};

type Hook = Box<dyn FnOnce() + Send + 'static>;

/// The hooks of one frame and of its children that have been released into it.
#[derive(Default)]
pub(crate) struct HookLists {
    commit: Vec<Hook>,
    rollback: Vec<Hook>,
}

impl HookLists {
    fn is_empty(&self) -> bool {
        self.commit.is_empty() && self.rollback.is_empty()
    }
}

/// The hooks registered in one frame.
///
/// Most frames register none, so the lists are allocated at the first registration: an
/// empty frame's hooks cost one word and nothing to drop (W1 measured the two eager lists
/// at ~45 instructions a nested call).
#[derive(Default)]
pub(crate) struct Hooks(Mutex<State>);

#[derive(Default)]
enum State {
    /// Open, nothing registered yet.
    #[default]
    Empty,
    Open(Box<HookLists>),
    /// The frame has ended: a late registration is an error, not a hook that silently
    /// never runs.
    Closed,
}

/// What a frame's end takes out of it: `None` when nothing was registered.
pub(crate) type Taken = Option<Box<HookLists>>;

impl Hooks {
    fn push(&self, hook: Hook, on: Outcome) -> std::result::Result<(), ()> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let State::Empty = *state {
            *state = State::Open(Box::default());
        }
        match &mut *state {
            State::Open(lists) => {
                match on {
                    Outcome::Commit => lists.commit.push(hook),
                    Outcome::Rollback => lists.rollback.push(hook),
                }
                Ok(())
            }
            State::Empty | State::Closed => Err(()),
        }
    }

    /// The frame ends: takes its hooks out; later registrations fail.
    pub(crate) fn close(&self) -> Taken {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *state, State::Closed) {
            State::Open(lists) => Some(lists),
            State::Empty | State::Closed => None,
        }
    }

    /// Takes the `on_commit` hooks registered so far out of the frame (a test transaction
    /// captures them instead of running them).
    pub(crate) fn take_commit(&self) -> Vec<Hook> {
        match &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Open(lists) => std::mem::take(&mut lists.commit),
            State::Empty | State::Closed => Vec::new(),
        }
    }

    /// A child was released into this frame: its hooks now belong here.
    pub(crate) fn extend(&self, hooks: Taken) {
        let Some(hooks) = hooks.filter(|hooks| !hooks.is_empty()) else {
            return;
        };
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *state {
            State::Open(mine) => {
                mine.commit.extend(hooks.commit);
                mine.rollback.extend(hooks.rollback);
            }
            // The child's lists move in whole.
            State::Empty => *state = State::Open(hooks),
            State::Closed => {}
        }
    }
}

/// Which hooks an ended frame runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Commit,
    Rollback,
}

/// The hooks to run once a frame has ended: the `on_commit` hooks of a committed outermost
/// transaction, or the `on_rollback` hooks of a frame that rolled back. They run exactly
/// once: by [`AfterEnd::run`] on the task that ended the frame, or — if that task is gone
/// (dropped while its COMMIT ran, a frame rolled back by its guard's drop) — when this is
/// dropped, wherever that is.
pub(crate) struct AfterEnd {
    hooks: Vec<Hook>,
    frame_id: u64,
    outcome: Outcome,
}

impl AfterEnd {
    /// What an ended frame runs, if anything: `None` for a released savepoint (its hooks
    /// went to its parent) and for a frame without hooks of that kind.
    pub(crate) fn of(hooks: Taken, frame_id: u64, outcome: Outcome) -> Option<Self> {
        let hooks = *hooks?;
        let hooks = match outcome {
            Outcome::Commit => hooks.commit,
            Outcome::Rollback => hooks.rollback,
        };
        (!hooks.is_empty()).then_some(AfterEnd {
            hooks,
            frame_id,
            outcome,
        })
    }

    /// Runs every hook in registration order. A hook that panics does not undo the commit
    /// (or the rollback) and does not stop the hooks after it; once all have run, the first
    /// panic resumes here.
    pub(crate) fn run(mut self) {
        let hooks = std::mem::take(&mut self.hooks);
        if let Some(panic) = run_all(hooks, self.frame_id, self.outcome) {
            resume_unwind(panic);
        }
    }
}

impl Drop for AfterEnd {
    fn drop(&mut self) {
        // Nobody is left to resume a panic on: it is logged.
        let _ = run_all(std::mem::take(&mut self.hooks), self.frame_id, self.outcome);
    }
}

fn run_all(hooks: Vec<Hook>, frame_id: u64, outcome: Outcome) -> Option<Box<dyn Any + Send>> {
    let mut first_panic = None;
    for hook in hooks {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(hook)) {
            match outcome {
                Outcome::Commit => tracing::error!(
                    frame = frame_id,
                    "an on_commit hook panicked; the transaction stays committed and the \
                     hooks after it still run"
                ),
                Outcome::Rollback => tracing::error!(
                    frame = frame_id,
                    "an on_rollback hook panicked; the hooks after it still run"
                ),
            }
            first_panic.get_or_insert(panic);
        }
    }
    first_panic
}

/// Registers `hook` to run after the outermost transaction of the current task commits.
///
/// The hook is dropped without running if the frame that registered it, or any frame
/// around it, rolls back. Hooks run in registration order, on the task that commits, after
/// the commit has succeeded and the connection has been given back (the database's writer
/// lock released). A hook that panics does not undo the commit and does not stop the hooks
/// after it: every hook runs, each panic is logged, and the first one resumes on the
/// committing task once all have run. (If that task was cancelled while its COMMIT ran, the
/// hooks run where the COMMIT ended and panics are only logged.)
///
/// Fails with [`Error::NoTransaction`] outside a transaction, and with
/// [`Error::TransactionClosed`] when the current frame has already ended (a task that
/// outlived the frame it was spawned in).
pub fn on_commit(hook: impl FnOnce() + Send + 'static) -> Result<()> {
    register(Box::new(hook), Outcome::Commit)
}

/// Registers `work` to be spawned as a task of its own once the outermost transaction of the
/// current task has committed: the async form of [`on_commit`], for hooks that await
/// (sending a message, calling a service).
///
/// The future is spawned on the runtime it was registered on, right after the commit; the
/// committing task does not wait for it, and a panic in it is that task's (it never reaches
/// the committing task, and never undoes the commit). Like `on_commit`, it is dropped
/// without running if the registering frame or any frame around it rolls back.
///
/// Fails like [`on_commit`]; also with [`Error::NoTransaction`] outside a tokio runtime.
pub fn on_commit_async(work: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoTransaction)?;
    on_commit(move || {
        runtime.spawn(work);
    })
}

/// Registers `hook` to run once the work of the current frame has been rolled back: after
/// the frame itself rolls back (its body failed or panicked, it was cancelled or timed out,
/// it was marked rollback-only), or, once it has been released into its parent, after the
/// frame that rolls back is one around it. Dropped without running when the outermost
/// transaction commits.
///
/// Hooks run in registration order, after the rollback, on the task that ended the frame;
/// a frame rolled back because its future was dropped runs them where the rollback happens
/// (a panic there is only logged). Panics follow [`on_commit`]'s rules: every hook runs and
/// the first panic resumes once all have run.
///
/// ```
/// # async fn demo() -> transactional::Result<()> {
/// let db = transactional::Database::open_in_memory().await?;
/// let result: transactional::Result<()> = transactional::Atomic::new()
///     .db(db)
///     .run(async {
///         transactional::on_rollback(|| eprintln!("the order was not placed"))?;
///         Err(transactional::Error::Unsupported("out of stock".into()))
///     })
///     .await;
/// assert!(result.is_err()); // the hook ran after the rollback
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
///
/// Fails like [`on_commit`] outside a transaction or in a frame that has ended.
pub fn on_rollback(hook: impl FnOnce() + Send + 'static) -> Result<()> {
    register(Box::new(hook), Outcome::Rollback)
}

fn register(hook: Hook, on: Outcome) -> Result<()> {
    crate::context::with_current(|current| match current {
        Some(current) => {
            let frame = &current.frame;
            if frame.is_closed() || frame.hooks.push(hook, on).is_err() {
                return Err(Error::TransactionClosed(frame.to_string()));
            }
            Ok(())
        }
        None => Err(Error::NoTransaction),
    })
}
