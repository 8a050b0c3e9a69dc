//! Runs every benchmark workload once, quickly, and prints a table of µs per operation and
//! the ratio to the raw-rusqlite floor measured in the same run (medians of `--rounds`
//! interleaved rounds).
//!
//! ```sh
//! cargo run --release -p transactional-benches --bin bench-table            # ~1 minute
//! cargo run --release -p transactional-benches --bin bench-table -- --rounds 9
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

use transactional_benches::{
    f1, f1c, median, stall, us, w2_floor, w4_floor, Env, Store, Writer, KEYS,
};

const W1_CALLS: u64 = 20_000;
const W2_TXS: u64 = 2_000;
const W2_TASKS: u64 = 64;
const W3_KS: [u64; 4] = [10, 100, 1_000, 10_000];
const W3_CHILDREN: u64 = 10_000;
const W4_READERS: u64 = 8;
const W4_READS: u64 = 2_000;
const STALL_TICKS: usize = 2_000;

struct Line {
    name: String,
    ours: f64,
    floor_name: String,
    floor: f64,
    target: &'static str,
    note: String,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--w3-memory") {
        let k: u64 = args[pos + 1].parse().expect("K");
        w3_memory_child(k);
        return;
    }
    if args.iter().any(|a| a == "--sizes") {
        print_future_sizes();
        return;
    }
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .map(|p| args[p + 1].parse().expect("--rounds N"))
        .unwrap_or(5);
    let only: Option<String> = args
        .iter()
        .position(|a| a == "--only")
        .map(|p| args[p + 1].clone());
    let wants = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));

    let started = Instant::now();
    let env = Env::new();
    let mut lines = Vec::new();

    // W1 and growth.
    for store in [Store::Memory, Store::Wal] {
        let depths: &[u32] = if store == Store::Memory {
            &[1, 4, 16]
        } else {
            &[1]
        };
        for &depth in depths {
            let name = if depth == 1 {
                format!("W1 nested call, {}", store.label())
            } else {
                format!("growth: W1 at depth {depth}, {}", store.label())
            };
            if !wants(&name) {
                continue;
            }
            let db = env.ours(store);
            let mut raw = env.raw(store);
            let (mut ours, mut floor1, mut floor1c) = (vec![], vec![], vec![]);
            env.w1_ours(&db, depth, 2_000); // warm the statement cache and the allocator
            for _ in 0..rounds {
                ours.push(env.w1_ours(&db, depth, W1_CALLS));
                floor1.push(f1(&mut raw, depth, W1_CALLS));
                floor1c.push(f1c(&mut raw, depth, W1_CALLS));
            }
            let (o, a, c) = (us(median(ours)), us(median(floor1)), us(median(floor1c)));
            lines.push(Line {
                name: name.clone(),
                ours: o,
                floor_name: "F1 (Savepoint API)".into(),
                floor: a,
                target: if depth == 1 {
                    "≤ 1.0x"
                } else {
                    "flat in depth"
                },
                note: String::new(),
            });
            lines.push(Line {
                name,
                ours: o,
                floor_name: "F1c (all cached)".into(),
                floor: c,
                target: if depth == 1 { "≤ 2.0x" } else { "" },
                note: String::new(),
            });
        }
    }

    // W2.
    if wants("W2") {
        let (mut ours, mut floor, mut failed) = (vec![], vec![], 0);
        for _ in 0..rounds {
            let db = env.ours(Store::Wal);
            let (t, f) = env.w2_ours(&db, W2_TXS, W2_TASKS);
            ours.push(t);
            failed += f;
            let mut raw = env.raw(Store::Wal);
            floor.push(w2_floor(&mut raw, W2_TXS));
        }
        lines.push(Line {
            name: format!("W2 {W2_TXS} outermost txs from {W2_TASKS} tasks, WAL file"),
            ours: us(median(ours)),
            floor_name: "sequential rusqlite txs".into(),
            floor: us(median(floor)),
            target: "≤ 1.2x, 0 busy",
            note: format!("{failed} failed txs in {rounds} runs"),
        });
    }

    // W3.
    if wants("W3") {
        let db = env.ours(Store::Wal);
        let mut raw = env.raw(Store::Wal);
        env.w3_ours(&db, 100, 10);
        for k in W3_KS {
            let groups = W3_CHILDREN / k;
            let (mut ours, mut floor) = (vec![], vec![]);
            for _ in 0..rounds {
                ours.push(env.w3_ours(&db, k, groups));
                floor.push(f1(&mut raw, 1, W3_CHILDREN));
            }
            lines.push(Line {
                name: format!("W3 TaskGroup K = {k}, per child, WAL file"),
                ours: us(median(ours)),
                floor_name: "F1 (Savepoint API)".into(),
                floor: us(median(floor)),
                target: "≤ 2.0x, flat in K",
                note: w3_memory(k),
            });
        }
    }

    // W4.
    for writer in [Writer::Busy, Writer::HeldOpen] {
        let what = match writer {
            Writer::Busy => "writer busy",
            Writer::HeldOpen => "write tx held open",
        };
        let name = format!("W4 {W4_READERS} read-only tasks, {what}, per read");
        if !wants(&name) {
            continue;
        }
        let (mut ours, mut floor, mut writes, mut raw_writes) = (vec![], vec![], 0, 0);
        for _ in 0..rounds {
            let db = env.ours(Store::Wal);
            let run = env.w4_ours(&db, W4_READERS, W4_READS, writer);
            ours.push(run.per_read);
            writes += run.writes;
            let raw = w4_floor(&env.path("w4raw"), W4_READERS * W4_READS, writer);
            floor.push(raw.per_read);
            raw_writes += raw.writes;
        }
        lines.push(Line {
            name,
            ours: us(median(ours)),
            floor_name: "raw reader thread".into(),
            floor: us(median(floor)),
            target: "not blocked",
            note: format!(
                "writer txs during reads: ours {}, raw {} (per run)",
                writes / rounds as u64,
                raw_writes / rounds as u64
            ),
        });
    }

    // The executor-stall check.
    let mut stall_lines = Vec::new();
    if wants("stall") {
        for (label, pragmas) in [
            ("synchronous=NORMAL", &[][..]),
            ("synchronous=FULL", &[("synchronous", "FULL")][..]),
        ] {
            let db = env.ours_file_with(&env.path("stall"), pragmas);
            let idle = stall(&db, STALL_TICKS, false);
            let busy = stall(&db, STALL_TICKS, true);
            stall_lines.push(format!(
                "| {label} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {} | {:.0} |",
                us(idle.quantile(0.5)),
                us(idle.quantile(0.99)),
                us(idle.quantile(1.0)),
                us(busy.quantile(0.5)),
                us(busy.quantile(0.99)),
                us(busy.quantile(1.0)),
                busy.writes,
                us(busy.longest_write),
            ));
        }
    }

    println!(
        "\n{} rounds per row (median), {} keys; {} cores; took {:.0?}\n",
        rounds,
        KEYS,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed()
    );
    println!("| workload | ours µs/op | floor | floor µs/op | ratio | target | note |");
    println!("|---|---:|---|---:|---:|---|---|");
    for l in &lines {
        println!(
            "| {} | {:.2} | {} | {:.2} | {:.2}x | {} | {} |",
            l.name,
            l.ours,
            l.floor_name,
            l.floor,
            l.ours / l.floor,
            l.target,
            l.note
        );
    }
    if !stall_lines.is_empty() {
        println!(
            "\nExecutor stall: a 1 ms timer task on a current-thread runtime, {STALL_TICKS} ticks, \
             beside a writer committing 16 x 4 KiB rows per transaction back to back (WAL file)."
        );
        println!(
            "| writer settings | lateness idle p50 / p99 / max µs | lateness beside writer p50 / p99 / max µs | writer txs | longest writer tx µs |"
        );
        println!("|---|---:|---:|---:|---:|");
        for l in &stall_lines {
            println!("{l}");
        }
    }
}

