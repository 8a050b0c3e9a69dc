//! How deep recursive `#[transactional]` calls can nest on a tokio worker thread's stack,
//! and how many bytes of stack each level costs. A measuring tool, not a regular test: its
//! tests are `#[ignore]`d.
//!
//! ```sh
//! cargo test -p transactional-tests --test nesting_depth -- --ignored --nocapture
//! cargo test -p transactional-tests --test nesting_depth --release -- --ignored --nocapture
//! # another worker stack size (default 2 MiB, tokio's):
//! NESTING_STACK_KIB=8192 cargo test -p transactional-tests --test nesting_depth -- --ignored --nocapture
//! # fail unless the `#[transactional]` recursion reaches this depth:
//! NESTING_MIN_DEPTH=5000 cargo test -p transactional-tests --test nesting_depth -- --ignored --nocapture
//! ```
//!
//! Each level is a boxed recursive async fn that runs one INSERT in its frame and then
//! recurses; `#[transactional]` makes each level a savepoint (the first one begins the
//! transaction). The baseline (`plain`) is the same recursion without the attribute, in one
//! transaction. The `-bare` variants leave the statement out, so that `tx-bare` minus
//! `plain-bare` is what the frame machinery alone costs per level. Overflowing a stack aborts the process, so every depth is tried in a child
//! process (this test binary run again with `NESTING_PROBE` set), on a one-worker
//! multi-thread runtime whose worker has the given stack size; the maximum is found by
//! doubling, then bisection.
//!
//! Two figures per variant:
//! - *max depth* on the given stack, and stack size / max depth (includes the constant cost
//!   of the runtime, the outermost frames and one SQLite statement at the bottom);
//! - *per level*: the stack pointer's distance between consecutive levels, read in each
//!   level's body (an address of a local in a non-inlined fn), at depths 50..250 on a big
//!   stack. This is the true marginal cost of a level.

use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::sync::Mutex;

use transactional::{transactional, Atomic, Database, Error};

/// The stack pointer, near enough: the address of a local of a fn that is never inlined.
#[inline(never)]
fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Stack pointers recorded by each level's body, when `RECORD` is set.
static SPS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static RECORD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn record() {
    if RECORD.load(std::sync::atomic::Ordering::Relaxed) {
        SPS.lock().unwrap().push(stack_pointer());
    }
}

/// One savepoint per level: an INSERT, then the next level.
#[transactional]
async fn nested(levels: u32) -> Result<u32, Error> {
    record();
    let tx = transactional::current()?;
    tx.execute("INSERT INTO t(x) VALUES (?1)", (levels,))
        .await?;
    if levels > 1 {
        Box::pin(nested(levels - 1)).await
    } else {
        Ok(tx.depth())
    }
}

/// The baseline: the same recursion, boxed, without frames (in the caller's transaction).
fn plain(levels: u32) -> Pin<Box<dyn Future<Output = Result<u32, Error>> + Send>> {
    Box::pin(async move {
        record();
        let tx = transactional::current()?;
        tx.execute("INSERT INTO t(x) VALUES (?1)", (levels,))
            .await?;
        if levels > 1 {
            plain(levels - 1).await
        } else {
            Ok(tx.depth())
        }
    })
}

/// Like `nested`, without the statement: what the frames alone cost.
#[transactional]
async fn nested_bare(levels: u32) -> Result<u32, Error> {
    record();
    if levels > 1 {
        Box::pin(nested_bare(levels - 1)).await
    } else {
        Ok(transactional::current()?.depth())
    }
}

/// Like `plain`, without the statement: the floor of boxed async recursion.
fn plain_bare(levels: u32) -> Pin<Box<dyn Future<Output = Result<u32, Error>> + Send>> {
    Box::pin(async move {
        record();
        if levels > 1 {
            plain_bare(levels - 1).await
        } else {
            Ok(transactional::current()?.depth())
        }
    })
}

#[derive(Clone, Copy, Debug)]
enum Variant {
    Transactional,
    Plain,
    TransactionalBare,
    PlainBare,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Transactional,
        Variant::Plain,
        Variant::TransactionalBare,
        Variant::PlainBare,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Transactional => "transactional",
            Variant::Plain => "plain",
            Variant::TransactionalBare => "tx-bare",
            Variant::PlainBare => "plain-bare",
        }
    }

    fn parse(name: &str) -> Variant {
        Variant::ALL
            .into_iter()
            .find(|variant| variant.name() == name)
            .unwrap_or_else(|| panic!("unknown variant {name}"))
    }

    /// Whether each level runs a statement (and so adds a row).
    fn writes(self) -> bool {
        matches!(self, Variant::Transactional | Variant::Plain)
    }
}

