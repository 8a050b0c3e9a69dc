//! Checks after an adverse-conditions case (see `adverse.rs`), a watchdog for cases that
//! hang too hard for their own timeout, and the `MODEL_KEEP_GOING` survey mode.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use transactional::{Atomic, Database, Error};
use transactional_tests::{eventually, raw_write, TestDb};

use super::adverse::{marker_key, select_case_rows, ReadSeen, RootResult};
use super::{case_range, dooms, Ending, Node, NodeError};

// ---------------------------------------------------------------------------------------
// Checks after a case

/// Runs blocking work (a raw connection) off the executor.
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("raw check")
}

/// A connection of its own to the file, outside the library, waiting up to 3 s for locks.
fn raw_conn(path: &std::path::Path) -> Result<rusqlite::Connection, String> {
    let conn = rusqlite::Connection::open(path).map_err(|e| format!("raw open: {e}"))?;
    conn.busy_timeout(Duration::from_secs(3))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn raw_case_rows(path: &std::path::Path, case: u64) -> Result<BTreeSet<String>, String> {
    let conn = raw_conn(path)?;
    let (from, to) = case_range(case);
    let mut stmt = conn
        .prepare("SELECT key FROM kv WHERE key >= ?1 AND key < ?2")
        .map_err(|e| format!("raw prepare: {e}"))?;
    let rows = stmt
        .query_map((from, to), |r| r.get(0))
        .and_then(|rows| rows.collect::<Result<BTreeSet<String>, _>>())
        .map_err(|e| format!("raw read: {e}"));
    rows
}

fn raw_integrity(path: &std::path::Path) -> Result<String, String> {
    raw_conn(path)?
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("integrity_check: {e}"))
}

/// The case's rows read through the library (a read-only transaction).
pub(super) async fn library_case_rows(
    db: &Database,
    case: u64,
) -> Result<BTreeSet<String>, String> {
    Atomic::new()
        .db(db.clone())
        .read_only(true)
        .run(select_case_rows(case))
        .await
        .map_err(|e| format!("reading the case's rows through the library: {e}"))
}

/// Every read-only slot (each reader connection, held all at once) begins, reads, commits.
pub(super) async fn check_read_only(db: &Database, slots: usize) -> Result<(), String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(slots));
    let tasks: Vec<_> = (0..slots)
        .map(|_| {
            let db = db.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                Atomic::new()
                    .db(db)
                    .read_only(true)
                    .run(async move {
                        let n: i64 = transactional::current()?
                            .query_row("SELECT count(*) FROM kv", ())
                            .await?
                            .get(0)?;
                        barrier.wait().await;
                        Ok::<_, Error>(n)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(e))) => return Err(format!("a read-only transaction failed: {e}")),
            Ok(Err(e)) => return Err(format!("a read-only transaction panicked: {e}")),
            Err(_) => return Err("a read-only transaction hung (5 s)".to_owned()),
        }
    }
    Ok(())
}

/// A write transaction commits.
pub(super) async fn check_write(test: &TestDb) -> Result<(), String> {
    test.write_something()
        .await
        .map_err(|e| format!("a write transaction failed: {e}"))
}

/// `PRAGMA integrity_check` is `ok` (on its own connection for file databases).
pub(super) async fn check_integrity(test: &TestDb) -> Result<(), String> {
    let verdict = match &test.path {
        Some(path) => {
            let path = path.clone();
            off_thread(move || raw_integrity(&path)).await?
        }
        None => test
            .integrity_check()
            .await
            .map_err(|e| format!("integrity_check: {e}"))?,
    };
    (verdict == "ok")
        .then_some(())
        .ok_or(format!("integrity_check: {verdict}"))
}

/// Another connection can take the file's write lock (within 3 s): the library left none of
/// its connections inside a transaction.
pub(super) async fn check_raw_writable(test: &TestDb) -> Result<(), String> {
    match &test.path {
        Some(path) => {
            let path = path.clone();
            off_thread(move || {
                raw_write(&path, "BEGIN IMMEDIATE; ROLLBACK", Duration::from_secs(3))
            })
            .await
            .map_err(|e| format!("a raw connection cannot BEGIN IMMEDIATE (waited 3 s): {e}"))
        }
        None => Ok(()),
    }
}

/// The case's rows through the library and (files) a raw connection, which must agree;
/// the marker must be in neither.
pub(super) async fn observed_rows(test: &TestDb, case: u64) -> Result<BTreeSet<String>, String> {
    let mut rows = library_case_rows(&test.db, case).await?;
    if let Some(path) = &test.path {
        let path = path.clone();
        let raw = off_thread(move || raw_case_rows(&path, case)).await?;
        if raw != rows {
            return Err(format!(
                "the library sees {rows:?}, a raw connection sees {raw:?}"
            ));
        }
    }
    if rows.remove(&marker_key(case)) {
        return Err(
            "the marker row of the failed transaction after the root was committed \
             (a cancelled COMMIT committed the next transaction's rows?)"
                .to_owned(),
        );
    }
    Ok(rows)
}

