use transactional::{transactional, Error};

#[transactional(retries = 0)]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
