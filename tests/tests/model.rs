//! Model-based randomized suite: random trees of nested transactional calls, run
//! concurrently, ended in every way a frame can end; the database must equal what a
//! reference model says, and no case may hang.
//!
//! Each node writes its own rows, runs its children (inline, in a `TaskGroup`, through
//! `transactional::spawn`, through `tokio::spawn` rewritten by the attribute, or
//! concurrently in one task with `join_all`), awaits at random points, and then ends in
//! one of: `Ok`, `Err`, panic, cancellation (dropped in `select!`, or its task aborted),
//! its own `timeout` option expiring. Nodes are savepoints (`nested`) or run in their
//! parent's frame (`propagation = "join"`, whose failure dooms the frame it joined: that
//! frame refuses further statements and savepoints and rolls back at its end, reporting an
//! error, while the rest of the transaction goes on — ARCHITECTURE.md §6).
//!
//! A node is cancelled only after it has finished its work (it signals, then waits
//! forever), so the surviving rows are a function of the tree alone: a node's rows survive
//! iff it and every ancestor end `Ok` and none of the frames they are in is doomed. Inside
//! a doomed frame, what its children see depends on when the doom struck (a savepoint
//! opened after it is refused), so their endings are not checked; the doomed frame itself
//! must report an error (or its own panic, cancellation or timeout).
//!
//! `MODEL_CASES` sets the number of cases per database kind (default 500);
//! a failing case prints its tree and seed, and proptest shrinks it.
//!
//! The same trees also run under adverse conditions (`model/adverse.rs`,
//! `model/shutdown.rs`, checked by `model/checks.rs`): roots cut short at random moments,
//! also while they end (waiting for detached children, or for a COMMIT on the blocking
//! thread under `synchronous = FULL`), beside read-only transactions on reader
//! connections, with a single blocking thread, and in runtimes shut down mid-case.
//! `MODEL_CASES` scales those tests too; `MODEL_KEEP_GOING=1` makes them run every case
//! and print how many failed in each way instead of stopping at the first;
//! `PROPTEST_RNG_SEED=<n>` replays the same trees (not the same timing).

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use futures_util::future::{join_all, BoxFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use proptest::prelude::*;
use tokio::sync::oneshot;
use transactional::{transactional, Atomic, Error, Propagation, TaskGroup};
use transactional_tests::{Kind, TestDb};

// ---------------------------------------------------------------------------------------
// The tree

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prop {
    Nested,
    Join,
}

/// How a parent starts a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spawner {
    Inline,
    JoinAll,
    TaskGroup,
    TransactionalSpawn,
    TokioSpawn,
    /// `transactional::spawn`ed and never joined: the parent only waits until the child's
    /// savepoint is open, right before it returns, so the parent's end waits for it (only
    /// in the adverse-conditions tests; always `Nested`, never `Cancel`).
    Detached,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Ok,
    Err,
    Panic,
    /// Signals its parent, which cancels it (drop in `select!`, or abort of its task).
    Cancel,
    /// Waits until its own `timeout` option expires (always a leaf).
    TimeoutOption,
}

#[derive(Clone, Debug)]
struct Node {
    prop: Prop,
    spawner: Spawner,
    ending: Ending,
    before: u8,
    after: u8,
    pause_seed: u64,
    children: Vec<Node>,
}

fn leaf(detached: bool) -> impl Strategy<Value = Node> {
    (
        prop_oneof![9 => Just(Prop::Nested), 1 => Just(Prop::Join)],
        prop_oneof![
            5 => Just(Spawner::Inline),
            5 => Just(Spawner::JoinAll),
            5 => Just(Spawner::TaskGroup),
            5 => Just(Spawner::TransactionalSpawn),
            5 => Just(Spawner::TokioSpawn),
            if detached { 3 } else { 0 } => Just(Spawner::Detached),
        ],
        prop_oneof![
            10 => Just(Ending::Ok),
            3 => Just(Ending::Err),
            2 => Just(Ending::Panic),
            3 => Just(Ending::Cancel),
            1 => Just(Ending::TimeoutOption),
        ],
        0u8..3,
        0u8..3,
        any::<u64>(),
    )
        .prop_map(|(prop, spawner, ending, before, after, pause_seed)| Node {
            // Joined nodes fail half as often: each failure dooms the frame they joined.
            ending: if (prop == Prop::Join && pause_seed % 2 == 0)
                || (spawner == Spawner::Detached && ending == Ending::Cancel)
            {
                Ending::Ok
            } else {
                ending
            },
            prop: if spawner == Spawner::Detached {
                Prop::Nested
            } else {
                prop
            },
            spawner,
            before,
            after,
            pause_seed,
            children: Vec::new(),
        })
}

