//! One `tracing` span per transaction and per savepoint, with the database, the frame's id,
//! depth and name, and the time spent waiting for the turn.
//!
//! Conformance: runs on every kind of `KINDS`.

use tracing_subscriber::fmt::format::FmtSpan;
use transactional::{transactional, Database, Error};
use transactional_tests::{insert, Kind, LogCapture, TestDb, KINDS};

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
    let captured = LogCapture::default();
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
    let out = captured.text();
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

/// Three levels, two concurrent children each: the tree of spans.
#[transactional(name = "leaf_frame")]
async fn leaf(key: String) -> Result<(), Error> {
    insert(key).await
}

#[transactional(name = "middle_frame")]
async fn middle(key: String) -> Result<(), Error> {
    let (a, b) = tokio::join!(leaf(format!("{key}.0")), leaf(format!("{key}.1")));
    a.and(b)
}

#[transactional(db = db, name = "top_frame")]
async fn top(db: &Database) -> Result<(), Error> {
    let (a, b) = tokio::join!(middle("0".into()), middle("1".into()));
    a.and(b)
}

/// Every BEGIN, SAVEPOINT, RELEASE and COMMIT is a `debug` event with its time, and each
/// end event sits in the span of its own frame, nested in its parent's spans exactly as
/// the frames are: the span tree matches the frame tree. The outcome is on the span.
#[test]
fn frame_events_sit_in_the_span_tree_of_their_frames() {
    for kind in KINDS {
        let captured = LogCapture::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let test = TestDb::new(kind).await;
                top(&test.db).await.unwrap();
            })
        });
        let out = captured.text();
        let field = |line: &str, name: &str| -> Option<u64> {
            let at = line.rfind(&format!(" {name}="))? + name.len() + 2;
            line[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        let mut ends = 0;
        // The ends of the tree's frames (not of the fixture's own transactions).
        let tree_ends = out.lines().filter(|l| {
            (l.contains("frame released") || l.contains("frame committed"))
                && l.contains("name=\"top_frame\"")
        });
        for line in tree_ends {
            let depth = field(line, "depth").expect("depth on the event");
            let frame = field(line, "frame").expect("frame on the event");
            // The event's span context: one `transactional{..}` per enclosing frame.
            let context = &line[..line.find(": transactional").unwrap_or(line.len())];
            let spans = context.matches("transactional{").count() as u64;
            assert_eq!(spans, depth + 1, "{kind:?}: {line}");
            let innermost = context.rsplit("transactional{").next().unwrap();
            assert!(
                innermost.contains(&format!("id={frame} ")),
                "{kind:?}: {line}"
            );
            assert!(line.contains("elapsed_us="), "{line}");
            ends += 1;
        }
        assert_eq!(ends, 1 + 2 + 4, "{kind:?}: one end per frame\n{out}");
        for sql in ["BEGIN", "SAVEPOINT", "RELEASE", "COMMIT"] {
            assert!(
                out.contains(&format!("sql=\"{sql}\"")),
                "{kind:?}: {sql}\n{out}"
            );
        }
        assert!(
            out.lines()
                .any(|l| l.contains("close") && l.contains("outcome=\"released\"")),
            "{kind:?}: the outcome is recorded on the span\n{out}"
        );
    }
}
