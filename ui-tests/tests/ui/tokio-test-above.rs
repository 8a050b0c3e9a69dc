//! `#[tokio::test]` above `#[transactional]` expands first, leaving a plain fn.
use transactional::{transactional, Error};

#[tokio::test]
#[transactional]
async fn loads() -> Result<(), Error> {
    Ok(())
}

fn main() {}
