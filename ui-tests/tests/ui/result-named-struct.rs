//! A type named `…Result` that is not a `Result` is refused by type, in one error.
use transactional::transactional;

struct SearchResult {
    hits: Vec<u32>,
}

#[transactional]
async fn search() -> SearchResult {
    SearchResult { hits: Vec::new() }
}

fn main() {
    let _ = search();
    let _ = SearchResult { hits: vec![1] }.hits;
}
