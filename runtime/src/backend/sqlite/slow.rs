//! Noticing a statement that holds an executor thread for long.
//!
//! Statements run on the calling task's thread (ARCHITECTURE.md §5): right for the ~1 µs
//! statements of a transaction, wrong for a report that scans for seconds, which stalls
//! every task queued on that tokio worker. `offload` moves such statements off the worker;
//! this watch finds the ones that were not marked, so the stall is found in production
//! rather than guessed at.
//!
//! SQLite calls a connection's progress handler every [`OPS`] virtual-machine steps. The
//! first call of a statement notes the time, and every 16th compares against it: a
//! statement of the usual kind never reaches a second call, and pays two stores at its
//! start. Past the threshold ([`THRESHOLD`] unless the builder says otherwise) the statement is marked, and once it has ended the runtime logs
//! it with its SQL, its frame and its duration.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Virtual-machine steps between two calls of the progress handler.
pub(crate) const OPS: i32 = 10_000;

/// By default, a statement running longer than this on an executor thread is logged
/// (`DatabaseBuilder::slow_statement`).
pub(crate) const THRESHOLD: Duration = Duration::from_millis(100);

/// The progress of the statement running on one connection.
pub(crate) struct SlowWatch {
    ticks: AtomicU32,
    /// When the first tick came, in nanoseconds since [`origin`].
    since: AtomicU64,
    slow: AtomicBool,
    threshold_nanos: AtomicU64,
}

impl Default for SlowWatch {
    fn default() -> Self {
        SlowWatch {
            ticks: AtomicU32::new(0),
            since: AtomicU64::new(0),
            slow: AtomicBool::new(false),
            threshold_nanos: AtomicU64::new(THRESHOLD.as_nanos() as u64),
        }
    }
}

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl SlowWatch {
    /// Statements running longer than `threshold` are reported.
    pub(crate) fn set_threshold(&self, threshold: Duration) {
        let nanos = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
        self.threshold_nanos.store(nanos, Ordering::Relaxed);
    }

    /// A statement starts.
    #[inline]
    pub(crate) fn reset(&self) {
        self.ticks.store(0, Ordering::Relaxed);
        self.slow.store(false, Ordering::Relaxed);
    }

    /// The progress handler. Returns `false`: never interrupts the statement.
    pub(crate) fn tick(&self) -> bool {
        let ticks = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        if ticks == 1 {
            self.since.store(now_nanos(), Ordering::Relaxed);
        } else if ticks % 16 == 0 && !self.slow.load(Ordering::Relaxed) {
            let elapsed = now_nanos().saturating_sub(self.since.load(Ordering::Relaxed));
            if elapsed >= self.threshold_nanos.load(Ordering::Relaxed) {
                self.slow.store(true, Ordering::Relaxed);
            }
        }
        false
    }

    /// The statement has ended: how long it ran, if it passed the threshold (measured from
    /// its first progress call, so a little less than the whole).
    #[inline]
    pub(crate) fn slow_for(&self) -> Option<Duration> {
        if !self.slow.load(Ordering::Relaxed) {
            return None;
        }
        let elapsed = now_nanos().saturating_sub(self.since.load(Ordering::Relaxed));
        Some(Duration::from_nanos(elapsed))
    }
}
