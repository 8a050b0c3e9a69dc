//! `on_commit`: work that runs only once the outermost transaction has committed.

use std::sync::Mutex;

use crate::error::{Error, Result};

type Hook = Box<dyn FnOnce() + Send + 'static>;

/// The hooks registered in one frame (and in its children that have been released into it).
#[derive(Default)]
pub(crate) struct Hooks(Mutex<Vec<Hook>>);

/// Hooks taken out of a frame that has ended.
pub(crate) struct HookList(Vec<Hook>);

impl Hooks {
    fn push(&self, hook: Hook) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(hook);
    }

    pub(crate) fn take(&self) -> HookList {
        HookList(std::mem::take(
            &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }

    pub(crate) fn extend(&self, list: HookList) {
        if !list.0.is_empty() {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(list.0);
        }
    }
}

impl HookList {
    /// Runs the hooks in registration order.
    pub(crate) fn run(self) {
        for hook in self.0 {
            hook();
        }
    }
}

/// Registers `hook` to run after the outermost transaction of the current task commits.
///
/// The hook is dropped without running if the frame that registered it, or any frame
/// around it, rolls back. Hooks run in registration order, on the task that commits, after
/// the commit has succeeded and the database's writer lock has been released.
///
/// Fails with [`Error::NoTransaction`] outside a transaction.
pub fn on_commit(hook: impl FnOnce() + Send + 'static) -> Result<()> {
    crate::context::with_current(|frame| match frame {
        Some(frame) => {
            frame.hooks.push(Box::new(hook));
            Ok(())
        }
        None => Err(Error::NoTransaction),
    })
}
