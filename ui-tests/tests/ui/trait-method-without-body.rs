use transactional::{transactional, Error};

trait Repo {
    #[transactional]
    async fn load(&self) -> Result<(), Error>;
}

fn main() {}
