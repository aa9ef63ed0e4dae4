//! Which storage backends a correctness test runs on, and a fresh PostgreSQL database per
//! test. SQLite always; PostgreSQL when `TEST_DATABASE_URL` names a server, and **required**
//! when `CI=true` (a missing URL there panics instead of skipping). Redis likewise through
//! `TEST_REDIS_URL`.

use sqlx::Connection;

/// Environment variable with an admin URL of a PostgreSQL server for tests.
pub const DATABASE_URL_ENV: &str = "TEST_DATABASE_URL";
/// Environment variable with a Redis URL for tests.
pub const REDIS_URL_ENV: &str = "TEST_REDIS_URL";

/// A storage backend a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The backends every correctness test must cover here (see the module docs).
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.is_empty() => out.push(Backend::Postgres),
        _ if in_ci() => {
            panic!("{DATABASE_URL_ENV} is not set but CI=true: PostgreSQL tests must run in CI")
        }
        _ => eprintln!("note: {DATABASE_URL_ENV} is not set; skipping the PostgreSQL variant"),
    }
    out
}

/// The Redis URL for tests, or `None` outside CI; panics in CI when missing.
pub fn redis_url() -> Option<String> {
    match std::env::var(REDIS_URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => {
            panic!("{REDIS_URL_ENV} is not set but CI=true: Redis tests must run in CI")
        }
        _ => None,
    }
}

/// A PostgreSQL database created for one test.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `ironmesh_test_<uuid>` on the server of `TEST_DATABASE_URL`.
    pub async fn create() -> Self {
        let admin_url = std::env::var(DATABASE_URL_ENV)
            .unwrap_or_else(|_| panic!("{DATABASE_URL_ENV} must be set for PostgreSQL tests"));
        let name = format!("ironmesh_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Self {
            admin_url,
            name,
            url: url.to_string(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Lets clients connect to the database, or refuses new connections and cuts the existing
    /// ones — the database "going away" without stopping the server.
    pub async fn set_reachable(&self, reachable: bool) {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        let allow = if reachable { "true" } else { "false" };
        sqlx::query(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS {allow}",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("alter database");
        if !reachable {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&self.name)
            .execute(&mut conn)
            .await
            .expect("terminate connections");
        }
        let _ = conn.close().await;
    }

    /// Drops the database (disconnecting anything still attached).
    pub async fn drop_database(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            let _ = sqlx::query(&statement).execute(&mut conn).await;
            let _ = conn.close().await;
        }
    }
}
