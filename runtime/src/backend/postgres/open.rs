//! `Database::connect` and [`PostgresBuilder`]: a PostgreSQL database behind a pool.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_postgres::{Client, Config};

use super::pool::{PgPool, PoolSettings};
use super::PgDb;
use crate::backend::Engine;
use crate::database::Database;
use crate::error::{Error, Result};

/// Settings for a PostgreSQL [`Database`]; see [`Database::postgres`].
///
/// ```no_run
/// # async fn demo() -> transactional::Result<()> {
/// use std::time::Duration;
/// let db = transactional::Database::postgres("postgres://app@db.internal/app")
///     .pool_size(16)
///     .pool_wait(Duration::from_secs(5))
///     .on_connect(|client| Box::pin(client.batch_execute("SET search_path TO app")))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a PostgresBuilder does nothing until `.connect()` is awaited"]
pub struct PostgresBuilder {
    url: String,
    config: Option<Config>,
    pool_size: usize,
    pool_wait: Duration,
    connect_timeout: Duration,
    turn_wait: Duration,
    on_connect: Option<super::pool::OnConnect>,
}

impl fmt::Debug for PostgresBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBuilder")
            .field("url", &redact(&self.url))
            .field("pool_size", &self.pool_size)
            .field("pool_wait", &self.pool_wait)
            .field("connect_timeout", &self.connect_timeout)
            .field("turn_wait", &self.turn_wait)
            .field("on_connect", &self.on_connect.is_some())
            .finish()
    }
}

impl PostgresBuilder {
    pub(crate) fn new(url: &str) -> Self {
        PostgresBuilder {
            url: url.to_owned(),
            config: None,
            pool_size: 10,
            pool_wait: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            turn_wait: Duration::from_secs(30),
            on_connect: None,
        }
    }

    /// Connection settings given as a tokio-postgres `Config` instead of a URL (the URL is
    /// then only the database's label).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The most connections open at once (default 10): the most outermost transactions
    /// that run at the same time.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long an outermost transaction waits for a connection when all are in use
    /// (default 30 s); then it fails with [`Error::Busy`] naming the transactions holding
    /// them.
    pub fn pool_wait(mut self, wait: Duration) -> Self {
        self.pool_wait = wait;
        self
    }

    /// How long opening a connection may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a statement or savepoint waits for its frame's turn (default 30 s), as
    /// [`DatabaseBuilder::turn_wait`](crate::DatabaseBuilder::turn_wait).
    pub fn turn_wait(mut self, wait: Duration) -> Self {
        self.turn_wait = wait;
        self
    }

    /// Runs `f` on every new connection before its first transaction, e.g. to set
    /// `search_path`. A failure drops the connection and fails the transaction that asked
    /// for it.
    pub fn on_connect<F>(mut self, f: F) -> Self
    where
        F: for<'c> Fn(&'c Client) -> BoxFuture<'c, Result<(), tokio_postgres::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.on_connect = Some(Arc::new(f));
        self
    }

    /// Builds the pool and opens one connection, so that a wrong URL or an unreachable
    /// server fails here rather than at the first transaction.
    pub async fn connect(self) -> Result<Database> {
        let label = redact(&self.url);
        let mut settings = match self.config {
            Some(config) => PoolSettings::new(config),
            None => PoolSettings::from_url(&self.url)
                .map_err(|e| Error::Unsupported(format!("`{label}`: {e}")))?,
        };
        settings.max_size = self.pool_size;
        settings.wait = self.pool_wait;
        settings.connect_timeout = self.connect_timeout;
        settings.on_connect = self.on_connect;
        let pool = PgPool::new(settings).map_err(|e| Error::Background {
            what: format!("building the pool of {label}"),
            source: Some(Box::new(e)),
        })?;
        let first = pool.get().await.map_err(|e| match e {
            super::pool::PoolError::Connect(e) => Error::Postgres(e),
            other => Error::Background {
                what: format!("connecting to {label}"),
                source: Some(Box::new(other)),
            },
        })?;
        drop(first);
        Ok(Database::new(
            label,
            self.turn_wait,
            Engine::Postgres(PgDb::new(pool)),
        ))
    }
}

/// The URL without its password, for labels and logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    format!("{scheme}://{user}@{host}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_never_show_the_password() {
        assert_eq!(
            super::redact("postgres://app:secret@db:5432/app"),
            "postgres://app@db:5432/app"
        );
        assert_eq!(
            super::redact("postgres://app@db/app"),
            "postgres://app@db/app"
        );
        assert_eq!(super::redact("host=db user=app"), "host=db user=app");
    }
}
