//! The model under adverse conditions: the root cancelled at any await point of its end
//! (also while its COMMIT runs on a blocking thread under `synchronous = FULL`), read-only
//! roots on reader connections running beside the tree and cancelled too, and a runtime
//! whose blocking pool has a single thread that is sometimes kept busy, so that off-thread
//! COMMITs queue.
//!
//! A root cancelled while it ends may or may not have committed, so these cases accept
//! exactly two outcomes: every row the tree must leave, or none. Every case also checks:
//! - the root's `on_commit` hook ran iff its rows are there (hooks get a short grace period);
//! - a marker row written by the *next* transaction, which fails, is never committed (a
//!   cancelled COMMIT must not commit what comes after it);
//! - each read-only transaction saw the case's rows all or none, the same on every read;
//! - the library and a separate rusqlite connection see the same rows; a raw connection can
//!   `BEGIN IMMEDIATE`; every reader connection can begin a read-only transaction (all are
//!   held at once); a write transaction commits; `PRAGMA integrity_check` is `ok`.
//!
//! `MODEL_CASES` scales these tests too (see `cases_for`).

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use proptest::prelude::*;
use tokio::sync::oneshot;
use transactional::{Atomic, Database, DatabaseBuilder, Error};
use transactional_tests::{Kind, TestDb};

use super::checks::{
    all_or_none, check_hook, check_integrity, check_raw_writable, check_read_only, check_reads,
    check_root_result, check_write, observed_rows, watch, Failures,
};
use super::{
    body, case_range, cases, dooms, expected_rows, pause, quiet_model_panics, tree_with, AbortAll,
    Ctx, Ending, Flavor, Node, NodeError, MODEL_PANIC,
};

// ---------------------------------------------------------------------------------------
// What a case adds to its tree

/// The database a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DbFlavour {
    pub(super) kind: Kind2,
    /// `synchronous = FULL`: the outermost COMMIT runs on a blocking thread.
    pub(super) full: bool,
    /// Reader connections (file databases only).
    pub(super) readers: usize,
}

/// `Kind` with `PartialEq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind2 {
    File,
    Memory,
}

impl DbFlavour {
    pub(super) fn builder(self) -> DatabaseBuilder {
        let mut builder = Database::builder()
            .readers(self.readers)
            .writer_wait(Duration::from_secs(15))
            .reader_wait(Duration::from_secs(15))
            .turn_wait(Duration::from_secs(15));
        if self.full {
            builder = builder.pragma("synchronous", "FULL");
        }
        builder
    }

    pub(super) fn kind(self) -> Kind {
        match self.kind {
            Kind2::File => Kind::File,
            Kind2::Memory => Kind::Memory,
        }
    }

    /// How many read-only transactions can run at once (readers, or the writer).
    pub(super) fn read_slots(self) -> usize {
        match self.kind {
            Kind2::File => self.readers.max(1),
            Kind2::Memory => 1,
        }
    }
}

/// The databases the cancellation tests choose from, case by case.
pub(super) const FLAVOURS: [DbFlavour; 5] = [
    DbFlavour {
        kind: Kind2::File,
        full: true,
        readers: 1,
    },
    DbFlavour {
        kind: Kind2::File,
        full: true,
        readers: 2,
    },
    DbFlavour {
        kind: Kind2::File,
        full: true,
        readers: 0,
    },
    DbFlavour {
        kind: Kind2::File,
        full: false,
        readers: 1,
    },
    DbFlavour {
        kind: Kind2::Memory,
        full: true,
        readers: 0,
    },
];

/// When the harness cuts the root short: drops its future (cancellation tests) or shuts its
/// runtime down (shutdown tests). `AtEnd*` count from the moment the root's body returned,
/// so the cut lands while the root ends: waiting for its children, or for its COMMIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    Never,
    AfterYields(u16),
    AfterMicros(u16),
    AtEndYields(u8),
    AtEndMicros(u16),
}

fn cut() -> impl Strategy<Value = Cut> {
    prop_oneof![
        2 => Just(Cut::Never),
        2 => (0u16..400).prop_map(Cut::AfterYields),
        1 => (0u16..5000).prop_map(Cut::AfterMicros),
        4 => (0u8..12).prop_map(Cut::AtEndYields),
        2 => (0u16..4000).prop_map(Cut::AtEndMicros),
    ]
}

