use transactional::{transactional, Error};

#[transactional(propagation = join)]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
