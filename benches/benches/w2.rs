//! W2: 2,000 outermost transactions of one upsert each, from 64 concurrent tasks, on a WAL
//! file, against sequential rusqlite transactions. One iteration is one whole run.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use transactional_benches::{w2_floor, Env, Store};

const TXS: u64 = 2_000;

fn w2(c: &mut Criterion) {
    let env = Env::new();
    let mut group = c.benchmark_group("w2");
    group.throughput(Throughput::Elements(TXS));
    group.sample_size(10);
    let db = env.ours(Store::Wal);
    let mut raw = env.raw(Store::Wal);
    group.bench_function("transactional/64 tasks", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let (per_tx, failed) = env.w2_ours(&db, TXS, 64);
                    assert_eq!(failed, 0, "a transaction failed");
                    per_tx * TXS as u32
                })
                .sum()
        })
    });
    group.bench_function("rusqlite/sequential", |b| {
        b.iter_custom(|n| (0..n).map(|_| w2_floor(&mut raw, TXS) * TXS as u32).sum())
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = w2 }
criterion_main!(benches);
