//! The bank example over real HTTP on 127.0.0.1: a concurrent load of valid and invalid
//! requests where every response is checked, the invariant and the database's integrity at
//! the end, and a graceful shutdown with requests in flight.
//!
//! The load test runs on SQLite, and on PostgreSQL too when the crate is built with
//! `--features postgres` and `DATABASE_URL` names a server
//! (`DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p
//! transactional-examples --features postgres --test bank`), in a schema of its own that is
//! dropped at the end. The other tests are about the SQLite server and the HTTP edge, which
//! do not depend on the engine.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use transactional::Database;
use transactional_examples::bank::{
    self, Account, Audit, BatchItemResult, BatchResponse, ErrorBody, MetricsView, Transfer,
    MAX_AMOUNT, MAX_BATCH,
};

const ACCOUNTS: usize = 24;
const OPENING: i64 = 1_000;
const CLIENTS: usize = 32;
const REQUESTS_PER_CLIENT: usize = 40;
/// Ids no account has.
const UNKNOWN: i64 = 1_000_000;

struct Server {
    base: String,
    addr: SocketAddr,
    db: Database,
    store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<std::io::Result<()>>,
}

/// Where a server keeps its data.
enum Store {
    /// A file in a temporary folder, deleted with it.
    Sqlite {
        path: PathBuf,
        dir: tempfile::TempDir,
    },
    /// A schema of its own on a PostgreSQL server, dropped by [`Server::stop_and_read`].
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        bank: bank::PostgresBank,
    },
}

/// What a load test runs the server on.
enum Backend {
    Sqlite,
    /// The server `DATABASE_URL` names, in a new schema.
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        schema: String,
    },
}

impl Server {
    async fn start_on(backend: &Backend) -> Server {
        match backend {
            Backend::Sqlite => Server::start().await,
            #[cfg(feature = "postgres")]
            Backend::Postgres { url, schema } => {
                let bank = bank::PostgresBank::connect(url, schema, bank::POSTGRES_POOL_SIZE)
                    .await
                    .expect("connect to DATABASE_URL");
                assert!(bank.created(), "schema {schema} is new");
                let db = bank.db().clone();
                let store = Store::Postgres {
                    url: url.clone(),
                    bank,
                };
                Server::serve(db, store, bank::Limits::default()).await
            }
        }
    }

    async fn start() -> Server {
        Server::start_with_grace(bank::SHUTDOWN_GRACE).await
    }

    async fn start_with_grace(grace: Duration) -> Server {
        Server::start_with(bank::Limits {
            grace,
            ..bank::Limits::default()
        })
        .await
    }

    async fn start_with(limits: bank::Limits) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bank.db");
        let db = Database::open(&path).await.expect("open the database");
        Server::serve(db, Store::Sqlite { path, dir }, limits).await
    }

    async fn serve(db: Database, store: Store, limits: bank::Limits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let signal = async {
            let _ = signal.await;
        };
        let handle = tokio::spawn(bank::serve_with(listener, db.clone(), signal, limits));
        Server {
            base: format!("http://{addr}"),
            addr,
            db,
            store,
            shutdown: Some(shutdown),
            handle,
        }
    }

    /// Signals shutdown without waiting for it.
    fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Signals shutdown and waits until `serve` has returned; a SQLite server's file.
    async fn stop(self) -> (PathBuf, tempfile::TempDir) {
        match self.stop_serving().await {
            Store::Sqlite { path, dir } => (path, dir),
            #[cfg(feature = "postgres")]
            Store::Postgres { .. } => unreachable!("`stop` is for SQLite servers"),
        }
    }

    async fn stop_serving(mut self) -> Store {
        self.signal_shutdown();
        self.handle
            .await
            .expect("the server task")
            .expect("serve returns Ok after a graceful shutdown");
        self.store
    }

    /// Stops the server, and reads what its database holds with a connection of its own:
    /// the transfers by id, and the sum of the balances. A SQLite file must pass
    /// `PRAGMA integrity_check`; a PostgreSQL schema is dropped afterwards.
    async fn stop_and_read(self) -> (Vec<Transfer>, i64) {
        match self.stop_serving().await {
            Store::Sqlite { path, dir: _dir } => {
                let (integrity, transfers, total) = check_file(&path);
                assert_eq!(integrity, "ok");
                (transfers, total)
            }
            #[cfg(feature = "postgres")]
            Store::Postgres { url, bank } => {
                let stored = read_schema(&url, bank.schema()).await;
                bank.close(false).await.expect("drop the schema");
                stored
            }
        }
    }
}

/// `check_file` on PostgreSQL: the transfers and the sum of the balances in `schema`, read
/// through a pool of its own.
#[cfg(feature = "postgres")]
async fn read_schema(url: &str, schema: &str) -> (Vec<Transfer>, i64) {
    let db = Database::postgres(url)
        .pool_size(1)
        .connect()
        .await
        .expect("connect");
    let transfers = format!("SELECT id, from_id, to_id, amount FROM {schema}.transfer ORDER BY id");
    let total = format!("SELECT sum(balance) FROM {schema}.account");
    let stored = transactional::Atomic::new()
        .db(db.clone())
        .read_only(true)
        .run(async move {
            let tx = transactional::current()?;
            let transfers = tx
                .query(&transfers, ())
                .await?
                .iter()
                .map(|r| {
                    Ok(Transfer {
                        id: r.get(0)?,
                        from: r.get(1)?,
                        to: r.get(2)?,
                        amount: r.get(3)?,
                    })
                })
                .collect::<transactional::Result<Vec<_>>>()?;
            let total: i64 = tx.query_row(&total, ()).await?.get(0)?;
            Ok::<_, transactional::Error>((transfers, total))
        })
        .await
        .expect("read the schema");
    db.close().await.expect("close");
    stored
}

