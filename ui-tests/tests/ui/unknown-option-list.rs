use transactional::{transactional, Error};

#[transactional(savepoint = "load")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
