//! AdjustStock and GetStock on both backends: the request rules, the ledger row each
//! adjustment leaves (who, when, why, levels after), idempotency keys (a repeat returns the
//! original result and adjusts once; the same key with another body is INVALID_ARGUMENT), a
//! removal below reserved refused, the ceiling that keeps the sum from overflowing, and the
//! `inventory.stock.adjusted` event with its payload.

mod common;

use common::{One, create, reserve, restock, slow_sweeper, store};
use ironmesh_proto::ironmesh::inventory::v1 as pb;
use ironmesh_runtime::with_pool;
use ironmesh_testkit::{authed, backends, violations};
use prost::Message as _;

fn adjust(product_id: &str, delta: i64, key: &str) -> pb::AdjustStockRequest {
    pb::AdjustStockRequest {
        product_id: product_id.to_owned(),
        delta,
        reason: pb::AdjustmentReason::Restock.into(),
        note: "delivery 42".into(),
        idempotency_key: key.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_are_checked_recorded_and_idempotent() {
    for backend in backends() {
        let one = One::start_with(backend, slow_sweeper).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let a = create(&mut client, &token, "A", 100).await;

        let bad = pb::AdjustStockRequest {
            product_id: "x".into(),
            delta: 0,
            reason: 0,
            note: "n".repeat(501),
            idempotency_key: "not-a-uuid".into(),
        };
        let status = client.adjust_stock(one.op(bad)).await.unwrap_err();
        assert_eq!(
            violations(&status),
            ["product_id", "delta", "reason", "note", "idempotency_key"],
            "{backend:?}"
        );
        let status = client
            .adjust_stock(one.op(adjust(&a.product_id, 1_000_000_001, "")))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["delta"]);
        let status = client
            .adjust_stock(one.op(adjust(&uuid::Uuid::now_v7().to_string(), 1, "")))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);

        // With a key: applied once, the repeat answers with the original levels.
        let key = uuid::Uuid::now_v7().to_string();
        let first = client
            .adjust_stock(one.op(adjust(&a.product_id, 10, &key)))
            .await
            .unwrap()
            .into_inner()
            .stock
            .unwrap();
        assert_eq!(
            (first.on_hand, first.reserved, first.available),
            (10, 0, 10)
        );
        restock(&mut client, &token, &a.product_id, 5).await;
        let repeat = client
            .adjust_stock(one.op(adjust(&a.product_id, 10, &key)))
            .await
            .unwrap()
            .into_inner()
            .stock
            .unwrap();
        assert_eq!(repeat, first, "the original result, not today's levels");
        let now = common::stock(&mut client, &token, &a.product_id).await;
        assert_eq!(now.on_hand, 15, "adjusted once");
        let status = client
            .adjust_stock(one.op(adjust(&a.product_id, 11, &key)))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["idempotency_key"]);

        // Customers cannot adjust stock.
        let other = one.mesh.customer().await;
        let denied = client
            .adjust_stock(authed(adjust(&a.product_id, 1, &key), &other.access_token))
            .await
            .unwrap_err();
        assert_eq!(
            denied.code(),
            tonic::Code::PermissionDenied,
            "operators only"
        );

        // Below reserved: refused, nothing changes.
        let mut orders = one.orders();
        orders
            .reserve(reserve(&[(&a.product_id, 12)]))
            .await
            .unwrap();
        let mut removal = adjust(&a.product_id, -4, "");
        removal.reason = pb::AdjustmentReason::Shrinkage.into();
        let status = client
            .adjust_stock(one.op(removal.clone()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            ironmesh_testkit::preconditions(&status),
            [("STOCK_BELOW_RESERVED".to_owned(), "A".to_owned())]
        );
        removal.delta = -3;
        let left = client
            .adjust_stock(one.op(removal))
            .await
            .unwrap()
            .into_inner()
            .stock
            .unwrap();
        assert_eq!((left.on_hand, left.reserved, left.available), (12, 12, 0));

        // The ceiling: far below i64::MAX, so the sum never overflows in SQL.
        for _ in 0..3 {
            restock(&mut client, &token, &a.product_id, 1_000_000_000).await;
        }
        let db = store(one.mesh.config()).await;
        with_pool!(&db, pool => sqlx::query("UPDATE stock SET on_hand = 999999999999999999 WHERE product_id = $1")
            .bind(&a.product_id).execute(pool).await.unwrap().rows_affected());
        let status = client
            .adjust_stock(one.op(adjust(&a.product_id, 1_000_000_000, "")))
            .await
            .unwrap_err();
        assert_eq!(ironmesh_testkit::preconditions(&status)[0].0, "STOCK_LIMIT");

        // The ledger: one row per applied adjustment, with the actor and the levels after.
        let rows: Vec<(i64, String, String, String, i64, i64)> = with_pool!(&db, pool => sqlx::query_as(
            "SELECT delta, reason, note, actor, on_hand_after, reserved_after FROM stock_adjustments \
             WHERE product_id = $1 ORDER BY adjusted_at, id"
        ).bind(&a.product_id).fetch_all(pool).await.unwrap());
        db.close().await;
        let deltas: Vec<i64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(
            deltas,
            [10, 5, -3, 1_000_000_000, 1_000_000_000, 1_000_000_000]
        );
        assert_eq!(rows[0].1, "RESTOCK");
        assert_eq!(rows[2].1, "SHRINKAGE");
        assert_eq!(rows[0].2, "delivery 42");
        assert!(rows.iter().all(|r| r.3 == one.admin.user_id));
        assert_eq!((rows[2].4, rows[2].5), (12, 12));

        // The events: one per applied adjustment, with the stock after it.
        let db = store(one.mesh.config()).await;
        let events: Vec<(String, String, Vec<u8>)> = with_pool!(&db, pool => sqlx::query_as(
            "SELECT actor, content_type, payload FROM outbox_events WHERE event_type = 'inventory.stock.adjusted' ORDER BY seq"
        ).fetch_all(pool).await.unwrap());
        db.close().await;
        assert_eq!(events.len(), 6);
        assert!(
            events[0]
                .1
                .ends_with("proto=ironmesh.inventory.v1.StockAdjusted")
        );
        let first_event = pb::StockAdjusted::decode(events[0].2.as_slice()).unwrap();
        assert_eq!(first_event.delta, 10);
        assert_eq!(first_event.reason(), pb::AdjustmentReason::Restock);
        assert_eq!(first_event.stock.unwrap().on_hand, 10);
        assert!(uuid::Uuid::parse_str(&first_event.adjustment_id).is_ok());
        assert_eq!(events[0].0, one.admin.user_id);

        // GetStock needs a login; any user may read it.
        let status = client
            .get_stock(pb::GetStockRequest {
                product_id: a.product_id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let seen = common::stock(&mut client, &other.access_token, &a.product_id).await;
        assert_eq!(seen.reserved, 12);
        one.stop().await;
    }
}

/// Concurrent repeats of one keyed adjustment apply it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_a_key_adjust_once() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let a = create(&mut client, &token, "A", 100).await;
        let key = uuid::Uuid::now_v7().to_string();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let mut client = client.clone();
            let request = authed(adjust(&a.product_id, 3, &key), &token);
            tasks.spawn(async move { client.adjust_stock(request).await.unwrap().into_inner() });
        }
        let mut answers = Vec::new();
        while let Some(done) = tasks.join_next().await {
            answers.push(done.unwrap().stock.unwrap());
        }
        assert!(answers.iter().all(|s| s == &answers[0]), "{backend:?}");
        assert_eq!(
            common::stock(&mut client, &token, &a.product_id)
                .await
                .on_hand,
            3
        );
        one.stop().await;
    }
}