/// `rows` is all of `full` or none of it.
pub(super) fn all_or_none(rows: &BTreeSet<String>, full: &BTreeSet<String>) -> Result<(), String> {
    if rows.is_empty() || rows == full {
        return Ok(());
    }
    let lost: Vec<_> = full.difference(rows).collect();
    let phantom: Vec<_> = rows.difference(full).collect();
    Err(format!(
        "neither all nor none of the tree's rows: {} of {} there, missing {lost:?}, phantom {phantom:?}",
        rows.len() - phantom.len(),
        full.len()
    ))
}

/// What a root that ended while its runtime shut down may leave: nothing, or every row of
/// the tree but whole subtrees below the root. A runtime going down drops its tasks one by
/// one; a frame in a dropped task rolls back, and every row of that frame and its
/// descendants goes with it, while a worker still polling the root may go on and commit
/// what is left (as it would after any cancelled child). What may never be there is part of
/// one frame's work: a row missing while a sibling row of the same subtree survives.
pub(super) fn whole_subtrees_or_none(
    rows: &BTreeSet<String>,
    full: &BTreeSet<String>,
) -> Result<(), String> {
    if rows.is_empty() || rows == full {
        return Ok(());
    }
    let phantom: Vec<_> = rows.difference(full).collect();
    let lost: BTreeSet<&String> = full.difference(rows).collect();
    // The node path of a row key `c000020/0.1.3#0`; the root's own rows (`0`, `commit`)
    // belong to no subtree that may go.
    let path = |key: &str| -> Option<String> {
        let (_, rest) = key.split_once('/')?;
        let (path, _) = rest.split_once('#')?;
        Some(path.to_owned())
    };
    let under = |key: &str, node: &str| {
        path(key).is_some_and(|p| p == node || p.starts_with(&format!("{node}.")))
    };
    let partly: Vec<&&String> = lost
        .iter()
        .filter(|key| {
            let Some(p) = path(key) else { return true };
            // The row's own node and its ancestors below the root (`0.1.3`: `0.1.3`, `0.1`):
            // one of them must be lost as a whole.
            let ancestors = p.match_indices('.').map(|(i, _)| &p[..i]).skip(1);
            let mut below_root = ancestors.chain(p.contains('.').then_some(p.as_str()));
            let whole = |node: &str| {
                full.iter()
                    .filter(|k| under(k, node))
                    .all(|k| lost.contains(k))
            };
            !below_root.any(whole)
        })
        .collect();
    if phantom.is_empty() && partly.is_empty() {
        return Ok(());
    }
    Err(format!(
        "part of a frame's work is there: {} of {} rows, lost {partly:?} (not a whole subtree), phantom {phantom:?}",
        rows.len() - phantom.len(),
        full.len()
    ))
}

/// The hook ran iff the root's rows are there (a hook gets 500 ms to show up).
pub(super) async fn check_hook(committed: bool, hook_ran: &AtomicBool) -> Result<(), String> {
    if committed {
        if eventually(Duration::from_millis(500), || async {
            hook_ran.load(SeqCst)
        })
        .await
        {
            Ok(())
        } else {
            Err(
                "the root committed (its rows are there) but its on_commit hook never ran"
                    .to_owned(),
            )
        }
    } else if hook_ran.load(SeqCst) {
        Err("the root's on_commit hook ran but its rows are not there".to_owned())
    } else {
        Ok(())
    }
}

/// What the read-only transactions beside the tree saw is consistent with `rows`.
pub(super) fn check_reads(
    reads: &[ReadSeen],
    case: u64,
    full: &BTreeSet<String>,
    rows: &BTreeSet<String>,
) -> Result<(), String> {
    for (i, seen) in reads.iter().enumerate() {
        match seen {
            ReadSeen::Rows(saw) => {
                let mut saw = saw.clone();
                if saw.remove(&marker_key(case)) {
                    return Err(format!("read-only transaction {i} saw the marker row"));
                }
                if !(saw.is_empty() || saw == *full) {
                    return Err(format!(
                        "read-only transaction {i} saw part of the tree's rows: {saw:?}"
                    ));
                }
                if !saw.is_empty() && rows.is_empty() {
                    return Err(format!(
                        "read-only transaction {i} saw the tree's rows, which are gone now"
                    ));
                }
            }
            ReadSeen::Inconsistent(a, b) => {
                return Err(format!(
                    "read-only transaction {i} saw {a:?} and then {b:?}"
                ))
            }
            ReadSeen::Failed(why) => {
                return Err(format!("read-only transaction {i} failed: {why}"))
            }
            ReadSeen::ErrAsAsked | ReadSeen::Panicked | ReadSeen::Dropped => {}
        }
    }
    Ok(())
}

