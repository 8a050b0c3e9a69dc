use transactional::{transactional, Error};

fn consume(_: String) {}

#[transactional(retries = 3)]
async fn store(key: String) -> Result<(), Error> {
    consume(key);
    Ok(())
}

fn main() {}
