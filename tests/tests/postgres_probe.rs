//! Server facts the PostgreSQL backend's design relies on (ARCHITECTURE.md §6), each an assertion
//! against the server `DATABASE_URL` names, so a server that behaves otherwise fails here
//! first rather than somewhere in the frame machinery.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p
//! transactional-tests --features postgres --test postgres_probe`.
#![cfg(feature = "postgres")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::{backend::Message, frontend};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config};
use transactional_tests::postgres::PgTestDb;

async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

async fn read_only(client: &Client) -> String {
    client
        .query_one("SHOW transaction_read_only", &[])
        .await
        .unwrap()
        .get(0)
}

fn code(err: &tokio_postgres::Error) -> &SqlState {
    err.code()
        .unwrap_or_else(|| panic!("not a server error: {err}"))
}

/// `COMMIT` in a failed transaction is not an error: the server rolls back and answers with
/// the command tag `ROLLBACK`, which tokio-postgres does not show (it reports only row
/// counts). So the library must remember a failed frame itself: nothing on the client side
/// would tell it that its COMMIT committed nothing.
#[tokio::test]
async fn commit_in_a_failed_transaction_rolls_back_silently() {
    let Some(db) = PgTestDb::new("probe_commit_failed").await else {
        return;
    };
    let client = db.connect().await;
    client.batch_execute("CREATE TABLE t(v int)").await.unwrap();

    // Through tokio-postgres: no error at all.
    client
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    client.batch_execute("SELECT 1/0").await.unwrap_err();
    assert_eq!(client.execute("COMMIT", &[]).await.unwrap(), 0);
    assert_eq!(count(&client, "t").await, 0, "COMMIT committed nothing");

    // On the wire: the tag says ROLLBACK.
    let (setup, commit) = raw_simple_query(
        &db.config(),
        "BEGIN; INSERT INTO t VALUES (2); SELECT 1/0",
        "COMMIT",
    );
    assert_eq!(
        setup,
        ["BEGIN", "INSERT 0 1"],
        "the failure came after the write"
    );
    assert_eq!(commit, ["ROLLBACK"]);
    assert_eq!(count(&client, "t").await, 0);
}

