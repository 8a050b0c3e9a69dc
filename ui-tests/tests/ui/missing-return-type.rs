use transactional::transactional;

#[transactional]
async fn store(key: String, value: String) {
    let _ = (key, value);
}

fn main() {}