/// Trees of depth up to 5 with up to 8 children per node.
fn tree() -> impl Strategy<Value = Node> {
    tree_with(false)
}

/// `tree()`, with `Spawner::Detached` children if `detached`.
fn tree_with(detached: bool) -> impl Strategy<Value = Node> {
    leaf(detached)
        .prop_recursive(4, 96, 4, move |inner| {
            (leaf(detached), prop::collection::vec(inner, 1..=8)).prop_map(
                |(mut node, children)| {
                    if node.ending != Ending::TimeoutOption {
                        node.children = children;
                    }
                    node
                },
            )
        })
        .prop_map(|mut root| {
            root.prop = Prop::Nested;
            if matches!(root.ending, Ending::Cancel | Ending::TimeoutOption) {
                root.ending = Ending::Ok; // the harness does not cancel the root
            }
            root
        })
}

// ---------------------------------------------------------------------------------------
// The reference model

/// The rows that must exist after the root ended, or none if it must not commit.
fn expected_rows(case: u64, root: &Node) -> BTreeSet<String> {
    let mut rows = BTreeSet::new();
    if root.ending == Ending::Ok && !dooms(root) {
        collect(case, root, &mut vec![0], &mut rows);
    }
    rows
}

/// Whether the frame of `node` (the root, or a nested node: one with a frame of its own)
/// is doomed: a block joined to it — directly, or through joined blocks — does not end
/// `Ok`.
fn dooms(node: &Node) -> bool {
    node.children
        .iter()
        .any(|c| c.prop == Prop::Join && (c.ending != Ending::Ok || dooms(c)))
}

fn collect(case: u64, node: &Node, path: &mut Vec<usize>, rows: &mut BTreeSet<String>) {
    for k in 0..(node.before + node.after) {
        rows.insert(row_key(case, path, k));
    }
    for (i, child) in node.children.iter().enumerate() {
        // A nested child whose frame is doomed rolls back; a joined child only runs in a
        // frame that is not doomed here (the caller checked it).
        if child.ending == Ending::Ok && !(child.prop == Prop::Nested && dooms(child)) {
            path.push(i);
            collect(case, child, path, rows);
            path.pop();
        }
    }
}

/// What a child may be seen to end as: `None` when anything may happen (it runs in, or opens
/// its savepoint under, a doomed frame: the doom may strike before or after); a nested child whose own frame is doomed reports an
/// error, or its own panic, cancellation or timeout if its body got that far.
fn allowed_seen(child: &Node, in_doomed_frame: bool) -> Option<Vec<Seen>> {
    if in_doomed_frame {
        return None;
    }
    let expected = expected_seen(child.ending);
    if child.prop == Prop::Nested && dooms(child) {
        return Some(match expected {
            Seen::Ok | Seen::Err => vec![Seen::Err],
            other => vec![Seen::Err, other],
        });
    }
    Some(vec![expected])
}

/// The key range of one case's rows.
fn case_range(case: u64) -> (String, String) {
    (format!("c{case:06}/"), format!("c{case:06}0")) // '0' sorts right after '/'
}

async fn case_rows(test: &TestDb, case: u64) -> BTreeSet<String> {
    let (from, to) = case_range(case);
    Atomic::new()
        .db(test.db.clone())
        .read_only(true)
        .run(async move {
            let rows = transactional::current()?
                .query(
                    "SELECT key FROM kv WHERE key >= ?1 AND key < ?2",
                    (from, to),
                )
                .await?;
            rows.iter()
                .map(|r| r.get(0))
                .collect::<Result<BTreeSet<String>, Error>>()
        })
        .await
        .expect("read the case's rows")
}

