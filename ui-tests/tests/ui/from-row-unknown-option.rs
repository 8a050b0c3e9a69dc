use transactional::FromRow;

#[derive(FromRow)]
struct Account {
    id: i64,
    #[from_row(column = "owner_name")]
    owner: String,
}

fn main() {}
