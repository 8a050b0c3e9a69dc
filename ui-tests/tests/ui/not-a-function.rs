use transactional::transactional;

#[transactional]
struct Repo {
    id: u32,
}

fn main() {}
