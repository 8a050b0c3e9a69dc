//! `Database::stats()`: cheap counters of what a database's frames did and are waiting for.
//!
//! The hot path pays one relaxed atomic add per frame end. Waits are counted only where a
//! frame actually has to queue (a contended turn, the writer, a reader, a pooled
//! connection), and registered in one of a fixed set of atomic slots — no lock, no
//! allocation — so that a snapshot can say how many frames wait now and for how long the
//! longest has. (A task group's children queue for their parent's turn one after another,
//! so this path is taken once per child: a registry behind a mutex cost W3 5 % more
//! instructions.)

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Waits whose start is kept for `longest_current_wait`; more at once are still counted.
const SLOTS: usize = 64;

/// The upper bounds of the wait-time histogram's buckets; the last bucket has none.
const BUCKETS: [Duration; 7] = [
    Duration::from_micros(100),
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(10),
    Duration::from_secs(60),
];

/// What a frame waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitKind {
    /// The turn of its frame or parent frame (a savepoint of a sibling is open).
    Turn,
    /// What an outermost transaction needs to begin: SQLite's writer, a reader connection,
    /// a pooled PostgreSQL connection.
    Begin,
}

pub(crate) struct Counters {
    committed: AtomicU64,
    rolled_back: AtomicU64,
    released: AtomicU64,
    savepoints_rolled_back: AtomicU64,
    retries: AtomicU64,
    contended: AtomicU64,
    timed_out: AtomicU64,
    deadlocks: AtomicU64,
    histogram: [AtomicU64; BUCKETS.len() + 1],
    waiting_turn: AtomicU64,
    waiting_begin: AtomicU64,
    /// Start of a wait in progress, in nanoseconds since `origin` plus one; 0 when free.
    slots: [AtomicU64; SLOTS],
    origin: Instant,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            committed: AtomicU64::new(0),
            rolled_back: AtomicU64::new(0),
            released: AtomicU64::new(0),
            savepoints_rolled_back: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            contended: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            deadlocks: AtomicU64::new(0),
            histogram: Default::default(),
            waiting_turn: AtomicU64::new(0),
            waiting_begin: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            origin: Instant::now(),
        }
    }
}

