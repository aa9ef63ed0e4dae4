//! The database as an attacker with a copy would see it: every byte of the SQLite files, or
//! `pg_dump` of the PostgreSQL database — and a bit flipped in a stored credential.

use ironmesh_runtime::{Database, with_pool};
use sqlx::Row as _;

/// None of `secrets` appears in the database: as text, or (PostgreSQL's bytea) as hex.
pub async fn assert_absent(db: &Database, url: &str, secrets: &[&str]) {
    let bytes = match db {
        Database::Sqlite(pool) => {
            let row = sqlx::query("PRAGMA database_list")
                .fetch_one(pool)
                .await
                .unwrap();
            let file: String = row.try_get("file").unwrap();
            let mut bytes = std::fs::read(&file).unwrap();
            if let Ok(wal) = std::fs::read(format!("{file}-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
        Database::Postgres(_) => {
            let out = std::process::Command::new(pg_dump())
                .args(["--data-only", "--dbname", url])
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    };
    assert!(bytes.len() > 1000, "a dump holds the data");
    for secret in secrets {
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        for needle in [secret.as_bytes(), hex.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the database holds a credential in the clear"
            );
        }
    }
}

/// `pg_dump` on PATH, or PostgreSQL's own directory (Debian puts it there).
fn pg_dump() -> String {
    if let Ok(out) = std::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        && out.status.success()
    {
        return "pg_dump".to_owned();
    }
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed")
        .filter_map(|d| d.ok().map(|d| d.path().join("bin/pg_dump")))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().expect("pg_dump").display().to_string()
}

/// Flips the lowest bit of byte `at` (negative: from the end) of `column` of request
/// `request_id`'s credential row; twice restores it.
pub async fn flip(db: &Database, column: &str, request_id: &str, at: isize) {
    let read = format!("SELECT {column} FROM provisioning_credentials WHERE request_id = $1");
    let write = format!("UPDATE provisioning_credentials SET {column} = $2 WHERE request_id = $1");
    let flipped = |mut bytes: Vec<u8>| {
        let i = if at < 0 {
            bytes.len() - at.unsigned_abs()
        } else {
            at.unsigned_abs()
        };
        bytes[i] ^= 1;
        bytes
    };
    with_pool!(db, pool => {
        let bytes: Vec<u8> = sqlx::query_scalar(&read)
            .bind(request_id)
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query(&write)
            .bind(request_id)
            .bind(flipped(bytes))
            .execute(pool)
            .await
            .unwrap();
    });
}
