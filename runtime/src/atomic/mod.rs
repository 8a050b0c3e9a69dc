//! The block form: `atomic(async { .. })` and the `Atomic` builder. `#[transactional]`
//! expands to it.

pub(crate) mod retry;

use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, Either};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::backend::{check_no_self_wait, Begin};
use crate::context::{self, Current};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::frame::{Deadline, Frame, FrameGuard, FrameSpec, Outcome};
use crate::wait;

/// How a frame relates to the transaction it is called in (`propagation = ..`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Propagation {
    /// A savepoint inside a transaction; a new transaction outside one (the default).
    #[default]
    Nested,
    /// Run in the enclosing frame without a savepoint. A failure (an `Err`, a panic, a
    /// cancellation, a timeout) marks that frame rollback-only: it refuses further
    /// statements, rolls back when it ends and reports [`Error::RollbackOnly`] — a savepoint
    /// around it contains the failure, the rest of the transaction goes on. Outside a
    /// transaction: begins one.
    Join,
    /// Like `Nested`, but outside a transaction fails with [`Error::NoTransaction`].
    Mandatory,
    /// An independent transaction. On SQLite a second write transaction on the database the
    /// task is already writing to would wait for itself, so that is an error.
    RequiresNew,
}

/// The isolation level of an outermost transaction (`isolation = ..`).
///
/// On PostgreSQL it is the `ISOLATION LEVEL` of the transaction's `BEGIN` (without it, the
/// server's default). SQLite transactions are always serializable, which satisfies every
/// level: there it is accepted and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Isolation {
    /// Each statement sees what was committed before it began.
    ReadCommitted,
    /// The transaction sees one snapshot.
    RepeatableRead,
    /// The transaction behaves as if it ran alone.
    Serializable,
}

/// Options for one transactional block; [`Atomic::run`] runs a future in it.
///
/// ```
/// # async fn demo() -> Result<(), transactional::Error> {
/// use transactional::{Atomic, Database, Propagation};
/// let db = Database::open_in_memory().await?;
/// let n: i64 = Atomic::new()
///     .db(db.clone())
///     .run(async {
///         let tx = transactional::current()?;
///         tx.execute_batch("CREATE TABLE t(x)").await?;
///         tx.execute("INSERT INTO t VALUES (?1)", (1,)).await?;
///         tx.query_row("SELECT count(*) FROM t", ()).await?.get(0)
///     })
///     .await?;
/// assert_eq!(n, 1);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone, Debug)]
#[must_use = "an Atomic does nothing until `.run(..)` is awaited"]
pub struct Atomic {
    /// Where the block was written, for error messages (`#[track_caller]` on `new`).
    opened_at: &'static Location<'static>,
    db: Option<Database>,
    propagation: Propagation,
    begin: Begin,
    isolation: Option<Isolation>,
    read_only: bool,
    offload: bool,
    retries: u32,
    timeout: Option<Duration>,
    name: Option<&'static str>,
}

/// Runs `body` in a transaction: a savepoint inside the current one, else a new transaction
/// on the default database. The same as `Atomic::new().run(body)`.
#[track_caller]
pub fn atomic<F, T, E>(body: F) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    Atomic::new().run(body)
}

impl Default for Atomic {
    #[track_caller]
    fn default() -> Self {
        Atomic::new()
    }
}

/// Where a frame's body runs.
enum Plan {
    /// In the current frame, without a savepoint (`Join` inside a transaction).
    Join(Current),
    /// In a new savepoint under the current frame.
    Savepoint(Current),
    /// In a new outermost transaction, begun inside the task's current frame if any.
    Begin(Database, Option<Current>),
}

impl Atomic {
    /// Default options: `propagation = nested`, `begin = immediate`, no timeout, no retries.
    #[track_caller]
    pub fn new() -> Self {
        Atomic {
            opened_at: Location::caller(),
            db: None,
            propagation: Propagation::default(),
            begin: Begin::default(),
            isolation: None,
            read_only: false,
            offload: false,
            retries: 0,
            timeout: None,
            name: None,
        }
    }

