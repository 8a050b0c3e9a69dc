//! `retries`: re-running an outermost transaction that failed with a transient error.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{wait_clock, Atomic, Plan};
use crate::error::Error;
use crate::frame::FrameGuard;

impl Atomic {
    /// Like [`run`](Atomic::run), but `make_body` builds the body afresh for each attempt, so
    /// an outermost transaction that fails with a transient error (busy/locked) is rolled
    /// back and run again, up to [`retries`](Atomic::retries) more times, with jittered
    /// exponential backoff. Inside an enclosing transaction the body runs once and the
    /// failure goes up to the outermost transaction, which alone can be re-run.
    pub async fn run_retrying<M, F, T, E>(self, mut make_body: M) -> Result<T, E>
    where
        M: FnMut() -> F,
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let mut attempt = 0;
        loop {
            let plan = self.plan()?;
            let Plan::Begin(db) = plan else {
                return self.clone().run(make_body()).await;
            };
            let asked = wait_clock();
            let outcome = match FrameGuard::begin(&db, self.begin, self.spec()).await {
                Ok(guard) => {
                    let txn = guard.frame().txn.clone();
                    let result = self.clone().run_in_frame(guard, asked, make_body()).await;
                    let transient = txn.saw_transient.load(Ordering::Acquire);
                    match result {
                        Err(err) if transient => Err(err),
                        other => return other,
                    }
                }
                Err(err) if err.is_transient() => Err(E::from(err)),
                Err(err) => return Err(err.into()),
            };
            if attempt >= self.retries {
                return outcome;
            }
            attempt += 1;
            tracing::debug!(
                attempt,
                db = db.label(),
                "transient failure; retrying the transaction"
            );
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

/// Exponential backoff from 5 ms, capped at 1 s, with full jitter.
fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_millis(5 << attempt.min(8)).min(Duration::from_secs(1));
    ceiling.mul_f64(fastrand::f64())
}