impl Counters {
    /// A frame ended.
    #[inline]
    pub(crate) fn frame_ended(&self, root: bool, committed: bool) {
        let counter = match (root, committed) {
            (true, true) => &self.committed,
            (true, false) => &self.rolled_back,
            (false, true) => &self.released,
            (false, false) => &self.savepoints_rolled_back,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A bounded wait ran out (the `Busy` error that names the holder).
    pub(crate) fn timed_out(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// A wait that could never end was reported (`Deadlock`).
    pub(crate) fn deadlock(&self) {
        self.deadlocks.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame starts to queue for `kind`; the wait ends when the guard drops.
    pub(crate) fn waiting(&self, kind: WaitKind) -> WaitGuard<'_> {
        let n = self.contended.fetch_add(1, Ordering::Relaxed);
        self.gauge(kind).fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let stamp = started.saturating_duration_since(self.origin).as_nanos() as u64 + 1;
        // A free slot, from a place that differs wait by wait; none is fine (only the
        // longest wait then misses this one).
        let slot = (0..SLOTS).map(|i| (n as usize + i) % SLOTS).find(|&i| {
            self.slots[i]
                .compare_exchange(0, stamp, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        });
        WaitGuard {
            counters: self,
            kind,
            slot,
            started,
        }
    }

    fn gauge(&self, kind: WaitKind) -> &AtomicU64 {
        match kind {
            WaitKind::Turn => &self.waiting_turn,
            WaitKind::Begin => &self.waiting_begin,
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let now = Instant::now()
            .saturating_duration_since(self.origin)
            .as_nanos() as u64
            + 1;
        let longest = self
            .slots
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|&stamp| stamp != 0)
            .map(|stamp| Duration::from_nanos(now.saturating_sub(stamp)))
            .max();
        let (turn, begin) = (
            self.waiting_turn.load(Ordering::Relaxed),
            self.waiting_begin.load(Ordering::Relaxed),
        );
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            transactions_committed: get(&self.committed),
            transactions_rolled_back: get(&self.rolled_back),
            savepoints_released: get(&self.released),
            savepoints_rolled_back: get(&self.savepoints_rolled_back),
            retries: get(&self.retries),
            contended_waits: get(&self.contended),
            waits_timed_out: get(&self.timed_out),
            deadlocks: get(&self.deadlocks),
            waiting_for_turn: turn,
            waiting_to_begin: begin,
            longest_current_wait: longest,
            wait_histogram: WaitHistogram {
                counts: std::array::from_fn(|i| get(&self.histogram[i])),
            },
            round_trips: 0, // filled in by the backend (`Database::stats`)
        }
    }
}

/// A wait in progress; recorded in the histogram when it ends (however it ends).
pub(crate) struct WaitGuard<'a> {
    counters: &'a Counters,
    kind: WaitKind,
    slot: Option<usize>,
    started: Instant,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let waited = self.started.elapsed();
        if let Some(slot) = self.slot {
            self.counters.slots[slot].store(0, Ordering::Relaxed);
        }
        self.counters
            .gauge(self.kind)
            .fetch_sub(1, Ordering::Relaxed);
        let bucket = BUCKETS
            .iter()
            .position(|bound| waited < *bound)
            .unwrap_or(BUCKETS.len());
        self.counters.histogram[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of a database's counters, from [`Database::stats`](crate::Database::stats).
///
/// Counts are since the database was opened. `Display` prints it on a few lines.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Outermost transactions that committed.
    pub transactions_committed: u64,
    /// Outermost transactions that rolled back (for any reason).
    pub transactions_rolled_back: u64,
    /// Savepoints released into their parent.
    pub savepoints_released: u64,
    /// Savepoints rolled back.
    pub savepoints_rolled_back: u64,
    /// Outermost transactions re-run by `retries`.
    pub retries: u64,
    /// Waits that had to queue: for a turn, the writer, a reader or a pooled connection.
    pub contended_waits: u64,
    /// Bounded waits that ran out and were reported as [`Error::Busy`](crate::Error::Busy)
    /// naming the holder.
    pub waits_timed_out: u64,
    /// Waits that could never have ended, reported as
    /// [`Error::Deadlock`](crate::Error::Deadlock).
    pub deadlocks: u64,
    /// Frames waiting for a turn right now.
    pub waiting_for_turn: u64,
    /// Outermost transactions waiting to begin right now (for the writer, a reader, a
    /// pooled connection).
    pub waiting_to_begin: u64,
    /// How long the longest of the waits in progress has waited so far.
    pub longest_current_wait: Option<Duration>,
    /// How long the contended waits that ended took.
    pub wait_histogram: WaitHistogram,
    /// Messages the library sent to a database server and awaited the reply of: a
    /// PostgreSQL round trip each (0 on SQLite, which has no server). A statement is one;
    /// the library's BEGIN, SAVEPOINT and RELEASE travel with the statements around them and
    /// add none; a statement's first use on a connection adds one (its PREPARE), as does the
    /// pool's check of a connection it hands out. What a `Tx::postgres` closure sends itself
    /// is not counted.
    pub round_trips: u64,
}

/// Finished contended waits by duration: under 100 µs, 1 ms, 10 ms, 100 ms, 1 s, 10 s,
/// 60 s, and longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitHistogram {
    counts: [u64; BUCKETS.len() + 1],
}

impl WaitHistogram {
    /// Each bucket's upper bound (`None` for the last) and count, shortest first.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<Duration>, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, count)| (BUCKETS.get(i).copied(), *count))
    }

    /// The number of waits recorded.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "transactions: {} committed, {} rolled back ({} retries); savepoints: {} released, {} rolled back",
            self.transactions_committed,
            self.transactions_rolled_back,
            self.retries,
            self.savepoints_released,
            self.savepoints_rolled_back
        )?;
        write!(
            f,
            "waits: {} contended, {} timed out, {} deadlocks reported; now {} for a turn, {} to begin",
            self.contended_waits,
            self.waits_timed_out,
            self.deadlocks,
            self.waiting_for_turn,
            self.waiting_to_begin
        )?;
        if let Some(longest) = self.longest_current_wait {
            write!(f, ", the longest for {longest:?}")?;
        }
        write!(f, "\nwait times:")?;
        for (bound, count) in self.wait_histogram.buckets() {
            match bound {
                Some(bound) => write!(f, " <{bound:?}: {count}")?,
                None => write!(f, " longer: {count}")?,
            }
        }
        if self.round_trips > 0 {
            write!(f, "\nround trips to the server: {}", self.round_trips)?;
        }
        Ok(())
    }
}