/// Runs `levels` levels of `variant` on a one-worker runtime whose worker has `stack` bytes
/// of stack; returns the depth of the deepest frame.
fn run(variant: Variant, levels: u32, stack: usize) -> u32 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_stack_size(stack)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let db = Database::open_in_memory().await.expect("open");
        db.set_default();
        Atomic::new()
            .run(async {
                transactional::current()?
                    .execute_batch("CREATE TABLE t(x INTEGER)")
                    .await
            })
            .await
            .expect("create t");
        // Spawned, so that every level is polled on the worker thread.
        let deepest = tokio::spawn(async move {
            match variant {
                Variant::Transactional => nested(levels).await,
                Variant::Plain => Atomic::new().run(plain(levels)).await,
                Variant::TransactionalBare => nested_bare(levels).await,
                Variant::PlainBare => Atomic::new().run(plain_bare(levels)).await,
            }
        })
        .await
        .expect("join")
        .expect("recursion");
        let rows: i64 = Atomic::new()
            .run(async {
                transactional::current()?
                    .query_row("SELECT count(*) FROM t", ())
                    .await?
                    .get(0)
            })
            .await
            .expect("count");
        let expected = if variant.writes() { levels } else { 0 };
        assert_eq!(rows, i64::from(expected), "every level's row committed");
        deepest
    })
}

/// The child process's side: `NESTING_PROBE=<variant>:<levels>:<stack bytes>`.
#[test]
#[ignore = "run by `measure` in a child process"]
fn probe() {
    let Ok(spec) = std::env::var("NESTING_PROBE") else {
        return;
    };
    let mut parts = spec.split(':');
    let variant = Variant::parse(parts.next().expect("variant"));
    let levels: u32 = parts.next().expect("levels").parse().expect("levels");
    let stack: usize = parts.next().expect("stack").parse().expect("stack");
    run(variant, levels, stack);
    println!("NESTING_PROBE_OK");
}

/// Whether `levels` levels fit in `stack` bytes, tried in a child process.
fn fits(variant: Variant, levels: u32, stack: usize) -> bool {
    let output = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "probe",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "NESTING_PROBE",
            format!("{}:{levels}:{stack}", variant.name()),
        )
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the probe");
    let ok = output.status.success()
        && String::from_utf8_lossy(&output.stdout).contains("NESTING_PROBE_OK");
    if !ok {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("overflow"),
            "probe {} at {levels} levels failed without a stack overflow:\n{stderr}",
            variant.name()
        );
    }
    ok
}

/// Depths are searched up to this many levels; a variant that fits them all is reported at
/// this depth (its nesting is bounded by memory, not by the stack).
const SEARCH_LIMIT: u32 = 16_384;

/// The largest number of levels that fits in `stack` bytes, up to `SEARCH_LIMIT`.
fn max_depth(variant: Variant, stack: usize) -> u32 {
    let (mut fit, mut overflow) = (0u32, 64u32);
    while fits(variant, overflow, stack) {
        fit = overflow;
        overflow *= 2;
        if overflow > SEARCH_LIMIT {
            // Nesting no longer bounded by the stack (frames grow it): report the limit.
            return fit;
        }
    }
    while overflow - fit > 1 {
        let mid = fit + (overflow - fit) / 2;
        if fits(variant, mid, stack) {
            fit = mid;
        } else {
            overflow = mid;
        }
    }
    fit
}

/// Bytes of stack between consecutive levels, from the stack pointers recorded at levels
/// 50..250 of a run on a 64 MiB stack (minimum, median and maximum over those levels).
fn per_level(variant: Variant) -> (usize, usize, usize) {
    SPS.lock().unwrap().clear();
    RECORD.store(true, std::sync::atomic::Ordering::Relaxed);
    run(variant, 300, 64 << 20);
    RECORD.store(false, std::sync::atomic::Ordering::Relaxed);
    let sps = std::mem::take(&mut *SPS.lock().unwrap());
    let mut deltas: Vec<usize> = sps[50..250].windows(2).map(|w| w[0] - w[1]).collect();
    deltas.sort_unstable();
    (
        deltas[0],
        deltas[deltas.len() / 2],
        deltas[deltas.len() - 1],
    )
}

#[test]
#[ignore = "a measuring tool: run it with --ignored --nocapture"]
fn measure() {
    let stack = std::env::var("NESTING_STACK_KIB")
        .map(|kib| kib.parse::<usize>().expect("NESTING_STACK_KIB") * 1024)
        .unwrap_or(2 << 20);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "\n{profile} build, worker stack {} KiB\n\
         {:<14} {:>10} {:>14} {:>26}",
        stack / 1024,
        "variant",
        "max depth",
        "stack / depth",
        "per level (min/med/max)"
    );
    let mut transactional_depth = 0;
    for variant in Variant::ALL {
        let depth = max_depth(variant, stack);
        let (min, median, max) = per_level(variant);
        println!(
            "{:<14} {depth:>10} {:>12} B {:>16} B",
            variant.name(),
            stack / depth as usize,
            format!("{min}/{median}/{max}"),
        );
        if let Variant::Transactional = variant {
            transactional_depth = depth;
        }
    }
    println!(
        "sizes: Error {} B, the future of nested(1) {} B, of nested_bare(1) {} B",
        std::mem::size_of::<Error>(),
        std::mem::size_of_val(&nested(1)),
        std::mem::size_of_val(&nested_bare(1)),
    );
    if let Ok(min) = std::env::var("NESTING_MIN_DEPTH") {
        let min: u32 = min.parse().expect("NESTING_MIN_DEPTH");
        assert!(
            transactional_depth >= min,
            "#[transactional] nests {transactional_depth} levels deep, below {min}"
        );
    }
}
