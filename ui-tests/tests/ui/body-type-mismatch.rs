use transactional::{transactional, Error};

#[transactional]
async fn count() -> Result<u32, Error> {
    Ok("one")
}

fn main() {}