    /// The database of an outermost transaction. Inside a transaction on another database,
    /// the frame becomes an outermost transaction on this one.
    pub fn db(mut self, db: Database) -> Self {
        self.db = Some(db);
        self
    }

    /// See [`Propagation`].
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// How an outermost write transaction begins on SQLite; see [`Begin`]. PostgreSQL
    /// ignores it (its row locks are taken as statements run).
    pub fn begin(mut self, begin: Begin) -> Self {
        self.begin = begin;
        self
    }

    /// The isolation level of an outermost transaction; see [`Isolation`].
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// Writes fail with [`Error::ReadOnly`]. An outermost read-only transaction on a file
    /// database runs on a reader connection, beside the writer.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Runs the frame's statements off the executor thread: for a heavy read (a report, an
    /// audit, an export) that would otherwise hold a tokio worker for as long as it scans.
    ///
    /// Each statement is run with [`tokio::task::block_in_place`], which hands the worker's
    /// other tasks to another thread first, so they go on while the statement runs; the
    /// statement itself still runs under the frame's turn, on the calling task, and a
    /// cancelled caller cannot interrupt it — exactly as without `offload`. It costs a hand-off
    /// per statement (tens of µs), so it is for statements that take milliseconds, not for
    /// point reads. Savepoints opened inside inherit it; [`Tx::offloaded`](crate::Tx::offloaded)
    /// offloads a single statement. On a current-thread runtime, where there is no other
    /// worker to hand tasks to, statements run inline as usual. On PostgreSQL statements
    /// never hold an executor thread, and `offload` changes nothing.
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }

    /// Re-run an outermost transaction up to `retries` more times when it fails with a
    /// transient error (busy/locked). Only [`Atomic::run_retrying`] can re-run a body.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Roll the frame back and fail with [`Error::Timeout`] when the call takes longer: the
    /// wait for its turn (or the writer lock, or a reader), its body, and the wait for its
    /// children at its end all count. A COMMIT already sent is not cut short: its outcome is
    /// reported.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A readable name for spans and error messages (never used in SQL).
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// Runs `body` in the frame these options describe and ends the frame by how the body
    /// ends: `Ok` commits (or releases the savepoint); `Err` rolls back and returns the
    /// body's error unchanged; a panic rolls back and then continues; dropping this future
    /// rolls back. A `timeout` bounds the whole call: the wait for the turn or the writer,
    /// the body, and the wait for the frame's children at its end.
    pub fn run<F, T, E>(self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        // Boxed once here, before the async block: every async fn that takes a future by
        // value and awaits it keeps two copies of it in its state, and the body passes
        // through several. Unboxed, a one-statement body made a 2.9 KB future (each
        // `TaskGroup` child holds one); boxed it is one small allocation per frame.
        let mut body = GrowStack {
            body: Box::pin(body),
            check: true,
        };
        async move {
            let deadline = self.timeout.map(Deadline::after);
            let asked = wait_clock();
            let guard = match self.plan()? {
                Plan::Join(current) => return self.run_joined(current, body, deadline).await,
                // The common case, without a layer of its own.
                Plan::Savepoint(parent) if deadline.is_none() => {
                    FrameGuard::savepoint(&parent.frame, parent.read_only, self.spec()).await?
                }
                plan => self.open(plan, deadline).await?,
            };
            body.check = guard.frame().chain_depth % GrowStack::<F>::EVERY == 0;
            self.run_in_frame(guard, asked, body, deadline).await
        }
    }

    fn spec(&self) -> FrameSpec {
        FrameSpec {
            name: self.name,
            read_only: self.read_only,
            offload: self.offload,
            opened_at: Some(self.opened_at),
        }
    }

    /// Opens the frame of a savepoint or begin plan, within the deadline. Boxed and out of
    /// line: beginning a transaction, and a timer, are off the path of a nested call.
    #[inline(never)]
    fn open(&self, plan: Plan, deadline: Option<Deadline>) -> BoxFuture<'_, Result<FrameGuard>> {
        Box::pin(async move {
            match deadline {
                None => self.open_now(plan).await,
                Some(deadline) => wait::until(Some(deadline.at), self.open_now(plan))
                    .await
                    .map_err(|_| Error::Timeout(deadline.limit))?,
            }
        })
    }

    async fn open_now(&self, plan: Plan) -> Result<FrameGuard> {
        match plan {
            Plan::Savepoint(parent) => {
                FrameGuard::savepoint(&parent.frame, parent.read_only, self.spec()).await
            }
            Plan::Begin(db, outer) => {
                FrameGuard::begin(&db, self.begin, self.isolation, self.spec(), outer.as_ref())
                    .await
            }
            Plan::Join(_) => unreachable!("a joined body opens no frame"),
        }
    }

    fn plan(&self) -> Result<Plan> {
        let current = context::current_scope();
        // A block that names a database belongs to the innermost frame on that database the
        // task runs inside, even from within a transaction on another database.
        let enclosing = match (&self.db, &current) {
            (_, None) => None,
            (None, Some(current)) => Some(current.clone()),
            (Some(db), Some(current)) => context::innermost_on(current, db),
        };
        let own_db = || {
            self.db
                .clone()
                .or_else(Database::default_database)
                .ok_or(Error::NoDatabase)
        };
        let begin = |db: Database| -> Result<Plan> {
            if let Some(current) = &current {
                check_no_self_wait(&db, self.read_only, current)?;
            }
            Ok(Plan::Begin(db, current.clone()))
        };
        match (self.propagation, enclosing) {
            (Propagation::Join, Some(frame)) => Ok(Plan::Join(frame)),
            (Propagation::Nested | Propagation::Mandatory, Some(frame)) => {
                Ok(Plan::Savepoint(frame))
            }
            (Propagation::Mandatory, None) => Err(Error::NoTransaction),
            (Propagation::Join | Propagation::Nested, None) => begin(own_db()?),
            (Propagation::RequiresNew, enclosing) => {
                let db = match &enclosing {
                    Some(current) => current.frame.txn.db.clone(),
                    None => own_db()?,
                };
                begin(db)
            }
        }
    }

    /// Runs the body in an open frame and ends the frame by the body's outcome.
    ///
    /// `asked` is when the frame was asked for, if tracing wants the time spent waiting
    /// for the turn (or the writer lock) recorded on the span.
    async fn run_in_frame<F, T, E>(
        &self,
        guard: FrameGuard,
        asked: Option<Instant>,
        body: F,
        deadline: Option<Deadline>,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let frame = guard.frame().clone();
        let span = tracing::debug_span!(
            "transactional",
            db = frame.txn.db.label(),
            id = frame.id,
            depth = frame.depth,
            name = frame.name,
            isolation = ?self.isolation,
            wait_us = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        if let Some(asked) = asked {
            span.record("wait_us", asked.elapsed().as_micros() as u64);
        }
        let body = context::scope(Current::of(frame), body);
        let outcome = AssertUnwindSafe(with_deadline(deadline, body))
            .catch_unwind()
            // A span no subscriber wants is not cloned (~26 instructions a nested call).
            .instrument(match span.is_disabled() {
                true => tracing::Span::none(),
                false => span.clone(),
            })
            .await;
        // The end's event and outcome belong to the frame's span (entered only to emit them:
        // instrumenting the end's future cost the nested call ~190 instructions).
        match outcome {
            Ok(Ok(Ok(value))) => guard
                .end(Outcome::Commit, deadline, &span)
                .await
                .map(|()| value)
                .map_err(E::from),
            Ok(Ok(Err(err))) => {
                log_rollback_failure(guard.end(Outcome::Rollback, None, &span).await);
                Err(err)
            }
            Ok(Err(timeout)) => {
                log_rollback_failure(guard.end(Outcome::Rollback, None, &span).await);
                Err(E::from(timeout))
            }
            Err(panic) => {
                log_rollback_failure(guard.end(Outcome::Rollback, None, &span).await);
                resume_unwind(panic)
            }
        }
    }

    /// `Join`: the body runs in the enclosing frame; any failure dooms the transaction. A
    /// `read_only` joined body may only read, whatever the frame it joins may do.
    async fn run_joined<F, T, E>(
        &self,
        current: Current,
        body: F,
        deadline: Option<Deadline>,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let doom = DoomOnDrop(Some(current.frame.clone()));
        let restricted =
            (self.read_only && !current.read_only) || (self.offload && !current.offload);
        let body = match restricted {
            true => Either::Left(context::scope(
                Current {
                    read_only: self.read_only || current.read_only,
                    offload: self.offload || current.offload,
                    ..current
                },
                body,
            )),
            false => Either::Right(body),
        };
        let outcome = AssertUnwindSafe(with_deadline(deadline, body))
            .catch_unwind()
            .await;
        match outcome {
            Ok(Ok(Ok(value))) => {
                doom.disarm();
                Ok(value)
            }
            Ok(Ok(Err(err))) => Err(err),
            Ok(Err(timeout)) => Err(E::from(timeout)),
            Err(panic) => resume_unwind(panic),
        }
    }
}

