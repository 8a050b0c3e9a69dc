//! W3: one outer transaction, a `TaskGroup` of K concurrent children each a nested upsert,
//! K = 10, 100, 1,000, 10,000 (per child), against F1. Peak memory is measured by
//! `bench-table` (in a child process per K).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use transactional_benches::{f1, Env, Store};

fn w3(c: &mut Criterion) {
    let env = Env::new();
    let mut group = c.benchmark_group("w3");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    let db = env.ours(Store::Wal);
    let mut raw = env.raw(Store::Wal);
    for k in [10u64, 100, 1_000, 10_000] {
        group.bench_function(BenchmarkId::new("transactional", k), |b| {
            // One iteration is one child; whole groups of K are run.
            b.iter_custom(|n| {
                let groups = n.div_ceil(k).max(1);
                env.w3_ours(&db, k, groups) * n as u32
            })
        });
    }
    group.bench_function("F1", |b| {
        b.iter_custom(|n| f1(&mut raw, 1, n.max(1)) * n as u32)
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = w3 }
criterion_main!(benches);
