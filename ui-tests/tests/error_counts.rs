//! How many errors each `tests/ui` case produces, counted in cargo's JSON output
//! (`--message-format=json`), which is what IDEs read. trybuild's `.stderr` snapshots fold
//! diagnostics that render the same, so a doubled error can hide there; here it cannot.
//!
//! All the cases are bins of one generated crate, checked by one `cargo check --keep-going`
//! in trybuild's target directory, so the dependencies trybuild built are reused.
//!
//! `lints` runs clippy with `pedantic` and `implicit_return` over `tests/lint/*.rs`, cases
//! written to be clean under those lints: any warning there comes from the expansion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every case in `tests/ui` with the number of errors it must produce. A case missing from
/// this table fails the test, so a new case has to state its count.
const EXPECTED: &[(&str, usize)] = &[
    ("async-fn-twice", 1),
    ("bad-crate-path", 1),
    ("bad-duration", 1),
    ("body-type-mismatch", 1),
    ("body-wrong-tail", 1),
    ("borrow-in-spawn", 1),
    ("const-fn", 1),
    ("db-wrong-type", 1),
    ("duplicate-option", 1),
    ("empty-body", 1),
    ("error-alias-without-from", 1),
    ("error-without-from", 1),
    // The attribute's one error, and the body's own `?` on a `transactional::Error`, which
    // needs the same impl: the user's code, reported the same without the attribute.
    ("error-without-from-question-mark", 2),
    ("extern-fn", 1),
    ("from-row-enum", 1),
    ("from-row-field-not-a-value", 1),
    ("from-row-unknown-option", 1),
    ("internal-binding", 1),
    ("invalid-propagation", 1),
    ("literal-instead-of-option", 1),
    ("mandatory-with-begin", 1),
    ("missing-comma", 1),
    ("missing-return-type", 1),
    ("missing-value", 1),
    ("misspelled-isolation", 1),
    ("name-not-an-identifier", 1),
    ("not-a-function", 1),
    ("not-async-unsafe", 1),
    ("not-async", 1),
    ("not-result-generic", 1),
    ("not-result", 1),
    ("on-impl-block", 1),
    ("option-not-a-string", 1),
    // rustc says "in an async block": the body is one. Its help (`.ok_or(..)?`) is right.
    ("propagation-required", 1),
    ("question-mark-on-option", 1),
    ("read-only-immediate", 1),
    ("read-only-not-a-bool", 1),
    ("result-named-struct", 1),
    ("retries-borrows-mut-self", 1),
    ("retries-moves-argument", 1),
    ("retries-mut-argument", 1),
    ("retries-mut-in-pattern", 1),
    ("retries-mut-reference", 1),
    ("retries-not-an-integer", 1),
    // Two options with a wrong value each, a fn that is not async, not returning a `Result`.
    ("several-errors", 4),
    ("timeout-not-a-string", 1),
    ("tokio-test-above", 1),
    ("trait-method-without-body", 1),
    ("unknown-option-list", 1),
    ("unknown-option", 1),
    ("wrong-crate-path", 1),
    ("impl-future-return", 1),
    ("zero-retries", 1),
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// trybuild's target directory, where the dependencies are already built.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("../tests/trybuild")
}

fn cases(dir: &str) -> Vec<(String, PathBuf)> {
    let mut cases: Vec<_> = std::fs::read_dir(manifest_dir().join("tests").join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| (path.file_stem().unwrap().to_str().unwrap().to_owned(), path))
        .collect();
    cases.sort();
    cases
}

