use transactional::transactional;

#[transactional(propagation = "nested_savepoint", timeout = "soon")]
fn load() -> u32 {
    1
}

fn main() {}
