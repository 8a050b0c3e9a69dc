use transactional::{transactional, Error};

#[transactional(timeout = "2 seconds")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