fn client() -> Client {
    // No proxy: the environment's HTTP_PROXY must not take 127.0.0.1 traffic elsewhere.
    Client::builder().no_proxy().build().expect("client")
}

/// One exchange: the status and the JSON body (every response of the service is JSON).
async fn exchange(request: reqwest::RequestBuilder, what: &str) -> (StatusCode, Value) {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{what}: {status} {text}"
    );
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {status} {text}"));
    (status, body)
}

fn parse<T: DeserializeOwned>(body: &Value, what: &str) -> T {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

/// Asserts an error response: this status, this code, a message.
fn expect_error(status: StatusCode, body: &Value, want: StatusCode, code: &str, what: &str) {
    assert_eq!(status, want, "{what}: {body}");
    let error: ErrorBody = parse(body, what);
    assert_eq!(error.error.code, code, "{what}: {body}");
    assert!(!error.error.message.is_empty(), "{what}: {body}");
}

async fn open_account(client: &Client, base: &str, owner: &str, opening: i64) -> Account {
    let (status, body) = exchange(
        client
            .post(format!("{base}/accounts"))
            .json(&json!({ "owner": owner, "opening_balance": opening })),
        "open account",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let account: Account = parse(&body, "open account");
    assert_eq!(
        (
            account.owner.as_str(),
            account.opening_balance,
            account.balance
        ),
        (owner, opening, opening)
    );
    account
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    committed: Vec<Transfer>,
    items_failed: usize,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.committed.extend(other.committed);
        self.items_failed += other.items_failed;
    }
}

/// One client: `REQUESTS_PER_CLIENT` requests of every kind, each response checked against
/// what that request must get.
async fn run_client(seed: u64, base: String, ids: Vec<i64>) -> Tally {
    let client = client();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::default();
    let two = |rng: &mut fastrand::Rng| {
        let from = ids[rng.usize(..ids.len())];
        let mut to = ids[rng.usize(..ids.len())];
        while to == from {
            to = ids[rng.usize(..ids.len())];
        }
        (from, to)
    };
    for n in 0..REQUESTS_PER_CLIENT {
        let what = format!("client {seed} request {n}");
        let roll = rng.u32(0..100);
        let (status, body) = if roll < 35 {
            // One valid transfer: committed, or refused for lack of funds.
            let (from, to) = two(&mut rng);
            let amount = rng.i64(1..=400);
            let (status, body) = exchange(
                client
                    .post(format!("{base}/transfers"))
                    .json(&json!({ "from": from, "to": to, "amount": amount })),
                &what,
            )
            .await;
            if status == StatusCode::CREATED {
                let transfer: Transfer = parse(&body, &what);
                assert_eq!(
                    (transfer.from, transfer.to, transfer.amount),
                    (from, to, amount)
                );
                tally.committed.push(transfer);
            } else {
                expect_error(
                    status,
                    &body,
                    StatusCode::CONFLICT,
                    "insufficient_funds",
                    &what,
                );
            }
            (status, body)
        } else if roll < 65 {
            // A batch; some items name an account that does not exist.
            let len = rng.usize(2..=12);
            let items: Vec<(i64, i64, i64, bool)> = (0..len)
                .map(|_| {
                    let (mut from, mut to) = two(&mut rng);
                    let unknown = rng.u32(0..100) < 15;
                    if unknown {
                        // An unknown sender is found after the credit is written: only the
                        // item's savepoint rollback can take that credit back.
                        if rng.bool() {
                            from = UNKNOWN + rng.i64(0..10);
                        } else {
                            to = UNKNOWN + rng.i64(0..10);
                        }
                    }
                    (from, to, rng.i64(1..=400), unknown)
                })
                .collect();
            let transfers: Vec<Value> = items
                .iter()
                .map(|(from, to, amount, _)| json!({ "from": from, "to": to, "amount": amount }))
                .collect();
            let (status, body) = exchange(
                client
                    .post(format!("{base}/transfers/batch"))
                    .json(&json!({ "transfers": transfers })),
                &what,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{what}: {body}");
            let batch: BatchResponse = parse(&body, &what);
            assert_eq!(batch.results.len(), len, "{what}: {body}");
            assert_eq!(batch.committed + batch.failed, len, "{what}: {body}");
            let mut committed = 0;
            for (index, (result, &(from, to, amount, unknown))) in
                batch.results.iter().zip(&items).enumerate()
            {
                match result {
                    BatchItemResult::Committed { index: i, transfer } => {
                        assert_eq!(*i, index, "{what}: {body}");
                        assert!(!unknown, "{what}: item {index} committed: {body}");
                        assert_eq!(
                            (transfer.from, transfer.to, transfer.amount),
                            (from, to, amount),
                            "{what}: {body}"
                        );
                        committed += 1;
                        tally.committed.push(transfer.clone());
                    }
                    BatchItemResult::Failed { index: i, error } => {
                        assert_eq!(*i, index, "{what}: {body}");
                        let code = if unknown {
                            "unknown_account"
                        } else {
                            "insufficient_funds"
                        };
                        assert_eq!(error.code, code, "{what}: item {index}: {body}");
                        tally.items_failed += 1;
                    }
                }
            }
            assert_eq!(batch.committed, committed, "{what}: {body}");
            (status, body)
        } else if roll < 75 {
            let id = ids[rng.usize(..ids.len())];
            let (status, body) = exchange(client.get(format!("{base}/accounts/{id}")), &what).await;
            assert_eq!(status, StatusCode::OK, "{what}: {body}");
            let account: Account = parse(&body, &what);
            assert_eq!((account.id, account.opening_balance), (id, OPENING));
            assert!(account.balance >= 0, "{what}: {body}");
            (status, body)
        } else {
            invalid_request(&client, &base, &mut rng, &ids, &what).await
        };
        assert!(!status.is_server_error(), "{what}: {status} {body}");
        *tally.statuses.entry(status.as_u16()).or_default() += 1;
    }
    tally
}

/// A request the service must refuse with a 4xx and a JSON error, writing nothing.
async fn invalid_request(
    client: &Client,
    base: &str,
    rng: &mut fastrand::Rng,
    ids: &[i64],
    what: &str,
) -> (StatusCode, Value) {
    let (a, b) = (ids[0], ids[1]);
    let transfers = format!("{base}/transfers");
    let batch = format!("{base}/transfers/batch");
    let (request, want, code) = match rng.u32(0..12) {
        0 => (
            client
                .post(&transfers)
                .header("content-type", "application/json")
                .body(r#"{"from": 1, "to": 2, "amount": "#),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        1 => (
            client
                .post(&transfers)
                .json(&json!({ "from": a, "to": b, "amount": -rng.i64(0..1000) })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        2 => (
            client
                .post(&transfers)
                .json(&json!({ "from": a, "to": a, "amount": 5 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        3 => {
            // The credit to `b` is written before the unknown sender is found.
            let (from, to) = if rng.bool() {
                (UNKNOWN, b)
            } else {
                (a, UNKNOWN)
            };
            (
                client
                    .post(&transfers)
                    .json(&json!({ "from": from, "to": to, "amount": 5 })),
                StatusCode::NOT_FOUND,
                "unknown_account",
            )
        }
        4 => {
            let items: Vec<Value> = (0..=MAX_BATCH)
                .map(|_| json!({ "from": a, "to": b, "amount": 1 }))
                .collect();
            (
                client.post(&batch).json(&json!({ "transfers": items })),
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
            )
        }
        5 => (
            client.post(&batch).json(&json!({ "transfers": [] })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        6 => (
            // Valid items around one bad one: the whole batch is refused.
            client.post(&batch).json(&json!({ "transfers": [
                { "from": a, "to": b, "amount": 1 },
                { "from": b, "to": a, "amount": 0 },
                { "from": b, "to": a, "amount": 1 },
            ]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        7 => (
            client.get(format!("{base}/accounts/{UNKNOWN}")),
            StatusCode::NOT_FOUND,
            "unknown_account",
        ),
        8 => (
            client
                .post(&transfers)
                .body(r#"{"from": 1, "to": 2, "amount": 3}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        9 => (
            client
                .post(&transfers)
                .json(&json!({ "from": "alice", "to": b, "amount": 3 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        10 => (
            client
                .post(&transfers)
                .json(&json!({ "from": a, "to": b, "amount": MAX_AMOUNT + 1 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        _ => (
            client.get(format!("{base}/accounts/not-a-number")),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
    };
    let (status, body) = exchange(request, what).await;
    expect_error(status, &body, want, code, what);
    (status, body)
}

/// Opens the file with a connection of its own, outside the library.
fn check_file(path: &Path) -> (String, Vec<Transfer>, i64) {
    let conn = rusqlite::Connection::open(path).expect("open the file");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let mut stmt = conn
        .prepare("SELECT id, from_id, to_id, amount FROM transfer ORDER BY id")
        .expect("prepare");
    let transfers = stmt
        .query_map([], |r| {
            Ok(Transfer {
                id: r.get(0)?,
                from: r.get(1)?,
                to: r.get(2)?,
                amount: r.get(3)?,
            })
        })
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    let total: i64 = conn
        .query_row("SELECT sum(balance) FROM account", [], |r| r.get(0))
        .expect("total");
    (integrity, transfers, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_load_keeps_the_money_and_answers_every_request() {
    concurrent_load(Backend::Sqlite).await;
}

/// [`concurrent_load`] on the PostgreSQL server `DATABASE_URL` names, in a schema of its own
/// (`bank_test_<pid>_<time>`), which is dropped at the end however the test ends.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_load_keeps_the_money_and_answers_every_request_on_postgres() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "skipped: DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .subsec_nanos();
    let schema = format!("bank_test_{}_{nanos}", std::process::id());
    let backend = Backend::Postgres {
        url: url.clone(),
        schema: schema.clone(),
    };
    // In a task of its own, so that a failure still lets the schema be dropped below.
    let outcome = tokio::spawn(concurrent_load(backend)).await;
    let db = Database::postgres(&url)
        .pool_size(1)
        .connect()
        .await
        .expect("connect");
    db.execute_batch(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .expect("drop the test's schema");
    db.close().await.expect("close");
    if let Err(failed) = outcome {
        std::panic::resume_unwind(failed.into_panic());
    }
}

/// Without the feature there is no PostgreSQL run; say so rather than pass in silence.
#[cfg(not(feature = "postgres"))]
#[test]
fn concurrent_load_keeps_the_money_and_answers_every_request_on_postgres() {
    eprintln!(
        "skipped: built without `--features postgres` (DATABASE_URL is {})",
        match std::env::var("DATABASE_URL") {
            Ok(_) => "set, and unused",
            Err(_) => "not set",
        }
    );
}

/// 1,280 requests from 32 clients, every response checked, then the invariant, every
/// balance, and the stored transfers against what the clients were told.
async fn concurrent_load(backend: Backend) {
    let server = Server::start_on(&backend).await;
    let engine = match backend {
        Backend::Sqlite => "SQLite",
        #[cfg(feature = "postgres")]
        Backend::Postgres { .. } => "PostgreSQL",
    };
    let base = server.base.clone();
    let setup = client();
    let mut ids = Vec::new();
    for i in 0..ACCOUNTS {
        ids.push(
            open_account(&setup, &base, &format!("owner{i}"), OPENING)
                .await
                .id,
        );
    }

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|seed| tokio::spawn(run_client(seed as u64, base.clone(), ids.clone())))
        .collect();
    let mut tally = Tally::default();
    for client in clients {
        tally.merge(client.await.expect("a client panicked"));
    }
    let elapsed = started.elapsed();
    let retries = server.db.stats().retries;

    let requests: usize = tally.statuses.values().sum();
    let count = |range: std::ops::Range<u16>| -> usize {
        tally
            .statuses
            .iter()
            .filter(|(s, _)| range.contains(s))
            .map(|(_, n)| n)
            .sum()
    };
    let (ok, client_errors, server_errors) = (count(200..300), count(400..500), count(500..600));
    println!(
        "bank load on {engine}: {requests} requests from {CLIENTS} concurrent clients in {:.0} ms \
         ({:.0} requests/s): {ok} 2xx, {client_errors} 4xx, {server_errors} 5xx; \
         {} transfers committed, {} batch items rolled back alone, {retries} transactions \
         re-run after a conflict; by status {:?}",
        elapsed.as_secs_f64() * 1e3,
        requests as f64 / elapsed.as_secs_f64(),
        tally.committed.len(),
        tally.items_failed,
        tally.statuses,
    );
    assert_eq!(requests, CLIENTS * REQUESTS_PER_CLIENT);
    assert_eq!(server_errors, 0);
    assert!(client_errors > 0 && tally.items_failed > 0 && !tally.committed.is_empty());

    // The invariant, as the service reports it.
    let (status, body) = exchange(setup.get(format!("{base}/audit")), "audit").await;
    assert_eq!(status, StatusCode::OK);
    let audit: Audit = parse(&body, "audit");
    assert_eq!(
        audit,
        Audit {
            accounts: ACCOUNTS as i64,
            transfers: tally.committed.len() as i64,
            total_opening: ACCOUNTS as i64 * OPENING,
            total_balance: ACCOUNTS as i64 * OPENING,
            mismatched_accounts: 0,
            conserved: true,
        }
    );

    // Every balance is exactly what the acknowledged transfers make it.
    let mut expected: BTreeMap<i64, i64> = ids.iter().map(|&id| (id, OPENING)).collect();
    for t in &tally.committed {
        *expected.get_mut(&t.from).expect("known sender") -= t.amount;
        *expected.get_mut(&t.to).expect("known recipient") += t.amount;
    }
    for (&id, &balance) in &expected {
        let (status, body) =
            exchange(setup.get(format!("{base}/accounts/{id}")), "final balance").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            parse::<Account>(&body, "final balance").balance,
            balance,
            "account {id}"
        );
    }
    let (_, body) = exchange(setup.get(format!("{base}/metrics")), "metrics").await;
    let metrics: MetricsView = parse(&body, "metrics");
    assert_eq!(metrics.committed_transfers, tally.committed.len() as u64);
    // Once the clients are done, no transaction is open, and the counters saw their commits.
    let (status, body) = exchange(
        setup.get(format!("{base}/debug/transactions")),
        "debug transactions",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let debug: bank::DebugView = parse(&body, "debug transactions");
    assert_eq!(debug.open_transactions, 0, "{debug:?}");
    assert_eq!(debug.activity, ["no open transactions"]);
    assert!(
        debug.stats[0].contains("committed"),
        "the counters are served: {debug:?}"
    );

    // After shutdown, the database holds exactly the acknowledged transfers (and a SQLite
    // file is intact).
    let (transfers, total) = server.stop_and_read().await;
    let mut acknowledged = tally.committed;
    acknowledged.sort_by_key(|t| t.id);
    assert_eq!(transfers, acknowledged);
    assert_eq!(total, ACCOUNTS as i64 * OPENING);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_lets_requests_in_flight_commit() {
    const IN_FLIGHT: usize = 8;
    let mut server = Server::start().await;
    let base = server.base.clone();
    let setup = client();
    let a = open_account(&setup, &base, "a", OPENING).await.id;
    let b = open_account(&setup, &base, "b", OPENING).await.id;

    let (release, holder, requests) = requests_in_flight(&server, a, b, IN_FLIGHT).await;

    server.signal_shutdown();
    // Shutdown has begun once the listener is closed: new connections are refused.
    while TcpStream::connect(server.addr).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        !server.handle.is_finished(),
        "serve waits for the requests in flight"
    );

    release.send(()).expect("the holder waits");
    holder.await.expect("holder task").expect("holder commits");
    let mut moved = 0;
    for request in requests {
        let (status, body) = request.await.expect("request task").expect("a response");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        moved += parse::<Transfer>(&body, "transfer in flight").amount;
    }
    let (path, _dir) = server.stop().await;
    let (integrity, transfers, total) = check_file(&path);
    assert_eq!(integrity, "ok");
    assert_eq!(transfers.len(), IN_FLIGHT);
    assert_eq!(transfers.iter().map(|t| t.amount).sum::<i64>(), moved);
    assert_eq!(total, 2 * OPENING);
}

/// Holds the database's write lock in a transaction of our own, and sends `n` transfers
/// from `a` to `b` that are therefore certainly in flight — in their handlers, waiting to
/// begin — when this returns. Sending on the returned channel lets the holder commit.
async fn requests_in_flight(
    server: &Server,
    a: i64,
    b: i64,
    n: usize,
) -> (
    oneshot::Sender<()>,
    JoinHandle<Result<(), transactional::Error>>,
    Vec<JoinHandle<Result<(StatusCode, Value), reqwest::Error>>>,
) {
    let (began, began_rx) = oneshot::channel();
    let (release, release_rx) = oneshot::channel::<()>();
    let holder = tokio::spawn(
        transactional::Atomic::new()
            .db(server.db.clone())
            .run(async move {
                let _ = began.send(());
                let _ = release_rx.await;
                Ok::<_, transactional::Error>(())
            }),
    );
    began_rx.await.expect("the holder began");
    let requests: Vec<_> = (0..n)
        .map(|i| {
            let request = client()
                .post(format!("{}/transfers", server.base))
                .json(&json!({ "from": a, "to": b, "amount": 10 + i as i64 }));
            tokio::spawn(async move {
                let response = request.send().await?;
                let status = response.status();
                Ok((status, response.json::<Value>().await?))
            })
        })
        .collect();
    let metrics = client();
    loop {
        let (_, body) = exchange(metrics.get(format!("{}/metrics", server.base)), "metrics").await;
        // The transfers, and this request.
        if parse::<MetricsView>(&body, "metrics").in_flight == n as u64 + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (release, holder, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_still_running_after_the_grace_period_are_dropped_and_write_nothing() {
    const IN_FLIGHT: usize = 8;
    let mut server = Server::start_with_grace(Duration::ZERO).await;
    let setup = client();
    let a = open_account(&setup, &server.base, "a", OPENING).await.id;
    let b = open_account(&setup, &server.base, "b", OPENING).await.id;
    let (release, holder, requests) = requests_in_flight(&server, a, b, IN_FLIGHT).await;

    server.signal_shutdown();
    // `serve` returns once the requests it gave up on are gone (their tasks aborted); they
    // wait for the write lock we hold, so none of them can have finished.
    let db = server.db.clone();
    let (path, _dir) = server.stop().await;
    for request in requests {
        let outcome = request.await.expect("request task");
        assert!(
            outcome.is_err(),
            "a dropped request gets no response: {outcome:?}"
        );
    }
    release.send(()).expect("the holder waits");
    holder.await.expect("holder task").expect("holder commits");

    // Nothing of the dropped requests was written, and the database is still usable.
    let (integrity, transfers, total) = check_file(&path);
    assert_eq!(integrity, "ok");
    assert!(transfers.is_empty(), "{transfers:?}");
    assert_eq!(total, 2 * OPENING);
    transactional::Atomic::new()
        .db(db)
        .run(async {
            transactional::current()?
                .execute("UPDATE account SET owner = 'after' WHERE id = ?1", (a,))
                .await
        })
        .await
        .expect("a new transaction after the dropped ones");
}

// ---- Hostile clients and the limits of money -------------------------------------------

/// Inserts an account directly in the file, past the API's `MAX_AMOUNT`, as years of
/// deposits could have made it.
async fn seed_account(db: &Database, owner: &str, balance: i64) -> i64 {
    // The server may not have created the schema yet; doing it twice is harmless.
    bank::migrate(db).await.expect("the schema");
    let owner = owner.to_owned();
    transactional::Atomic::new()
        .db(db.clone())
        .run(async move {
            transactional::current()?
                .query_row(
                    "INSERT INTO account(owner, opening_balance, balance) VALUES (?1, ?2, ?2)
                     RETURNING id",
                    (owner, balance),
                )
                .await?
                .get::<i64>(0)
        })
        .await
        .expect("seed an account")
}

async fn transfer(
    client: &Client,
    base: &str,
    from: i64,
    to: i64,
    amount: i64,
) -> (StatusCode, Value) {
    exchange(
        client
            .post(format!("{base}/transfers"))
            .json(&json!({ "from": from, "to": to, "amount": amount })),
        "transfer",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_stops_short_of_i64_overflow_and_the_audit_keeps_answering() {
    let server = Server::start().await;
    let (base, http) = (server.base.clone(), client());
    let rich = seed_account(&server.db, "rich", bank::MAX_TOTAL_MONEY - 1_000).await;
    // Brings the bank's money to exactly the most it may hold.
    let poor = open_account(&http, &base, "poor", 1_000).await.id;
    let empty = open_account(&http, &base, "empty", 0).await.id;

    // One more cent of opening balance would take the total past i64::MAX.
    let (status, body) = exchange(
        http.post(format!("{base}/accounts"))
            .json(&json!({ "owner": "more", "opening_balance": 1 })),
        "open past the money limit",
    )
    .await;
    expect_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "money_limit",
        "open past the limit",
    );

    // Moving every cent into one account reaches i64::MAX exactly, and is fine.
    let (status, body) = transfer(&http, &base, poor, rich, 1_000).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A credit past i64::MAX is refused before anything is written, with a 4xx: here the
    // sender has nothing, so without the bound the credit would overflow before the debit
    // fails.
    let (status, body) = transfer(&http, &base, empty, rich, 1).await;
    expect_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "balance_limit",
        "credit past i64::MAX",
    );
    let (status, body) = transfer(&http, &base, rich, poor, 7).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // In a batch it fails that item alone. (Item 0's credit is refused whatever item 1 has
    // done: item 1 does not touch `rich`.)
    let (status, body) = exchange(
        http.post(format!("{base}/transfers/batch"))
            .json(&json!({ "transfers": [
                { "from": empty, "to": rich, "amount": 10 },
                { "from": poor, "to": empty, "amount": 7 },
            ]})),
        "batch at the limit",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let batch: BatchResponse = parse(&body, "batch at the limit");
    assert_eq!((batch.committed, batch.failed), (1, 1), "{body}");
    assert!(
        matches!(&batch.results[0], BatchItemResult::Failed { error, .. } if error.code == "balance_limit"),
        "{body}"
    );

    // Every balance is still an integer the API can read, and no money was made.
    let (status, body) = exchange(http.get(format!("{base}/accounts/{rich}")), "rich").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        parse::<Account>(&body, "rich").balance,
        bank::MAX_BALANCE - 7
    );
    let (status, body) = exchange(http.get(format!("{base}/audit")), "audit").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let audit: Audit = parse(&body, "audit");
    assert!(audit.conserved, "{body}");
    assert_eq!(audit.total_balance, bank::MAX_TOTAL_MONEY, "{body}");
    server.stop().await;
}

/// Money going back and forth between two accounts: its turnover passes i64::MAX long
/// before any balance does, and the audit must still add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_adds_up_a_turnover_past_i64_max() {
    let server = Server::start().await;
    let http = client();
    let a = open_account(&http, &server.base, "a", OPENING).await.id;
    let b = open_account(&http, &server.base, "b", OPENING).await.id;
    // Millions of transfers of MAX_AMOUNT would take hours through the API; the same sums,
    // seeded in twenty rows, are what the audit reads.
    bank::migrate(&server.db).await.expect("the schema");
    transactional::Atomic::new()
        .db(server.db.clone())
        .run(async move {
            let tx = transactional::current()?;
            for (from, to) in [(a, b), (b, a)].repeat(10) {
                tx.execute(
                    "INSERT INTO transfer(from_id, to_id, amount) VALUES (?1, ?2, ?3)",
                    (from, to, i64::MAX / 4),
                )
                .await?;
            }
            Ok::<_, transactional::Error>(())
        })
        .await
        .expect("seed the transfers");
    let (status, body) = exchange(http.get(format!("{}/audit", server.base)), "audit").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let audit: Audit = parse(&body, "audit");
    assert_eq!(
        (audit.transfers, audit.mismatched_accounts),
        (20, 0),
        "{body}"
    );
    assert!(audit.conserved, "{body}");
    // And a real mismatch is still seen.
    transactional::Atomic::new()
        .db(server.db.clone())
        .run(async move {
            transactional::current()?
                .execute(
                    "UPDATE account SET balance = balance + 1 WHERE id = ?1",
                    (a,),
                )
                .await
        })
        .await
        .expect("break the books");
    let (_, body) = exchange(http.get(format!("{}/audit", server.base)), "audit").await;
    let audit: Audit = parse(&body, "audit");
    assert_eq!(audit.mismatched_accounts, 1, "{body}");
    assert!(!audit.conserved, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_file_whose_money_already_overflowed_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bank.db");
    {
        // The schema of the versions before the integer check, with what an overflow left.
        let conn = rusqlite::Connection::open(&path).expect("create the file");
        conn.execute_batch(
            "CREATE TABLE account (
                id              INTEGER PRIMARY KEY,
                owner           TEXT    NOT NULL,
                opening_balance INTEGER NOT NULL CHECK (opening_balance >= 0),
                balance         INTEGER NOT NULL CHECK (balance >= 0)
            );
            INSERT INTO account VALUES (1, 'a', 5, 5);
            INSERT INTO account VALUES (2, 'b', 9223372036854775807, 9223372036854775807 + 10);",
        )
        .expect("the old file");
    }
    let db = Database::open(&path).await.expect("open the database");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        bank::serve(listener, db, std::future::pending()),
    )
    .await
    .expect("serve refuses at once");
    let err = outcome.expect_err("serve refuses the file");
    assert!(
        err.to_string().contains("not an integer (ids 2)"),
        "the error names the broken account: {err}"
    );
}

/// Limits short enough for a test: the body and head deadlines in hundreds of milliseconds.
fn short_limits() -> bank::Limits {
    bank::Limits {
        body_timeout: Duration::from_millis(300),
        header_timeout: Duration::from_secs(5),
        ..bank::Limits::default()
    }
}

/// Everything the server sends on `stream` until it closes the connection; fails when it
/// has not closed within `within`.
async fn read_to_close(stream: &mut TcpStream, within: Duration, what: &str) -> String {
    let mut received = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut received)).await {
        Ok(Ok(_)) => {}
        // A reset after the response still counts as closed; what came before is kept.
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(err)) => panic!("{what}: {err}"),
        Err(_) => panic!(
            "{what}: the server neither answered and closed within {within:?}; got {:?}",
            String::from_utf8_lossy(&received)
        ),
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Splits a raw response into its status, lower-cased head, and its body as JSON.
fn raw_response(raw: &str, what: &str) -> (u16, String, Value) {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{what}: not an HTTP response: {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no status: {raw:?}"));
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {raw:?}"));
    (status, head.to_ascii_lowercase(), body)
}

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.addr).await.expect("connect")
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
    stream.flush().await.expect("flush");
}

const POST_HEAD: &str =
    "POST /transfers HTTP/1.1\r\nhost: bank\r\ncontent-type: application/json\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_or_trickles_gets_408_and_frees_its_slot() {
    let server = Server::start_with(short_limits()).await;
    let http = client();

    // Headers, then half a body, then nothing.
    let mut stalled = connect(&server).await;
    send(
        &mut stalled,
        format!("{POST_HEAD}content-length: 100\r\n\r\n{{\"from\"").as_bytes(),
    )
    .await;
    let started = Instant::now();
    let raw = read_to_close(&mut stalled, Duration::from_secs(5), "stalled body").await;
    let (status, head, body) = raw_response(&raw, "stalled body");
    assert_eq!(status, 408, "{raw}");
    assert!(head.contains("connection: close"), "{raw}");
    expect_error(
        StatusCode::REQUEST_TIMEOUT,
        &body,
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        "stalled",
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A byte every 50 ms: each read is quick, but the body as a whole is late.
    let mut trickle = connect(&server).await;
    send(
        &mut trickle,
        format!("{POST_HEAD}content-length: 100\r\n\r\n").as_bytes(),
    )
    .await;
    let started = Instant::now();
    let writer = {
        let (mut reader, mut writer) = trickle.into_split();
        let writing = tokio::spawn(async move {
            for _ in 0..100 {
                if writer.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mut received = Vec::new();
        tokio::time::timeout(Duration::from_secs(4), reader.read_to_end(&mut received))
            .await
            .expect("the trickling request is cut off before its 5 s of bytes")
            .ok();
        let raw = String::from_utf8_lossy(&received).into_owned();
        let (status, _, body) = raw_response(&raw, "trickled body");
        assert_eq!(status, 408, "{raw}");
        expect_error(
            StatusCode::REQUEST_TIMEOUT,
            &body,
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "trickle",
        );
        writing
    };
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    writer.abort();

    // Neither holds a slot any more.
    let (_, body) = exchange(http.get(format!("{}/metrics", server.base)), "metrics").await;
    assert_eq!(
        parse::<MetricsView>(&body, "metrics").in_flight,
        1,
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_content_length_is_refused_before_the_body_and_the_connection_closed() {
    // A body deadline far past the answer expected, so that only refusing before reading
    // can answer in time.
    let server = Server::start_with(bank::Limits {
        body_timeout: Duration::from_secs(30),
        ..short_limits()
    })
    .await;
    for length in [10_000_000_000_u64, bank::MAX_BODY_BYTES as u64 + 1] {
        let what = format!("content-length {length}");
        let mut stream = connect(&server).await;
        // No body at all: the answer must not wait for it (nor for the body deadline).
        send(
            &mut stream,
            format!("{POST_HEAD}content-length: {length}\r\n\r\n").as_bytes(),
        )
        .await;
        let started = Instant::now();
        let raw = read_to_close(&mut stream, Duration::from_secs(5), &what).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{what}: {:?}",
            started.elapsed()
        );
        let (status, head, body) = raw_response(&raw, &what);
        assert_eq!(status, 413, "{what}: {raw}");
        // The client is told the connection is done, so it does not send its next request
        // into a closed socket.
        assert!(head.contains("connection: close"), "{what}: {raw}");
        expect_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &body,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &what,
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_past_the_limit_gets_413_with_connection_close() {
    let server = Server::start_with(short_limits()).await;
    let mut stream = connect(&server).await;
    // One valid request first: the connection is a keep-alive one in use.
    let valid = "GET /metrics HTTP/1.1\r\nhost: bank\r\n\r\n";
    send(&mut stream, valid.as_bytes()).await;
    {
        let mut buf = vec![0; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    // A chunk announced larger than the limit, sent just past it, and no more: the server
    // has read all we sent when it answers.
    let over = bank::MAX_BODY_BYTES + 1;
    let mut request = format!(
        "{POST_HEAD}transfer-encoding: chunked\r\n\r\n{:x}\r\n",
        over + 1000
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(b' ', over));
    send(&mut stream, &request).await;
    let raw = read_to_close(
        &mut stream,
        Duration::from_secs(5),
        "chunked past the limit",
    )
    .await;
    let (status, head, body) = raw_response(&raw, "chunked past the limit");
    assert_eq!(status, 413, "{raw}");
    assert!(head.contains("connection: close"), "{raw}");
    expect_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "chunked",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let server = Server::start_with(bank::Limits {
        max_connections: 2,
        ..short_limits()
    })
    .await;
    // Two connections that say nothing hold both places.
    let first = connect(&server).await;
    let _second = connect(&server).await;
    // The third is queued by the kernel; its request is not read while the others live.
    let mut third = connect(&server).await;
    send(
        &mut third,
        b"GET /metrics HTTP/1.1\r\nhost: bank\r\nconnection: close\r\n\r\n",
    )
    .await;
    {
        let mut buf = [0; 64];
        let early = tokio::time::timeout(Duration::from_millis(400), third.read(&mut buf)).await;
        assert!(
            early.is_err(),
            "a third connection was served past the cap of 2: {early:?}"
        );
    }
    drop(first);
    let raw = read_to_close(&mut third, Duration::from_secs(5), "third connection").await;
    let (status, _, _) = raw_response(&raw, "third connection");
    assert_eq!(status, 200, "{raw}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drops_at_once_the_requests_whose_handler_has_not_begun() {
    // The default grace of 10 s, and deadlines longer than the test: only shutdown can end
    // these requests.
    let mut server = Server::start_with(bank::Limits {
        body_timeout: Duration::from_secs(60),
        header_timeout: Duration::from_secs(60),
        ..bank::Limits::default()
    })
    .await;
    let http = client();
    // check_file needs an account to sum.
    open_account(&http, &server.base, "a", OPENING).await;
    let mut half_head = connect(&server).await;
    send(&mut half_head, b"POST /transfers HTTP/1.1\r\nhost: ba").await;
    // A keep-alive connection that has had its answer, then sends half of its next head.
    let mut reused = connect(&server).await;
    send(&mut reused, b"GET /metrics HTTP/1.1\r\nhost: bank\r\n\r\n").await;
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), reused.read(&mut buf))
        .await
        .expect("an answer")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    send(&mut reused, b"GET /metr").await;
    let mut slow_body = connect(&server).await;
    send(
        &mut slow_body,
        format!("{POST_HEAD}content-length: 100\r\n\r\n{{\"fr").as_bytes(),
    )
    .await;
    // The slow body's request has reached the service (and waits for its body).
    loop {
        let (_, body) = exchange(http.get(format!("{}/metrics", server.base)), "metrics").await;
        if parse::<MetricsView>(&body, "metrics").in_flight == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    server.signal_shutdown();
    let (path, _dir) = tokio::time::timeout(Duration::from_secs(3), server.stop())
        .await
        .expect("shutdown does not wait for requests that never began");
    assert!(started.elapsed() < Duration::from_secs(3));
    for (stream, what) in [
        (&mut half_head, "half a head"),
        (&mut reused, "half of a second head"),
        (&mut slow_body, "a slow body"),
    ] {
        let raw = read_to_close(stream, Duration::from_secs(1), what).await;
        assert_eq!(raw, "", "{what}: dropped without an answer");
    }
    let (integrity, transfers, _) = check_file(&path);
    assert_eq!((integrity.as_str(), transfers.len()), ("ok", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_encoded_body_is_refused_with_415() {
    let server = Server::start().await;
    let http = client();
    let a = open_account(&http, &server.base, "a", OPENING).await.id;
    let b = open_account(&http, &server.base, "b", OPENING).await.id;
    let json = json!({ "from": a, "to": b, "amount": 5 }).to_string();
    for encoding in ["gzip", "br", "x-anything"] {
        let (status, body) = exchange(
            http.post(format!("{}/transfers", server.base))
                .header("content-type", "application/json")
                .header("content-encoding", encoding)
                .body(json.clone()),
            encoding,
        )
        .await;
        expect_error(
            status,
            &body,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_encoding",
            encoding,
        );
    }
    // `identity` is no encoding at all.
    let (status, body) = exchange(
        http.post(format!("{}/transfers", server.base))
            .header("content-type", "application/json")
            .header("content-encoding", "identity")
            .body(json),
        "identity",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = exchange(http.get(format!("{}/audit", server.base)), "audit").await;
    assert_eq!(parse::<Audit>(&body, "audit").transfers, 1, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_or_idle_connection_is_closed_after_the_header_timeout() {
    let server = Server::start_with(bank::Limits {
        header_timeout: Duration::from_millis(300),
        ..short_limits()
    })
    .await;
    // Connects and says nothing.
    let mut silent = connect(&server).await;
    // Had its answer, then stays idle on keep-alive: the deadline for the next head runs.
    let mut idle = connect(&server).await;
    send(&mut idle, b"GET /metrics HTTP/1.1\r\nhost: bank\r\n\r\n").await;
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("an answer")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let started = Instant::now();
    for (stream, what) in [(&mut silent, "silent"), (&mut idle, "idle")] {
        let raw = read_to_close(stream, Duration::from_secs(5), what).await;
        assert_eq!(raw, "", "{what}: closed without an answer");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}
