use transactional::{transactional, Error};

#[transactional(read_only = "yes")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
