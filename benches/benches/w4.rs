//! W4: 8 tasks running read-only transactions beside one writer (WAL), per read, against a
//! raw rusqlite reader on its own thread beside a raw writer thread.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use transactional_benches::{w4_floor, Env, Store, Writer};

const READERS: u64 = 8;
const READS: u64 = 500;

fn w4(c: &mut Criterion) {
    let env = Env::new();
    let mut group = c.benchmark_group("w4");
    group.throughput(Throughput::Elements(READERS * READS));
    group.sample_size(10);
    let db = env.ours(Store::Wal);
    let raw_path = env.path("w4raw");
    for (writer, label) in [
        (Writer::Busy, "writer busy"),
        (Writer::HeldOpen, "write tx held"),
    ] {
        group.bench_function(BenchmarkId::new("transactional/8 tasks", label), |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| {
                        env.w4_ours(&db, READERS, READS, writer).per_read * (READERS * READS) as u32
                    })
                    .sum()
            })
        });
        group.bench_function(BenchmarkId::new("rusqlite/reader thread", label), |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| {
                        w4_floor(&raw_path, READERS * READS, writer).per_read
                            * (READERS * READS) as u32
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = w4 }
criterion_main!(benches);