fn row_key(case: u64, path: &[usize], k: u8) -> String {
    let path: Vec<String> = path.iter().map(usize::to_string).collect();
    format!("c{case:06}/{}#{k}", path.join("."))
}

// ---------------------------------------------------------------------------------------
// Running a tree

#[derive(Debug)]
enum NodeError {
    Db(#[allow(dead_code)] Error), // read through Debug in violation reports
    Model,
}

impl From<Error> for NodeError {
    fn from(e: Error) -> Self {
        NodeError::Db(e)
    }
}

const MODEL_PANIC: &str = "model node panics on purpose";

/// Everything a node needs besides its spec.
#[derive(Clone)]
struct Ctx {
    case: u64,
    path: Vec<usize>,
    /// Depth of the frame this node's statements must run in.
    depth: u32,
    /// The frame this node's statements run in is doomed (see `dooms`).
    frame_doomed: bool,
    /// This node runs under a doomed frame: what it sees is not a function of the tree.
    in_doomed_frame: bool,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Ctx {
    /// The context of `root` of case `case`, with an empty list of violations.
    fn root(case: u64, root: &Node) -> Ctx {
        Ctx {
            case,
            path: vec![0],
            depth: 0,
            frame_doomed: dooms(root),
            in_doomed_frame: false,
            violations: Arc::default(),
        }
    }

    fn violation(&self, what: String) {
        self.violations
            .lock()
            .unwrap()
            .push(format!("node {:?}: {what}", self.path));
    }
}

/// The frame depth a child's own statements run at.
fn child_depth(parent_depth: u32, child: &Node) -> u32 {
    match child.prop {
        Prop::Nested => parent_depth + 1,
        Prop::Join => parent_depth,
    }
}

#[transactional]
async fn nested_node(
    node: Arc<Node>,
    ctx: Ctx,
    ready: Option<oneshot::Sender<()>>,
) -> Result<(), NodeError> {
    body(node, ctx, ready).await
}

#[transactional(propagation = "join")]
async fn joined_node(
    node: Arc<Node>,
    ctx: Ctx,
    ready: Option<oneshot::Sender<()>>,
) -> Result<(), NodeError> {
    body(node, ctx, ready).await
}

/// `tokio::spawn` inside a `#[transactional]` body: the attribute makes it carry the frame.
/// (`join` so that this helper adds no savepoint of its own.)
#[transactional(propagation = "join")]
async fn spawn_with_tokio(
    child: BoxFuture<'static, Result<(), NodeError>>,
) -> Result<tokio::task::JoinHandle<Result<(), NodeError>>, NodeError> {
    Ok(tokio::spawn(child))
}

fn run_node(
    node: Arc<Node>,
    ctx: Ctx,
    ready: Option<oneshot::Sender<()>>,
) -> BoxFuture<'static, Result<(), NodeError>> {
    match (node.ending, node.prop) {
        (Ending::TimeoutOption, prop) => {
            let propagation = match prop {
                Prop::Nested => Propagation::Nested,
                Prop::Join => Propagation::Join,
            };
            Atomic::new()
                .propagation(propagation)
                .timeout(Duration::from_millis(3))
                .run(body(node, ctx, ready))
                .boxed()
        }
        (_, Prop::Nested) => nested_node(node, ctx, ready).boxed(),
        (_, Prop::Join) => joined_node(node, ctx, ready).boxed(),
    }
}

async fn pause(rng: &mut fastrand::Rng) {
    match rng.u8(0..10) {
        0..=3 => {}
        4..=8 => tokio::task::yield_now().await,
        _ => tokio::time::sleep(Duration::from_micros(rng.u64(10..300))).await,
    }
}

/// How a child ended, as its parent saw it.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Ok,
    Err,
    Timeout,
    Panicked,
    Cancelled,
}

