//! Bounded waits and sleeps that need no tokio time driver, and cost nothing until a wait
//! actually waits.
//!
//! Every wait in the library ends (ARCHITECTURE.md §2.6 and §6: turns, the writer lock, readers and the
//! frame's `timeout`). tokio's timers panic on a runtime built without `enable_time` — inside
//! the library, and only under contention. A general-purpose timer that works anywhere
//! (`futures-timer`) wakes its helper thread for every timer it arms, and a task group's
//! children queue for their parent's turn all the time: that cost a cross-thread wake-up
//! per child (W3: about +1 µs a child, measured).
//!
//! So waits register with one *watchdog* thread, and only once the awaited future has
//! returned `Pending` (an uncontended lock never registers). Registering takes a mutex and
//! pushes an entry; the watchdog is woken only when the new deadline is earlier than the one
//! it sleeps until, which for the usual 30 s bounds is almost never. When a deadline passes,
//! the watchdog marks the entry and wakes its task, which then reports [`Elapsed`].

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// The wait passed its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// Sleeps for `duration`.
pub(crate) async fn sleep(duration: Duration) {
    let _ = within(duration, std::future::pending::<()>()).await;
}

/// Runs `fut` until `limit` has passed.
pub(crate) async fn within<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let deadline = Instant::now().checked_add(limit).unwrap_or_else(far_future);
    until(Some(deadline), fut).await
}

/// Runs `fut` until `deadline`, or without a limit when there is none.
pub(crate) async fn until<F: Future>(
    deadline: Option<Instant>,
    fut: F,
) -> Result<F::Output, Elapsed> {
    let Some(deadline) = deadline else {
        return Ok(fut.await);
    };
    let mut fut = pin!(fut);
    let mut registration = Registration(None);
    poll_fn(|cx| {
        if let Poll::Ready(output) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match registration.0 {
            None if Instant::now() >= deadline => return Poll::Ready(Err(Elapsed)),
            None => registration.0 = Some(watchdog().register(deadline, cx.waker())),
            Some(id) if watchdog().fired(id, cx.waker()) => return Poll::Ready(Err(Elapsed)),
            Some(_) => {}
        }
        Poll::Pending
    })
    .await
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// A wait registered with the watchdog; dropping it (the wait ended, or was cancelled)
/// removes the entry.
struct Registration(Option<usize>);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            watchdog().lock().remove(slot);
        }
    }
}

struct Watchdog {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Waits registered so far, for tests.
    registered: u64,
    /// The registered waits, by slot; a wait's id is its slot.
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// When the watchdog thread wakes next, if it sleeps.
    wakes_at: Option<Instant>,
}

impl State {
    fn insert(&mut self, entry: Entry) -> usize {
        self.registered += 1;
        match self.free.pop() {
            Some(slot) => {
                self.entries[slot] = Some(entry);
                slot
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) {
        if self.entries[slot].take().is_some() {
            self.free.push(slot);
        }
    }
}

struct Entry {
    deadline: Instant,
    waker: Waker,
    fired: bool,
}

/// How long the watchdog sleeps when nothing is registered (or nothing is due sooner):
/// registrations whose deadline is later than its wake-up need not wake it.
const IDLE: Duration = Duration::from_secs(1);

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let watchdog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("transactional-watchdog".into())
            .spawn(move || watchdog.run())
            .expect("could not start the thread that ends the library's bounded waits");
        watchdog
    })
}

impl Watchdog {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, deadline: Instant, waker: &Waker) -> usize {
        let mut state = self.lock();
        let slot = state.insert(Entry {
            deadline,
            waker: waker.clone(),
            fired: false,
        });
        if state.wakes_at.is_none_or(|at| deadline < at) {
            self.changed.notify_one();
        }
        slot
    }

    /// Whether the wait in `slot` has passed its deadline; otherwise remembers `waker`.
    fn fired(&self, slot: usize, waker: &Waker) -> bool {
        let mut state = self.lock();
        match state.entries[slot].as_mut() {
            Some(entry) if entry.fired => true,
            Some(entry) => {
                if !entry.waker.will_wake(waker) {
                    entry.waker = waker.clone();
                }
                false
            }
            None => true,
        }
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let mut next = now + IDLE;
            for entry in state.entries.iter_mut().flatten().filter(|e| !e.fired) {
                if entry.deadline <= now {
                    entry.fired = true;
                    entry.waker.wake_by_ref();
                } else {
                    next = next.min(entry.deadline);
                }
            }
            state.wakes_at = Some(next);
            state = self
                .changed
                .wait_timeout(state, next.saturating_duration_since(now))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            state.wakes_at = None;
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
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(20), "{waited:?}");
            assert!(waited < Duration::from_millis(500), "{waited:?}");
            assert_eq!(within(Duration::from_secs(5), async { 7 }).await, Ok(7));
            let start = Instant::now();
            sleep(Duration::from_millis(5)).await;
            assert!(start.elapsed() >= Duration::from_millis(5));
            assert_eq!(until(None, async { 1 }).await, Ok(1));
            let past = Some(Instant::now());
            assert_eq!(
                until(past, std::future::pending::<()>()).await,
                Err(Elapsed)
            );
        });
    }

    /// A wait that waits registers, and its result comes back when its future is ready.
    #[test]
    fn a_wait_that_waits_registers_and_returns_the_result() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let before = watchdog().lock().registered;
            assert_eq!(within(Duration::from_secs(30), async { 1 }).await, Ok(1));
            let (tx, rx) = tokio::sync::oneshot::channel();
            let waiter = tokio::spawn(within(Duration::from_secs(30), rx));
            tokio::task::yield_now().await;
            tx.send(5).unwrap();
            assert_eq!(waiter.await.unwrap().map(Result::unwrap), Ok(5));
            assert!(watchdog().lock().registered > before, "the wait registered");
        });
    }

    /// Many short waits at once each end near their own deadline.
    #[test]
    fn concurrent_waits_each_end_at_their_deadline() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(async {
            let waits = (1..=20u64).map(|ms| {
                tokio::spawn(async move {
                    let start = Instant::now();
                    let r =
                        within(Duration::from_millis(ms * 5), std::future::pending::<()>()).await;
                    (ms * 5, start.elapsed(), r)
                })
            });
            for wait in waits.collect::<Vec<_>>() {
                let (ms, took, result) = wait.await.unwrap();
                assert_eq!(result, Err(Elapsed));
                assert!(took >= Duration::from_millis(ms), "{ms} ms took {took:?}");
                assert!(
                    took < Duration::from_millis(ms + 400),
                    "{ms} ms took {took:?}"
                );
            }
        });
    }
}
