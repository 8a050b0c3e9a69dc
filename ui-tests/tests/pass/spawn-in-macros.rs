//! `tokio::spawn` inside macro arguments (`join!`, `select!`, `vec!`, nested) carries the
//! current transaction: each child sees the frame of the fn that spawned it.

use transactional::{transactional, Error};

/// The id of the frame the calling task runs in.
async fn frame() -> Result<u64, Error> {
    Ok(transactional::current()?.id())
}

#[transactional]
async fn spawns_in_macros() -> Result<(), Error> {
    let outer = transactional::current()?.id();

    let (a, b) = tokio::join!(tokio::spawn(frame()), ::tokio::task::spawn(frame()));
    assert_eq!(a.expect("join")?, outer);
    assert_eq!(b.expect("join")?, outer);

    let c = tokio::select! {
        c = tokio::spawn(frame()) => c.expect("join")?,
    };
    assert_eq!(c, outer);

    let handles = vec![tokio::spawn(frame()), tokio::spawn(async { frame().await })];
    for handle in handles {
        assert_eq!(handle.await.expect("join")?, outer);
    }

    let nested = tokio::join!(async { vec![tokio::spawn(frame())] });
    for handle in nested.0 {
        assert_eq!(handle.await.expect("join")?, outer);
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let db = transactional::Database::open_in_memory().await.unwrap();
    db.set_default();
    spawns_in_macros().await.unwrap();
}
