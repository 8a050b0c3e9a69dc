use transactional::transactional;

#[derive(Debug)]
struct MyError;

#[transactional]
async fn load() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
