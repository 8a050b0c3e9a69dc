use transactional::{transactional, Error};

struct Repo;

#[transactional]
impl Repo {
    async fn load(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