/// Polls a frame's body on a new stack segment when the current one is nearly used up.
///
/// Each level of nested frames adds the poll frames of its machinery to the stack (several KB
/// in a release build, far more in a debug one), and a body that calls a nested
/// `#[transactional]` fn recurses through them: a tokio worker's 2 MiB stack held a few
/// hundred levels. With this, nesting is bounded by memory, not by the worker's stack: every
/// `EVERY`th level (and every joined body) compares the stack pointer with a thread-local
/// limit, and below `RED_ZONE` bytes left, polls the body on a fresh `SEGMENT`.
struct GrowStack<F> {
    body: Pin<Box<F>>,
    check: bool,
}

impl<F> GrowStack<F> {
    /// Levels between two checks: shallow frames (the common case) pay nothing.
    const EVERY: u32 = 8;
    /// What `EVERY` levels (their machinery, the user's frames, a SQLite statement) may use
    /// before the next check: ~35 KB a level in a debug build, ~8 KB in release.
    const RED_ZONE: usize = 512 * 1024;
    const SEGMENT: usize = 4 * 1024 * 1024;
}

impl<F: Future> Future for GrowStack<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let check = self.check;
        let body = self.body.as_mut();
        match check {
            false => body.poll(cx),
            true => stacker::maybe_grow(Self::RED_ZONE, Self::SEGMENT, move || body.poll(cx)),
        }
    }
}

