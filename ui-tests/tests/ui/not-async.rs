use transactional::{transactional, Error};

#[transactional]
fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
