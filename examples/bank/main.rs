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
//! `--db postgres://user@host/db` (built with `--features postgres`) serves the same bank
//! from PostgreSQL, through a pool of `--pool-size` connections (16), in a schema of its own:
//! `bank_<pid>` or `--schema NAME`, created at start and dropped at shutdown unless
//! `--keep-schema` (a schema that existed already is used and kept), so that runs sharing a
//! server never meet:
//!
//! ```text
//! cargo run --release --features postgres --example bank -- --db postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Logs go to stderr; `RUST_LOG` sets what is shown (default `info`; try
//! `RUST_LOG=info,transactional=debug` for a span per transaction and savepoint).
//! Ctrl-C (or SIGTERM) shuts down gracefully.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// SQLite file (created if missing; its data is kept between runs), or a PostgreSQL URL
    /// (`postgres://..` or `postgresql://..`; needs `--features postgres`). Without it, a
    /// new SQLite database in a temporary folder, deleted when the server stops.
    #[arg(long)]
    db: Option<PathBuf>,
    /// PostgreSQL only: the schema of the bank's tables (default `bank_<pid>`), created if
    /// missing.
    #[arg(long)]
    schema: Option<String>,
    /// PostgreSQL only: keep the schema at shutdown instead of dropping it.
    #[arg(long)]
    keep_schema: bool,
    /// PostgreSQL only: connections in the pool, the transactions that run at once
    /// (default 16).
    #[arg(long)]
    pool_size: Option<usize>,
}

impl Args {
    /// `--db` when it is a PostgreSQL URL.
    fn postgres_url(&self) -> Option<&str> {
        self.db
            .as_deref()
            .and_then(Path::to_str)
            .filter(|db| bank::is_postgres_url(db))
    }
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
    if args.postgres_url().is_some() {
        return serve_postgres(&args).await;
    }
    if args.schema.is_some() || args.keep_schema || args.pool_size.is_some() {
        return Err(Usage(
            "`--schema`, `--keep-schema` and `--pool-size` are for a PostgreSQL `--db` \
             (postgres://..); this bank serves a SQLite file",
        )
        .into());
    }
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

/// The bank on the PostgreSQL server `--db` names, in its own schema, which is dropped at
/// shutdown (unless kept) however serving ended.
#[cfg(feature = "postgres")]
async fn serve_postgres(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let url = args.postgres_url().expect("checked by the caller");
    let schema = match &args.schema {
        Some(schema) => schema.clone(),
        None => format!("bank_{}", std::process::id()),
    };
    let pool_size = args.pool_size.unwrap_or(bank::POSTGRES_POOL_SIZE);
    let postgres = bank::PostgresBank::connect(url, &schema, pool_size).await?;
    let served = async {
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        tracing::info!(
            addr = %listener.local_addr()?,
            db = postgres.db().label(),
            schema,
            created = postgres.created(),
            pool_size,
            "bank listening"
        );
        bank::serve(listener, postgres.db().clone(), shutdown_signal()).await?;
        let stats = postgres.db().stats();
        // `retries`: transactions re-run after a serialization failure or a deadlock.
        tracing::info!(
            committed = stats.transactions_committed,
            retries = stats.retries,
            "served"
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    let closed = postgres.close(args.keep_schema).await;
    served?;
    closed?;
    Ok(())
}

/// Without the feature, a PostgreSQL URL is refused with what to do instead.
#[cfg(not(feature = "postgres"))]
async fn serve_postgres(_: &Args) -> Result<(), Box<dyn std::error::Error>> {
    Err(Usage(
        "`--db` names a PostgreSQL server, and this bank was built without PostgreSQL \
         support: build it with `--features postgres` \
         (cargo run --features postgres --example bank -- --db postgres://..)",
    )
    .into())
}

/// A command line the bank cannot serve, said as it is: `main`'s `Err` is printed with
/// `Debug`, which would quote and escape a plain string.
struct Usage(&'static str);

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Usage {}

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
