//! Every service's migrations apply to an empty store on both backends, land in that service's
//! own file or schema, and are idempotent.

use ironmesh_launcher::services::migrations;
use ironmesh_runtime::ServiceKind;
use ironmesh_runtime::storage::Database;
use ironmesh_testkit::{Backend, TestDatabase, backends};

/// One table each service's first migration must create.
fn a_table_of(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Auth => "users",
        ServiceKind::Orders => "orders",
        ServiceKind::Inventory => "stock",
        ServiceKind::Provisioning => "provisioning_jobs",
        ServiceKind::Notification => "deliveries",
        ServiceKind::Audit => "entries",
    }
}

async fn applied_versions(db: &Database) -> Vec<i64> {
    let query = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    match db {
        Database::Sqlite(pool) => sqlx::query_scalar(query).fetch_all(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(query).fetch_all(pool).await,
    }
    .expect("read the migrations table")
}

async fn count_rows(db: &Database, table: &str) -> i64 {
    let query = format!("SELECT COUNT(*) FROM {table}");
    match db {
        Database::Sqlite(pool) => sqlx::query_scalar(&query).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(&query).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("table {table} is queryable: {e}"))
}

/// Migrating an empty store creates each service's tables and records every version; migrating
/// again changes nothing and does not fail. On PostgreSQL the tables live in the schema named
/// after the service.
#[tokio::test]
async fn migrations_apply_on_empty_stores_and_are_idempotent() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Postgres => Some(TestDatabase::create().await),
            Backend::Sqlite => None,
        };
        for kind in ServiceKind::ALL {
            let url = match &pg {
                Some(pg) => pg.url().to_owned(),
                None => format!("sqlite://{}/{kind}.db", dir.path().display()),
            };
            let set = migrations(kind);
            let expected: Vec<i64> = match backend {
                Backend::Sqlite => set.sqlite.iter().map(|m| m.version).collect(),
                Backend::Postgres => set.postgres.iter().map(|m| m.version).collect(),
            };
            assert!(!expected.is_empty(), "{kind} has migrations");

            let db = Database::connect(&url, kind.name()).await.unwrap();
            db.migrate(kind.name(), set).await.unwrap();
            assert_eq!(applied_versions(&db).await, expected, "{backend:?} {kind}");
            assert_eq!(count_rows(&db, a_table_of(kind)).await, 0);

            db.migrate(kind.name(), set)
                .await
                .expect("second run is a no-op");
            assert_eq!(
                applied_versions(&db).await,
                expected,
                "{backend:?} {kind} again"
            );

            if let Database::Postgres(pool) = &db {
                let schema: String = sqlx::query_scalar(
                    "SELECT table_schema::text FROM information_schema.tables WHERE table_name = $1 AND table_schema = $2",
                )
                .bind(a_table_of(kind))
                .bind(kind.name())
                .fetch_one(pool)
                .await
                .expect("table is in the service's schema");
                assert_eq!(schema, kind.name());
            }
            db.close().await;
        }
        if let Some(pg) = pg {
            pg.drop_database().await;
        }
    }
}

/// Both backends carry the same migration versions, so a schema version means one thing.
#[test]
fn both_backends_have_the_same_versions() {
    for kind in ServiceKind::ALL {
        let set = migrations(kind);
        let sqlite: Vec<i64> = set.sqlite.iter().map(|m| m.version).collect();
        let postgres: Vec<i64> = set.postgres.iter().map(|m| m.version).collect();
        assert_eq!(sqlite, postgres, "{kind}");
    }
}
