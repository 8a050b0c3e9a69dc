//! What the bank logs at shutdown, in a test binary of its own: it installs the process's
//! global tracing subscriber to read the log, which no other test must share.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use transactional::Database;
use transactional_examples::bank;

/// The log, as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Shutdown with one connection that has sent half a request head and one that is sending a
/// body its handler waits for: neither request has begun, so shutdown drops them at once,
/// without waiting out the grace period or saying that anything rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_requests_not_begun_claims_no_rollback() {
    let log = Capture::default();
    let writer = log.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("the only subscriber of this binary");

    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open(dir.path().join("bank.db"))
        .await
        .expect("open the database");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = oneshot::channel::<()>();
    let limits = bank::Limits {
        // Long enough that waiting it out would show in the log, short enough to keep the
        // test quick if it does.
        grace: Duration::from_millis(500),
        header_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        ..bank::Limits::default()
    };
    let server = tokio::spawn(bank::serve_with(
        listener,
        db,
        async {
            let _ = stopped.await;
        },
        limits,
    ));

    let mut half_head = TcpStream::connect(addr).await.expect("connect");
    half_head
        .write_all(b"POST /transfers HTTP/1.1\r\nhost: ba")
        .await
        .expect("write");
    let mut slow_body = TcpStream::connect(addr).await.expect("connect");
    slow_body
        .write_all(
            b"POST /transfers HTTP/1.1\r\nhost: bank\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"fr",
        )
        .await
        .expect("write");
    // The slow body's request has reached the service: the log has its span.
    let text = || String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Both requests counted in flight: asked again (on a third connection each time) until
    // the server has read both heads — on a loaded machine that can take a moment.
    loop {
        let mut probe = TcpStream::connect(addr).await.expect("connect");
        probe
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: bank\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        tokio::time::timeout_at(deadline, probe.read_to_string(&mut answer))
            .await
            .expect("the probe is answered")
            .expect("read");
        if answer.contains("\"in_flight\":2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both requests never counted in flight: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stop.send(()).expect("the server waits for the signal");
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("serve returns without waiting out the grace period")
        .expect("the server task")
        .expect("serve returns Ok");
    let text = text();
    assert!(
        !text.contains("grace period over") && !text.contains("roll back"),
        "nothing had begun, so nothing rolls back: {text}"
    );
    assert_eq!(
        text.matches("dropping a connection whose request had not begun")
            .count(),
        2,
        "{text}"
    );
}
