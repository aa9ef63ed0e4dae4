//! Audit's signed side on both storage backends: checkpoints verified with an independent
//! Ed25519 implementation (ed25519-dalek) against the published key, the private key sealed at
//! rest, Export's resumable stream, a truncated tail caught against the latest checkpoint, and
//! retention behind signed anchors (two replicas at once, and the background task at start).

mod common;

use std::collections::BTreeMap;

use chrono::Utc;
use common::{LIMIT, audit, bounded, entry, mesh, verify};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use ironmesh_audit::domain::{Entry, NewEntry, Outcome, ZERO_HASH};
use ironmesh_audit::service::Audit;
use ironmesh_audit::settings::AuditConfig;
use ironmesh_audit::store::Store;
use ironmesh_proto::ironmesh::audit::v1 as pb;
use ironmesh_runtime::{Database, Listeners, ServiceKind, with_pool};
use ironmesh_testkit::{Backend, TestDatabase, TestMesh, authed, backends, test_config};
use prost::Message as _;
use tonic::Code;

async fn sql(db: &Database, text: &str) -> Result<(), sqlx::Error> {
    with_pool!(db, pool => sqlx::raw_sql(text).execute(pool).await.map(drop))
}

async fn drop_entry_triggers(db: &Database, backend: Backend) {
    match backend {
        Backend::Sqlite => {
            sql(
                db,
                "DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete",
            )
            .await
        }
        Backend::Postgres => sql(db, "DROP TRIGGER entries_no_change ON entries").await,
    }
    .unwrap();
}

async fn checkpoint(mesh: &TestMesh, admin: &str) -> Result<Option<pb::Checkpoint>, tonic::Status> {
    mesh.audit()
        .await
        .get_checkpoint(authed(pb::GetCheckpointRequest {}, admin))
        .await
        .map(|r| r.into_inner().checkpoint)
}