/// Keeps the (single) blocking thread busy for `ms`, from the start of the case or from the
/// moment the root's body returns, so that the root's off-thread COMMIT queues behind it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Blocker {
    pub(super) at_end: bool,
    pub(super) ms: u8,
}

/// How an independent read-only transaction beside the tree ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadEnding {
    Ok,
    Err,
    Panic,
    /// Dropped after this many yields of the task that runs it (wherever it is then).
    Dropped(u8),
}

/// Whether it opens a savepoint, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Nest {
    None,
    Inline,
    /// In a task of its own (`transactional::spawn`): a cancelled root waits for it.
    Spawned,
}

/// An outermost `read_only` transaction beside the tree: reads the case's rows.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReadTx {
    pub(super) start: u8,
    pub(super) reads: u8,
    pub(super) nest: Nest,
    pub(super) ending: ReadEnding,
    pub(super) seed: u64,
}

fn read_tx() -> impl Strategy<Value = ReadTx> {
    (
        0u8..20,
        1u8..4,
        prop_oneof![Just(Nest::None), Just(Nest::Inline), Just(Nest::Spawned)],
        prop_oneof![
            3 => Just(ReadEnding::Ok),
            1 => Just(ReadEnding::Err),
            1 => Just(ReadEnding::Panic),
            3 => (0u8..30).prop_map(ReadEnding::Dropped),
        ],
        any::<u64>(),
    )
        .prop_map(|(start, reads, nest, ending, seed)| ReadTx {
            start,
            reads,
            nest,
            ending,
            seed,
        })
}

#[derive(Clone, Debug)]
pub(super) struct Extras {
    /// Index into `FLAVOURS` (the cancellation tests).
    pub(super) flavour: usize,
    pub(super) cut: Cut,
    pub(super) blocker: Option<Blocker>,
    pub(super) reads: Vec<ReadTx>,
    /// How long the marker transaction stays open after the blocking pool drained.
    pub(super) marker_hold_us: u16,
}

pub(super) fn extras() -> impl Strategy<Value = Extras> {
    (
        prop_oneof![2 => Just(0usize), 2 => Just(1), 1 => Just(2), 1 => Just(3), 1 => Just(4)],
        cut(),
        prop_oneof![
            1 => Just(None),
            1 => (any::<bool>(), 1u8..6).prop_map(|(at_end, ms)| Some(Blocker { at_end, ms })),
        ],
        prop::collection::vec(read_tx(), 0..=3),
        0u16..3000,
    )
        .prop_map(|(flavour, cut, blocker, reads, marker_hold_us)| Extras {
            flavour,
            cut,
            blocker,
            reads,
            marker_hold_us,
        })
}

// ---------------------------------------------------------------------------------------
// Keys

/// Written first by every root: makes "committed" visible even for a tree with no rows.
pub(super) fn commit_key(case: u64) -> String {
    format!("c{case:06}/commit")
}

/// Written by the failing transaction that follows the root: must never be committed.
pub(super) fn marker_key(case: u64) -> String {
    format!("c{case:06}/marker")
}

/// Every row the case leaves if its root commits (empty if it must not commit).
pub(super) fn full_rows(case: u64, root: &Node) -> BTreeSet<String> {
    let mut rows = expected_rows(case, root);
    if root.ending == Ending::Ok && !dooms(root) {
        rows.insert(commit_key(case));
    }
    rows
}

// ---------------------------------------------------------------------------------------
// Running the root, the readers and the marker transaction

/// What the root's body reports besides its result.
#[derive(Clone, Default)]
pub(super) struct Signals {
    /// Set by the root's `on_commit` hook.
    pub(super) hook_ran: Arc<AtomicBool>,
    /// The root's body returned (or panicked): every node in it has ended.
    pub(super) body_ended: Arc<AtomicBool>,
}

pub(super) type RootResult = std::thread::Result<Result<(), NodeError>>;

fn occupy_blocking_thread(ms: u8) {
    drop(tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(u64::from(ms)))
    }));
}

