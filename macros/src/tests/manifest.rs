//! Reading a crate's manifest for the runtime's name.

use crate::manifest::{scan, Dependency};

fn no_workspace() -> Option<String> {
    None
}

#[test]
fn direct_dependency() {
    let manifest = "[package]\nname = \"app\"\n\n[dependencies]\ntransactional = \"0.1\"\n";
    assert_eq!(scan(manifest, no_workspace), Dependency::Direct);
    let table = "[dependencies.transactional]\nversion = \"0.1\"\n";
    assert_eq!(scan(table, no_workspace), Dependency::Direct);
    let dev = "[dev-dependencies]\ntransactional = { path = \"../runtime\" }\n";
    assert_eq!(scan(dev, no_workspace), Dependency::Direct);
}

#[test]
fn renamed_dependency() {
    let inline = "[dependencies]\ntx = { version = \"0.1\", package = \"transactional\" }\n";
    assert_eq!(scan(inline, no_workspace), Dependency::Renamed("tx".into()));
    let table = "[dependencies.my-tx]\npackage = \"transactional\"\n";
    assert_eq!(
        scan(table, no_workspace),
        Dependency::Renamed("my_tx".into())
    );
}

#[test]
fn missing_dependency() {
    let manifest = "[dependencies]\nfacade = { path = \"../facade\" }\ntokio = \"1\"\n";
    assert_eq!(scan(manifest, no_workspace), Dependency::Missing);
}

#[test]
fn inherited_from_the_workspace() {
    let member = "[dependencies]\ntransactional.workspace = true\n";
    let root = || Some("[workspace]\n[workspace.dependencies]\ntransactional = \"0.1\"\n".into());
    assert_eq!(scan(member, root), Dependency::Direct);
    let renamed = "[dependencies]\ntx = { workspace = true }\n";
    let root = || {
        Some("[workspace]\n[workspace.dependencies]\ntx = { package = \"transactional\" }\n".into())
    };
    assert_eq!(scan(renamed, root), Dependency::Renamed("tx".into()));
    // An inherited entry with no workspace manifest to read: no verdict.
    assert_eq!(scan(renamed, no_workspace), Dependency::Direct);
}
