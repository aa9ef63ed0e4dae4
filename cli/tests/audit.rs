//! `ironmesh audit verify` on what the gateway serves: an export (NDJSON), a checkpoint and the
//! published public key fetched over REST, then checked by the binary with no server involved —
//! a good file (starting at a retention anchor) passes, a tampered, a truncated one and a
//! foreign key fail naming the first bad sequence, unusable input exits 2. On both backends.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use ironmesh_audit::domain::{NewEntry, Outcome};
use ironmesh_audit::keys::SigningKeys;
use ironmesh_audit::service::Audit;
use ironmesh_audit::store::Store;
use ironmesh_runtime::{Database, ServiceKind};
use ironmesh_testkit::{TestMesh, backends};
use serde_json::Value;
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(30);

fn entry(key: &str) -> NewEntry {
    NewEntry {
        occurred_at: chrono::DateTime::from_timestamp(1_700_000_000, 5).unwrap(),
        actor: "user-1".into(),
        action: "orders.order.cancel".into(),
        resource: "orders/0190".into(),
        outcome: Outcome::Denied,
        source_service: "orders".into(),
        request_id: format!("req-{key}"),
        idempotency_key: key.into(),
        details: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
    }
}

/// GET `path` on the gateway; the body, after checking the status and content type.
async fn get(mesh: &TestMesh, path: &str, token: Option<&str>, content_type: &str) -> String {
    let mut request = reqwest::Client::new()
        .get(format!("http://{}{path}", mesh.gateway_addr()))
        .timeout(LIMIT);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let found = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(found.starts_with(content_type), "{path}: {found}");
    response.text().await.unwrap()
}

/// Runs `ironmesh audit verify` on the files; its exit code, stdout and stderr.
async fn verify(
    dir: &std::path::Path,
    entries: &str,
    checkpoint: &str,
    key: &str,
) -> (i32, String, String) {
    let (e, c) = (dir.join("entries.ndjson"), dir.join("checkpoint.json"));
    std::fs::write(&e, entries).unwrap();
    std::fs::write(&c, checkpoint).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ironmesh"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IRONMESH_") {
            command.env_remove(name);
        }
    }
    command
        .env("IRONMESH_DATA_DIR", dir)
        .args(["audit", "verify", "--entries"])
        .arg(&e)
        .arg("--checkpoint")
        .arg(&c)
        .args(["--public-key", key])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(LIMIT, command.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The NDJSON export with `change` applied to its parsed lines.
fn edit(ndjson: &str, change: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut lines: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    change(&mut lines);
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Entries 1–3 purged by retention, 4–8 retained, exported through the gateway; verified
/// offline, then tampered with.
#[tokio::test]
async fn exports_verify_offline_and_tampering_names_its_sequence() {
    for backend in backends() {
        // Only what the test appends is in the log: auth's events go nowhere here.
        let mesh = TestMesh::start_with(backend, &ServiceKind::ALL, true, |config| {
            config
                .update_section::<ironmesh_outbox::EventsConfig>(|e| e.subscribers.clear())
                .unwrap()
        })
        .await;
        let admin = mesh.admin().await.access_token;
        let db = Database::connect(&mesh.config().database_url(ServiceKind::Audit), "audit")
            .await
            .unwrap();
        let store = Store::new(db.clone());
        let sealing = ironmesh_audit::keys::sealing(mesh.config()).unwrap();
        let audit = Audit::new(store.clone(), SigningKeys::new(store, sealing));
        audit
            .append((1..=3).map(|i| entry(&format!("old{i}"))).collect())
            .await
            .unwrap();
        let cutoff = chrono::Utc::now();
        audit
            .append((4..=8).map(|i| entry(&format!("new{i}"))).collect())
            .await
            .unwrap();
        assert_eq!(
            audit.purge_batch(cutoff, 100).await.unwrap(),
            3,
            "{backend:?}"
        );

        let checkpoint = get(
            &mesh,
            "/v1/audit/checkpoint",
            Some(&admin),
            "application/json",
        )
        .await;
        let keys: Value =
            serde_json::from_str(&get(&mesh, "/v1/audit/keys", None, "application/json").await)
                .unwrap();
        let key = keys["keys"][0]["publicKey"].as_str().unwrap().to_owned();
        let export = get(
            &mesh,
            "/v1/audit/entries:export",
            Some(&admin),
            "application/x-ndjson",
        )
        .await;
        let first: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
        assert_eq!(
            first["result"]["anchor"]["sequence"], "3",
            "{backend:?}: {first}"
        );
        assert_eq!(first["result"]["anchor"]["retentionAnchor"], true);

        let dir = tempfile::tempdir().unwrap();
        let (code, stdout, stderr) = verify(dir.path(), &export, &checkpoint, &key).await;
        assert_eq!(code, 0, "{backend:?}: {stderr}");
        assert!(
            stdout.contains("verified 5 entries (sequences 4..=8, from the retention anchor at 3)"),
            "{stdout}"
        );

        // grpcurl's form: each message a bare, pretty-printed ExportResponse.
        let bare: String = export
            .lines()
            .map(|l| {
                let line: Value = serde_json::from_str(l).unwrap();
                serde_json::to_string_pretty(&line["result"]).unwrap() + "\n"
            })
            .collect();
        let (code, _, stderr) = verify(dir.path(), &bare, &checkpoint, &key).await;
        assert_eq!(code, 0, "{backend:?}: {stderr}");

        let tampered = edit(&export, |lines| {
            lines[0]["result"]["entries"][1]["actor"] = "mallory".into();
        });
        let (code, _, stderr) = verify(dir.path(), &tampered, &checkpoint, &key).await;
        assert_eq!(code, 1, "{backend:?}");
        assert!(
            stderr.contains("first bad sequence 5: hash mismatch"),
            "{stderr}"
        );

        let truncated = edit(&export, |lines| {
            let entries = lines[0]["result"]["entries"].as_array_mut().unwrap();
            entries.truncate(entries.len() - 2);
        });
        let (code, _, stderr) = verify(dir.path(), &truncated, &checkpoint, &key).await;
        assert_eq!(code, 1);
        assert!(
            stderr.contains("first bad sequence 7: truncated"),
            "{stderr}"
        );

        let unanchored = edit(&export, |lines| {
            lines[0]["result"].as_object_mut().unwrap().remove("anchor");
        });
        let (code, _, stderr) = verify(dir.path(), &unanchored, &checkpoint, &key).await;
        assert_eq!(code, 1);
        assert!(stderr.contains("first bad sequence 4"), "{stderr}");

        let foreign = "A".repeat(43);
        let (code, _, stderr) = verify(dir.path(), &export, &checkpoint, &foreign).await;
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("not among the trusted public keys"),
            "{stderr}"
        );
        let (code, _, stderr) = verify(dir.path(), "not json", &checkpoint, &key).await;
        assert_eq!(code, 2, "{stderr}");
        let (code, _, _) = verify(dir.path(), &export, &checkpoint, "short").await;
        assert_eq!(code, 2);
        db.close().await;
        assert!(mesh.shutdown().await.is_empty());
    }
}
