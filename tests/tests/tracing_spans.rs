//! One `tracing` span per transaction and per savepoint, with the database, the frame's id,
//! depth and name, and the time spent waiting for the turn.
//!
//! Conformance: runs on every kind of `KINDS`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::format::FmtSpan;
use transactional::{transactional, Database, Error};
use transactional_tests::{insert, Kind, TestDb, KINDS};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[transactional(name = "inner_frame")]
async fn inner() -> Result<(), Error> {
    insert("traced").await
}

#[transactional(db = db, name = "outer_frame")]
async fn outer(db: &Database) -> Result<(), Error> {
    inner().await
}

#[test]
fn spans_name_each_frame_and_its_wait() {
    for kind in KINDS {
        spans_of(kind);
    }
}

fn spans_of(kind: Kind) {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let label = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let test = TestDb::new(kind).await;
            outer(&test.db).await.unwrap();
            test.db.label().to_owned()
        })
    });
    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let closes: Vec<&str> = out.lines().filter(|l| l.contains("close")).collect();
    let outer = closes
        .iter()
        .find(|l| l.contains("name=\"outer_frame\""))
        .unwrap_or_else(|| panic!("{kind:?}: {out}"));
    let inner = closes
        .iter()
        .find(|l| l.contains("name=\"inner_frame\""))
        .unwrap_or_else(|| panic!("{kind:?}: {out}"));
    if kind == Kind::Memory {
        assert_eq!(label, ":memory:");
    }
    assert!(
        outer.contains("depth=0") && outer.contains(&format!("db={label:?}")),
        "{kind:?}: {outer}"
    );
    assert!(inner.contains("depth=1"), "{inner}");
    for line in [outer, inner] {
        assert!(line.contains("wait_us="), "the wait is recorded: {line}");
        assert!(line.contains("id="), "{line}");
    }
}
