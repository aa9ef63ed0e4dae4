//! The audit service end to end, on both storage backends. Append and Deliver are internal
//! (service principals only, which no test can mint yet), so they are driven through the crate's
//! API against the same database the running service uses; Query, GetEntry and VerifyChain go
//! through gRPC with an administrator's token, and a user calling an internal method is refused.

mod common;

use common::{LIMIT, bounded, entry, mesh, verify};
use ironmesh_audit::domain::{AuditError, NewEntry, Outcome};
use ironmesh_audit::store::Store;
use ironmesh_outbox::Inbox;
use ironmesh_proto::ironmesh::audit::v1 as pb;
use ironmesh_proto::ironmesh::events::v1 as events;
use ironmesh_runtime::{Database, ServiceKind};
use ironmesh_testkit::{Backend, TestMesh, authed, backends};
use tonic::Code;

async fn query(mesh: &TestMesh, admin: &str, request: pb::QueryRequest) -> pb::QueryResponse {
    mesh.audit()
        .await
        .query(authed(request, admin))
        .await
        .unwrap()
        .into_inner()
}

/// Every entry matching `request`, following page tokens.
async fn query_all(
    mesh: &TestMesh,
    admin: &str,
    mut request: pb::QueryRequest,
) -> Vec<pb::AuditEntry> {
    let mut all = Vec::new();
    loop {
        let page = query(mesh, admin, request.clone()).await;
        all.extend(page.entries);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
}

use ironmesh_testkit::violations;

/// 50 callers append at once, half through the service's pool and half through a second pool
/// (another replica): the log is one chain, sequences 1..=100 with no gap, each batch's two
/// entries adjacent and in order, and VerifyChain passes over all of it.
#[tokio::test]
async fn concurrent_appends_form_one_linear_chain() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let other = Database::connect(&mesh.config().database_url(ServiceKind::Audit), "audit")
            .await
            .unwrap();
        let replicas = [Store::new(db), Store::new(other)];
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = replicas[i % 2].clone();
            tasks.push(tokio::spawn(async move {
                let batch = [entry(&format!("k{i}-a")), entry(&format!("k{i}-b"))];
                bounded(store.append(&batch)).await.unwrap()
            }));
        }
        for task in tasks {
            let stored = task.await.unwrap();
            assert_eq!(stored[1].sequence, stored[0].sequence + 1, "{backend:?}");
            assert_eq!(stored[1].prev_hash, stored[0].hash);
        }
        let all = query_all(
            &mesh,
            &admin,
            pb::QueryRequest {
                page_size: 30,
                ..Default::default()
            },
        )
        .await;
        let sequences: Vec<i64> = all.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=100).collect::<Vec<_>>(), "{backend:?}");
        assert_eq!(all[0].prev_hash, vec![0; 32]);
        let verified = verify(&mesh, &admin, 0, 0).await;
        assert!(verified.ok, "{backend:?}: {verified:?}");
        assert_eq!(verified.entries_checked, 100);
        assert_eq!((verified.start_sequence, verified.end_sequence), (1, 100));
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// An idempotency key already recorded returns the existing entry instead of appending again,
/// across calls and within one batch.
#[tokio::test]
async fn idempotency_key_dedupes() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let audit = common::audit(&mesh, db);
        let first = bounded(audit.append(vec![entry("a"), entry("b")]))
            .await
            .unwrap();
        let mut retried_b = entry("b");
        retried_b.actor = "someone-else".into();
        let second = bounded(audit.append(vec![retried_b, entry("c"), entry("c")]))
            .await
            .unwrap();
        assert_eq!(second[0], first[1], "{backend:?}: b is the stored entry");
        assert_eq!(second[1].sequence, 3);
        assert_eq!(second[2], second[1], "c twice in one batch is one entry");
        let all = query_all(&mesh, &admin, pb::QueryRequest::default()).await;
        assert_eq!(all.len(), 3, "{backend:?}");
        assert!(verify(&mesh, &admin, 0, 0).await.ok);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// The triggers refuse UPDATE and DELETE; with them dropped out of band, an edited row, a
