use transactional::{transactional, Database, Error};

#[transactional(db = db, timeout = "1s", db = db)]
async fn load(db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
