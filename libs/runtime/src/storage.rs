//! Storage: one sqlx pool per service, SQLite or PostgreSQL chosen by URL.
//!
//! - `sqlite://PATH`: the file is created if missing; WAL journal, a busy timeout so concurrent
//!   writers wait instead of failing, foreign keys on.
//! - `postgres://…`: the service lives in its own schema (named after the service), created on
//!   first connect; every pooled connection has `search_path` set to it, so the same SQL text
//!   works for one service per database or six services sharing one.
//!
//! Migrations are plain SQL files embedded into each service crate ([`MigrationSet`]), one list
//! per backend, applied by sqlx's migrator (checksummed, locked on PostgreSQL, idempotent).

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

/// Which database engine a [`Database`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One embedded migration: `version` orders them, `sql` is the file's text.
#[derive(Clone, Copy, Debug)]
pub struct SqlMigration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// One migration's SQL for each backend, as a shared crate exports it for services to include in
/// their own [`MigrationSet`] (see the `migrations!` macro). The texts are frozen once released:
/// sqlx checksums applied migrations, so a change ships as a new constant.
#[derive(Clone, Copy, Debug)]
pub struct BackendSql {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// A service's migrations for both backends. Versions must match across backends so a schema
/// version means the same thing everywhere.
#[derive(Clone, Copy, Debug)]
pub struct MigrationSet {
    pub sqlite: &'static [SqlMigration],
    pub postgres: &'static [SqlMigration],
}

/// Errors from connecting or migrating. The text never includes the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("cannot open the {backend:?} database for {service}: {source}")]
    Connect {
        service: String,
        backend: Backend,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations failed for {service}: {source}")]
    Migrate {
        service: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// A service's connection pool.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Database {
    /// Opens the pool for `service` at `url` (see the module docs for what each backend gets).
    pub async fn connect(url: &str, service: &str) -> Result<Self, StorageError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme);
        match scheme {
            Some("sqlite") => Self::connect_sqlite(url, service).await,
            Some("postgres" | "postgresql") => Self::connect_postgres(url, service).await,
            _ => Err(StorageError::UnsupportedUrl),
        }
    }

    async fn connect_sqlite(url: &str, service: &str) -> Result<Self, StorageError> {
        let err = |source| StorageError::Connect {
            service: service.to_owned(),
            backend: Backend::Sqlite,
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| err(sqlx::Error::Io(e)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A file connection cannot go stale the way a network one can, and sqlx's ping on
            // every acquire is a round trip to the connection's worker thread (two context
            // switches) before each query: `make bench` showed it as a large share of a cheap RPC.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(err)?;
        Ok(Database::Sqlite(pool))
    }

    async fn connect_postgres(url: &str, service: &str) -> Result<Self, StorageError> {
        let err = |source| StorageError::Connect {
            service: service.to_owned(),
            backend: Backend::Postgres,
            source,
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(err)?
            .application_name(&format!("ironmesh-{service}"));
        // The schema must exist before connections that use it as search_path do any work.
        let mut conn = options.connect().await.map_err(err)?;
        create_schema(&mut conn, service).await.map_err(err)?;
        conn.close().await.map_err(err)?;

        let options = options.options([("search_path", service)]);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(err)?;
        Ok(Database::Postgres(pool))
    }

    /// Applies every pending migration of `set` for this backend. Safe to run again and from
    /// several replicas at once.
    pub async fn migrate(&self, service: &str, set: &MigrationSet) -> Result<(), StorageError> {
        let err = |source| StorageError::Migrate {
            service: service.to_owned(),
            source,
        };
        match self {
            Database::Sqlite(pool) => migrator(set.sqlite).run(pool).await.map_err(err),
            Database::Postgres(pool) => migrator(set.postgres).run(pool).await.map_err(err),
        }
    }

    /// True when a trivial query succeeds within the acquire timeout.
    pub async fn ping(&self) -> bool {
        let result = match self {
            Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Database::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        };
        if let Err(err) = &result {
            tracing::warn!(error = %err, "database ping failed");
        }
        result.is_ok()
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every pooled connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

async fn create_schema(conn: &mut sqlx::PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    // Service names are fixed lower-case identifiers, but quote anyway so the statement is
    // correct for any name.
    let quoted = schema.replace('"', "\"\"");
    let statement = format!("CREATE SCHEMA IF NOT EXISTS \"{quoted}\"");
    match sqlx::query(&statement).execute(&mut *conn).await {
        Ok(_) => Ok(()),
        // Two replicas racing on IF NOT EXISTS can still collide on the catalog's unique index;
        // the loser finds the schema there, which is all it wanted.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => Ok(()),
        Err(other) => Err(other),
    }
}

fn migrator(migrations: &[SqlMigration]) -> Migrator {
    let migrations = migrations
        .iter()
        .map(|m| {
            Migration::new(
                m.version,
                Cow::Borrowed(m.description),
                MigrationType::Simple,
                Cow::Borrowed(m.sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// Runs the same sqlx code against whichever pool `db` holds: `with_pool!(db, pool => query.execute(pool).await)`.
/// The body is compiled once per backend, so one query text serves both where the SQL is
/// portable; backend-specific SQL branches on [`Database::backend`] instead.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::storage::Database::Sqlite($pool) => $body,
            $crate::storage::Database::Postgres($pool) => $body,
        }
    };
}

/// Now, at the microsecond precision both backends store, so what is read back equals what was
/// written (and returned).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound as _;
    chrono::Utc::now().trunc_subsecs(6)
}

/// A server-assigned id: UUIDv7 (time-ordered, so ids sort by creation).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when `err` is a unique-constraint violation (SQLite and PostgreSQL alike).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: MigrationSet = MigrationSet {
        sqlite: &[SqlMigration {
            version: 1,
            description: "things",
            sql: "CREATE TABLE things (id TEXT PRIMARY KEY)",
        }],
        postgres: &[],
    };

    #[test]
    fn migrations_take_shared_schema_constants() {
        const SHARED: BackendSql = BackendSql {
            sqlite: "CREATE TABLE s (id TEXT)",
            postgres: "CREATE TABLE p (id TEXT)",
        };
        const SET: MigrationSet = crate::migrations![3, "shared", (SHARED)];
        assert_eq!(SET.sqlite[0].version, 3);
        assert_eq!(SET.sqlite[0].sql, SHARED.sqlite);
        assert_eq!(SET.postgres[0].sql, SHARED.postgres);
        assert_eq!(SET.postgres[0].description, "shared");
    }

    #[tokio::test]
    async fn sqlite_file_is_created_and_migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/svc.db", dir.path().display());
        let db = Database::connect(&url, "svc").await.unwrap();
        db.migrate("svc", &SET).await.unwrap();
        db.migrate("svc", &SET).await.unwrap();
        assert!(db.ping().await);
        assert!(dir.path().join("nested/svc.db").is_file());
        let Database::Sqlite(pool) = &db else {
            panic!("expected sqlite")
        };
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode.0, "wal");
    }

    #[tokio::test]
    async fn unknown_scheme_is_rejected_without_echoing_the_url() {
        let err = Database::connect("mysql://u:secret@h/db", "svc")
            .await
            .unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }
}