/// deleted row and two swapped rows are each reported by VerifyChain at their sequence.
#[tokio::test]
async fn out_of_band_changes_are_reported_at_their_sequence() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let store = Store::new(db.clone());
        let batch: Vec<NewEntry> = (1..=10).map(|i| entry(&format!("k{i}"))).collect();
        bounded(store.append(&batch)).await.unwrap();
        assert!(verify(&mesh, &admin, 0, 0).await.ok);

        let run = |sql: &'static str| {
            let db = db.clone();
            async move {
                ironmesh_runtime::with_pool!(&db, pool => sqlx::raw_sql(sql).execute(pool).await.map(drop))
            }
        };
        assert!(
            run("UPDATE entries SET actor = 'x' WHERE sequence = 3")
                .await
                .is_err()
        );
        assert!(run("DELETE FROM entries WHERE sequence = 3").await.is_err());
        match backend {
            Backend::Sqlite => {
                run("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete")
            }
            Backend::Postgres => run("DROP TRIGGER entries_no_change ON entries"),
        }
        .await
        .unwrap();

        run("UPDATE entries SET actor = 'mallory' WHERE sequence = 3")
            .await
            .unwrap();
        let found = verify(&mesh, &admin, 0, 0).await;
        assert_eq!(
            (
                found.ok,
                found.first_broken_sequence,
                found.failure_reason.as_str()
            ),
            (false, 3, "hash mismatch"),
            "{backend:?}"
        );

        run("DELETE FROM entries WHERE sequence = 6").await.unwrap();
        let found = verify(&mesh, &admin, 4, 0).await;
        assert_eq!(
            (found.first_broken_sequence, found.failure_reason.as_str()),
            (6, "gap")
        );

        run("UPDATE entries SET sequence = -8 WHERE sequence = 8; \
             UPDATE entries SET sequence = 8 WHERE sequence = 9; \
             UPDATE entries SET sequence = 9 WHERE sequence = -8")
        .await
        .unwrap();
        // From 8: its anchor is entry 7 (entry 6 is gone, so a range from 7 would stop there).
        let found = verify(&mesh, &admin, 8, 0).await;
        assert_eq!(
            (found.first_broken_sequence, found.failure_reason.as_str()),
            (8, "prev_hash mismatch"),
            "{backend:?}"
        );
        // A value no entry can hold is reported too, not answered with INTERNAL.
        run("UPDATE entries SET outcome = 99 WHERE sequence = 2")
            .await
            .unwrap();
        let found = verify(&mesh, &admin, 0, 0).await;
        assert_eq!(
            (found.first_broken_sequence, found.failure_reason.as_str()),
            (2, "unreadable entry"),
            "{backend:?}"
        );
        // The untouched head of the log still verifies as a range, and says what it covered.
        let head = verify(&mesh, &admin, 1, 1).await;
        assert!(head.ok, "{backend:?}: {head:?}");
        assert_eq!(
            (head.start_sequence, head.end_sequence, head.entries_checked),
            (1, 1, 1)
        );
        db.close().await;
        assert!(mesh.shutdown().await.is_empty());
    }
}

fn event(id: &str, kind: &str) -> events::Event {
    events::Event {
        id: id.into(),
        r#type: kind.into(),
        source: "auth".into(),
        aggregate_type: "user".into(),
        aggregate_id: format!("user-{id}"),
        aggregate_version: 1,
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        actor: "user-7".into(),
        content_type: "application/json".into(),
        request_id: format!("req-{id}"),
        ..Default::default()
    }
}

