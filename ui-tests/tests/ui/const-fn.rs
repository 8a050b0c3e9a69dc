use transactional::{transactional, Error};

#[transactional]
const fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
