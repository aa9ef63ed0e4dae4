//! Retention: fully delivered events go after the retention period (by the relay's own loop or
//! on demand), dead and pending ones stay, versions keep counting; old inbox ids go too.

#[macro_use]
mod support;

use std::time::Duration;

use chrono::Utc;
use ironmesh_outbox::{Inbox, Outbox, RelayConfig, purge_delivered, purge_inbox};
use ironmesh_proto::ironmesh::events::v1::Event;
use ironmesh_runtime::{Database, with_pool};
use support::{Backend, TestDb, TestSink, Verdict, event, fast_config, start_relay, write};

both_backends!(
    delivered_events_are_purged_and_the_rest_kept,
    the_relay_purges_on_its_own,
    old_inbox_ids_are_purged,
    the_inbox_retention_loop_purges_on_its_own,
);

async fn event_count(db: &Database) -> i64 {
    let (n,): (i64,) = with_pool!(db, pool => sqlx::query_as("SELECT COUNT(*) FROM outbox_events")
        .fetch_one(pool)
        .await
        .unwrap());
    n
}

/// After delivery: purging with a cutoff past every event removes the delivered ones and the
/// one nobody subscribed to, keeps the dead letter (replayable), and the aggregate's next
/// version follows the purged ones.
async fn delivered_events_are_purged_and_the_rest_kept(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let sink = TestSink::start().await;
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
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["svc.*"])]);
    let relay = start_relay(&outbox, &db, fast_config());
    for _ in 0..3 {
        write(&db, &outbox, event("svc.thing.updated", "a")).await;
    }
    let dead = write(&db, &outbox, event("svc.thing.bad", "b")).await;
    write(&db, &outbox, event("other.thing.updated", "c")).await;
    support::eventually("3 delivered and 1 dead", || async {
        let states = support::states(&db, "audit").await;
        states.get("delivered") == Some(&3) && states.get("dead") == Some(&1)
    })
    .await;
    relay.stop().await;

    let before = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(
        purge_delivered(&db, before).await.unwrap(),
        0,
        "nothing that old"
    );
    let after = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(purge_delivered(&db, after).await.unwrap(), 4);
    assert_eq!(event_count(&db).await, 1);
    let states = support::states(&db, "audit").await;
    assert_eq!(
        states.get("delivered"),
        None,
        "their delivery rows went with them"
    );
    let page = ironmesh_outbox::dead_letters::list(&db, None, 10, "")
        .await
        .unwrap();
    assert_eq!(page.dead_letters[0].event, dead);

    let next = write(&db, &outbox, event("svc.thing.updated", "a")).await;
    assert_eq!(next.aggregate_version, 4);
    test.drop_database().await;
}

/// With a zero retention the relay's retention loop removes delivered events by itself.
async fn the_relay_purges_on_its_own(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let sink = TestSink::start().await;
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let config = RelayConfig {
        retention: Duration::ZERO,
        purge_every: Duration::from_millis(20),
        ..fast_config()
    };
    let relay = start_relay(&outbox, &db, config);
    let written = write(&db, &outbox, event("svc.thing.updated", "a")).await;
    sink.wait_until("the event", |s| s.has_accepted(&written.id))
        .await;
    support::eventually("the delivered event purged", || async {
        event_count(&db).await == 0
    })
    .await;
    relay.stop().await;
    test.drop_database().await;
}

/// Inbox ids received before the cutoff go; an id purged is new again (which is why the
/// default keeps them 30 days, longer than any redelivery).
async fn old_inbox_ids_are_purged(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let inbox = Inbox::new("consumer");
    let event = Event {
        id: uuid::Uuid::now_v7().to_string(),
        source: "svc".into(),
        ..Event::default()
    };
    let record = || async {
        with_pool!(&db, pool => {
            let mut tx = pool.begin().await.unwrap();
            let new = inbox.record(&mut *tx, &event).await.unwrap();
            tx.commit().await.unwrap();
            new
        })
    };
    assert!(record().await);
    let past = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(purge_inbox(&db, past).await.unwrap(), 0);
    assert!(!record().await);
    let future = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(purge_inbox(&db, future).await.unwrap(), 1);
    assert!(record().await, "purged ids are forgotten");
    assert_eq!(
        ironmesh_outbox::inbox::DEFAULT_INBOX_RETENTION,
        Duration::from_secs(30 * 24 * 3600)
    );
    test.drop_database().await;
}

/// The consumer's retention loop with a zero retention forgets a recorded id by itself, and
/// stops when cancelled.
async fn the_inbox_retention_loop_purges_on_its_own(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let inbox = Inbox::new("consumer");
    let event = Event {
        id: uuid::Uuid::now_v7().to_string(),
        source: "svc".into(),
        ..Event::default()
    };
    with_pool!(&db, pool => {
        let mut tx = pool.begin().await.unwrap();
        assert!(inbox.record(&mut *tx, &event).await.unwrap());
        tx.commit().await.unwrap();
    });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(ironmesh_outbox::inbox::run_retention(
        db.clone(),
        Duration::ZERO,
        Duration::from_millis(20),
        shutdown.clone(),
    ));
    support::eventually("the inbox id purged", || async {
        let (n,): (i64,) = with_pool!(&db, pool => sqlx::query_as("SELECT COUNT(*) FROM inbox")
            .fetch_one(pool)
            .await
            .unwrap());
        n == 0
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(support::LIMIT, task)
        .await
        .expect("retention loop stops")
        .unwrap();
    test.drop_database().await;
}