/// The root as an outermost write transaction on `db`: registers its hook, writes the
/// commit key, runs the tree's root body; `done` fires when the body has returned.
pub(super) fn root_future(
    db: Database,
    case: u64,
    root: Arc<Node>,
    ctx: Ctx,
    blocker: Option<Blocker>,
    signals: Signals,
    done: oneshot::Sender<()>,
) -> BoxFuture<'static, RootResult> {
    let run = Atomic::new().db(db).run(async move {
        let hook = signals.hook_ran.clone();
        transactional::on_commit(move || hook.store(true, SeqCst))?;
        transactional::current()?
            .execute(
                "INSERT INTO kv(key, val) VALUES (?1, 0)",
                (commit_key(case),),
            )
            .await?;
        let result = AssertUnwindSafe(body(root, ctx, None)).catch_unwind().await;
        signals.body_ended.store(true, SeqCst);
        if let Some(b) = blocker.filter(|b| b.at_end) {
            occupy_blocking_thread(b.ms);
        }
        let _ = done.send(());
        match result {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    AssertUnwindSafe(run).catch_unwind().boxed()
}

/// Resolves at the moment `cut` names (never for `Cut::Never`).
pub(super) async fn cut_moment(cut: Cut, done: oneshot::Receiver<()>) {
    match cut {
        Cut::Never => std::future::pending().await,
        Cut::AfterYields(n) => {
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
        }
        Cut::AfterMicros(us) => tokio::time::sleep(Duration::from_micros(u64::from(us))).await,
        Cut::AtEndYields(n) => {
            let _ = done.await;
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
        }
        Cut::AtEndMicros(us) => {
            let _ = done.await;
            tokio::time::sleep(Duration::from_micros(u64::from(us))).await;
        }
    }
}

/// What a read-only transaction beside the tree saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ReadSeen {
    /// The case's rows (the same on every read of the transaction).
    Rows(BTreeSet<String>),
    /// Two reads of one transaction saw different rows.
    Inconsistent(BTreeSet<String>, BTreeSet<String>),
    ErrAsAsked,
    Panicked,
    Dropped,
    Failed(String),
}

pub(super) async fn select_case_rows(case: u64) -> Result<BTreeSet<String>, Error> {
    let (from, to) = case_range(case);
    let rows = transactional::current()?
        .query(
            "SELECT key FROM kv WHERE key >= ?1 AND key < ?2",
            (from, to),
        )
        .await?;
    rows.iter().map(|r| r.get(0)).collect()
}

pub(super) async fn run_read_tx(db: Database, case: u64, spec: ReadTx) -> ReadSeen {
    for _ in 0..spec.start {
        tokio::task::yield_now().await;
    }
    let run = Atomic::new().db(db).read_only(true).run(async move {
        let mut rng = fastrand::Rng::with_seed(spec.seed);
        let mut seen: Option<BTreeSet<String>> = None;
        for _ in 0..spec.reads {
            pause(&mut rng).await;
            let rows = select_case_rows(case).await?;
            match &seen {
                Some(before) if *before != rows => {
                    return Ok(ReadSeen::Inconsistent(before.clone(), rows));
                }
                _ => seen = Some(rows),
            }
            match spec.nest {
                Nest::None => {}
                Nest::Inline => {
                    Atomic::new()
                        .run(async move {
                            select_case_rows(case).await?;
                            Ok::<_, NodeError>(())
                        })
                        .await?
                }
                Nest::Spawned => {
                    let seed = rng.u64(..);
                    transactional::spawn(Atomic::new().run(async move {
                        let mut rng = fastrand::Rng::with_seed(seed);
                        pause(&mut rng).await;
                        select_case_rows(case).await?;
                        pause(&mut rng).await;
                        Ok::<_, NodeError>(())
                    }))
                    .await
                    .map_err(|e| {
                        NodeError::Db(Error::Background {
                            what: e.to_string(),
                            source: None,
                        })
                    })??
                }
            }
        }
        match spec.ending {
            ReadEnding::Ok | ReadEnding::Dropped(_) => {
                Ok(ReadSeen::Rows(seen.expect("at least one read")))
            }
            ReadEnding::Err => Err(NodeError::Model),
            ReadEnding::Panic => panic!("{MODEL_PANIC}"),
        }
    });
    let run = AssertUnwindSafe(run).catch_unwind();
    let drop_after = match spec.ending {
        ReadEnding::Dropped(n) => Some(n),
        _ => None,
    };
    let outcome = tokio::select! {
        biased;
        outcome = run => outcome,
        () = async {
            match drop_after {
                Some(n) => for _ in 0..n { tokio::task::yield_now().await },
                None => std::future::pending().await,
            }
        } => return ReadSeen::Dropped,
    };
    match (outcome, spec.ending) {
        (Ok(Ok(seen)), _) => seen,
        (Ok(Err(NodeError::Model)), ReadEnding::Err) => ReadSeen::ErrAsAsked,
        (Err(_), ReadEnding::Panic) => ReadSeen::Panicked,
        (Ok(Err(e)), _) => ReadSeen::Failed(format!("{e:?}")),
        (Err(_), _) => ReadSeen::Failed("panicked".to_owned()),
    }
}

/// A transaction after the root that writes the marker row, lets the blocking pool drain
/// (a COMMIT an earlier, cancelled transaction left queued there runs now, inside this
/// transaction), stays open a little longer, and fails: the marker must never be committed.
pub(super) async fn marker_tx(db: Database, case: u64, hold_us: u16) -> Result<(), String> {
    let result = Atomic::new()
        .db(db)
        .run(async move {
            transactional::current()?
                .execute(
                    "INSERT INTO kv(key, val) VALUES (?1, 0)",
                    (marker_key(case),),
                )
                .await?;
            let _ = tokio::task::spawn_blocking(|| ()).await;
            tokio::time::sleep(Duration::from_micros(u64::from(hold_us))).await;
            Err::<(), _>(NodeError::Model)
        })
        .await;
    match result {
        Err(NodeError::Model) => Ok(()),
        other => Err(format!(
            "the transaction after the root (writes the marker, then fails) ended {other:?}"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// One cancellation case

/// What happened, for the tally.
#[derive(Default, Debug)]
pub(super) struct CaseReport {
    pub(super) cut: bool,
    pub(super) cut_while_ending: bool,
    pub(super) committed: bool,
    pub(super) reads_ok: u64,
    pub(super) reads_dropped: u64,
}

async fn run_cancel_case(
    test: &TestDb,
    flavour: DbFlavour,
    case: u64,
    root: Node,
    extras: &Extras,
    report: &mut CaseReport,
) -> Result<(), String> {
    let ctx = Ctx::root(case, &root);
    let violations = ctx.violations.clone();
    let root = Arc::new(root);
    let full = full_rows(case, &root);
    let signals = Signals::default();

    let readers: Vec<_> = extras
        .reads
        .iter()
        .map(|spec| tokio::spawn(run_read_tx(test.db.clone(), case, *spec)))
        .collect();
    let _abort_readers = AbortAll(readers.iter().map(|h| h.abort_handle()).collect());
    if let Some(b) = extras.blocker.filter(|b| !b.at_end) {
        occupy_blocking_thread(b.ms);
    }
    let (done_tx, done_rx) = oneshot::channel();
    let run = root_future(
        test.db.clone(),
        case,
        root.clone(),
        ctx,
        extras.blocker,
        signals.clone(),
        done_tx,
    );
    let outcome = tokio::select! {
        biased;
        outcome = run => Some(outcome),
        () = cut_moment(extras.cut, done_rx) => None,
    };
    report.cut = outcome.is_none();
    report.cut_while_ending = report.cut && signals.body_ended.load(SeqCst);
    marker_tx(test.db.clone(), case, extras.marker_hold_us).await?;
    let mut reads = Vec::new();
    for reader in readers {
        reads.push(reader.await.map_err(|e| format!("reader task: {e}"))?);
    }
    report.reads_ok = reads
        .iter()
        .filter(|r| matches!(r, ReadSeen::Rows(_)))
        .count() as u64;
    report.reads_dropped = reads.iter().filter(|r| **r == ReadSeen::Dropped).count() as u64;

    let rows = observed_rows(test, case).await?;
    match &outcome {
        Some(outcome) => {
            check_root_result(&root, outcome)?;
            if rows != full {
                let lost: Vec<_> = full.difference(&rows).collect();
                let phantom: Vec<_> = rows.difference(&full).collect();
                return Err(format!("rows differ: lost {lost:?}, phantom {phantom:?}"));
            }
        }
        None => all_or_none(&rows, &full)?,
    }
    if outcome.is_some() || signals.body_ended.load(SeqCst) {
        let violations = violations.lock().unwrap().clone();
        if !violations.is_empty() {
            return Err(format!("violations: {violations:#?}"));
        }
    }
    report.committed = !rows.is_empty();
    check_hook(report.committed, &signals.hook_ran).await?;
    check_reads(&reads, case, &full, &rows)?;
    check_raw_writable(test).await?;
    check_read_only(&test.db, flavour.read_slots()).await?;
    check_write(test).await?;
    check_integrity(test).await?;
    Ok(())
}

/// Over all cases, passed or failed. `cut`: the root was cut short; `cut_while_ending`:
/// after its body had returned (waiting for detached children, or for its COMMIT).
#[derive(Default, Debug)]
struct Tally {
    cases: u64,
    per_flavour: [u64; FLAVOURS.len()],
    cut: u64,
    cut_while_ending: u64,
    cut_and_committed: u64,
    committed: u64,
    blockers: u64,
    reads_ok: u64,
    reads_dropped: u64,
    failed: u64,
}

/// `MODEL_CASES` (default 500) scaled by `num / den`, at least 1.
pub(super) fn cases_for(num: u32, den: u32) -> u32 {
    (cases() * num / den).max(1)
}

/// The proptest settings of the adverse-conditions runs: `cases` cases, shrinking bounded
/// (a case takes up to seconds), nothing persisted.
pub(super) fn adverse_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

fn run_cancellations(flavor: Flavor, cases: u32) {
    quiet_model_panics();
    let runtime = match flavor {
        Flavor::TwoWorkers => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(1)
            .enable_all()
            .build(),
        Flavor::OneThread => tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build(),
    }
    .unwrap();
    let dbs: Vec<TestDb> = FLAVOURS
        .iter()
        .map(|f| runtime.block_on(TestDb::with_builder(f.kind(), f.builder())))
        .collect();
    let counter = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let failures = Failures::default();
    proptest!(adverse_config(cases), |(root in tree_with(true), extras in extras())| {
        let case = counter.fetch_add(1, SeqCst);
        let flavour = FLAVOURS[extras.flavour];
        let test = &dbs[extras.flavour];
        let _watch = watch(Duration::from_secs(60), || {
            format!("{flavor:?} case {case} on {flavour:?}\nextras: {extras:?}\ntree: {root:?}")
        });
        let mut report = CaseReport::default();
        let result = runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                run_cancel_case(test, flavour, case, root.clone(), &extras, &mut report),
            )
            .await
            .unwrap_or_else(|_| Err("hang: the case did not finish in 20 s".to_owned()))
        });
        {
            let mut t = tally.lock().unwrap();
                t.cases += 1;
                t.per_flavour[extras.flavour] += 1;
                t.cut += u64::from(report.cut);
                t.cut_while_ending += u64::from(report.cut_while_ending);
                t.cut_and_committed += u64::from(report.cut && report.committed);
                t.committed += u64::from(report.committed);
                t.blockers += u64::from(extras.blocker.is_some());
                t.reads_ok += report.reads_ok;
                t.reads_dropped += report.reads_dropped;
                t.failed += u64::from(result.is_err());
        }
        match &result {
            Ok(()) => {}
            Err(why) if failures.kept_going(why, || format!("{flavor:?} case {case} on {flavour:?}: {why}\n      extras: {extras:?}\n      tree: {root:?}")) => return Ok(()),
            Err(why) => eprintln!(
                "{flavor:?} case {case} on {flavour:?} failed: {why}\nextras: {extras:?}\n{root:?}"
            ),
        }
        prop_assert!(
            result.is_ok(),
            "{flavor:?} case {case} on {flavour:?}: {}\nextras: {extras:#?}\ntree: {root:#?}",
            result.unwrap_err()
        );
    });
    let t = tally.into_inner().unwrap();
    eprintln!("model cancellation {flavor:?}: {t:?} (flavours: {FLAVOURS:?})");
    failures.finish(
        &format!("model cancellation {flavor:?}"),
        counter.into_inner(),
    );
}

/// Roots cut short at random moments — during the body, while waiting for their children
/// at the end, while their COMMIT queues for or runs on the single blocking thread
/// (`synchronous = FULL`) — beside read-only transactions on reader connections that are
/// dropped at random too. Two workers, one blocking thread.
///
/// `MODEL_CASES` × 2/5 cases (default 200).
///
/// Expected to fail on the runtime as of 87a82c9 (about 1 case in 10): a root dropped while
/// its off-thread COMMIT queues lets that COMMIT run later, inside the next transaction ("the
/// marker row of the failed transaction after the root was committed"; a read-only
/// transaction on the writer failing with "cannot commit - no transaction is active" or "no
/// such savepoint"); a root dropped while its COMMIT runs commits without running its hook
/// ("the root committed (its rows are there) but its on_commit hook never ran").
#[test]
fn model_cancelled_roots() {
    run_cancellations(Flavor::TwoWorkers, cases_for(2, 5));
}

/// The same on a single-threaded runtime (one blocking thread), with a tenth of the cases
/// (default 50).
///
/// Expected to fail on the runtime as of 87a82c9, like `model_cancelled_roots`.
#[test]
fn model_cancelled_roots_single_threaded() {
    run_cancellations(Flavor::OneThread, cases_for(1, 10));
}

// ---------------------------------------------------------------------------------------
// Fixed cases: one shape each of the failures the random search finds, run many times.

fn run_fixed_cancel(root: Node, extras: Extras, runs: u64) {
    quiet_model_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let flavour = FLAVOURS[extras.flavour];
    let test = runtime.block_on(TestDb::with_builder(flavour.kind(), flavour.builder()));
    let failures = Failures::default();
    for case in 0..runs {
        let _watch = watch(Duration::from_secs(60), || format!("fixed case {case}"));
        let mut report = CaseReport::default();
        let result = runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                run_cancel_case(&test, flavour, case, root.clone(), &extras, &mut report),
            )
            .await
            .unwrap_or_else(|_| Err("hang: the case did not finish in 20 s".to_owned()))
        });
        if let Err(why) = result {
            failures.add(&why, || format!("run {case} on {flavour:?}: {why}"));
        }
    }
    failures.finish("fixed case", runs);
}

