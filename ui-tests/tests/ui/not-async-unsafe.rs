use transactional::{transactional, Error};

#[transactional]
unsafe fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
