//! `tokio::task::spawn_local` in the body carries the current transaction, as a call and as
//! a path passed as a value; the spawned futures need not be `Send`.

use std::rc::Rc;

use transactional::{transactional, Error};

async fn work(n: Rc<u32>) -> Result<u32, Error> {
    Ok(*n)
}

#[transactional]
async fn spawns_local() -> Result<u32, Error> {
    let a = tokio::task::spawn_local(work(Rc::new(1)));
    let b = ::tokio::task::spawn_local(async move { work(Rc::new(2)).await });
    let more: Vec<_> = vec![work(Rc::new(3)), work(Rc::new(4))]
        .into_iter()
        .map(tokio::task::spawn_local)
        .collect();
    let c = transactional::spawn_local(work(Rc::new(5)));

    let mut sum = 0;
    for handle in [a, b, c].into_iter().chain(more) {
        sum += handle.await.expect("task panicked")?;
    }
    Ok(sum)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let db = transactional::Database::open_in_memory().await.unwrap();
        db.set_default();
        assert_eq!(spawns_local().await.unwrap(), 15);
    });
}