fn one_row_root() -> Node {
    use super::{Prop::*, Spawner::*};
    super::node(Nested, Inline, Ending::Ok, vec![])
}

/// The root is dropped while its COMMIT waits for the single blocking thread
/// (`synchronous = FULL`, the thread kept busy for 5 ms): the COMMIT must not run later,
/// inside the next transaction (which would commit that transaction's marker row).
///
/// Expected to fail on the runtime as of 87a82c9 (every run): "the marker row of the failed
/// transaction after the root was committed".
#[test]
fn regression_root_dropped_while_its_commit_queues() {
    run_fixed_cancel(
        one_row_root(),
        Extras {
            flavour: 0,
            cut: Cut::AtEndYields(0),
            blocker: Some(Blocker {
                at_end: true,
                ms: 5,
            }),
            reads: vec![],
            marker_hold_us: 0,
        },
        20,
    );
}

/// The root is dropped a few yields into its off-thread COMMIT (`synchronous = FULL`, the
/// blocking thread free): whether it committed or not, the hook runs iff it committed.
///
/// Expected to fail on the runtime as of 87a82c9 (every run): "the root committed (its rows
/// are there) but its on_commit hook never ran" (the dropped frame's ROLLBACK waits for the
/// COMMIT, fails, and drops the hooks).
#[test]
fn regression_root_dropped_while_its_commit_runs() {
    run_fixed_cancel(
        one_row_root(),
        Extras {
            flavour: 0,
            cut: Cut::AtEndYields(3),
            blocker: None,
            reads: vec![],
            marker_hold_us: 0,
        },
        20,
    );
}
