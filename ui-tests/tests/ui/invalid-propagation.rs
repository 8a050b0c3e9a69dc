use transactional::{transactional, Error};

#[transactional(propagation = "sideways")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
