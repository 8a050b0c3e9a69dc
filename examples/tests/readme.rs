//! The README's promises to a new user, checked against the workspace so they cannot drift:
//! the install lines are what the `inventory` example builds with, and the `bank` session's
//! shown answers are what the service answers. (The seed demo's shown output is checked by
//! a test in `seed_demo.rs`, which can call the demo.)

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use transactional::Database;
use transactional_examples::bank;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("examples/ has a parent")
        .to_path_buf()
}

fn read(path: impl AsRef<Path>) -> String {
    let path = workspace().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn toml_file(path: impl AsRef<Path>) -> toml::Table {
    let path = path.as_ref();
    read(path)
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the README's `## {title}` section, up to the next `## ` heading.
fn section<'a>(readme: &'a str, title: &str) -> &'a str {
    let heading = format!("\n## {title}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README.md has no `## {title}` section"))
        + heading.len();
    let end = readme[start..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + i);
    &readme[start..end]
}

/// The fenced code blocks of `text` in `lang`, each as its lines.
fn code_blocks<'a>(text: &'a str, lang: &str) -> Vec<Vec<&'a str>> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().strip_prefix("```") == Some(lang) {
            blocks.push(
                lines
                    .by_ref()
                    .take_while(|l| l.trim_start() != "```")
                    .collect(),
            );
        }
    }
    blocks
}

/// The README's `Install` section: its `Cargo.toml` lines are exactly the `[dependencies]`
/// of `examples/inventory` (which CI builds on its own, so no other workspace member's
/// features help it), apart from the path to `runtime/`, and what it says of the toolchain
/// is what `rust-toolchain.toml` and the workspace declare.
#[test]
fn install_section_matches_the_workspace() {
    let readme = read("README.md");
    let install = section(&readme, "Install");
    let blocks = code_blocks(install, "toml");
    assert_eq!(
        blocks.len(),
        1,
        "the Install section should hold one ```toml block"
    );
    let snippet: toml::Table = blocks[0]
        .join("\n")
        .parse()
        .unwrap_or_else(|e| panic!("the README's install snippet is not TOML: {e}"));
    let shown = snippet
        .get("dependencies")
        .and_then(|d| d.as_table())
        .expect("the install snippet has a [dependencies] table");

    let inventory = toml_file("examples/inventory/Cargo.toml");
    let used = inventory["dependencies"]
        .as_table()
        .expect("examples/inventory has [dependencies]");
    let names = |t: &toml::Table| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(shown),
        names(used),
        "the README's dependencies and examples/inventory's differ"
    );

    // `transactional`: a path dependency on the clone's `runtime/` folder, the only key that
    // may differ from the inventory's being that path.
    let mut shown_dep = shown["transactional"]
        .as_table()
        .expect("README: transactional = { path = .. }")
        .clone();
    let mut used_dep = used["transactional"]
        .as_table()
        .expect("inventory: transactional = { path = .. }")
        .clone();
    let shown_path = shown_dep
        .remove("path")
        .expect("README: a `path` dependency");
    let used_path = used_dep
        .remove("path")
        .expect("inventory: a `path` dependency");
    assert_eq!(
        shown_dep, used_dep,
        "the transactional dependency's keys other than `path` differ"
    );
    let shown_path = shown_path.as_str().expect("the path is a string");
    assert!(
        shown_path.ends_with("/runtime"),
        "the README's path should name the clone's runtime/ folder, not {shown_path:?}"
    );
    let runtime = workspace()
        .join("examples/inventory")
        .join(used_path.as_str().expect("the path is a string"))
        .canonicalize()
        .expect("inventory's path to the runtime exists");
    assert_eq!(
        runtime,
        workspace().join("runtime").canonicalize().unwrap(),
        "inventory's path should be the workspace's runtime/"
    );
    let package = toml_file("runtime/Cargo.toml");
    assert_eq!(
        package["package"]["name"].as_str(),
        Some("transactional"),
        "the dependency's name must be the crate's package name"
    );

    // tokio: the same line, and no older than what the library itself asks for.
    assert_eq!(
        shown["tokio"], used["tokio"],
        "the README's tokio line differs from the inventory's"
    );
    let workspace_toml = toml_file("Cargo.toml");
    assert_eq!(
        shown["tokio"]["version"].as_str(),
        workspace_toml["workspace"]["dependencies"]["tokio"]["version"].as_str(),
        "the README's tokio version should be the one the workspace builds with"
    );

    // The toolchain, as the section states it.
    let toolchain = toml_file("rust-toolchain.toml");
    let channel = toolchain["toolchain"]["channel"].as_str().unwrap();
    assert!(
        install.contains(&format!("`{channel}`")),
        "the Install section should name the pinned toolchain `{channel}`"
    );
    let components = toolchain["toolchain"]["components"].as_array().unwrap();
    for component in ["clippy", "rustfmt"] {
        assert!(
            components.iter().any(|c| c.as_str() == Some(component)),
            "rust-toolchain.toml should bring {component}"
        );
        assert!(
            install.contains(component),
            "the Install section should say the toolchain brings {component}"
        );
    }
    let msrv = workspace_toml["workspace"]["package"]["rust-version"]
        .as_str()
        .unwrap();
    assert!(
        install.contains(&format!("`rust-version = \"{msrv}\"`")),
        "the Install section should give the declared rust-version {msrv}"
    );
}

/// One `curl` of the README's session, and the answer shown under it.
#[derive(Debug)]
struct Exchange {
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    shown: String,
}