/// A read-only savepoint: `SET LOCAL transaction_read_only = on` right after `SAVEPOINT`.
/// Writes inside fail with 25006; both `RELEASE` and `ROLLBACK TO` give the enclosing
/// transaction back read-write; savepoints nested inside stay read-only.
#[tokio::test]
async fn set_local_read_only_in_a_savepoint_ends_with_the_savepoint() {
    let Some(db) = PgTestDb::new("probe_read_only_savepoint").await else {
        return;
    };
    let c = db.connect().await;
    c.batch_execute("CREATE TABLE t(v int)").await.unwrap();
    let ro = "SET LOCAL transaction_read_only = on";

    c.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    // Read-only savepoint that fails, ended by ROLLBACK TO.
    c.batch_execute(&format!("SAVEPOINT ro; {ro}"))
        .await
        .unwrap();
    assert_eq!(read_only(&c).await, "on");
    let err = c
        .batch_execute("INSERT INTO t VALUES (2)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), &SqlState::READ_ONLY_SQL_TRANSACTION);
    c.batch_execute("ROLLBACK TO ro").await.unwrap();
    assert_eq!(
        read_only(&c).await,
        "off",
        "ROLLBACK TO restores read-write"
    );
    c.batch_execute("RELEASE ro; INSERT INTO t VALUES (3)")
        .await
        .unwrap();

    // Read-only savepoint that reads, ended by RELEASE.
    c.batch_execute(&format!(
        "SAVEPOINT ro; {ro}; SELECT count(*) FROM t; RELEASE ro"
    ))
    .await
    .unwrap();
    assert_eq!(read_only(&c).await, "off", "RELEASE restores read-write");
    c.batch_execute("INSERT INTO t VALUES (4)").await.unwrap();

    // A savepoint nested in a read-only one inherits it, also after its own RELEASE.
    c.batch_execute(&format!(
        "SAVEPOINT ro; {ro}; SAVEPOINT inner1; RELEASE inner1"
    ))
    .await
    .unwrap();
    assert_eq!(read_only(&c).await, "on");
    c.batch_execute("ROLLBACK TO ro; RELEASE ro; COMMIT")
        .await
        .unwrap();

    let rows: Vec<i32> = c
        .query("SELECT v FROM t ORDER BY v", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [1, 3, 4]);
}

/// Read-only is not total: temporary tables stay writable in a READ ONLY transaction (and
/// so in a read-only savepoint). A `read_only` frame protects the database, not temp tables.
#[tokio::test]
async fn temporary_tables_stay_writable_when_read_only() {
    let Some(db) = PgTestDb::new("probe_read_only_temp").await else {
        return;
    };
    let c = db.connect().await;
    c.batch_execute("CREATE TEMP TABLE scratch(v int); BEGIN READ ONLY")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO scratch VALUES (1)")
        .await
        .unwrap();
    c.batch_execute("ROLLBACK").await.unwrap();
}

/// Requests sent on one client without awaiting each (tokio-postgres pipelines them) run in
/// the order they were *sent*, each with its own Sync: an error fails only its own request,
/// and the requests after it still run — in the failed transaction.
///
/// A request is sent when its future is first polled, and `execute(&str, ..)` is two
/// requests: a prepare, then — only once the prepare's answer is back and the future is
/// polled again — the execute. `tokio::join!` rotates which future it polls first, so
/// unprepared statements joined this way can execute out of order (the first version of
/// this test saw the second write run before `ROLLBACK TO`). Pipelining keeps order only for
/// requests sent on the first poll: prepared statements or simple queries, polled in order
/// (`biased;`).
#[tokio::test]
async fn pipelined_savepoint_statements_keep_their_order() {
    let Some(db) = PgTestDb::new("probe_pipeline").await else {
        return;
    };
    let c = db.connect().await;
    c.batch_execute("CREATE TABLE t(v int PRIMARY KEY); BEGIN")
        .await
        .unwrap();
    let prepare = |sql: &'static str| c.prepare(sql);
    let (savepoint, rollback_to, release, insert) = tokio::try_join!(
        prepare("SAVEPOINT p"),
        prepare("ROLLBACK TO p"),
        prepare("RELEASE p"),
        prepare("INSERT INTO t VALUES ($1)"),
    )
    .unwrap();

    // SAVEPOINT, a write, ROLLBACK TO, another write, RELEASE: one round trip.
    let (sp, a, back, b, rel) = tokio::join!(
        biased;
        c.execute(&savepoint, &[]),
        c.execute(&insert, &[&1i32]),
        c.execute(&rollback_to, &[]),
        c.execute(&insert, &[&2i32]),
        c.execute(&release, &[]),
    );
    for r in [sp, a, back, b, rel] {
        r.unwrap();
    }
    let rows: Vec<i32> = c
        .query("SELECT v FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rows,
        [2],
        "ROLLBACK TO ran after the first write and before the second"
    );

    // A pipelined RELEASE after a failing statement meets the failed transaction (25P02):
    // a savepoint whose statement may fail cannot have its RELEASE sent along with it.
    let (sp, dup, rel) = tokio::join!(
        biased;
        c.execute(&savepoint, &[]),
        c.execute(&insert, &[&2i32]),
        c.execute(&release, &[]),
    );
    sp.unwrap();
    assert_eq!(code(&dup.unwrap_err()), &SqlState::UNIQUE_VIOLATION);
    assert_eq!(
        code(&rel.unwrap_err()),
        &SqlState::IN_FAILED_SQL_TRANSACTION
    );
    c.batch_execute("ROLLBACK TO p; RELEASE p; COMMIT")
        .await
        .unwrap();
    assert_eq!(count(&c, "t").await, 1);
}

/// Runs `setup` then `query` as simple queries on a raw wire-protocol session and returns
/// the command tags of each one's CommandComplete messages.
fn raw_simple_query(config: &Config, setup: &str, query: &str) -> (Vec<String>, Vec<String>) {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        other => panic!("the probe needs a TCP host in DATABASE_URL, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().expect("DATABASE_URL names a user");
    let mut session = RawSession {
        stream: TcpStream::connect((host.as_str(), port)).expect("raw connection"),
        buf: BytesMut::new(),
    };
    session
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut params = vec![("user", user)];
    if let Some(dbname) = config.get_dbname() {
        params.push(("database", dbname));
    }
    if let Some(options) = config.get_options() {
        params.push(("options", options)); // the test schema's search_path
    }
    let mut out = BytesMut::new();
    frontend::startup_message(params, &mut out).unwrap();
    session.send(&out);
    session.authenticate(config.get_password().unwrap_or_default());
    session.until_ready();
    let setup_tags = session.query(setup);
    let tags = session.query(query);
    let mut out = BytesMut::new();
    frontend::terminate(&mut out);
    session.send(&out);
    (setup_tags, tags)
}

struct RawSession {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawSession {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn next(&mut self) -> Message {
        loop {
            if let Some(message) = Message::parse(&mut self.buf).unwrap() {
                return message;
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "server closed the raw connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn authenticate(&mut self, password: &[u8]) {
        let mut out = BytesMut::new();
        match self.next() {
            Message::AuthenticationOk => return,
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password, &mut out).unwrap();
            }
            Message::AuthenticationSasl(_) => {
                let mut scram = ScramSha256::new(password, ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, scram.message(), &mut out).unwrap();
                self.send(&out);
                out.clear();
                let Message::AuthenticationSaslContinue(body) = self.next() else {
                    panic!("expected SCRAM server-first message")
                };
                scram.update(body.data()).unwrap();
                frontend::sasl_response(scram.message(), &mut out).unwrap();
                self.send(&out);
                let Message::AuthenticationSaslFinal(body) = self.next() else {
                    panic!("SCRAM authentication failed")
                };
                scram.finish(body.data()).unwrap();
                assert!(matches!(self.next(), Message::AuthenticationOk));
                return;
            }
            _ => panic!("the probe's raw session supports trust, password and SCRAM auth"),
        }
        self.send(&out);
        assert!(
            matches!(self.next(), Message::AuthenticationOk),
            "authentication failed"
        );
    }

    fn until_ready(&mut self) {
        while !matches!(self.next(), Message::ReadyForQuery(_)) {}
    }

    /// Sends one simple query; returns its command tags (errors are ignored: `setup` fails
    /// on purpose).
    fn query(&mut self, sql: &str) -> Vec<String> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).unwrap();
        self.send(&out);
        let mut tags = Vec::new();
        loop {
            match self.next() {
                Message::CommandComplete(body) => tags.push(body.tag().unwrap().to_owned()),
                Message::ReadyForQuery(_) => return tags,
                _ => {}
            }
        }
    }
}
