//! Regression tests, class 3: transaction control belongs to the library, and read-only is
//! enforced for every statement (ARCHITECTURE.md §6 "Transaction control belongs to the library").
//!
//! A user statement must not BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE/END, nor change the
//! connection's mode; a read-only frame must not write, through `call` either.
//!
//! Conformance: defects 10 (transaction control through every portable `Tx` method) and 13
//! (a joined read-only block) run on every kind of `KINDS`. SQLite-only: everything about
//! `Tx::call` (a rusqlite closure), PRAGMAs (`query_only`, `journal_mode`, builder pragmas)
//! and WAL.

use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use transactional::{Atomic, Database, Error, Propagation, Tx};
use transactional_tests::{bounded, insert, table, Kind, TestDb, INSERT_SQL, KINDS};

fn says_transaction(err: &Error) -> bool {
    err.to_string().to_lowercase().contains("transaction")
}

/// Whether the outer transaction of `around_a_block` commits or fails after the block.
#[derive(Clone, Copy, PartialEq)]
enum Outer {
    Commits,
    Fails,
}

/// Most defects here show in one shape: a transaction on `test` inserts `first`, runs
/// `statement` in the block `inner` opens inside it, then commits or fails with
/// `Error::Unsupported`. Returns how the transaction ended and how the block ended.
async fn around_a_block<T, F>(
    test: &TestDb,
    first: &str,
    inner: Atomic,
    then: Outer,
    statement: impl FnOnce(Tx) -> F,
) -> (Result<(), Error>, Result<T, Error>)
where
    F: Future<Output = Result<T, Error>>,
{
    let block = Mutex::new(None);
    let outer = bounded(
        "the transaction",
        Atomic::new().db(test.db.clone()).run(async {
            insert(first).await?;
            let result = inner
                .run(async { statement(transactional::current()?).await })
                .await;
            *block.lock().unwrap() = Some(result);
            match then {
                Outer::Commits => Ok(()),
                Outer::Fails => Err(Error::Unsupported("the outer transaction fails".into())),
            }
        }),
    )
    .await;
    (outer, block.into_inner().unwrap().unwrap())
}

/// `around_a_block` with the usual block: a read-only savepoint, in a transaction that
/// inserts `outer`.
async fn in_read_only_savepoint<T, F>(
    test: &TestDb,
    then: Outer,
    statement: impl FnOnce(Tx) -> F,
) -> (Result<(), Error>, Result<T, Error>)
where
    F: Future<Output = Result<T, Error>>,
{
    around_a_block(
        test,
        "outer",
        Atomic::new().read_only(true),
        then,
        statement,
    )
    .await
}

/// The committed `kv`: read by a connection of its own (a file, PostgreSQL), or, in memory,
/// where only the library reaches the database, by a transaction of its own.
async fn committed(test: &TestDb) -> std::collections::BTreeMap<String, i64> {
    match test.raw_kv() {
        Some(kv) => kv,
        None => test.kv().await,
    }
}

/// The transaction failed, so none of its rows may be on disk.
async fn assert_failed_and_left_nothing(test: &TestDb, outer: &Result<(), Error>) {
    assert!(matches!(outer, Err(Error::Unsupported(_))), "{outer:?}");
    let raw = committed(test).await;
    assert!(
        raw.is_empty(),
        "the outer transaction failed, yet its rows are on disk: {raw:?}"
    );
}

/// The file's journal mode as a connection of its own reads it: the runtime relies on WAL.
/// `Some` describes anything else.
fn not_wal(path: &Path) -> Option<String> {
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.busy_timeout(Duration::from_millis(300)).unwrap();
    match raw.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0)) {
        Ok(mode) if mode.eq_ignore_ascii_case("wal") => None,
        other => Some(format!("the file's journal_mode is {other:?}")),
    }
}

fn assert_no_problems(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Defect 10 (execute_batch): a read-only savepoint runs `COMMIT; BEGIN` through
/// `execute_batch` (both statements count as "read-only" to SQLite): the outer transaction's
/// rows are committed behind the library's back, and when the outer transaction then fails
/// and rolls back, its rows stay on disk.
///
/// Expected: the statement is refused with an error that says it is transaction control;
/// the outer transaction's rows are on disk only if it commits (here it fails: none are).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_savepoint_cannot_commit_the_outer_transaction_with_execute_batch() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let (outer, inner) = in_read_only_savepoint(&test, Outer::Fails, |tx| async move {
            tx.execute_batch("COMMIT; BEGIN").await
        })
        .await;
        assert_failed_and_left_nothing(&test, &outer).await;
        match &inner {
            Err(err) => assert!(says_transaction(err), "{kind:?}: {err}"),
            Ok(()) => panic!("{kind:?}: `COMMIT; BEGIN` ran in a read-only savepoint"),
        }
        test.assert_healthy().await;
    }
}

