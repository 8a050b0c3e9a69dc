//! W1 (one outer transaction, sequential nested `#[transactional]` calls doing one upsert)
//! against F1 and F1c, in memory and on a WAL file; and growth: the same at depth 1, 4, 16.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use transactional_benches::{f1, f1c, Env, Store};

fn w1(c: &mut Criterion) {
    let env = Env::new();
    let mut group = c.benchmark_group("w1");
    group.throughput(Throughput::Elements(1));
    for store in [Store::Memory, Store::Wal] {
        let db = env.ours(store);
        let mut raw = env.raw(store);
        group.bench_function(BenchmarkId::new("transactional", store.label()), |b| {
            b.iter_custom(|n| env.w1_ours(&db, 1, n.max(1)) * n as u32)
        });
        group.bench_function(BenchmarkId::new("F1", store.label()), |b| {
            b.iter_custom(|n| f1(&mut raw, 1, n.max(1)) * n as u32)
        });
        group.bench_function(BenchmarkId::new("F1c", store.label()), |b| {
            b.iter_custom(|n| f1c(&mut raw, 1, n.max(1)) * n as u32)
        });
    }
    group.finish();
}

fn growth(c: &mut Criterion) {
    let env = Env::new();
    let mut group = c.benchmark_group("growth");
    group.throughput(Throughput::Elements(1));
    let db = env.ours(Store::Memory);
    let mut raw = env.raw(Store::Memory);
    for depth in [1u32, 4, 16] {
        group.bench_function(BenchmarkId::new("transactional", depth), |b| {
            b.iter_custom(|n| env.w1_ours(&db, depth, n.max(1)) * n as u32)
        });
        group.bench_function(BenchmarkId::new("F1", depth), |b| {
            b.iter_custom(|n| f1(&mut raw, depth, n.max(1)) * n as u32)
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = w1, growth }
criterion_main!(benches);
