//! Whether the crate being compiled can name the runtime as `::transactional`, read off its
//! `Cargo.toml` (as the `proc-macro-crate` crate does), so that a missing `crate = ".."`
//! is one error that says so, instead of rustc's "unresolved import" suggesting
//! `cargo add`.
//!
//! Only a certain answer is acted on: without cargo's environment, with a manifest this
//! scanner cannot read, or with the dependency found, the expansion goes ahead, and a failed
//! `::transactional` path is still one error (the probe import in `expand`).

use std::path::{Path, PathBuf};

/// How the runtime is a dependency of the crate being compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// Under its own name, or it cannot be told: `::transactional` is assumed to work.
    Direct,
    /// Renamed: `tx = { package = "transactional" }` makes it `::tx`.
    Renamed(String),
    /// Not a dependency: it can only come through a crate that re-exports it.
    Missing,
}

const PACKAGE: &str = "transactional";

/// The answer for the crate cargo is compiling now.
pub fn dependency() -> Dependency {
    let (Some(dir), Ok(name)) = (
        std::env::var_os("CARGO_MANIFEST_DIR"),
        std::env::var("CARGO_PKG_NAME"),
    ) else {
        return Dependency::Direct;
    };
    if name == PACKAGE {
        // The runtime's own doctests and tests.
        return Dependency::Direct;
    }
    let dir = PathBuf::from(dir);
    let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
        return Dependency::Direct;
    };
    scan(&manifest, || workspace_manifest(&dir))
}

/// The manifest of the workspace `dir` belongs to, for `dep.workspace = true`.
fn workspace_manifest(dir: &Path) -> Option<String> {
    dir.ancestors().skip(1).find_map(|dir| {
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        text.lines()
            .any(|line| line.trim() == "[workspace]")
            .then_some(text)
    })
}

/// One entry of a dependency table: its key, the package it names, whether it is inherited
/// from the workspace.
struct Entry {
    key: String,
    package: Option<String>,
    workspace: bool,
}

pub fn scan(manifest: &str, workspace: impl FnOnce() -> Option<String>) -> Dependency {
    let entries = entries(manifest, |section| section.ends_with("dependencies"));
    let inherited = entries.iter().any(|entry| entry.workspace);
    let workspace_entries = match inherited {
        true => match workspace() {
            Some(text) => entries_of_workspace(&text),
            // Cannot tell what the inherited entries name.
            None => return Dependency::Direct,
        },
        false => Vec::new(),
    };
    let mut renamed = None;
    for entry in &entries {
        let package = match (&entry.package, entry.workspace) {
            (Some(package), _) => package.clone(),
            (None, true) => workspace_entries
                .iter()
                .find(|e| e.key == entry.key)
                .and_then(|e| e.package.clone())
                .unwrap_or_else(|| entry.key.clone()),
            (None, false) => entry.key.clone(),
        };
        if package != PACKAGE {
            continue;
        }
        if entry.key == PACKAGE {
            return Dependency::Direct;
        }
        renamed = Some(entry.key.clone());
    }
    match renamed {
        Some(key) => Dependency::Renamed(key.replace('-', "_")),
        None => Dependency::Missing,
    }
}

fn entries_of_workspace(text: &str) -> Vec<Entry> {
    entries(text, |section| section == "workspace.dependencies")
}

/// The entries of the tables `is_table` accepts: `key = ..` lines in `[dependencies]`, and
/// `[dependencies.key]` tables.
fn entries(manifest: &str, is_table: impl Fn(&str) -> bool) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    // In a `[dependencies.key]` table, the entry its lines describe.
    let mut table: Option<usize> = None;
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            table = None;
            in_table = is_table(section);
            if let Some((parent, key)) = section.rsplit_once('.') {
                if is_table(parent) {
                    entries.push(Entry {
                        key: unquote(key),
                        package: None,
                        workspace: false,
                    });
                    table = Some(entries.len() - 1);
                }
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if let Some(index) = table {
            match key {
                "package" => entries[index].package = Some(unquote(value)),
                "workspace" => entries[index].workspace = value == "true",
                _ => {}
            }
        } else if in_table {
            let (key, dotted) = match key.split_once('.') {
                Some((key, rest)) => (key, Some(rest.trim())),
                None => (key, None),
            };
            let package = field(value, "package");
            let workspace = dotted == Some("workspace") && value == "true"
                || field(value, "workspace").as_deref() == Some("true");
            entries.push(Entry {
                key: unquote(key),
                package,
                workspace,
            });
        }
    }
    entries
}

/// `field = "value"` inside an inline table `{ .. }`.
fn field(value: &str, field: &str) -> Option<String> {
    let inner = value.strip_prefix('{')?.strip_suffix('}')?;
    inner.split(',').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        (key.trim() == field).then(|| unquote(value.trim()))
    })
}

fn unquote(text: &str) -> String {
    text.trim().trim_matches('"').trim_matches('\'').to_owned()
}