/// Splits a shell command line into words: single quotes, backslash line continuations
/// already joined, and a trailing `# comment` dropped. Enough for the README's commands.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The bank session of the README's Examples section: every `curl` after the `cargo run`
/// that starts the server, each with the answer shown under it in `# ` lines (a long answer
/// wraps over several; they are joined with their leading spaces removed, so wrap only
/// where the JSON has no space).
fn bank_session(readme: &str) -> Vec<Exchange> {
    let examples = section(readme, "Examples");
    let block = code_blocks(examples, "sh")
        .into_iter()
        .find(|b| b.iter().any(|l| l.contains("--example bank")))
        .expect("the Examples section has a ```sh block running `--example bank`");
    // Join continuation lines.
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in block {
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    let start = lines
        .iter()
        .position(|l| l.starts_with("cargo run") && l.contains("--example bank"))
        .expect("the session starts the server with `cargo run .. --example bank`");
    let server = shell_words(&lines[start]);
    let addr = server
        .iter()
        .position(|w| w == "--addr")
        .map(|i| server[i + 1].clone())
        .expect("the session's server has an --addr");
    let port = addr.rsplit(':').next().unwrap();
    assert!(
        !server.iter().any(|w| w == "--db"),
        "the session must start from an empty database (no --db), or its ids depend on what an earlier run left"
    );

    let mut exchanges: Vec<Exchange> = Vec::new();
    for line in &lines[start + 1..] {
        if let Some(shown) = line.trim_start().strip_prefix('#') {
            let last = exchanges
                .last_mut()
                .expect("a `#` line before any curl in the bank session");
            last.shown.push_str(shown.trim_start());
            continue;
        }
        let words = shell_words(line);
        if words.is_empty() {
            continue;
        }
        assert_eq!(
            words[0], "curl",
            "a command of the session that is not curl: {line}"
        );
        let mut exchange = Exchange {
            method: reqwest::Method::GET,
            path: String::new(),
            headers: Vec::new(),
            body: None,
            shown: String::new(),
        };
        let mut words = words[1..].iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "-s" => {}
                "-H" => {
                    let header = words.next().expect("-H takes a header");
                    let (name, value) = header.split_once(':').expect("a `name: value` header");
                    exchange
                        .headers
                        .push((name.trim().to_owned(), value.trim().to_owned()));
                }
                "-d" => {
                    exchange.body = Some(words.next().expect("-d takes a body").clone());
                    exchange.method = reqwest::Method::POST; // what curl does with -d
                }
                url => {
                    let path = url
                        .strip_prefix(&format!("localhost:{port}"))
                        .unwrap_or_else(|| {
                            panic!("the session's curl should go to localhost:{port}: {url}")
                        });
                    exchange.path = path.to_owned();
                }
            }
        }
        assert!(!exchange.path.is_empty(), "a curl without a URL: {line}");
        exchanges.push(exchange);
    }
    exchanges
}

/// Starts the bank as the README's `cargo run` does (a new, empty database; here on an
/// ephemeral port), sends the session's requests in order, and requires each answer to be
/// exactly the one shown.
///
/// The batch's items run concurrently, and which of them takes the turn first depends on how
/// the runtime schedules their tasks: on an idle runtime it is nearly always the same order,
/// so one session would hardly ever catch an answer that depends on it. Many sessions at
/// once, each against a server of its own, keep the workers busy and stealing each other's
/// tasks, so the items run in varying orders (checked by hand: the README's earlier session,
/// whose answer depended on the order, fails here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_session_answers_as_the_readme_shows() {
    const SESSIONS: usize = 24;
    let readme = read("README.md");
    let session = bank_session(&readme);
    assert!(
        session.len() >= 4,
        "the bank session should show at least four exchanges, found {session:?}"
    );
    for exchange in &session {
        assert!(
            !exchange.shown.is_empty(),
            "every curl of the bank session should show its answer: {exchange:?}"
        );
        // The shown answer must be JSON, so that a typo in it is caught as such.
        serde_json::from_str::<Value>(&exchange.shown)
            .unwrap_or_else(|e| panic!("the README's answer is not JSON ({e}): {exchange:?}"));
    }
    let session = std::sync::Arc::new(session);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut sessions = tokio::task::JoinSet::new();
    for number in 0..SESSIONS {
        let (session, client) = (session.clone(), client.clone());
        sessions.spawn(async move {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = Database::open(dir.path().join("bank.db"))
                .await
                .expect("open the database");
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let base = format!("http://{}", listener.local_addr().unwrap());
            let (stop, stopped) = oneshot::channel::<()>();
            let server = tokio::spawn(bank::serve(listener, db, async {
                let _ = stopped.await;
            }));
            for exchange in session.iter() {
                let mut request =
                    client.request(exchange.method.clone(), format!("{base}{}", exchange.path));
                for (name, value) in &exchange.headers {
                    request = request.header(name, value);
                }
                if let Some(body) = &exchange.body {
                    request = request.body(body.clone());
                }
                let answer = request
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("session {number}: {exchange:?}: {e}"))
                    .text()
                    .await
                    .expect("the answer's body");
                assert_eq!(
                    answer, exchange.shown,
                    "session {number}: {} {} answered otherwise than the README shows",
                    exchange.method, exchange.path
                );
            }
            let _ = stop.send(());
            server
                .await
                .expect("the server task")
                .expect("a clean shutdown");
        });
    }
    while let Some(done) = sessions.join_next().await {
        if let Err(err) = done {
            std::panic::resume_unwind(err.into_panic());
        }
    }
}

#[test]
fn shell_words_splits_like_the_shell_for_the_readme() {
    assert_eq!(
        shell_words(r#"curl -s localhost:3000/a -d '{"x": 1}'   # note"#),
        ["curl", "-s", "localhost:3000/a", "-d", r#"{"x": 1}"#]
    );
    assert_eq!(shell_words("  # only a comment"), Vec::<String>::new());
}
