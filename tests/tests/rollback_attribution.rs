//! Rolling back a frame undoes exactly that frame's work, never a sibling's.
//!
//! Sibling A opens its savepoint, writes, and fails late. Sibling B calls its nested fn while
//! A's savepoint is open and commits. Task C writes in the parent frame (no savepoint) while
//! A's savepoint is open. Without ordering, B's and C's rows land inside A's savepoint and
//! vanish with it. The final rows must be B's and C's, never A's, over many interleavings.
//!
//! Conformance: both tests run on every kind of `KINDS`.

use std::time::Duration;

use tokio::sync::oneshot;
use transactional::{transactional, Database, Error, TaskGroup};
use transactional_tests::{insert, Kind, TestDb, KINDS};

#[derive(Debug)]
enum AppError {
    Db(#[allow(dead_code)] Error), // read through `Debug` when a round fails
    Fails,
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Db(e)
    }
}

/// A pause of 0–3 scheduler yields or a short sleep, chosen by `rng`.
async fn pause(rng: &mut fastrand::Rng) {
    match rng.u8(0..5) {
        0 => {}
        1..=3 => {
            for _ in 0..rng.u8(1..4) {
                tokio::task::yield_now().await;
            }
        }
        _ => tokio::time::sleep(Duration::from_micros(rng.u64(50..500))).await,
    }
}

#[transactional]
async fn sibling_a(round: usize, opened: oneshot::Sender<()>, seed: u64) -> Result<(), AppError> {
    let mut rng = fastrand::Rng::with_seed(seed);
    insert(format!("r{round:03}-a1")).await?;
    let _ = opened.send(()); // A's savepoint is open and has written
    pause(&mut rng).await;
    insert(format!("r{round:03}-a2")).await?;
    pause(&mut rng).await;
    Err(AppError::Fails) // fails late: both of A's rows must go
}

#[transactional]
async fn sibling_b(round: usize, seed: u64) -> Result<(), AppError> {
    let mut rng = fastrand::Rng::with_seed(seed);
    pause(&mut rng).await;
    insert(format!("r{round:03}-b")).await?;
    Ok(())
}

#[transactional(db = db)]
async fn one_round(db: &Database, round: usize, seed: u64) -> Result<(), AppError> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (opened_tx, opened_rx) = oneshot::channel();
    let mut group: TaskGroup<(), AppError> = TaskGroup::new();
    let a_seed = rng.u64(..);
    group.spawn(async move {
        match sibling_a(round, opened_tx, a_seed).await {
            Err(AppError::Fails) => Ok(()),
            other => panic!("A must fail with its own error, got {other:?}"),
        }
    });
    opened_rx.await.expect("A opened its savepoint");
    // A's savepoint is open now. B and C start in random order, after random pauses.
    let b_seed = rng.u64(..);
    let c_seed = rng.u64(..);
    let spawn_b = move |group: &mut TaskGroup<(), AppError>| group.spawn(sibling_b(round, b_seed));
    let spawn_c = move |group: &mut TaskGroup<(), AppError>| {
        group.spawn(async move {
            pause(&mut fastrand::Rng::with_seed(c_seed)).await;
            insert(format!("r{round:03}-c")).await?; // in the parent frame: no savepoint
            Ok(())
        })
    };
    if rng.bool() {
        spawn_b(&mut group);
        spawn_c(&mut group);
    } else {
        spawn_c(&mut group);
        spawn_b(&mut group);
    }
    group.join_all().await?;
    Ok(())
}

async fn rounds(kind: Kind, count: usize) {
    let test = TestDb::new(kind).await;
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for round in 0..count {
        let seed = rng.u64(..);
        one_round(&test.db, round, seed)
            .await
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}) failed: {e:?}"));
    }
    let rows = test.kv().await;
    for round in 0..count {
        for key in [format!("r{round:03}-b"), format!("r{round:03}-c")] {
            assert!(
                rows.contains_key(&key),
                "{kind:?}: {key} lost (it committed)"
            );
        }
        for key in [format!("r{round:03}-a1"), format!("r{round:03}-a2")] {
            assert!(
                !rows.contains_key(&key),
                "{kind:?}: {key} survived A's rollback"
            );
        }
    }
    assert_eq!(rows.len(), 2 * count);
    test.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sibling_rolls_back_only_its_own_rows() {
    for kind in KINDS {
        rounds(kind, 300).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn failing_sibling_rolls_back_only_its_own_rows_single_thread() {
    for kind in KINDS {
        rounds(kind, 300).await;
    }
}
