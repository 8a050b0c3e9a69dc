//! `retries`: re-running an outermost transaction that failed with a transient error.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{wait_clock, Atomic, Plan};
use crate::error::{Error, Result};
use crate::frame::Deadline;

impl Atomic {
    /// Like [`run`](Atomic::run), but `make_body` builds the body afresh for each attempt, so
    /// an outermost transaction that fails with a transient error (busy/locked) is rolled
    /// back and run again, up to [`retries`](Atomic::retries) more times, with jittered
    /// exponential backoff. Inside an enclosing transaction the body runs once and the
    /// failure goes up to the outermost transaction, which alone can be re-run.
    ///
    /// An attempt is re-run only when the error that ended it is transient. The body's error
    /// type is generic here, so that is judged by the last statement the body ran: it failed
    /// with a transient error. (`#[transactional(retries = N)]` looks at the error itself
    /// when it is a [`transactional::Error`](Error), or any `std::error::Error`: transient when
    /// its `source()` chain holds a transient `transactional::Error`.)
    pub async fn run_retrying<M, F, T, E>(self, make_body: M) -> Result<T, E>
    where
        M: FnMut() -> F,
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        self.retry(make_body, |_: &E| None).await
    }

    /// [`run_retrying`](Atomic::run_retrying) with `classify` saying whether an error of the
    /// body is transient, where it can tell (`None` where it cannot).
    pub(crate) async fn retry<M, F, T, E>(
        self,
        mut make_body: M,
        classify: impl Fn(&E) -> Option<bool>,
    ) -> Result<T, E>
    where
        M: FnMut() -> F,
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let mut retry = Retry::new(self);
        loop {
            if let ControlFlow::Break(result) = retry.attempt(make_body(), &classify).await {
                return result;
            }
        }
    }
}

/// The state of a retried transaction between attempts, for a caller that makes each
/// attempt's body itself: `#[transactional(retries = N)]` builds it in the fn's own body, so
/// that the body can borrow the arguments uniquely (a closure making bodies can only lend
/// them shared, which makes the future `!Send` for a `Send + !Sync` argument).
#[doc(hidden)]
#[derive(Debug)]
pub struct Retry {
    atomic: Atomic,
    attempt: u32,
}

impl Retry {
    pub fn new(atomic: Atomic) -> Self {
        Retry { atomic, attempt: 0 }
    }

    /// Runs one attempt with `body`: `Break` with the result when it is final (success, a
    /// failure that is not transient, the last attempt, or no transaction of its own to
    /// re-run), `Continue` after the backoff when another attempt should follow.
    pub async fn attempt<F, T, E>(
        &mut self,
        body: F,
        classify: impl Fn(&E) -> Option<bool>,
    ) -> ControlFlow<Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let atomic = &self.atomic;
        let plan = match atomic.plan() {
            Ok(plan) => plan,
            Err(err) => return ControlFlow::Break(Err(err.into())),
        };
        if !matches!(plan, Plan::Begin(..)) {
            return ControlFlow::Break(atomic.clone().run(body).await);
        }
        let Plan::Begin(db, _) = &plan else {
            unreachable!()
        };
        let db = db.clone();
        let deadline = atomic.timeout.map(Deadline::after);
        let asked = wait_clock();
        let outcome = match atomic.open(plan, deadline).await {
            Ok(guard) => {
                let txn = guard.frame().txn.clone();
                let result = atomic.run_in_frame(guard, asked, body, deadline).await;
                let transient = match &result {
                    Ok(_) => false,
                    Err(err) => {
                        classify(err).unwrap_or_else(|| txn.last_transient.load(Ordering::Acquire))
                    }
                };
                if !transient {
                    return ControlFlow::Break(result);
                }
                result
            }
            Err(err) if err.is_transient() => Err(E::from(err)),
            Err(err) => return ControlFlow::Break(Err(err.into())),
        };
        if self.attempt >= atomic.retries {
            return ControlFlow::Break(outcome);
        }
        self.attempt += 1;
        db.inner.stats.retried();
        tracing::debug!(
            attempt = self.attempt,
            db = db.label(),
            "transient failure; retrying the transaction"
        );
        crate::wait::sleep(backoff(self.attempt)).await;
        ControlFlow::Continue(())
    }
}

/// Whether an error of a `#[transactional(retries = N)]` body is transient, for the error
/// types the attribute can look into: [`Error`] itself, and error types whose `source()`
/// chain holds one. `None` for any other type: the last statement decides.
///
/// Method resolution picks the most specific of three impls for the concrete error type the
/// attribute names (the inherent one, then [`ViaSource`], then [`Unknown`]).
#[doc(hidden)]
#[derive(Debug)]
pub struct Probe<'a, E>(pub &'a E);

impl Probe<'_, Error> {
    #[doc(hidden)]
    pub fn transient(self) -> Option<bool> {
        Some(self.0.is_transient())
    }
}

/// See [`Probe`].
#[doc(hidden)]
pub trait ViaSource {
    #[doc(hidden)]
    fn transient(self) -> Option<bool>;
}

impl<E: std::error::Error + 'static> ViaSource for Probe<'_, E> {
    fn transient(self) -> Option<bool> {
        let mut at: Option<&(dyn std::error::Error + 'static)> = Some(self.0);
        while let Some(err) = at {
            if let Some(err) = err.downcast_ref::<Error>() {
                return Some(err.is_transient());
            }
            at = err.source();
        }
        // An error type that can say where it came from, and did not name the library: the
        // body's own failure.
        Some(false)
    }
}

/// See [`Probe`].
#[doc(hidden)]
pub trait Unknown {
    #[doc(hidden)]
    fn transient(&self) -> Option<bool>;
}

impl<E> Unknown for Probe<'_, E> {
    fn transient(&self) -> Option<bool> {
        None
    }
}

/// Exponential backoff from 5 ms, capped at 1 s, with full jitter.
fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_millis(5 << attempt.min(8)).min(Duration::from_secs(1));
    ceiling.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Wrapped {
        #[error("db: {0}")]
        Db(#[from] Error),
        #[error("domain")]
        Domain,
    }

    struct Opaque;

    fn busy() -> Error {
        Error::Busy {
            detail: String::new(),
            source: None,
        }
    }

    #[test]
    fn probe_classifies_the_library_error_wrapped_errors_and_nothing_else() {
        assert_eq!(Probe(&busy()).transient(), Some(true));
        assert_eq!(Probe(&Error::ReadOnly).transient(), Some(false));
        assert_eq!(Probe(&Wrapped::Db(busy())).transient(), Some(true));
        assert_eq!(Probe(&Wrapped::Domain).transient(), Some(false));
        assert_eq!(Probe(&Opaque).transient(), None);
    }
}
