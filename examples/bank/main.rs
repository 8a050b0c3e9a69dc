//! A bank over HTTP whose handlers are `#[transactional]`; see `app.rs` for the API.
//!
//! ```text
//! cargo run --release --example bank -- --addr 127.0.0.1:3000
//! ```
//!
//! The README's "Examples" section has a session of `curl` commands against it, with their
//! answers (checked by `examples/tests/readme.rs`).
//!
//! Without `--db` the data lives in a new database in a temporary folder, deleted when the
//! server stops, so every run starts empty and gives the ids the README shows; `--db FILE`
//! keeps the data in `FILE` between runs.
//!
//! Logs go to stderr; `RUST_LOG` sets what is shown (default `info`; try
//! `RUST_LOG=info,transactional=debug` for a span per transaction and savepoint).
//! Ctrl-C (or SIGTERM) shuts down gracefully.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use transactional::Database;
use transactional_examples::bank;

/// Serves the bank example.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// SQLite file (created if missing; its data is kept between runs). Without it, a new
    /// database in a temporary folder, deleted when the server stops.
    #[arg(long)]
    db: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    // Kept until `main` returns: dropping it deletes the folder and the temporary database.
    let mut temporary = None;
    let path = match args.db {
        Some(path) => path,
        None => temporary
            .insert(tempfile::tempdir()?)
            .path()
            .join("bank.db"),
    };
    let db = Database::open(&path).await?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        db = %path.display(),
        temporary = temporary.is_some(),
        "bank listening"
    );
    bank::serve(listener, db, shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (what `docker stop` and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
