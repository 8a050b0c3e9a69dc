use transactional::{transactional, Error};

struct Counter {
    hits: u32,
}

impl Counter {
    #[transactional(retries = 3)]
    async fn bump(&mut self) -> Result<u32, Error> {
        self.hits += 1;
        Ok(self.hits)
    }
}

fn main() {}