/// ListPublicKeys without any credentials (it is public).
async fn public_keys(mesh: &TestMesh) -> Vec<pb::PublicKey> {
    mesh.audit()
        .await
        .list_public_keys(pb::ListPublicKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys
}

/// Verifies `signed` with ed25519-dalek over prost's encoding of it with `signature` cleared:
/// the contract's rule, computed without audit's own code.
fn dalek_verifies(signed: &pb::Checkpoint, public_key: &[u8]) -> bool {
    let mut input = signed.clone();
    input.signature.clear();
    let key = VerifyingKey::from_bytes(public_key.try_into().unwrap()).unwrap();
    let Ok(signature) = Signature::from_slice(&signed.signature) else {
        return false;
    };
    key.verify(&input.encode_to_vec(), &signature).is_ok()
}

/// Every message of an Export, each waited for within the test limit.
async fn export(
    mesh: &TestMesh,
    admin: &str,
    request: pb::ExportRequest,
) -> Vec<pb::ExportResponse> {
    let mut stream = mesh
        .audit()
        .await
        .export(authed(request, admin))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(message) = bounded(stream.message()).await.unwrap() {
        out.push(message);
    }
    out
}

fn sequences(messages: &[pb::ExportResponse]) -> Vec<i64> {
    messages
        .iter()
        .flat_map(|m| m.entries.iter().map(|e| e.sequence))
        .collect()
}

async fn append_n(audit: &Audit, prefix: &str, n: usize) -> Vec<Entry> {
    let mut stored = Vec::new();
    let all: Vec<NewEntry> = (0..n).map(|i| entry(&format!("{prefix}{i}"))).collect();
    for batch in all.chunks(500) {
        stored.extend(bounded(audit.append(batch.to_vec())).await.unwrap());
    }
    stored
}

/// GetCheckpoint signs the head: unset for an empty log, then the head's sequence and hash,
/// verified by ed25519-dalek with the key ListPublicKeys publishes (whose id the checkpoint
/// names); asked again without appends it is the same checkpoint, after appends a new one. A
/// flipped signature bit does not verify (the check can fail).
#[tokio::test]
async fn checkpoints_verify_with_the_published_key() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let audit = audit(&mesh, db);
        assert_eq!(
            checkpoint(&mesh, &admin).await.unwrap(),
            None,
            "{backend:?}"
        );
        let stored = append_n(&audit, "c", 3).await;
        let signed = checkpoint(&mesh, &admin).await.unwrap().unwrap();
        assert_eq!(
            (signed.sequence, &signed.hash),
            (3, &stored[2].hash),
            "{backend:?}"
        );
        assert_eq!(signed.algorithm, "Ed25519");
        assert!(!signed.retention_anchor);
        let keys = public_keys(&mesh).await;
        assert_eq!(keys.len(), 1, "{backend:?}");
        assert_eq!(keys[0].key_id, signed.key_id);
        assert_eq!(keys[0].algorithm, "Ed25519");
        assert!(dalek_verifies(&signed, &keys[0].public_key), "{backend:?}");
        let mut flipped = signed.clone();
        flipped.signature[10] ^= 1;
        assert!(!dalek_verifies(&flipped, &keys[0].public_key));
        let mut moved = signed.clone();
        moved.sequence = 2;
        assert!(!dalek_verifies(&moved, &keys[0].public_key));

        assert_eq!(checkpoint(&mesh, &admin).await.unwrap().unwrap(), signed);
        append_n(&audit, "d", 2).await;
        let next = checkpoint(&mesh, &admin).await.unwrap().unwrap();
        assert_eq!(next.sequence, 5);
        assert_eq!(next.key_id, signed.key_id);
        assert!(dalek_verifies(&next, &keys[0].public_key));
        // A customer may read the public keys but not the checkpoint.
        let customer = mesh.customer().await.access_token;
        let refused = checkpoint(&mesh, &customer).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// The signing key's row holds the public key and a sealed envelope: opened with the mesh's
/// master key it is a PKCS#8 document holding the Ed25519 seed of the published key (found by
/// ed25519-dalek), and neither that seed nor the document appear in the stored bytes. Another
/// master key cannot open it.
#[tokio::test]
async fn the_private_key_is_sealed_at_rest() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let audit = audit(&mesh, db.clone());
        append_n(&audit, "s", 1).await;
        checkpoint(&mesh, &admin).await.unwrap().unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = with_pool!(&db, pool => {
            sqlx::query_as("SELECT public_key, sealed_private_key FROM signing_keys")
                .fetch_all(pool)
                .await
                .unwrap()
        });
        assert_eq!(rows.len(), 1, "{backend:?}");
        let (public, sealed) = &rows[0];
        assert_eq!(public, &public_keys(&mesh).await[0].public_key);
        let keyring = ironmesh_audit::keys::sealing(mesh.config()).unwrap();
        let pkcs8 = keyring.open(sealed).unwrap();
        let seed = pkcs8
            .windows(32)
            .find(|w| {
                let key = ed25519_dalek::SigningKey::from_bytes((*w).try_into().unwrap());
                key.verifying_key().as_bytes() == public.as_slice()
            })
            .expect("the sealed document holds the published key's seed")
            .to_vec();
        assert!(
            !sealed.windows(32).any(|w| w == seed.as_slice()),
            "{backend:?}: seed in the clear"
        );
        assert!(!sealed.windows(pkcs8.len()).any(|w| w == pkcs8.as_slice()));
        let other = ironmesh_sealing::Keyring::new(ironmesh_sealing::Key::derived(&[7; 32]));
        assert!(other.open(sealed).is_err());
        db.close().await;
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Export streams 1..=1200 in ascending batches of at most 500; an export dropped after two
/// messages and resumed from the last sequence + 1 yields every entry exactly once; entries
/// appended after the call started are not in it; end_sequence and the time bounds select what
/// Query's do; bad ranges are INVALID_ARGUMENT.
#[tokio::test]
async fn export_resumes_without_gaps_or_duplicates() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let audit = audit(&mesh, db);
        let mut all = Vec::new();
        for part in 0..3 {
            let mut batch: Vec<NewEntry> =
                (0..400).map(|i| entry(&format!("x{part}-{i}"))).collect();
            for (i, e) in batch.iter_mut().enumerate() {
                e.occurred_at =
                    chrono::DateTime::from_timestamp(1_700_000_000 + (part * 400 + i) as i64, 0)
                        .unwrap();
            }
            all.extend(bounded(audit.append(batch)).await.unwrap());
        }
        let whole = export(&mesh, &admin, pb::ExportRequest::default()).await;
        assert!(
            whole
                .iter()
                .all(|m| !m.entries.is_empty() && m.entries.len() <= 500)
        );
        assert_eq!(whole.len(), 3, "{backend:?}");
        assert_eq!(
            sequences(&whole),
            (1..=1200).collect::<Vec<_>>(),
            "{backend:?}"
        );
        assert_eq!(
            whole[0].entries[0],
            ironmesh_audit::grpc::entry(all[0].clone())
        );
        assert!(whole[0].anchor.is_none());

        // Interrupted after two messages, then resumed.
        let mut stream = mesh
            .audit()
            .await
            .export(authed(pb::ExportRequest::default(), &admin))
            .await
            .unwrap()
            .into_inner();
        let mut received = Vec::new();
        for _ in 0..2 {
            received.push(bounded(stream.message()).await.unwrap().unwrap());
        }
        drop(stream);
        // Appended after that export's head was fixed: only a new export sees them.
        append_n(&audit, "late", 3).await;
        let last = *sequences(&received).last().unwrap();
        received.extend(
            export(
                &mesh,
                &admin,
                pb::ExportRequest {
                    start_sequence: last + 1,
                    end_sequence: 1200,
                    ..Default::default()
                },
            )
            .await,
        );
        assert_eq!(
            sequences(&received),
            (1..=1200).collect::<Vec<_>>(),
            "{backend:?}"
        );
        assert_eq!(
            sequences(
                &export(
                    &mesh,
                    &admin,
                    pb::ExportRequest {
                        start_sequence: 1200,
                        ..Default::default()
                    }
                )
                .await
            ),
            [1200, 1201, 1202, 1203]
        );

        let window = |s: i64, _: i64| prost_types::Timestamp {
            seconds: 1_700_000_000 + s,
            nanos: 0,
        };
        let timed = export(
            &mesh,
            &admin,
            pb::ExportRequest {
                start_sequence: 10,
                end_sequence: 900,
                start_time: Some(window(5, 0)),
                end_time: Some(window(620, 0)),
            },
        )
        .await;
        assert_eq!(
            sequences(&timed),
            (10..=620).collect::<Vec<_>>(),
            "{backend:?}"
        );
        let queried = mesh
            .audit()
            .await
            .query(authed(
                pb::QueryRequest {
                    page_size: 1000,
                    start_time: Some(window(5, 0)),
                    end_time: Some(window(620, 0)),
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .unwrap()
            .into_inner();
        let from_query: Vec<i64> = queried
            .entries
            .iter()
            .map(|e| e.sequence)
            .filter(|s| (10..=900).contains(s))
            .collect();
        assert_eq!(sequences(&timed), from_query);

        let status = mesh
            .audit()
            .await
            .export(authed(
                pb::ExportRequest {
                    start_sequence: 5,
                    end_sequence: 2,
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .unwrap_err();
        assert_eq!(ironmesh_testkit::violations(&status), ["end_sequence"]);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// With the triggers dropped, the last two entries deleted and the head row moved back to
/// entry 8 (a tail removed without a gap): VerifyChain reports "truncated" at 9 against the
/// checkpoint at 10, and GetCheckpoint refuses to sign the shorter head (DATA_LOSS). Entry 8
/// rewritten into a different entry with a correct hash links fine but is named "checkpoint
/// mismatch" against a checkpoint at 8.
#[tokio::test]
async fn a_truncated_tail_is_caught_against_the_checkpoint() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let audit = audit(&mesh, db.clone());
        let stored = append_n(&audit, "t", 8).await;
        let at8 = checkpoint(&mesh, &admin).await.unwrap().unwrap();
        append_n(&audit, "u", 2).await;
        assert_eq!(
            checkpoint(&mesh, &admin).await.unwrap().unwrap().sequence,
            10
        );
        let clean = verify(&mesh, &admin, 0, 0).await;
        assert!(clean.ok, "{backend:?}: {clean:?}");
        assert_eq!(clean.checkpoint_sequence, 10);

        drop_entry_triggers(&db, backend).await;
        sql(&db, "DELETE FROM entries WHERE sequence > 8")
            .await
            .unwrap();
        let hash8 = stored[7].hash.clone();
        with_pool!(&db, pool => sqlx::query("UPDATE chain_head SET sequence = 8, hash = $1 WHERE id = 1")
            .bind(&hash8).execute(pool).await.map(drop)).unwrap();
        let found = verify(&mesh, &admin, 0, 0).await;
        assert_eq!(
            (
                found.ok,
                found.first_broken_sequence,
                found.failure_reason.as_str(),
                found.checkpoint_sequence
            ),
            (false, 9, "truncated", 10),
            "{backend:?}"
        );
        let refused = checkpoint(&mesh, &admin).await.unwrap_err();
        assert_eq!(refused.code(), Code::DataLoss, "{backend:?}");
        // A range that stops before the checkpoint does not claim what it did not check.
        let part = verify(&mesh, &admin, 1, 8).await;
        assert!(part.ok, "{backend:?}: {part:?}");

        // Rewrite entry 8 consistently (a valid hash, linked to 7) and drop the later
        // checkpoints: only the signed checkpoint at 8 shows it changed.
        match backend {
            Backend::Sqlite => sql(&db, "DROP TRIGGER checkpoints_no_delete").await,
            Backend::Postgres => {
                sql(&db, "DROP TRIGGER checkpoints_no_change ON checkpoints").await
            }
        }
        .unwrap();
        sql(&db, "DELETE FROM checkpoints WHERE sequence > 8")
            .await
            .unwrap();
        let mut forged = stored[7].clone();
        forged.body.actor = "mallory".into();
        forged.hash = forged.computed_hash().to_vec();
        with_pool!(&db, pool => sqlx::query("UPDATE entries SET actor = 'mallory', hash = $1 WHERE sequence = 8")
            .bind(&forged.hash).execute(pool).await.map(drop)).unwrap();
        with_pool!(&db, pool => sqlx::query("UPDATE chain_head SET hash = $1 WHERE id = 1")
            .bind(&forged.hash).execute(pool).await.map(drop))
        .unwrap();
        let found = verify(&mesh, &admin, 0, 0).await;
        assert_eq!(
            (
                found.first_broken_sequence,
                found.failure_reason.as_str(),
                found.checkpoint_sequence
            ),
            (8, "checkpoint mismatch", at8.sequence),
            "{backend:?}: {found:?}"
        );
        db.close().await;
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Two replicas purge entries recorded before a cutoff at once, in batches of 2: entries 1–5
/// are gone, 6–10 remain, and the highest anchor is entry 5's hash, signed (ed25519-dalek
/// verifies it with the published key). VerifyChain starts from it and passes; Export from 1
/// starts with the anchor. The triggers still refuse deleting a retained entry and changing an
/// anchor; a forged anchor opens the gate but VerifyChain names it ("bad anchor").
#[tokio::test]
async fn retention_leaves_a_signed_anchor_the_chain_verifies_from() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let other = Database::connect(&mesh.config().database_url(ServiceKind::Audit), "audit")
            .await
            .unwrap();
        let replicas = [audit(&mesh, db.clone()), audit(&mesh, other)];
        let old = append_n(&replicas[0], "old", 5).await;
        let cutoff = Utc::now();
        append_n(&replicas[1], "new", 5).await;
        checkpoint(&mesh, &admin).await.unwrap().unwrap();

        let tasks: Vec<_> = replicas
            .iter()
            .cloned()
            .map(|replica| {
                tokio::spawn(async move {
                    let mut removed = 0;
                    loop {
                        match bounded(replica.purge_batch(cutoff, 2)).await.unwrap() {
                            0 => return removed,
                            n => removed += n,
                        }
                    }
                })
            })
            .collect();
        let mut removed = 0;
        for task in tasks {
            removed += task.await.unwrap();
        }
        assert_eq!(removed, 5, "{backend:?}: each entry removed once");
        let left: Vec<i64> = with_pool!(&db, pool => sqlx::query_scalar("SELECT sequence FROM entries ORDER BY sequence").fetch_all(pool).await.unwrap());
        assert_eq!(left, [6, 7, 8, 9, 10], "{backend:?}");
        let anchor = Store::new(db.clone())
            .latest_anchor()
            .await
            .unwrap()
            .unwrap();
        assert_eq!((anchor.sequence, &anchor.hash), (5, &old[4].hash));
        let key = &public_keys(&mesh).await[0];
        let proto = ironmesh_audit::grpc::checkpoint(anchor.clone());
        assert!(proto.retention_anchor);
        assert!(dalek_verifies(&proto, &key.public_key), "{backend:?}");

        let found = verify(&mesh, &admin, 0, 0).await;
        assert!(found.ok, "{backend:?}: {found:?}");
        assert_eq!(
            (
                found.start_sequence,
                found.end_sequence,
                found.entries_checked,
                found.anchor_sequence,
                found.checkpoint_sequence
            ),
            (6, 10, 5, 5, 10)
        );
        let exported = export(&mesh, &admin, pb::ExportRequest::default()).await;
        assert_eq!(exported[0].anchor.as_ref(), Some(&proto));
        assert_eq!(sequences(&exported), [6, 7, 8, 9, 10]);
        let status = mesh
            .audit()
            .await
            .get_entry(authed(pb::GetEntryRequest { sequence: 3 }, &admin))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);

        assert!(
            sql(&db, "DELETE FROM entries WHERE sequence = 6")
                .await
                .is_err(),
            "{backend:?}"
        );
        assert!(
            sql(&db, "UPDATE anchors SET sequence = 9 WHERE sequence = 5")
                .await
                .is_err()
        );
        assert!(sql(&db, "DELETE FROM anchors").await.is_err());
        // Nothing younger than the cutoff goes, however often retention runs.
        assert_eq!(replicas[0].purge_batch(cutoff, 100).await.unwrap(), 0);

        // A forged anchor lets SQL delete below it, and is reported.
        let forged = "INSERT INTO anchors (sequence, hash, signed_at_ns, key_id, signature) \
                      SELECT sequence, hash, 0, 'audit-forged', hash FROM entries WHERE sequence = 7";
        sql(&db, forged).await.unwrap();
        sql(&db, "DELETE FROM entries WHERE sequence <= 7")
            .await
            .unwrap();
        let found = verify(&mesh, &admin, 0, 0).await;
        assert_eq!(
            (
                found.ok,
                found.first_broken_sequence,
                found.failure_reason.as_str()
            ),
            (false, 8, "bad anchor"),
            "{backend:?}"
        );
        db.close().await;
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// The service's own background tasks run once at start: entries recorded two days ago (a
/// valid chain written straight into the table) are purged under `audit.retention_days = 1`
/// behind a signed anchor, today's stay, and the head is signed — all before a shutdown that
/// came at once has finished draining.
#[tokio::test]
async fn background_retention_and_signing_run_at_start() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let mut config = test_config(dir.path(), database.as_ref().map(|d| d.url()));
        config.set_section(&AuditConfig {
            retention_days: 1,
            ..AuditConfig::default()
        });
        let url = config.database_url(ServiceKind::Audit);
        let db = Database::connect(&url, "audit").await.unwrap();
        db.migrate("audit", &ironmesh_audit::MIGRATIONS)
            .await
            .unwrap();
        let two_days_ago = Utc::now() - chrono::Duration::days(2);
        let mut prev = ZERO_HASH.to_vec();
        for sequence in 1..=4 {
            let mut old = Entry {
                sequence,
                entry_id: uuid::Uuid::now_v7().to_string(),
                recorded_at: two_days_ago,
                body: NewEntry {
                    occurred_at: two_days_ago,
                    actor: "user-1".into(),
                    action: "auth.user.login".into(),
                    resource: String::new(),
                    outcome: Outcome::Success,
                    source_service: "auth".into(),
                    request_id: String::new(),
                    idempotency_key: format!("old-{sequence}"),
                    details: BTreeMap::new(),
                },
                prev_hash: std::mem::take(&mut prev),
                hash: Vec::new(),
            };
            old.hash = old.computed_hash().to_vec();
            let ns = two_days_ago.timestamp_nanos_opt().unwrap();
            with_pool!(&db, pool => sqlx::query(
                "INSERT INTO entries (sequence, entry_id, occurred_at_ns, recorded_at_ns, actor, action, \
                 resource, outcome, source_service, request_id, idempotency_key, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $3, 'user-1', 'auth.user.login', '', 1, 'auth', '', $4, '{}', $5, $6)")
                .bind(sequence).bind(&old.entry_id).bind(ns).bind(&old.body.idempotency_key)
                .bind(&old.prev_hash).bind(&old.hash)
                .execute(pool).await.map(drop)).unwrap();
            prev.clone_from(&old.hash);
        }
        with_pool!(&db, pool => sqlx::query("UPDATE chain_head SET sequence = 4, hash = $1 WHERE id = 1")
            .bind(&prev).execute(pool).await.map(drop)).unwrap();
        let store = Store::new(db.clone());
        store
            .append(&[entry("today-1"), entry("today-2")])
            .await
            .unwrap();

        let listeners = Listeners {
            grpc: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        tokio::time::timeout(
            LIMIT,
            ironmesh_audit::run(config.clone(), listeners, std::future::ready(())),
        )
        .await
        .expect("audit stops in time")
        .expect("audit ran");

        let anchor = store.latest_anchor().await.unwrap().expect("retention ran");
        assert_eq!((anchor.sequence, &anchor.hash), (4, &prev), "{backend:?}");
        let head = store
            .latest_checkpoint()
            .await
            .unwrap()
            .expect("the head was signed");
        assert_eq!(head.sequence, 6);
        let left: Vec<i64> = with_pool!(&db, pool => sqlx::query_scalar("SELECT sequence FROM entries ORDER BY sequence").fetch_all(pool).await.unwrap());
        assert_eq!(left, [5, 6], "{backend:?}");
        let sealing = ironmesh_audit::keys::sealing(&config).unwrap();
        let audit = Audit::new(
            store.clone(),
            ironmesh_audit::keys::SigningKeys::new(store, sealing),
        );
        let found = audit
            .verify(0, 0, tokio::time::Instant::now() + LIMIT)
            .await
            .unwrap();
        assert_eq!(
            (
                found.first_broken,
                found.start_sequence,
                found.anchor_sequence,
                found.checkpoint_sequence
            ),
            (None, 5, 4, 6),
            "{backend:?}"
        );
        db.close().await;
        if let Some(database) = database {
            database.drop_database().await;
        }
    }
}