/// Delivering the same events twice records each once: the first answer accepts them, the
/// second calls them all duplicates, an event that cannot be an entry is rejected (not
/// retryable) both times, and each accepted event is one entry derived from it.
#[tokio::test]
async fn deliver_twice_records_each_event_once() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let audit = common::audit(&mesh, db);
        let inbox = Inbox::new("audit");
        let batch = vec![
            event("e1", "auth.user.registered"),
            event("e2", "auth.user.logged_in"),
            event("e3", "auth.user.deleted"),
            event("bad", "not-a-type"),
        ];
        let first = bounded(ironmesh_audit::grpc::deliver(&audit, &inbox, &batch))
            .await
            .unwrap();
        assert_eq!(first.accepted_ids, ["e1", "e2", "e3"], "{backend:?}");
        assert!(first.duplicate_ids.is_empty());
        assert_eq!(first.rejected.len(), 1);
        assert!(!first.rejected[0].retryable);
        let second = bounded(ironmesh_audit::grpc::deliver(&audit, &inbox, &batch))
            .await
            .unwrap();
        assert!(second.accepted_ids.is_empty(), "{backend:?}");
        assert_eq!(second.duplicate_ids, ["e1", "e2", "e3"]);
        assert_eq!(second.rejected[0].event_id, "bad");

        let entries = query_all(
            &mesh,
            &admin,
            pb::QueryRequest {
                action: "auth.*".into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(entries.len(), 3, "{backend:?}");
        let e2 = &entries[1];
        assert_eq!(e2.action, "auth.user.logged_in");
        assert_eq!(e2.resource, "user/user-e2");
        assert_eq!(e2.actor, "user-7");
        assert_eq!(e2.request_id, "req-e2");
        assert_eq!(e2.idempotency_key, "e2");
        assert_eq!(e2.outcome, pb::Outcome::Success as i32);
        assert!(verify(&mesh, &admin, 0, 0).await.ok);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Append and Deliver are internal: even an administrator's user token is PERMISSION_DENIED;
/// Query needs an operator, so a customer's token is refused it.
#[tokio::test]
async fn internal_methods_refuse_user_tokens() {
    for backend in backends() {
        let (mesh, admin, _db) = mesh(backend).await;
        let append = mesh
            .audit()
            .await
            .append(authed(pb::AppendRequest::default(), &admin))
            .await
            .unwrap_err();
        assert_eq!(append.code(), Code::PermissionDenied, "{backend:?}");
        let mut sink = events::event_sink_service_client::EventSinkServiceClient::new(
            mesh.channel(ServiceKind::Audit).await,
        );
        let deliver = sink
            .deliver(authed(events::DeliverRequest::default(), &admin))
            .await
            .unwrap_err();
        assert_eq!(deliver.code(), Code::PermissionDenied, "{backend:?}");
        // Reads are for operators: a customer is refused them too.
        let customer = mesh.customer().await.access_token;
        let read = mesh
            .audit()
            .await
            .query(authed(pb::QueryRequest::default(), &customer))
            .await
            .unwrap_err();
        assert_eq!(read.code(), Code::PermissionDenied, "{backend:?}");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Bad input is INVALID_ARGUMENT naming each bad field: in Append (below gRPC) and in Query,
/// GetEntry and VerifyChain (through it); a missing entry is NOT_FOUND.
#[tokio::test]
async fn validation_errors_carry_field_violations() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let audit = common::audit(&mesh, db);
        let mut bad = entry("");
        bad.action = "cancel".into();
        bad.resource = "no-slash".into();
        bad.actor.clear();
        let Err(AuditError::Invalid(found)) = audit.append(vec![entry("ok"), bad]).await else {
            panic!("expected violations")
        };
        let fields: Vec<&str> = found.iter().map(|v| v.field.as_str()).collect();
        for field in [
            "entries[1].actor",
            "entries[1].action",
            "entries[1].resource",
            "entries[1].idempotency_key",
        ] {
            assert!(fields.contains(&field), "{backend:?}: {fields:?}");
        }
        assert!(matches!(
            audit.append(vec![]).await,
            Err(AuditError::Invalid(_))
        ));
        assert!(
            query_all(&mesh, &admin, pb::QueryRequest::default())
                .await
                .is_empty(),
            "nothing stored"
        );

        let mut client = mesh.audit().await;
        let status = client
            .query(authed(
                pb::QueryRequest {
                    page_size: -1,
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violations(&status), ["page_size"]);
        let status = client
            .query(authed(
                pb::QueryRequest {
                    page_token: "garbage".into(),
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["page_token"]);
        let status = client
            .get_entry(authed(pb::GetEntryRequest { sequence: 0 }, &admin))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["sequence"]);
        let status = client
            .get_entry(authed(pb::GetEntryRequest { sequence: 5 }, &admin))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = client
            .verify_chain(authed(
                pb::VerifyChainRequest {
                    start_sequence: 5,
                    end_sequence: 2,
                },
                &admin,
            ))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["end_sequence"]);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Query's filters each narrow the result and combine with AND; newest_first reverses the
/// order; a page token used with other filters is refused; GetEntry returns one entry whole.
#[tokio::test]
async fn query_filters_and_get_entry() {
    for backend in backends() {
        let (mesh, admin, db) = mesh(backend).await;
        let store = Store::new(db);
        let at = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
        let mut batch = Vec::new();
        for i in 0..6_i64 {
            let mut e = entry(&format!("q{i}"));
            e.actor = format!("user-{}", i % 2);
            e.action = if i < 3 {
                "auth.user.login".into()
            } else {
                "orders.order.cancel".into()
            };
            e.resource = format!("orders/{}", i % 3);
            e.outcome = if i == 4 {
                Outcome::Denied
            } else {
                Outcome::Success
            };
            e.occurred_at = at(1_700_000_000 + i * 60);
            batch.push(e);
        }
        let stored = bounded(store.append(&batch)).await.unwrap();
        let seqs =
            |entries: Vec<pb::AuditEntry>| entries.iter().map(|e| e.sequence).collect::<Vec<_>>();
        let q = |request: pb::QueryRequest| query_all(&mesh, &admin, request);
        assert_eq!(
            seqs(
                q(pb::QueryRequest {
                    actor: "user-1".into(),
                    ..Default::default()
                })
                .await
            ),
            [2, 4, 6]
        );
        assert_eq!(
            seqs(
                q(pb::QueryRequest {
                    action: "auth.*".into(),
                    ..Default::default()
                })
                .await
            ),
            [1, 2, 3]
        );
        assert_eq!(
            seqs(
                q(pb::QueryRequest {
                    action: "orders.order.cancel".into(),
                    ..Default::default()
                })
                .await
            ),
            [4, 5, 6]
        );
        assert_eq!(
            seqs(
                q(pb::QueryRequest {
                    action: "orders.*".into(),
                    actor: "user-0".into(),
                    ..Default::default()
                })
                .await
            ),
            [5]
        );
        assert_eq!(
            seqs(
                q(pb::QueryRequest {
                    resource: "orders/1".into(),
                    ..Default::default()
                })
                .await
            ),
            [2, 5]
        );
        assert_eq!(
            seqs(
                q(pb::QueryRequest {
                    outcome: pb::Outcome::Denied as i32,
                    ..Default::default()
                })
                .await
            ),
            [5]
        );
        let window = pb::QueryRequest {
            start_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_060,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_180,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(seqs(q(window).await), [2, 3]);
        // Bounds beyond what the store's times hold (year 1, year 9999) are valid: no limit.
        let wide = pb::QueryRequest {
            start_time: Some(prost_types::Timestamp {
                seconds: -62_135_596_800,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: 253_402_300_799,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(seqs(q(wide).await), [1, 2, 3, 4, 5, 6], "{backend:?}");
        let newest = pb::QueryRequest {
            newest_first: true,
            page_size: 4,
            ..Default::default()
        };
        let page = query(&mesh, &admin, newest.clone()).await;
        assert_eq!(seqs(page.entries), [6, 5, 4, 3], "{backend:?}");
        assert_eq!(seqs(q(newest).await), [6, 5, 4, 3, 2, 1]);
        let status = mesh
            .audit()
            .await
            .query(authed(
                pb::QueryRequest {
                    page_token: page.next_page_token,
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["page_token"]);

        let got = mesh
            .audit()
            .await
            .get_entry(authed(pb::GetEntryRequest { sequence: 2 }, &admin))
            .await
            .unwrap()
            .into_inner()
            .entry
            .unwrap();
        assert_eq!(
            got,
            ironmesh_audit::grpc::entry(stored[1].clone()),
            "{backend:?}"
        );
        assert_eq!(got.details.get("reason").map(String::as_str), Some("asked"));
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// VerifyChain's work is bounded by its deadline: with no time left it checks nothing and says
/// so (the range it covered is empty), with time it covers the whole log.
#[tokio::test]
async fn verification_stops_at_the_deadline() {
    for backend in backends() {
        let (mesh, _admin, db) = mesh(backend).await;
        let audit = common::audit(&mesh, db);
        let batch: Vec<NewEntry> = (1..=5).map(|i| entry(&format!("d{i}"))).collect();
        bounded(audit.append(batch)).await.unwrap();
        let none = bounded(audit.verify(1, 0, tokio::time::Instant::now()))
            .await
            .unwrap();
        assert_eq!(
            (none.entries_checked, none.end_sequence),
            (0, 0),
            "{backend:?}"
        );
        assert!(none.first_broken.is_none());
        let later = tokio::time::Instant::now() + LIMIT;
        let all = bounded(audit.verify(2, 0, later)).await.unwrap();
        assert_eq!(
            (all.start_sequence, all.end_sequence, all.entries_checked),
            (2, 5, 4)
        );
        assert!(mesh.shutdown().await.is_empty());
    }
}
