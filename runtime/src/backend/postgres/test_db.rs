//! The PostgreSQL fixture of the runtime's own tests: a schema of its own per test, on the
//! server `DATABASE_URL` names, so concurrent runs never see each other's tables.
//!
//! Unset `DATABASE_URL`: [`TestDb::new`] returns `None` and the test returns early (a plain
//! `cargo test` needs no server). Set but unreachable: it panics, so the test FAILS — a CI
//! whose database did not start must not pass by skipping. The integration-test crate
//! includes this same file (`tests/src/postgres.rs`), which is why its items are `pub`.
#![allow(unreachable_pub)]

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestDb {
    url: String,
    schema: String,
    /// Connects with `search_path` set to the test's schema.
    config: Config,
}

impl TestDb {
    /// A fresh schema named after `test` on `DATABASE_URL`'s server; `None` when unset.
    pub async fn new(test: &str) -> Option<Self> {
        let url = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!("DATABASE_URL is not set: {test} does not run against PostgreSQL");
                return None;
            }
        };
        let mut config: Config = url
            .parse()
            .unwrap_or_else(|e| panic!("DATABASE_URL={url} is not a PostgreSQL URL: {e}"));
        // Only the fixture's own connection has tokio-postgres's connect timeout, which runs
        // on tokio's timer: the library bounds its connects itself, and is tested on
        // runtimes without the time driver.
        let mut admin_config = config.clone();
        admin_config.connect_timeout(CONNECT_TIMEOUT);
        let schema = schema_name(test);
        let admin = connect_or_panic(&admin_config, &url).await;
        admin
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
            .await
            .unwrap_or_else(|e| panic!("creating schema {schema} on {url}: {e}"));
        config.options(format!("-c search_path={schema}"));
        // Names the test's sessions, so that dropping the fixture can end those a test left.
        config.application_name(&schema);
        Some(Self {
            url,
            schema,
            config,
        })
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Connection settings whose sessions use this test's schema.
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// A new connection (its own session) in this test's schema.
    pub async fn connect(&self) -> Client {
        connect_or_panic(&self.config, &self.url).await
    }
}

impl Drop for TestDb {
    /// Ends the test's sessions and drops the schema, from a thread of its own (Drop cannot
    /// await, and the test's runtime may be the current thread); a failure leaves a warning.
    fn drop(&mut self) {
        let config = self.config.clone();
        let schema = self.schema.clone();
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test schema");
            rt.block_on(async {
                let (client, conn) = config.connect(NoTls).await?;
                tokio::spawn(conn);
                // Clients the test dropped a moment ago may not have closed yet (their
                // connection tasks need the test's runtime, which this drop is blocking), and
                // their transactions may hold locks on the schema: end them first.
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&schema],
                    )
                    .await?;
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '5s'; DROP SCHEMA \"{schema}\" CASCADE"
                    ))
                    .await
            })
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            eprintln!(
                "warning: test schema {} was not dropped: {outcome:?}",
                self.schema
            );
        }
    }
}

async fn connect_or_panic(config: &Config, url: &str) -> Client {
    match config.connect(NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            client
        }
        Err(e) => panic!(
            "DATABASE_URL={url} is set but PostgreSQL cannot be reached: {e}{} \
             (unset DATABASE_URL to run without PostgreSQL)",
            std::error::Error::source(&e).map_or(String::new(), |s| format!(": {s}"))
        ),
    }
}

/// `t_<test>_<8 hex>`, at most 63 bytes (PostgreSQL's identifier limit), lowercase ASCII.
fn schema_name(test: &str) -> String {
    let clean: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(50)
        .collect();
    format!("t_{clean}_{:08x}", fastrand::u32(..))
}