/// Defect 10 (execute): `execute("COMMIT")` in a read-only savepoint commits the outer
/// transaction's rows the same way.
///
/// Expected: refused with an error that says it is transaction control; nothing of the
/// failing outer transaction on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_savepoint_cannot_commit_the_outer_transaction_with_execute() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let (outer, inner) = in_read_only_savepoint(&test, Outer::Fails, |tx| async move {
            tx.execute("COMMIT", ()).await
        })
        .await;
        assert_failed_and_left_nothing(&test, &outer).await;
        match &inner {
            Err(err) => assert!(says_transaction(err), "{kind:?}: {err}"),
            Ok(n) => panic!("{kind:?}: `COMMIT` ran in a read-only savepoint (returned Ok({n}))"),
        }
        test.assert_healthy().await;
    }
}

/// Runs `sql` through `method` of `tx`, as a user would.
async fn run_through(tx: &Tx, method: &str, sql: &str) -> Result<(), Error> {
    match method {
        "execute" => tx.execute(sql, ()).await.map(drop),
        "execute_batch" => tx.execute_batch(sql).await,
        "query" => tx.query(sql, ()).await.map(drop),
        "query_row" => tx.query_row(sql, ()).await.map(drop),
        "query_opt" => tx.query_opt(sql, ()).await.map(drop),
        "call" => {
            let sql = sql.to_owned();
            tx.call(move |conn| conn.execute_batch(&sql)).await
        }
        other => unreachable!("{other}"),
    }
}

/// The `Tx` methods every backend has.
const METHODS: [&str; 5] = [
    "execute",
    "execute_batch",
    "query",
    "query_row",
    "query_opt",
];

/// Defect 10 (every method, every control statement): inside a savepoint, each `Tx` method
/// runs BEGIN/COMMIT/END/ROLLBACK/SAVEPOINT/RELEASE/ROLLBACK TO as the user wrote it: a
/// COMMIT or END commits the outer transaction's rows, a ROLLBACK ends it, `RELEASE sp_1`
/// releases the library's own savepoint, `ROLLBACK TO sp_1` silently undoes the frame's
/// work, `SAVEPOINT x` pushes a savepoint the library does not know about.
///
/// Expected: every one is refused with an error saying it is transaction control (the
/// message contains "transaction"); the frame goes on (a later insert in it works); the
/// outer transaction, which then fails, leaves nothing on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tx_method_refuses_transaction_control_statements() {
    for kind in KINDS {
        refuses_transaction_control(kind, &METHODS).await;
    }
}

/// SQLite-only: the same through `Tx::call` (a rusqlite closure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_call_refuses_transaction_control_statements() {
    refuses_transaction_control(Kind::File, &["call"]).await;
}

