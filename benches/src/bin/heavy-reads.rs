//! Heavy reads beside a live service: does a long read-only statement stall the executor?
//!
//! On a tokio runtime with 2 workers (the service's shape in issue 14), four tasks loop on
//! a heavy read-only transaction (an audit: a join over every transfer) while one task
//! measures how long a DB-free task takes to be scheduled and answered (what a `/metrics`
//! request waits), and another runs single transfers (small write transactions). Each mode
//! runs in the same process, on the same file:
//!
//! - `inline`: the audits' statements run on the worker threads, as statements do by
//!   default;
//! - `offload`: the audits are `Atomic::offload(true)` frames.
//!
//! ```sh
//! cargo run --release -p transactional-benches --bin heavy-reads [-- --accounts 500000 --transfers 1000000 --seconds 5]
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use transactional::{Atomic, Database, Error};

/// Every transfer joined to both its accounts (`CROSS JOIN` fixes the loop order: transfers
/// outside, accounts looked up by primary key).
const AUDIT: &str = "SELECT count(*), sum(a.balance - b.balance) FROM transfer t \
                     CROSS JOIN account a ON a.id = t.to_id CROSS JOIN account b ON b.id = t.from_id";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .map(|i| args[i + 1].parse().expect("a number"))
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

struct Figures {
    ping: Vec<Duration>,
    transfer: Vec<Duration>,
    audits: u64,
    audit_time: Duration,
}

async fn seed(db: &Database, accounts: u64, transfers: u64) -> Result<(), Error> {
    db.execute_batch(&format!(
        "CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE transfer(id INTEGER PRIMARY KEY, from_id INTEGER NOT NULL,
                               to_id INTEGER NOT NULL, amount INTEGER NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {accounts})
         INSERT INTO account SELECT i, 1000 FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {transfers})
         INSERT INTO transfer SELECT i, (i * 7919) % {accounts} + 1, (i * 104729) % {accounts} + 1, 1
         FROM n;"
    ))
    .await
}

async fn run_mode(db: &Database, offload: bool, seconds: u64) -> Figures {
    // Every loop ends by the clock, not by a flag that a timer task would set: inline, the
    // workers are busy with audits and a timer task would hardly ever run.
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let audits = Arc::new(AtomicU64::new(0));
    let audit_nanos = Arc::new(AtomicU64::new(0));
    let mut loopers = Vec::new();
    for _ in 0..4 {
        let (db, stop, audits, audit_nanos) = (
            db.clone(),
            stop.clone(),
            audits.clone(),
            audit_nanos.clone(),
        );
        loopers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let started = Instant::now();
                Atomic::new()
                    .db(db.clone())
                    .read_only(true)
                    .offload(offload)
                    .run(async { transactional::current()?.query_row(AUDIT, ()).await })
                    .await
                    .expect("audit");
                audits.fetch_add(1, Ordering::Relaxed);
                audit_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        }));
    }
    let pinger = {
        tokio::spawn(async move {
            // A request arrives every 5 ms; its latency counts from when it arrived (`due`),
            // so time spent waiting for a worker to run the timer or the task is included.
            let mut ping = Vec::new();
            // From the start of the run: a task that first runs late still owes every
            // request due since.
            let mut due = start;
            // Requests due before the deadline are all answered and counted, also those
            // answered after it (a starved worker answers them late).
            while due < deadline {
                due += Duration::from_millis(5);
                tokio::time::sleep_until(due.into()).await;
                tokio::spawn(async {}).await.unwrap();
                ping.push(due.elapsed());
            }
            ping
        })
    };
    let transferer = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut transfer = Vec::new();
            let mut i: i64 = 0;
            // From the start of the run: a task that first runs late still owes every
            // request due since.
            let mut due = start;
            while due < deadline {
                i += 1;
                due += Duration::from_millis(5);
                tokio::time::sleep_until(due.into()).await;
                let started = due;
                Atomic::new()
                    .db(db.clone())
                    .run(async move {
                        let tx = transactional::current()?;
                        tx.execute(
                            "UPDATE account SET balance = balance - 1 WHERE id = ?1",
                            (i % 100 + 1,),
                        )
                        .await?;
                        tx.execute(
                            "UPDATE account SET balance = balance + 1 WHERE id = ?1",
                            (i % 100 + 2,),
                        )
                        .await?;
                        Ok::<_, Error>(())
                    })
                    .await
                    .expect("transfer");
                transfer.push(started.elapsed());
                // Requests that arrived while this one ran are not replayed: the next is due
                // 5 ms after this one ended.
                due = Instant::now();
            }
            transfer
        })
    };
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ping = pinger.await.unwrap();
    let mut transfer = transferer.await.unwrap();
    for looper in loopers {
        looper.await.unwrap();
    }
    ping.sort();
    transfer.sort();
    let audits = audits.load(Ordering::Relaxed);
    Figures {
        ping,
        transfer,
        audits,
        audit_time: Duration::from_nanos(audit_nanos.load(Ordering::Relaxed) / audits.max(1)),
    }
}

fn main() {
    let accounts = arg("--accounts", 500_000);
    let transfers = arg("--transfers", 1_000_000);
    let seconds = arg("--seconds", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::spawn(async move {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::open(dir.path().join("heavy.db")).await.unwrap();
            seed(&db, accounts, transfers).await.unwrap();
            println!(
                "{accounts} accounts, {transfers} transfers; 4 tasks loop on the audit for \
                 {seconds} s per mode; 2 workers"
            );
            println!();
            println!("| mode | audit, ms (mean) | audits | DB-free task p50 / p99 / max, ms | transfer p50 / p99 / max, ms |");
            println!("|---|---:|---:|---:|---:|");
            for offload in [false, true] {
                let f = run_mode(&db, offload, seconds).await;
                println!(
                    "| {} | {} | {} | {} / {} / {} | {} / {} / {} |",
                    if offload { "offload" } else { "inline" },
                    ms(f.audit_time),
                    f.audits,
                    ms(percentile(&f.ping, 0.5)),
                    ms(percentile(&f.ping, 0.99)),
                    ms(*f.ping.last().unwrap_or(&Duration::ZERO)),
                    ms(percentile(&f.transfer, 0.5)),
                    ms(percentile(&f.transfer, 0.99)),
                    ms(*f.transfer.last().unwrap_or(&Duration::ZERO)),
                );
            }
            db.close().await.unwrap();
        })
        .await
        .unwrap();
    });
}
