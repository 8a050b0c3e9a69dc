use transactional::{transactional, Error};

#[transactional]
async extern "C" fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