async fn refuses_transaction_control(kind: Kind, methods: &[&str]) {
    let test = TestDb::new(kind).await;
    let statements = [
        "BEGIN",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT user_sp",
        "RELEASE sp_1",
        "ROLLBACK TO sp_1",
    ];
    let mut failures = Vec::new();
    let mut case = 0;
    for sql in statements {
        for method in methods.iter().copied() {
            case += 1;
            let refused = Mutex::new(None);
            let after = Mutex::new(None);
            let outer = bounded(
                &format!("{method}({sql:?})"),
                Atomic::new().db(test.db.clone()).run(async {
                    insert(format!("outer_{case}")).await?;
                    let _ = Atomic::new()
                        .run(async {
                            let tx = transactional::current()?;
                            *refused.lock().unwrap() = Some(run_through(&tx, method, sql).await);
                            *after.lock().unwrap() = Some(insert(format!("inner_{case}")).await);
                            Ok::<(), Error>(())
                        })
                        .await;
                    Err::<(), _>(Error::Unsupported("the outer transaction fails".into()))
                }),
            )
            .await;
            let refused = refused.into_inner().unwrap().unwrap();
            match &refused {
                Ok(()) => failures.push(format!("{method}({sql:?}) ran: returned Ok")),
                Err(err) if !says_transaction(err) => failures.push(format!(
                    "{method}({sql:?}) failed without saying it is transaction control: {err}"
                )),
                Err(_) => {}
            }
            if let Some(Err(err)) = after.into_inner().unwrap() {
                failures.push(format!(
                    "after {method}({sql:?}) the frame could not go on: {err}"
                ));
            }
            if !matches!(outer, Err(Error::Unsupported(_))) {
                failures.push(format!(
                    "after {method}({sql:?}) the outer transaction returned {outer:?}"
                ));
            }
            let raw = committed(&test).await;
            if !raw.is_empty() {
                failures.push(format!(
                    "after {method}({sql:?}) rows of a failed transaction are on disk: {raw:?}"
                ));
                test.exec("DELETE FROM kv").await.unwrap();
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{kind:?}: {} problems in {case} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    test.assert_healthy().await;
}

/// Defect 11 (query_only): `PRAGMA query_only = 1` from a read-only savepoint is accepted
/// (SQLite counts it as read-only) and stays set on the writer connection: every later write
/// transaction on the database fails with "attempt to write a readonly database".
///
/// Expected: the pragma is refused with an error; later write transactions work.
///
/// SQLite-only: a PRAGMA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_query_only_from_a_read_only_savepoint_does_not_break_later_writes() {
    let test = TestDb::new(Kind::File).await;
    let (outer, inner) = in_read_only_savepoint(&test, Outer::Commits, |tx| async move {
        tx.execute_batch("PRAGMA query_only = 1").await
    })
    .await;
    let later = bounded(
        "a later write",
        test.exec("INSERT INTO kv VALUES ('later', 1)"),
    )
    .await;
    assert!(
        later.is_ok(),
        "a later write transaction failed: {later:?} (the pragma returned {inner:?}, the \
         outer transaction {outer:?})"
    );
    assert!(
        inner.is_err(),
        "`PRAGMA query_only = 1` ran in a read-only savepoint"
    );
    assert!(outer.is_ok(), "{outer:?}");
    assert_eq!(test.kv().await, table([("later", 1), ("outer", 1)]));
    test.assert_healthy().await;
}

/// Defect 11 (connection mode from user statements): a user statement can change the
/// writer's mode — `query_only`, `journal_mode`, `locking_mode`, `synchronous`,
/// `busy_timeout`, `wal_autocheckpoint` — under the runtime, which relies on them (WAL, no
/// busy wait on the writer, checkpoints on its own thread, ...).
///
/// Expected: each is refused with an error (through `query` and `execute_batch`); later
/// write and read-only transactions work; the file is still in WAL mode.
///
/// SQLite-only: PRAGMAs and WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_user_statements_cannot_change_the_connection_mode() {
    let pragmas = [
        "PRAGMA query_only = 1",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA locking_mode = EXCLUSIVE",
        "PRAGMA synchronous = OFF",
        "PRAGMA busy_timeout = 60000",
        "PRAGMA wal_autocheckpoint = 0",
    ];
    let mut failures = Vec::new();
    for pragma in pragmas {
        let test = TestDb::new(Kind::File).await;
        let test = test
            .reopen_with(Database::builder().busy_timeout(Duration::from_millis(300)))
            .await;
        for method in ["query", "execute_batch"] {
            let result = bounded(
                pragma,
                Atomic::new().db(test.db.clone()).run(async {
                    let tx = transactional::current()?;
                    Ok::<_, Error>(run_through(&tx, method, pragma).await)
                }),
            )
            .await;
            match result {
                Ok(Ok(_)) => failures.push(format!("{method}({pragma:?}) ran")),
                Ok(Err(_)) => {}
                Err(err) => failures.push(format!(
                    "{method}({pragma:?}): its transaction failed: {err}"
                )),
            }
        }
        let write = bounded("a write", test.exec("INSERT INTO kv VALUES ('w', 1)")).await;
        if let Err(err) = write {
            failures.push(format!(
                "after {pragma:?}: a write transaction failed: {err}"
            ));
        }
        let read = bounded("a read", test.count_read_only()).await;
        if let Err(err) = read {
            failures.push(format!(
                "after {pragma:?}: a read-only transaction failed: {err}"
            ));
        }
        if let Some(problem) = not_wal(test.path.as_ref().unwrap()) {
            failures.push(format!("after {pragma:?}: {problem}"));
        }
    }
    assert_no_problems(&failures);
}

/// Defect 11 (builder pragmas): `.pragma("journal_mode", "DELETE")` in the builder silently
/// undoes WAL (set just before); `locking_mode` and `query_only` likewise break the runtime
/// (readers beside the writer; writes).
///
/// Expected: `open` fails with a clear error that names the pragma; the file stays in WAL
/// mode. `.pragma("journal_mode", "WAL")` is still accepted.
///
/// SQLite-only: the builder's PRAGMAs and WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_builder_pragmas_that_would_break_the_runtime_make_open_fail() {
    let mut failures = Vec::new();
    let cases = [
        ("journal_mode", "DELETE"),
        ("journal_mode", "MEMORY"),
        ("locking_mode", "EXCLUSIVE"),
        ("query_only", "1"),
    ];
    // With the default readers, and with none (the writer alone).
    for ((name, value), readers) in cases.into_iter().flat_map(|c| [(c, 4), (c, 0)]) {
        // A WAL file that no other connection has open.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE kv(key TEXT PRIMARY KEY, val INTEGER NOT NULL)")
            .unwrap();
        let opened = bounded(
            "open",
            Database::builder()
                .readers(readers)
                .pragma(name, value)
                .open(&path),
        )
        .await;
        let case = format!(".readers({readers}).pragma({name:?}, {value:?})");
        match &opened {
            Ok(_) => failures.push(format!("open with {case} succeeded")),
            Err(err) if !err.to_string().contains(name) => failures.push(format!(
                "open with {case} failed without naming the pragma: {err}"
            )),
            Err(_) => {}
        }
        drop(opened);
        if let Some(problem) = not_wal(&path) {
            failures.push(format!("after {case}: {problem}"));
        }
    }
    let test = TestDb::new(Kind::File).await;
    let wal = Database::builder()
        .pragma("journal_mode", "WAL")
        .open(test.path.as_ref().unwrap())
        .await;
    assert!(wal.is_ok(), "journal_mode = WAL is fine: {wal:?}");
    assert_no_problems(&failures);
}

