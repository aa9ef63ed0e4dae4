//! The write path: an event exists exactly when its transaction commits, with id, version,
//! occurred_at and trace filled; versions count per aggregate without gaps under concurrency.

#[macro_use]
mod support;

use std::collections::BTreeSet;

use ironmesh_outbox::{EventTrace, MAX_PAYLOAD_BYTES, NewEvent, Outbox, OutboxError};
use ironmesh_runtime::with_pool;
use support::{Backend, TestDb, TestSink, event, fast_config, start_relay, write};

both_backends!(
    rolled_back_event_is_never_delivered_and_committed_one_once,
    concurrent_writers_get_consecutive_versions,
    oversized_payload_is_refused,
);

/// An event written in a transaction that rolls back leaves no row and reaches no one; a
/// committed one arrives once, with its id (UUIDv7), version, occurred_at, source and trace.
async fn rolled_back_event_is_never_delivered_and_committed_one_once(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let sink = TestSink::start().await;
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let relay = start_relay(&outbox, &db, fast_config());

    let rolled_back = with_pool!(&db, pool => {
        let mut tx = pool.begin().await.unwrap();
        let written = outbox.write(&mut *tx, event("svc.thing.created", "a")).await.unwrap();
        tx.rollback().await.unwrap();
        written
    });
    outbox.wake();

    let trace = EventTrace {
        request_id: "req-1".into(),
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        tracestate: "k=v".into(),
    };
    let committed = write(
        &db,
        &outbox,
        event("svc.thing.created", "a").with_trace(trace.clone()),
    )
    .await;
    // A later event proves the relay has gone past everything written before it.
    let last = write(&db, &outbox, event("svc.thing.updated", "b")).await;
    sink.wait_until("both committed events", |s| {
        s.has_accepted(&committed.id) && s.has_accepted(&last.id)
    })
    .await;

    sink.with_state(|s| {
        assert_eq!(
            s.receipts.len(),
            2,
            "only the committed events arrive, once each"
        );
        assert_eq!(s.receipts_of(&rolled_back.id), 0);
        let got = s.accepted.iter().find(|e| e.id == committed.id).unwrap();
        assert_eq!(got, &committed, "delivered exactly as written");
    });
    let id = uuid::Uuid::parse_str(&committed.id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(committed.source, "svc");
    assert_eq!(
        committed.aggregate_version, 1,
        "the rolled-back write did not use up a version"
    );
    assert!(committed.occurred_at.unwrap().seconds > 0);
    assert_eq!(committed.request_id, trace.request_id);
    assert_eq!(committed.traceparent, trace.traceparent);
    assert_eq!(committed.tracestate, trace.tracestate);
    support::eventually("both pairs settled as delivered", || async {
        support::states(&db, "audit").await.get("delivered") == Some(&2)
    })
    .await;

    relay.stop().await;
    test.drop_database().await;
}

/// Twenty tasks writing about one aggregate at once get versions 1..=20, none twice, none
/// skipped.
async fn concurrent_writers_get_consecutive_versions(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let outbox = Outbox::new("svc", Vec::new());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (db, outbox) = (db.clone(), outbox.clone());
        tasks.spawn(async move {
            write(&db, &outbox, event("svc.thing.updated", "hot"))
                .await
                .aggregate_version
        });
    }
    let versions: Vec<i64> = tokio::time::timeout(support::LIMIT, tasks.join_all())
        .await
        .expect("writers finish");
    let unique: BTreeSet<i64> = versions.iter().copied().collect();
    assert_eq!(unique.len(), 20, "no duplicates: {versions:?}");
    assert_eq!(unique, (1..=20).collect(), "no gaps");
    // Another aggregate starts at 1.
    let other = write(&db, &outbox, event("svc.thing.updated", "cold")).await;
    assert_eq!(other.aggregate_version, 1);
    test.drop_database().await;
}

/// A payload over 256 KiB is a typed error and writes nothing; exactly 256 KiB is fine.
async fn oversized_payload_is_refused(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let outbox = Outbox::new("svc", Vec::new());
    let big = |len| {
        NewEvent::new(
            "svc.thing.created",
            "thing",
            "a",
            "user-1",
            "application/octet-stream",
            vec![7; len],
        )
    };
    let result = with_pool!(&db, pool => {
        let mut tx = pool.begin().await.unwrap();
        let result = outbox.write(&mut *tx, big(MAX_PAYLOAD_BYTES + 1)).await;
        tx.commit().await.unwrap();
        result
    });
    assert!(matches!(
        result,
        Err(OutboxError::PayloadTooLarge { size, max }) if size == MAX_PAYLOAD_BYTES + 1 && max == MAX_PAYLOAD_BYTES
    ));
    let fits = write(&db, &outbox, big(MAX_PAYLOAD_BYTES)).await;
    assert_eq!(
        fits.aggregate_version, 1,
        "the refused write took no version"
    );
    test.drop_database().await;
}
