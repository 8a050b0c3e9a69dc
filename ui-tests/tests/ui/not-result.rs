use transactional::transactional;

#[transactional]
async fn count() -> u32 {
    1
}

fn main() {}
