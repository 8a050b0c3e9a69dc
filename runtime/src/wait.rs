//! Bounded waits and sleeps that need no tokio time driver.
//!
//! Every wait in the library ends (DESIGN §2.6 and §6: turns, the writer lock, readers and the
//! frame's `timeout`). tokio's timers panic on a runtime built without `enable_time`, inside
//! the library and only under contention — the worst moment to find out. These use
//! `futures-timer`, whose one helper thread serves any executor, and they are only set up on
//! paths that already wait (a contended lock, a frame with a `timeout`), never on the hot path.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};

/// The wait passed its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// Sleeps for `duration`.
pub(crate) async fn sleep(duration: Duration) {
    futures_timer::Delay::new(duration).await
}

/// Runs `fut` until `limit` has passed.
pub(crate) async fn within<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let fut = pin!(fut);
    match select(fut, futures_timer::Delay::new(limit)).await {
        Either::Left((output, _)) => Ok(output),
        Either::Right(((), _)) => Err(Elapsed),
    }
}

/// Runs `fut` until `deadline`, or without a limit when there is none.
pub(crate) async fn until<F: Future>(
    deadline: Option<Instant>,
    fut: F,
) -> Result<F::Output, Elapsed> {
    match deadline {
        None => Ok(fut.await),
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            within(left, fut).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason this module exists: on a runtime without tokio's time driver, waits still
    /// end (tokio's own timers would panic here).
    #[test]
    fn waits_end_on_a_runtime_without_the_time_driver() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let start = Instant::now();
            assert_eq!(
                within(Duration::from_millis(20), std::future::pending::<()>()).await,
                Err(Elapsed)
            );
            assert!(start.elapsed() >= Duration::from_millis(20));
            assert_eq!(within(Duration::from_secs(5), async { 7 }).await, Ok(7));
            sleep(Duration::from_millis(1)).await;
            assert_eq!(until(None, async { 1 }).await, Ok(1));
            let past = Some(Instant::now());
            assert_eq!(
                until(past, std::future::pending::<()>()).await,
                Err(Elapsed)
            );
        });
    }
}
