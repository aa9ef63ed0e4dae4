//! The outbox's series in the shared registry: pending and oldest-pending age per subscriber,
//! delivered / failed / dead-lettered totals, inbox duplicates. Each test uses its own `service`
//! label and compares values it caused.

#[macro_use]
mod support;

use ironmesh_interceptors::metrics::Metrics;
use ironmesh_outbox::{Inbox, Outbox};
use ironmesh_runtime::with_pool;
use support::{Backend, TestDb, TestSink, Verdict, event, fast_config, start_relay, write};

both_backends!(relay_and_inbox_series_count_what_happened);

/// The value of `name` for the series whose labels include every one of `labels`.
fn value(service: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = Metrics::global().render(Some(service));
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Sink down: pending rises to 3 with a positive age and failures are counted; sink up: 3
/// delivered and pending back to 0; a refused event counts once as dead-lettered; an inbox
/// duplicate counts once.
async fn relay_and_inbox_series_count_what_happened(backend: Backend) {
    let service = format!("metrics-{}", uuid::Uuid::now_v7().simple());
    let pair = [("service", service.as_str()), ("subscriber", "audit")];
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let mut sink = TestSink::start().await;
    sink.stop().await;
    sink.set_rule(|e, _| {
        if e.r#type == "svc.thing.bad" {
            Verdict::Reject {
                reason: "no".into(),
                retryable: false,
            }
        } else {
            Verdict::Accept
        }
    });
    let outbox = Outbox::new(&service, vec![sink.subscriber("audit", &["*"])]);
    let relay = start_relay(&outbox, &db, fast_config());
    for _ in 0..3 {
        write(&db, &outbox, event("svc.thing.updated", "a")).await;
    }
    support::eventually(
        "pending gauge at 3, an old pending pair, failures",
        || async {
            value(&service, "ironmesh_outbox_pending", &pair) == 3.0
                && value(
                    &service,
                    "ironmesh_outbox_oldest_pending_age_seconds",
                    &pair,
                ) > 0.0
                && value(&service, "ironmesh_outbox_failed_total", &pair) >= 1.0
        },
    )
    .await;
    assert_eq!(
        value(&service, "ironmesh_outbox_delivered_total", &pair),
        0.0
    );

    sink.restart().await;
    write(&db, &outbox, event("svc.thing.bad", "b")).await;
    support::eventually("3 delivered, 1 dead, nothing pending", || async {
        value(&service, "ironmesh_outbox_delivered_total", &pair) == 3.0
            && value(&service, "ironmesh_outbox_dead_lettered_total", &pair) == 1.0
            && value(&service, "ironmesh_outbox_pending", &pair) == 0.0
    })
    .await;
    relay.stop().await;

    let inbox = Inbox::new(&service);
    let seen = ironmesh_proto::ironmesh::events::v1::Event {
        id: uuid::Uuid::now_v7().to_string(),
        source: "producer".into(),
        ..Default::default()
    };
    for _ in 0..2 {
        with_pool!(&db, pool => {
            let mut tx = pool.begin().await.unwrap();
            inbox.record(&mut *tx, &seen).await.unwrap();
            tx.commit().await.unwrap();
        });
    }
    let dup = [("service", service.as_str()), ("source", "producer")];
    assert_eq!(
        value(&service, "ironmesh_inbox_duplicates_total", &dup),
        1.0
    );
    test.drop_database().await;
}