fn seen_result(result: Result<(), NodeError>) -> Seen {
    match result {
        Ok(()) => Seen::Ok,
        Err(NodeError::Db(Error::Timeout(_))) => Seen::Timeout,
        Err(_) => Seen::Err,
    }
}

fn expected_seen(ending: Ending) -> Seen {
    match ending {
        Ending::Ok => Seen::Ok,
        Ending::Err => Seen::Err,
        Ending::Panic => Seen::Panicked,
        Ending::Cancel => Seen::Cancelled,
        Ending::TimeoutOption => Seen::Timeout,
    }
}

fn joined(result: Result<Result<(), NodeError>, tokio::task::JoinError>) -> Seen {
    match result {
        Ok(result) => seen_result(result),
        Err(e) if e.is_panic() => Seen::Panicked,
        Err(_) => Seen::Cancelled,
    }
}

/// Runs `child` in the current task; a `Cancel` child is dropped once it signals.
async fn in_this_task(child: Arc<Node>, ctx: Ctx) -> Seen {
    let (ready_tx, ready_rx) = oneshot::channel();
    let run = AssertUnwindSafe(run_node(child, ctx, Some(ready_tx))).catch_unwind();
    tokio::select! {
        biased;
        outcome = run => match outcome {
            Ok(result) => seen_result(result),
            Err(_) => Seen::Panicked,
        },
        Ok(()) = ready_rx => Seen::Cancelled, // the child is dropped here, mid-frame
    }
}

