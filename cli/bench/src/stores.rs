//! What the suites that use databases share: a fresh PostgreSQL database per run, its commit
//! counter, and errors with their causes.

use ironmesh_runtime::storage::Backend;
use sqlx::Connection as _;

use crate::error::BenchError;

/// A database created for one run on the PostgreSQL server the bench was given.
pub struct FreshDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl FreshDatabase {
    /// Creates `ironmesh_bench_<uuid>` on `server`. Errors never repeat the URL (it may hold a
    /// password).
    pub async fn create(server: &str) -> Result<Self, BenchError> {
        let mut url = url::Url::parse(server).map_err(|_| {
            BenchError::Usage("--database-url (BENCH_DATABASE_URL) is not a URL".to_owned())
        })?;
        let name = format!("ironmesh_bench_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(server)
            .await
            .map_err(failed("cannot connect to the PostgreSQL server"))?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(failed("cannot create the bench database"))?;
        let _ = conn.close().await;
        url.set_path(&name);
        Ok(Self {
            server: server.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    /// Drops the database, disconnecting anything still attached (best effort: a database
    /// left behind is named `ironmesh_bench_…`).
    pub async fn drop_database(self) {
        let dropped = async {
            let mut conn = sqlx::PgConnection::connect(&self.server).await?;
            let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            sqlx::query(&statement).execute(&mut conn).await?;
            conn.close().await
        };
        if let Err(err) = dropped.await {
            eprintln!(
                "ironmesh-bench: warning: could not drop the bench database {}: {}",
                self.name,
                error_chain(&err)
            );
        }
    }
}

/// Transactions committed in the database at `url` so far (`pg_stat_database.xact_commit`).
pub async fn xact_commits(url: &str) -> Result<i64, BenchError> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(failed("cannot connect to the bench database"))?;
    // The statistics collector flushes its counters lazily; ask for the current snapshot.
    let (commits,): (i64,) = sqlx::query_as(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(failed("cannot read pg_stat_database"))?;
    let _ = conn.close().await;
    Ok(commits)
}

pub fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// `what: the error: its source: …` as a failed run.
pub fn failed<E: std::error::Error>(what: &str) -> impl FnOnce(E) -> BenchError + '_ {
    move |err| BenchError::Failed(format!("{what}: {}", error_chain(&err)))
}

/// An error and its sources, joined by `: ` (the store's errors keep the detail in a source).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chains_name_every_cause_once() {
        let err = Outer(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&err), "outer: disk full");
        let same = std::io::Error::other("alone");
        assert_eq!(error_chain(&same), "alone");
    }
}
