//! The executor-stall check: a 1 ms timer on a current-thread runtime, alone and beside a
//! checkpoint-heavy writer (16 x 4 KiB rows per transaction, WAL file). One iteration is one
//! tick; criterion reports the tick's mean and spread (`bench-table` prints p50/p99/max).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use transactional_benches::{stall, Env};

fn ticks(c: &mut Criterion) {
    let env = Env::new();
    let db = env.ours_file_with(&env.path("stall"), &[]);
    let mut group = c.benchmark_group("stall");
    group.sample_size(10);
    for (with_writer, label) in [(false, "timer alone"), (true, "timer beside writer")] {
        group.bench_function(label, |b| {
            b.iter_custom(|n| {
                let run = stall(&db, n.max(1) as usize, with_writer);
                run.lateness.iter().sum::<Duration>() + Duration::from_millis(n)
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = ticks }
criterion_main!(benches);