fn body(
    node: Arc<Node>,
    ctx: Ctx,
    ready: Option<oneshot::Sender<()>>,
) -> BoxFuture<'static, Result<(), NodeError>> {
    Box::pin(async move {
        let mut ready = ready;
        let mut rng = fastrand::Rng::with_seed(node.pause_seed);
        let tx = transactional::current()?;
        if node.spawner == Spawner::Detached {
            if let Some(started) = ready.take() {
                let _ = started.send(()); // this frame is open: the parent may return now
            }
        }
        if tx.depth() != ctx.depth {
            ctx.violation(format!(
                "runs at depth {} instead of {}",
                tx.depth(),
                ctx.depth
            ));
        }
        for k in 0..node.before {
            pause(&mut rng).await;
            tx.execute(
                "INSERT INTO kv(key, val) VALUES (?1, ?2)",
                (row_key(ctx.case, &ctx.path, k), k),
            )
            .await?;
        }

        // Start every child by its spawner, then collect how each ended.
        let mut seen: Vec<(usize, Seen)> = Vec::new();
        let mut group: TaskGroup<(usize, Seen), NodeError> = TaskGroup::new();
        let mut handles = Vec::new();
        let mut together = Vec::new();
        let mut inline = Vec::new();
        // Spawned children die with this node: a node dropped mid-body (its root cancelled)
        // must not leave them running, holding its frame's turn forever.
        let mut spawned = AbortAll(Vec::new());
        let mut detached = AbortAll(Vec::new());
        let mut detached_started = Vec::new();
        for (i, child) in node.children.iter().enumerate() {
            let child = Arc::new(child.clone());
            let mut child_ctx = ctx.clone();
            child_ctx.path.push(i);
            child_ctx.depth = child_depth(ctx.depth, &child);
            child_ctx.frame_doomed = match child.prop {
                Prop::Nested => dooms(&child),
                Prop::Join => ctx.frame_doomed,
            };
            child_ctx.in_doomed_frame = ctx.in_doomed_frame || ctx.frame_doomed;
            match child.spawner {
                Spawner::Inline => inline.push((i, child, child_ctx)),
                Spawner::JoinAll => {
                    together.push(async move { (i, in_this_task(child, child_ctx).await) })
                }
                Spawner::TaskGroup => {
                    group.spawn(async move { Ok((i, in_this_task(child, child_ctx).await)) })
                }
                Spawner::Detached => {
                    let (started_tx, started_rx) = oneshot::channel();
                    let handle = transactional::spawn(run_node(child, child_ctx, Some(started_tx)));
                    detached.0.push(handle.abort_handle());
                    detached_started.push(started_rx);
                }
                Spawner::TransactionalSpawn | Spawner::TokioSpawn => {
                    let (ready_tx, ready_rx) = oneshot::channel();
                    let cancel = child.ending == Ending::Cancel;
                    let fut = run_node(child.clone(), child_ctx, Some(ready_tx));
                    let handle = if child.spawner == Spawner::TokioSpawn {
                        spawn_with_tokio(fut).await?
                    } else {
                        transactional::spawn(fut)
                    };
                    spawned.0.push(handle.abort_handle());
                    handles.push((i, handle, cancel.then_some(ready_rx)));
                }
            }
            pause(&mut rng).await;
        }
        // A spawned child that is to be cancelled holds this frame's turn once it has
        // signalled: cancel it before anything here needs the turn (or this task would wait
        // for it forever, which is the caller's deadlock, not the library's).
        let (to_cancel, to_join): (Vec<_>, Vec<_>) = handles
            .into_iter()
            .partition(|(_, _, ready)| ready.is_some());
        // In the order they signal: the first to signal may hold the turn the others wait for.
        let mut signalled: FuturesUnordered<_> = to_cancel
            .into_iter()
            .map(|(i, handle, ready)| async move {
                let _ = ready.expect("partitioned on ready").await;
                (i, handle)
            })
            .collect();
        while let Some((i, handle)) = signalled.next().await {
            handle.abort();
            seen.push((i, joined(handle.await)));
        }
        for (i, child, child_ctx) in inline {
            seen.push((i, in_this_task(child, child_ctx).await));
        }
        seen.extend(join_all(together).await);
        seen.extend(group.join_all().await?);
        for (i, handle, _) in to_join {
            seen.push((i, joined(handle.await)));
        }
        let in_doomed_frame = ctx.in_doomed_frame || ctx.frame_doomed;
        for (i, outcome) in seen {
            if let Some(allowed) = allowed_seen(&node.children[i], in_doomed_frame) {
                if !allowed.contains(&outcome) {
                    ctx.violation(format!(
                        "child {i} ended {outcome:?}, expected one of {allowed:?}"
                    ));
                }
            }
        }

        for k in node.before..(node.before + node.after) {
            pause(&mut rng).await;
            tx.execute(
                "INSERT INTO kv(key, val) VALUES (?1, ?2)",
                (row_key(ctx.case, &ctx.path, k), k),
            )
            .await?;
        }
        pause(&mut rng).await;
        // Detached children: wait only until each has opened its savepoint; this frame's
        // end then waits for them. (Dropped before this, this node aborts them.)
        for started in detached_started {
            let _ = started.await;
        }
        detached.0.clear();
        match node.ending {
            Ending::Ok => Ok(()),
            Ending::Err => Err(NodeError::Model),
            Ending::Panic => panic!("{MODEL_PANIC}"),
            Ending::Cancel => {
                if let Some(ready) = ready {
                    let _ = ready.send(()); // the parent cancels this frame now
                }
                std::future::pending().await
            }
            Ending::TimeoutOption => std::future::pending().await, // until the option expires
        }
    })
}

/// Aborts the tasks it names when dropped (a no-op for tasks that already ended).
struct AbortAll(Vec<tokio::task::AbortHandle>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// Silences the panics the model makes on purpose; any other panic still reports.
fn quiet_model_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|s| s == MODEL_PANIC)
                || info
                    .payload()
                    .downcast_ref::<&str>()
                    .is_some_and(|s| *s == MODEL_PANIC);
            if !ours {
                default(info);
            }
        }));
    });
}

