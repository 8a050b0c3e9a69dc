use transactional::transactional;

#[derive(Debug)]
struct MyError;

type MyResult<T> = Result<T, MyError>;

#[transactional]
async fn load() -> MyResult<()> {
    Ok(())
}

fn main() {}
