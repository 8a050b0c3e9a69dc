//! `on_commit`: work that runs only once the outermost transaction has committed.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use crate::error::{Error, Result};

type Hook = Box<dyn FnOnce() + Send + 'static>;

/// The hooks registered in one frame (and in its children that have been released into it);
/// `None` once the frame has ended, so a late registration is an error, not a hook that
/// silently never runs.
pub(crate) struct Hooks(Mutex<Option<Vec<Hook>>>);

impl Default for Hooks {
    fn default() -> Self {
        Hooks(Mutex::new(Some(Vec::new())))
    }
}

impl Hooks {
    fn push(&self, hook: Hook) -> std::result::Result<(), ()> {
        match &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(hooks) => {
                hooks.push(hook);
                Ok(())
            }
            None => Err(()),
        }
    }

    /// The frame ends: takes its hooks out; later registrations fail.
    pub(crate) fn close(&self) -> Vec<Hook> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default()
    }

    /// A child was released into this frame: its hooks now belong here.
    pub(crate) fn extend(&self, hooks: Vec<Hook>) {
        if hooks.is_empty() {
            return;
        }
        if let Some(mine) = &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            mine.extend(hooks);
        }
    }
}

/// The hooks of an outermost transaction that has committed. They run exactly once: by
/// [`Committed::run`] on the task that committed, or — if that task was dropped while its
/// COMMIT ran — when this is dropped, wherever that is.
pub(crate) struct Committed {
    hooks: Vec<Hook>,
    frame_id: u64,
}

impl Committed {
    pub(crate) fn new(hooks: Vec<Hook>, frame_id: u64) -> Self {
        Committed { hooks, frame_id }
    }

    /// Runs every hook in registration order. A hook that panics does not undo the commit
    /// and does not stop the hooks after it; once all have run, the first panic resumes here.
    pub(crate) fn run(mut self) {
        let hooks = std::mem::take(&mut self.hooks);
        if let Some(panic) = run_all(hooks, self.frame_id) {
            resume_unwind(panic);
        }
    }
}

impl Drop for Committed {
    fn drop(&mut self) {
        // Nobody is left to resume a panic on: it is logged.
        let _ = run_all(std::mem::take(&mut self.hooks), self.frame_id);
    }
}

fn run_all(hooks: Vec<Hook>, frame_id: u64) -> Option<Box<dyn Any + Send>> {
    let mut first_panic = None;
    for hook in hooks {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(hook)) {
            tracing::error!(
                transaction = frame_id,
                "an on_commit hook panicked; the transaction stays committed and the hooks \
                 after it still run"
            );
            first_panic.get_or_insert(panic);
        }
    }
    first_panic
}

/// Registers `hook` to run after the outermost transaction of the current task commits.
///
/// The hook is dropped without running if the frame that registered it, or any frame
/// around it, rolls back. Hooks run in registration order, on the task that commits, after
/// the commit has succeeded and the database's writer lock has been released. A hook that
/// panics does not undo the commit and does not stop the hooks after it: every hook runs,
/// each panic is logged, and the first one resumes on the committing task once all have run.
/// (If that task was cancelled while its COMMIT ran on a blocking thread, the hooks run
/// there and panics are only logged.)
///
/// Fails with [`Error::NoTransaction`] outside a transaction, and with
/// [`Error::TransactionClosed`] when the current frame has already ended (a task that
/// outlived the frame it was spawned in).
pub fn on_commit(hook: impl FnOnce() + Send + 'static) -> Result<()> {
    crate::context::with_current(|current| match current {
        Some(current) => {
            let frame = &current.frame;
            if frame.is_closed() || frame.hooks.push(Box::new(hook)).is_err() {
                return Err(Error::TransactionClosed(frame.to_string()));
            }
            Ok(())
        }
        None => Err(Error::NoTransaction),
    })
}