/// Runs one case; `Err` describes what went wrong.
async fn run_case(test: &TestDb, case: u64, root: Node) -> Result<(), String> {
    let ctx = Ctx::root(case, &root);
    let violations = ctx.violations.clone();
    let root = Arc::new(root);
    let expected = expected_rows(case, &root);
    let run = Atomic::new()
        .db(test.db.clone())
        .run(body(root.clone(), ctx, None));
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        AssertUnwindSafe(run).catch_unwind(),
    )
    .await
    .map_err(|_| "hang: the case did not finish in 10 s".to_owned())?;
    let doomed = dooms(&root);
    match (&outcome, root.ending) {
        (Err(_), Ending::Panic) => {}
        (Ok(Err(NodeError::Model)), Ending::Err) => {}
        // A doomed root reports an error: RollbackOnly at its end, or the refusal of a
        // statement its body ran after the doom.
        (Ok(Err(_)), _) if doomed => {}
        (Ok(Ok(())), Ending::Ok) if !doomed => {}
        (other, ending) => {
            let other = match other {
                Ok(result) => format!("{result:?}"),
                Err(_) => "panic".to_owned(),
            };
            return Err(format!(
                "root ended {other}, expected {ending:?} (doomed: {doomed})"
            ));
        }
    }
    let violations = violations.lock().unwrap().clone();
    if !violations.is_empty() {
        return Err(format!("violations: {violations:#?}"));
    }
    // Only this case's rows: the table keeps every earlier case's rows.
    let actual = case_rows(test, case).await;
    if actual != expected {
        let lost: Vec<_> = expected.difference(&actual).collect();
        let phantom: Vec<_> = actual.difference(&expected).collect();
        return Err(format!("rows differ: lost {lost:?}, phantom {phantom:?}"));
    }
    if let Some(path) = &test.path {
        let conn = rusqlite::Connection::open(path).expect("open raw");
        let (from, to) = case_range(case);
        let mut stmt = conn
            .prepare("SELECT key FROM kv WHERE key >= ?1 AND key < ?2")
            .expect("prepare");
        let raw: BTreeSet<String> = stmt
            .query_map((from, to), |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        if raw != expected {
            return Err("another connection sees other rows than the model".to_owned());
        }
    }
    Ok(())
}

/// What the cases covered, for the report.
#[derive(Default, Debug)]
struct Tally {
    cases: u64,
    nodes: u64,
    rows_expected: u64,
    endings: [u64; 5],
    joined: u64,
    doomed: u64,
    max_depth: usize,
    max_children: usize,
}

impl Tally {
    fn add(&mut self, root: &Node, rows: usize) {
        self.cases += 1;
        self.rows_expected += rows as u64;
        self.doomed += u64::from(dooms(root));
        let mut stack = vec![(root, 1)];
        while let Some((node, depth)) = stack.pop() {
            self.nodes += 1;
            self.max_depth = self.max_depth.max(depth);
            self.max_children = self.max_children.max(node.children.len());
            self.endings[node.ending as usize] += 1;
            self.joined += u64::from(node.prop == Prop::Join);
            stack.extend(node.children.iter().map(|c| (c, depth + 1)));
        }
    }
}

fn cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// The runtime a model run uses: two workers (tasks move between threads), or one thread
/// (every interleaving happens at an `.await`).
#[derive(Clone, Copy, Debug)]
enum Flavor {
    TwoWorkers,
    OneThread,
}

fn run_model(kind: Kind, flavor: Flavor, cases: u32) {
    quiet_model_panics();
    let runtime = match flavor {
        Flavor::TwoWorkers => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Flavor::OneThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .unwrap();
    let test = runtime.block_on(TestDb::new(kind));
    let counter = std::sync::atomic::AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    };
    proptest!(config, |(root in tree())| {
        let case = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tally.lock().unwrap().add(&root, expected_rows(case, &root).len());
        let result = runtime.block_on(run_case(&test, case, root.clone()));
        if let Err(why) = &result {
            eprintln!("{kind:?} case {case} failed: {why}\n{root:?}");
        }
        prop_assert!(result.is_ok(), "{kind:?} case {case}: {}\ntree: {root:#?}", result.unwrap_err());
    });
    runtime.block_on(test.assert_healthy());
    let t = tally.into_inner().unwrap();
    // endings: Ok, Err, Panic, Cancel, TimeoutOption
    eprintln!(
        "model {kind:?} {flavor:?}: {} cases, {} nodes ({} joined, depth ≤ {}, ≤ {} children), endings ok/err/panic/cancel/timeout = {:?}, \
         {} doomed transactions, {} rows expected and found; 0 lost, 0 phantom, 0 hangs",
        t.cases, t.nodes, t.joined, t.max_depth, t.max_children, t.endings, t.doomed, t.rows_expected
    );
}