/// Peak memory of W3 at `k`, measured in a fresh child process (peak RSS is per process).
fn w3_memory(k: u64) -> String {
    let exe = std::env::current_exe().expect("current exe");
    match Command::new(exe)
        .args(["--w3-memory", &k.to_string()])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => format!(
            "memory run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("memory run failed: {e}"),
    }
}

/// In the child: one outer transaction with one group of `k` children; prints the growth of
/// peak RSS over the process's RSS before the group.
fn w3_memory_child(k: u64) {
    let env = Env::new();
    let db = env.ours(Store::Wal);
    env.w3_ours(&db, 10, 1); // warm up: threads, statement cache
    let before = rss_kib("VmRSS");
    std::fs::write("/proc/self/clear_refs", "5").ok(); // reset the peak to now
    env.w3_ours(&db, k, 1);
    let peak = rss_kib("VmHWM");
    let grown = peak.saturating_sub(before);
    println!(
        "peak RSS +{grown} KiB ({:.1} KiB/child)",
        grown as f64 / k as f64
    );
    std::thread::sleep(Duration::from_millis(1));
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Sizes of the futures a user's code builds (each spawned child of W3 holds one).
fn print_future_sizes() {
    let upsert = transactional_benches::upsert(0, 0);
    println!(
        "upsert(..) future: {} bytes",
        std::mem::size_of_val(&upsert)
    );
    let atomic = transactional::Atomic::new().run(async { Ok::<_, transactional::Error>(()) });
    println!(
        "Atomic::run(empty body) future: {} bytes",
        std::mem::size_of_val(&atomic)
    );
    let exec = async {
        transactional::current()?
            .execute(transactional_benches::UPSERT, (0i64, 0i64))
            .await
    };
    println!(
        "tx.execute(..) future: {} bytes",
        std::mem::size_of_val(&exec)
    );
}