/// Defect 12 (`call`): in a read-only savepoint, `tx.call(|c| c.execute("INSERT ..."))`
/// writes: `call` is not checked, and the savepoint runs on the writer connection.
///
/// Expected: the write fails (`Error::ReadOnly` or SQLite's own refusal) and nothing of it is
/// written, though the outer transaction commits.
///
/// SQLite-only: `Tx::call` (a rusqlite closure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_read_only_savepoint_refuses_writes_through_call() {
    let test = TestDb::new(Kind::File).await;
    let (outer, inner) = in_read_only_savepoint(&test, Outer::Commits, |tx| async move {
        tx.call(|c| c.execute("INSERT INTO kv VALUES ('through_call', 1)", []))
            .await
    })
    .await;
    outer.expect("the outer transaction commits");
    assert!(inner.is_err(), "the write through call returned {inner:?}");
    assert_eq!(test.raw_kv().unwrap(), table([("outer", 1)]));
    test.assert_healthy().await;
}

/// Defect 12 (cached statement): a write statement first run — and so prepared and cached —
/// in a write frame, then run again from the statement cache through
/// `call(|c| c.prepare_cached(sql)?.execute(..))` in a read-only savepoint, writes. (A check
/// made only when a statement is prepared would miss it.)
///
/// Expected: the second run fails and writes nothing.
///
/// SQLite-only: `Tx::call` (a rusqlite closure) and its statement cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_read_only_savepoint_refuses_a_cached_write_statement_through_call() {
    let test = TestDb::new(Kind::File).await;
    // `insert("first")` runs `INSERT_SQL` in the write frame: prepared and cached there.
    let read_only = Atomic::new().read_only(true);
    let (outer, inner) =
        around_a_block(&test, "first", read_only, Outer::Commits, |tx| async move {
            tx.call(|c| c.prepare_cached(INSERT_SQL)?.execute(("via_cache",)))
                .await
        })
        .await;
    outer.expect("the outer transaction commits");
    assert!(
        inner.is_err(),
        "the cached write through call returned {inner:?}"
    );
    assert_eq!(test.raw_kv().unwrap(), table([("first", 1)]));
    test.assert_healthy().await;
}

/// Defect 12 (read-only root on the writer): a read-only outermost transaction that runs on
/// the writer connection (in memory; or a file database with `readers(0)`) writes through
/// `call`.
///
/// Expected: the write fails and nothing is written.
///
/// SQLite-only: `Tx::call` (a rusqlite closure) on SQLite's writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_read_only_root_on_the_writer_refuses_writes_through_call() {
    let memory = TestDb::new(Kind::Memory).await;
    let file = TestDb::new(Kind::File)
        .await
        .reopen_with(Database::builder().readers(0))
        .await;
    for (what, test) in [("in memory", &memory), ("file, readers(0)", &file)] {
        let result = bounded(
            "the read-only transaction",
            Atomic::new()
                .db(test.db.clone())
                .read_only(true)
                .run(async {
                    transactional::current()?
                        .call(|c| c.execute("INSERT INTO kv VALUES ('through_call', 1)", []))
                        .await
                }),
        )
        .await;
        assert!(
            result.is_err(),
            "{what}: the write through call in a read-only transaction returned {result:?}"
        );
        assert_eq!(test.kv().await, table([]), "{what}");
        test.assert_healthy().await;
    }
}

