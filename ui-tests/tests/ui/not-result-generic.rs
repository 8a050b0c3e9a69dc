use transactional::transactional;

#[transactional]
async fn names(prefix: &str) -> Option<Vec<&'static str>> {
    let _ = prefix;
    None
}

fn main() {}
