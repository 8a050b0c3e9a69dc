//! `tokio::spawn::<F>` and `tokio::task::spawn_local::<F>` (turbofish) carry the current
//! transaction, as calls and as paths passed as values.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use transactional::{transactional, Error};

type Boxed = Pin<Box<dyn Future<Output = Result<u64, Error>> + Send>>;

/// The id of the frame the calling task runs in.
async fn frame() -> Result<u64, Error> {
    Ok(transactional::current()?.id())
}

#[transactional]
async fn spawns_with_turbofish() -> Result<(), Error> {
    let outer = transactional::current()?.id();
    let a = tokio::spawn::<_>(frame());
    let b = ::tokio::task::spawn::<Boxed>(Box::pin(frame()));
    let more: Vec<_> = vec![Box::pin(frame()) as Boxed]
        .into_iter()
        .map(tokio::spawn::<Boxed>)
        .collect();
    let not_send = Rc::new(());
    let c = tokio::task::spawn_local::<_>(async move {
        let _keep = not_send;
        frame().await
    });
    for handle in [a, b, c].into_iter().chain(more) {
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
        spawns_with_turbofish().await.unwrap();
    });
}