/// Marks the frame a block joined rollback-only unless disarmed: covers `Err`,
/// timeout, panic and cancellation alike.
struct DoomOnDrop(Option<Arc<Frame>>);

impl DoomOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for DoomOnDrop {
    fn drop(&mut self) {
        if let Some(frame) = self.0.take() {
            // The joined block's work is part of the frame it joined and cannot be undone
            // alone: that frame — not the whole transaction — rolls back when it ends, and
            // refuses statements until then (as PostgreSQL would after a failed statement).
            frame.rollback_only.store(true, Ordering::Release);
            frame.fail(format!(
                "a block joined to {frame} failed, panicked, was cancelled or timed out"
            ));
        }
    }
}

/// The time a frame is asked for, when a subscriber will record how long it waited (reading
/// the clock costs nothing otherwise).
fn wait_clock() -> Option<Instant> {
    tracing::enabled!(tracing::Level::DEBUG).then(Instant::now)
}

/// Runs `body`, giving up with [`Error::Timeout`] at the deadline (dropping the body, which
/// rolls back the savepoints it opened).
async fn with_deadline<F: Future>(deadline: Option<Deadline>, body: F) -> Result<F::Output> {
    match deadline {
        None => Ok(body.await),
        // Boxed: only frames with a `timeout` carry the timer in their future.
        Some(deadline) => Box::pin(wait::until(Some(deadline.at), body))
            .await
            .map_err(|_| Error::Timeout(deadline.limit)),
    }
}

fn log_rollback_failure(result: Result<()>) {
    if let Err(error) = result {
        tracing::error!(%error, "rollback after a failed body failed; the body's error is returned");
    }
}
