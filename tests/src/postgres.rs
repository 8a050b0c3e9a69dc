//! The PostgreSQL fixture of the integration tests: the runtime's own test fixture (a schema
//! of its own per test on the server `DATABASE_URL` names; `None` when it is unset, a failure
//! when it is set but unreachable), included from its one source file.
//!
//! ```ignore
//! let Some(db) = PgTestDb::new("probe_commit_in_failed_transaction").await else { return };
//! let client = db.connect().await;
//! ```

#[path = "../../runtime/src/backend/postgres/test_db.rs"]
mod test_db;

pub use test_db::TestDb as PgTestDb;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `kv` as a connection of its own sees it: only committed data. Synchronous, like the
/// SQLite fixture's raw read, so it runs on a thread and runtime of its own.
pub fn raw_kv(pg: &PgTestDb) -> BTreeMap<String, i64> {
    let config = pg.config();
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the raw read");
            rt.block_on(async {
                let (client, conn) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .expect("raw connect");
                tokio::spawn(conn);
                let rows = client
                    .query("SELECT key, val::int8 FROM kv ORDER BY key", &[])
                    .await
                    .expect("raw read of kv");
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                    .collect()
            })
        })
        .join()
        .expect("raw read thread")
    })
}

/// No session of this test's schema stays inside a transaction: every connection the pool
/// holds was handed back outside one (a cleanup that runs a moment after its cause gets
/// two seconds).
pub async fn assert_no_session_in_transaction(pg: &PgTestDb) {
    let observer = pg.connect().await;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let stuck: Vec<String> = observer
            .query(
                "SELECT state || ': ' || coalesce(query, '') FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid() \
                 AND state LIKE 'idle in transaction%'",
                &[&pg.schema()],
            )
            .await
            .expect("read pg_stat_activity")
            .iter()
            .map(|r| r.get(0))
            .collect();
        if stuck.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sessions left inside a transaction: {stuck:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The PostgreSQL kind of [`crate::TestDb`] for a PostgreSQL-only test; `None` (with a note)
/// when `DATABASE_URL` is not set.
pub async fn only() -> Option<crate::TestDb> {
    if !crate::postgres_configured() {
        eprintln!("DATABASE_URL is not set: PostgreSQL-only test skipped");
        return None;
    }
    Some(crate::TestDb::new(crate::Kind::Postgres).await)
}

/// A schema of its own for `test` and a database on it whose pool has one connection, so
/// that each transaction gets the connection the one before it gave back; with the fixture's
/// `kv` table. `None` when `DATABASE_URL` is not set.
pub async fn one_connection(
    test: &str,
    configure: impl FnOnce(transactional::PostgresBuilder) -> transactional::PostgresBuilder,
) -> Option<(PgTestDb, transactional::Database)> {
    let schema = PgTestDb::new(test).await?;
    let builder = transactional::Database::postgres(test)
        .config(schema.config())
        .pool_size(1);
    let db = configure(builder)
        .connect()
        .await
        .expect("connect to PostgreSQL");
    db.execute_batch("CREATE TABLE kv(key TEXT PRIMARY KEY, val INTEGER NOT NULL)")
        .await
        .expect("create kv");
    Some((schema, db))
}
