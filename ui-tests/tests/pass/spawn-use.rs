//! `use tokio::spawn [as x]` and `use tokio::task::spawn_local` written in the body import
//! the spawns that carry the current transaction; the rest of a `use` group stays.

use transactional::{transactional, Error};

/// The id of the frame the calling task runs in.
async fn frame() -> Result<u64, Error> {
    Ok(transactional::current()?.id())
}

#[transactional]
async fn spawns_through_use() -> Result<(), Error> {
    use tokio::spawn as go;
    use tokio::task::{spawn_local, JoinHandle};

    let outer = transactional::current()?.id();
    let a: JoinHandle<_> = go(frame());
    let b = spawn_local(frame());
    let c = {
        use tokio::spawn;
        spawn(frame())
    };
    for handle in [a, b, c] {
        assert_eq!(handle.await.expect("join")?, outer);
    }
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, async {
        let db = transactional::Database::open_in_memory().await.unwrap();
        db.set_default();
        spawns_through_use().await.unwrap();
    });
}
