use transactional::FromRow;

#[derive(FromRow)]
enum Status {
    Open,
    Closed,
}

fn main() {}