/// A crate with one bin per case, with the dependencies trybuild gives its cases.
fn generate(name: &str, cases: &[(String, PathBuf)]) -> PathBuf {
    let root = manifest_dir().join("..");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifest = format!(
        r#"[package]
name = "{name}"
version = "0.0.0"
edition = "2021"
publish = false
autobins = false

[workspace]

[dependencies]
async-trait = "0.1"
tokio = {{ version = "1.40", features = ["rt", "sync", "time", "macros", "rt-multi-thread"] }}
tracing = "0.1"
transactional = {{ path = {runtime:?} }}
"#,
        runtime = root.join("runtime").canonicalize().unwrap(),
    );
    for (case, path) in cases {
        manifest.push_str(&format!("\n[[bin]]\nname = {case:?}\npath = {path:?}\n"));
    }
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    // The lockfile pins what the workspace pins, so no new version is resolved.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

/// Per bin, the rendered diagnostics of `level` (rustc's closing "aborting due to" lines
/// excluded).
fn diagnostics(
    dir: &Path,
    subcommand: &str,
    extra: &[&str],
    level: &str,
) -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .args([
            subcommand,
            "--bins",
            "--keep-going",
            "--message-format=json",
        ])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Cargo says the build finished, with or without errors; otherwise it never started.
    assert!(
        stdout.contains(r#""reason":"build-finished""#),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut found = BTreeMap::<String, Vec<String>>::new();
    for line in stdout.lines() {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if json["reason"] != "compiler-message" {
            continue;
        }
        let message = &json["message"];
        let text = message["message"].as_str().unwrap_or_default();
        if message["level"] != level || text.starts_with("aborting due to") {
            continue;
        }
        let bin = json["target"]["name"].as_str().unwrap().to_owned();
        let rendered = message["rendered"].as_str().unwrap_or(text).to_owned();
        found.entry(bin).or_default().push(rendered);
    }
    found
}

#[test]
fn error_counts() {
    let cases = cases("ui");
    let dir = generate("error-counts", &cases);
    let found = diagnostics(&dir, "check", &[], "error");
    let expected: BTreeMap<_, _> = EXPECTED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (case, _) in &cases {
        let errors = found.get(case).map_or(&[][..], Vec::as_slice);
        match expected.get(case.as_str()) {
            None => wrong.push(format!("{case}: not in EXPECTED ({} errors)", errors.len())),
            Some(&n) if n != errors.len() => wrong.push(format!(
                "{case}: {} errors, expected {n}:\n{}",
                errors.len(),
                errors.join("\n")
            )),
            Some(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn lints() {
    let cases = cases("lint");
    let dir = generate("lint-cases", &cases);
    let lints = [
        "--",
        "-W",
        "clippy::pedantic",
        "-W",
        "clippy::implicit_return",
    ];
    let found = diagnostics(&dir, "clippy", &lints, "warning");
    let errors = diagnostics(&dir, "clippy", &lints, "error");
    assert!(errors.is_empty(), "{errors:#?}");
    let warnings: Vec<_> = found.values().flatten().cloned().collect();
    assert!(warnings.is_empty(), "{}", warnings.join("\n"));
}

/// A crate that reaches the runtime only through another crate's re-export, and forgets
/// `crate = ".."`: one error, which names the option. (A trybuild case cannot show this:
/// trybuild's crates always depend on `transactional` directly.)
#[test]
fn reexported_without_crate_option() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reexport");
    let runtime = manifest_dir().join("../runtime").canonicalize().unwrap();
    let facade = root.join("facade");
    std::fs::create_dir_all(facade.join("src")).unwrap();
    std::fs::write(
        facade.join("Cargo.toml"),
        format!(
            "[package]\nname = \"facade\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\ntransactional = {{ path = {runtime:?} }}\n"
        ),
    )
    .unwrap();
    std::fs::write(facade.join("src/lib.rs"), "pub use transactional;\n").unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"app\", \"facade\"]\n",
    )
    .unwrap();
    let app = root.join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(
        app.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
\
         [dependencies]\nfacade = { path = \"../facade\" }\n\
         tokio = { version = \"1.40\", features = [\"rt\", \"sync\", \"time\", \"macros\", \"rt-multi-thread\"] }\n",
    )
    .unwrap();
    std::fs::write(
        app.join("src/main.rs"),
        "use facade::transactional::{transactional, Error};\n\n\
         #[transactional(timeout = \"1s\", retries = 2)]\n\
         async fn load() -> Result<u32, Error> {\n    let task = tokio::spawn(async { 1 });\n    \
         Ok(task.await.unwrap_or(0))\n}\n\n\
         fn main() {\n    let _ = load();\n}\n",
    )
    .unwrap();
    std::fs::copy(
        manifest_dir().join("../Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();
    let found = diagnostics(&root, "check", &[], "error");
    let errors = found.get("app").cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
    assert!(errors[0].contains("crate = "), "{}", errors[0]);
}