#[test]
fn model_file_database() {
    run_model(Kind::File, Flavor::TwoWorkers, cases());
}

#[test]
fn model_in_memory_database() {
    run_model(Kind::Memory, Flavor::TwoWorkers, cases());
}

/// The same model on PostgreSQL (feature `postgres`, `DATABASE_URL` set), with a fifth of
/// the cases: every statement is a round trip to the server.
#[test]
fn model_postgres() {
    if !transactional_tests::postgres_configured() {
        eprintln!("DATABASE_URL is not set (or the `postgres` feature is off): the model does not run on PostgreSQL");
        return;
    }
    run_model(Kind::Postgres, Flavor::TwoWorkers, (cases() / 5).max(1));
}

/// The same on a single-threaded runtime, with a fifth of the cases.
#[test]
fn model_single_threaded_runtime() {
    run_model(Kind::File, Flavor::OneThread, (cases() / 5).max(1));
}

// ---------------------------------------------------------------------------------------
// Regressions: trees that failed once (in the harness, while it was being written) and
// that exercise combinations the random search found hard to get right.

fn node(prop: Prop, spawner: Spawner, ending: Ending, children: Vec<Node>) -> Node {
    Node {
        prop,
        spawner,
        ending,
        before: 1,
        after: 1,
        pause_seed: 1,
        children,
    }
}

fn run_fixed(root: Node) {
    quiet_model_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for kind in transactional_tests::KINDS {
        runtime.block_on(async {
            let test = TestDb::new(kind).await;
            for case in 0..20 {
                if let Err(why) = run_case(&test, case, root.clone()).await {
                    panic!("{kind:?} run {case}: {why}");
                }
            }
            test.assert_healthy().await;
        });
    }
}

/// A joined child whose `timeout` option expires, running in one task beside a joined
/// child that is cancelled: the timeout is reported as a timeout, and dooms the transaction.
#[test]
fn regression_joined_timeout_beside_a_cancelled_sibling() {
    use {Ending::*, Prop::*, Spawner::*};
    run_fixed(node(
        Nested,
        Inline,
        Ok,
        vec![node(
            Nested,
            TransactionalSpawn,
            Ok,
            vec![
                node(Join, JoinAll, Cancel, vec![]),
                node(Join, JoinAll, TimeoutOption, vec![]),
                node(Nested, TaskGroup, Ok, vec![]),
            ],
        )],
    ));
}

/// Several spawned children cancelled after they signal, in whatever order they take the
/// parent's turn, beside task-group siblings and a grandchild spawned with `tokio::spawn`.
#[test]
fn regression_spawned_children_cancelled_in_turn_order() {
    use {Ending::*, Prop::*, Spawner::*};
    run_fixed(node(
        Nested,
        Inline,
        Ok,
        vec![
            node(Nested, TransactionalSpawn, Cancel, vec![]),
            node(Nested, TaskGroup, Ok, vec![]),
            node(Nested, TokioSpawn, Cancel, vec![]),
            node(
                Nested,
                Inline,
                Ok,
                vec![node(Nested, TokioSpawn, Ok, vec![])],
            ),
            node(Nested, TokioSpawn, Cancel, vec![]),
            node(
                Nested,
                TaskGroup,
                Err,
                vec![node(Nested, Inline, Ok, vec![])],
            ),
        ],
    ));
}

// ---------------------------------------------------------------------------------------
// The model under adverse conditions: roots cancelled while they end, `synchronous = FULL`,
// reader connections, one blocking thread, runtimes shut down mid-case.

#[path = "model/adverse.rs"]
mod adverse;

#[path = "model/checks.rs"]
mod checks;

#[path = "model/shutdown.rs"]
mod shutdown;