/// Defect 13: `read_only` with `propagation = join` is silently ignored: inside a write
/// transaction, a joined read-only block writes, and the write commits.
///
/// Expected: its writes are refused with `Error::ReadOnly`, and nothing of it is on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_read_only_block_refuses_writes() {
    for kind in KINDS {
        let test = TestDb::new(kind).await;
        let joined_read_only = Atomic::new().propagation(Propagation::Join).read_only(true);
        let (outer, joined) =
            around_a_block(&test, "outer", joined_read_only, Outer::Commits, |_| {
                insert("joined")
            })
            .await;
        assert!(
            matches!(joined, Err(Error::ReadOnly)),
            "{kind:?}: the joined read-only block's write returned {joined:?} (outer: {outer:?})"
        );
        let raw = committed(&test).await;
        assert!(!raw.contains_key("joined"), "{kind:?}: {raw:?}");
        test.assert_healthy().await;
    }
}

/// `call` hands out the connection itself. A closure that takes the library's own
/// `ROLLBACK TO sp_1` from the statement cache (the authorizer never sees a cached
/// statement) used to undo its frame's earlier work silently: the frame then released and
/// committed as if nothing had happened. Expected: `call` fails with `Error::Forbidden`, the
/// transaction is aborted, and nothing of it is committed.
///
/// SQLite-only: `Tx::call` (a rusqlite closure) and its statement cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_call_cannot_undo_a_savepoint_behind_the_librarys_back() {
    let test = TestDb::new(Kind::File).await;
    let outer: Result<(), Error> = Atomic::new()
        .db(test.db.clone())
        .run(async {
            // A savepoint rolled back normally leaves `ROLLBACK TO sp_1` in the cache.
            let failed = transactional::atomic(async { Err::<(), _>(Error::ReadOnly) }).await;
            assert!(failed.is_err());
            transactional::atomic(async {
                insert("inside").await?;
                let tx = transactional::current()?;
                let sabotage = tx
                    .call(|conn| conn.prepare_cached("ROLLBACK TO sp_1")?.execute([]))
                    .await;
                assert!(
                    matches!(&sabotage, Err(Error::Forbidden { .. })),
                    "{sabotage:?}"
                );
                Ok::<_, Error>(())
            })
            .await?;
            insert("outer").await
        })
        .await;
    assert!(outer.is_err(), "the transaction committed: {outer:?}");
    assert_eq!(test.kv().await, table([]));
    test.assert_healthy().await;
}

/// PostgreSQL-only, the counterpart of defect 11 (`query_only`): a user statement that sets a
/// session default — `SET default_transaction_read_only = on`, or the same through
/// `set_config(..)`, which no statement check sees — in a transaction that commits stays set
/// on the pooled session, and every later write transaction that gets that connection fails
/// with `Error::ReadOnly` (the library's `BEGIN` does not say `READ WRITE`).
///
/// Expected: either the statement is refused, or the session's settings do not outlive the
/// transaction; later write transactions work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn postgres_session_defaults_set_by_user_statements_do_not_break_later_writes() {
    let statements = [
        "SET default_transaction_read_only = on",
        "SELECT set_config('default_transaction_read_only', 'on', false)",
    ];
    for kind in KINDS.into_iter().filter(|k| !k.is_sqlite()) {
        for sql in statements {
            let mut failures = Vec::new();
            let test = TestDb::new(kind).await;
            let ran = bounded(
                sql,
                Atomic::new()
                    .db(test.db.clone())
                    .run(async { transactional::current()?.execute_batch(sql).await }),
            )
            .await;
            // More transactions than the pool has connections: every one of them is reused.
            for i in 0..16 {
                let later = bounded(
                    "a later write",
                    Atomic::new()
                        .db(test.db.clone())
                        .run(insert(format!("later_{i}"))),
                )
                .await;
                if let Err(err) = later {
                    failures.push(format!(
                        "after {sql:?} (which returned {ran:?}): write {i} failed: {err}"
                    ));
                    break;
                }
            }
            assert_no_problems(&failures);
            test.assert_healthy().await;
        }
    }
}