/// How the root ended when it was not cut short matches the tree.
pub(super) fn check_root_result(root: &Node, outcome: &RootResult) -> Result<(), String> {
    let doomed = dooms(root);
    match (outcome, root.ending) {
        (Err(_), Ending::Panic) => Ok(()),
        (Ok(Err(NodeError::Model)), Ending::Err) => Ok(()),
        // A doomed root reports an error: RollbackOnly at its end, or the refusal of a
        // statement its body ran after the doom.
        (Ok(Err(_)), _) if doomed => Ok(()),
        (Ok(Ok(())), Ending::Ok) if !doomed => Ok(()),
        (other, ending) => {
            let other = match other {
                Ok(result) => format!("{result:?}"),
                Err(_) => "panic".to_owned(),
            };
            Err(format!(
                "root ended {other}, expected {ending:?} (doomed: {doomed})"
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Watchdog: a case that hangs so hard that even its tokio timeout cannot fire (an executor
// thread blocked) still fails, printing the case.

static WATCHED: Mutex<BTreeMap<u64, (Instant, String)>> = Mutex::new(BTreeMap::new());

pub(super) struct Watch(u64);

impl Drop for Watch {
    fn drop(&mut self) {
        WATCHED.lock().unwrap().remove(&self.0);
    }
}

/// Exits the process (printing `what`) if the returned guard lives longer than `limit`.
pub(super) fn watch(limit: Duration, what: impl FnOnce() -> String) -> Watch {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static THREAD: std::sync::Once = std::sync::Once::new();
    THREAD.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(250));
            let watched = WATCHED.lock().unwrap();
            for (deadline, what) in watched.values() {
                if Instant::now() > *deadline {
                    eprintln!("HANG (watchdog, the case's own timeout could not fire): {what}");
                    std::process::exit(101);
                }
            }
        });
    });
    let id = NEXT.fetch_add(1, SeqCst);
    WATCHED
        .lock()
        .unwrap()
        .insert(id, (Instant::now() + limit, what()));
    Watch(id)
}

// ---------------------------------------------------------------------------------------
// `MODEL_KEEP_GOING=1`: instead of stopping (and shrinking) at the first failing case, run
// them all and print how many failed in each way, with the first such case; the test
// still fails at the end. For surveying a broken runtime.

pub(super) fn keep_going() -> bool {
    std::env::var_os("MODEL_KEEP_GOING").is_some_and(|v| v != "0")
}

#[derive(Default)]
pub(super) struct Failures(Mutex<BTreeMap<String, (u64, String)>>);

impl Failures {
    /// Records a failure under its kind: the message's start, without numbers and data.
    pub(super) fn add(&self, why: &str, example: impl FnOnce() -> String) {
        let kind: String = why
            .split(['{', '[', '\n'])
            .next()
            .unwrap_or(why)
            .chars()
            .take(160)
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        let mut map = self.0.lock().unwrap();
        let entry = map.entry(kind).or_insert_with(|| (0, example()));
        entry.0 += 1;
    }

    /// In `MODEL_KEEP_GOING` mode, records the failed case and returns `true`: the caller
    /// then lets the case pass, so that the run goes on (and `finish` fails it).
    pub(super) fn kept_going(&self, why: &str, example: impl FnOnce() -> String) -> bool {
        if keep_going() {
            self.add(why, example);
        }
        keep_going()
    }

    /// Prints the survey and fails if anything failed.
    pub(super) fn finish(self, test: &str, cases: u64) {
        let map = self.0.into_inner().unwrap();
        if map.is_empty() {
            return;
        }
        let total: u64 = map.values().map(|(n, _)| n).sum();
        let mut out = format!("{test}: {total} of {cases} cases failed\n");
        for (kind, (n, example)) in &map {
            out += &format!("  {n} × {kind}\n      first: {example}\n");
        }
        eprintln!("{out}");
        panic!("{out}");
    }
}

/// The check after a shutdown refuses part of one frame's work, and takes whole subtrees.
#[test]
fn whole_subtrees_or_none_refuses_part_of_a_frame() {
    let set = |keys: &[&str]| {
        keys.iter()
            .map(|k| format!("c000001/{k}"))
            .collect::<BTreeSet<_>>()
    };
    let full = set(&["commit", "0#0", "0.1#0", "0.1#1", "0.1.0#0", "0.2#0"]);
    assert!(whole_subtrees_or_none(&BTreeSet::new(), &full).is_ok());
    assert!(whole_subtrees_or_none(&full, &full).is_ok());
    // 0.1 and its child gone together; 0.1.0 alone.
    assert!(whole_subtrees_or_none(&set(&["commit", "0#0", "0.2#0"]), &full).is_ok());
    assert!(
        whole_subtrees_or_none(&set(&["commit", "0#0", "0.1#0", "0.1#1", "0.2#0"]), &full).is_ok()
    );
    // Part of 0.1's own rows; 0.1 gone but its child there; the root's own rows; a phantom.
    let refused = [
        set(&["commit", "0#0", "0.1#1", "0.1.0#0", "0.2#0"]),
        set(&["commit", "0#0", "0.1.0#0", "0.2#0"]),
        set(&["commit", "0.1#0", "0.1#1", "0.1.0#0", "0.2#0"]),
        set(&["0#0", "0.1#0", "0.1#1", "0.1.0#0", "0.2#0"]),
        set(&[
            "commit", "0#0", "0.1#0", "0.1#1", "0.1.0#0", "0.2#0", "0.3#0",
        ]),
    ];
    for rows in refused {
        assert!(whole_subtrees_or_none(&rows, &full).is_err(), "{rows:?}");
    }
}
