use transactional::{transactional, Error};

#[transactional(crate = "not a path")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
