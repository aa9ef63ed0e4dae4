//! The relay against a real sink: nothing is lost while a sink is down, a dead subscriber never
//! holds back a live one, per-aggregate order holds through retries, two relays over one outbox
//! deliver each pair once, and exhausted attempts become dead letters.

#[macro_use]
mod support;

use std::collections::HashMap;

use ironmesh_outbox::{Outbox, RelayConfig};
use ironmesh_proto::ironmesh::events::v1::Event;
use support::{Backend, TestDb, TestSink, Verdict, event, fast_config, start_relay, write};

both_backends!(
    nothing_is_lost_while_the_sink_is_down,
    a_dead_subscriber_does_not_hold_back_a_live_one,
    per_aggregate_order_holds_through_retryable_rejections,
    two_relays_over_one_outbox_deliver_each_event_once,
    exhausted_attempts_become_a_dead_letter,
    subscribers_get_only_the_types_they_want,
    a_relay_that_dies_mid_call_holds_its_pairs_only_until_the_lease_ends,
    batches_keep_to_the_configured_limits,
    retries_fall_due_without_waiting_for_the_poll,
);

/// Versions of each aggregate in the order `events` lists them.
fn versions_by_aggregate(events: &[Event]) -> HashMap<String, Vec<i64>> {
    let mut out: HashMap<String, Vec<i64>> = HashMap::new();
    for e in events {
        out.entry(e.aggregate_id.clone())
            .or_default()
            .push(e.aggregate_version);
    }
    out
}

/// Events written while the sink is stopped stay pending (the relay keeps trying); once it
/// serves again every one arrives exactly once.
async fn nothing_is_lost_while_the_sink_is_down(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let mut sink = TestSink::start().await;
    sink.stop().await;
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let relay = start_relay(&outbox, &db, fast_config());

    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            write(
                &db,
                &outbox,
                event("svc.thing.updated", &format!("agg-{}", i % 5)),
            )
            .await
            .id,
        );
    }
    // Every aggregate's head has been tried and failed: the relay is retrying, not stuck.
    support::eventually("a failed attempt on each aggregate's head", || async {
        support::attempted(&db, "audit").await >= 5
    })
    .await;
    assert_eq!(
        support::states(&db, "audit").await.get("pending"),
        Some(&30)
    );

    sink.restart().await;
    sink.wait_until("all 30 events", |s| s.accepted.len() == 30)
        .await;
    sink.with_state(|s| {
        for id in &ids {
            assert_eq!(s.receipts_of(id), 1, "{id} arrived exactly once");
        }
        for (aggregate, versions) in versions_by_aggregate(&s.accepted) {
            assert_eq!(
                versions,
                (1..=6).collect::<Vec<_>>(),
                "order of {aggregate}"
            );
        }
    });
    support::eventually("all pairs delivered", || async {
        support::states(&db, "audit").await.get("delivered") == Some(&30)
    })
    .await;
    relay.stop().await;
    test.drop_database().await;
}

/// With one subscriber's sink down, the other receives every event meanwhile; the down one's
/// pairs wait, pending.
async fn a_dead_subscriber_does_not_hold_back_a_live_one(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let live = TestSink::start().await;
    let mut dead = TestSink::start().await;
    dead.stop().await;
    let outbox = Outbox::new(
        "svc",
        vec![
            dead.subscriber("dead", &["*"]),
            live.subscriber("live", &["*"]),
        ],
    );
    let relay = start_relay(&outbox, &db, fast_config());
    for i in 0..20 {
        write(
            &db,
            &outbox,
            event("svc.thing.updated", &format!("agg-{}", i % 3)),
        )
        .await;
    }
    live.wait_until("all 20 events at the live sink", |s| s.accepted.len() == 20)
        .await;
    let dead_states = support::states(&db, "dead").await;
    assert_eq!(dead_states.get("pending"), Some(&20), "{dead_states:?}");
    assert_eq!(dead.with_state(|s| s.receipts.len()), 0);
    relay.stop().await;
    test.drop_database().await;
}

/// The sink refuses version 2 of one aggregate (retryably) three times. Versions 3.. of that
/// aggregate are not sent before 2 is accepted, while another aggregate flows meanwhile.
async fn per_aggregate_order_holds_through_retryable_rejections(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let sink = TestSink::start().await;
    sink.set_rule(|e, seen| {
        if e.aggregate_id == "slow" && e.aggregate_version == 2 && seen <= 3 {
            Verdict::Reject {
                reason: "not yet".into(),
                retryable: true,
            }
        } else {
            Verdict::Accept
        }
    });
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let relay = start_relay(&outbox, &db, fast_config());
    for _ in 0..5 {
        write(&db, &outbox, event("svc.thing.updated", "slow")).await;
        write(&db, &outbox, event("svc.thing.updated", "fast")).await;
    }
    sink.wait_until("all 10 events", |s| s.accepted.len() == 10)
        .await;
    sink.with_state(|s| {
        let accepted = versions_by_aggregate(&s.accepted);
        assert_eq!(accepted["slow"], vec![1, 2, 3, 4, 5]);
        assert_eq!(accepted["fast"], vec![1, 2, 3, 4, 5]);
        // Every receipt of "slow", retries included: 2 three times refused, then accepted, and
        // nothing later than 2 before that.
        let received = versions_by_aggregate(&s.receipts);
        assert_eq!(received["slow"], vec![1, 2, 2, 2, 2, 3, 4, 5]);
    });
    relay.stop().await;
    test.drop_database().await;
}

/// Two relays with their own pools over one database share the work: each event reaches the
/// sink exactly once (never twice, not even concurrently), in per-aggregate order.
async fn two_relays_over_one_outbox_deliver_each_event_once(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db_a = test.connect().await;
    let db_b = test.connect().await;
    let sink = TestSink::start().await;
    let outbox_a = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let outbox_b = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let config = RelayConfig {
        batch_size: 7,
        ..fast_config()
    };
    let relay_a = start_relay(&outbox_a, &db_a, config.clone());
    let relay_b = start_relay(&outbox_b, &db_b, config);

    let mut writers = tokio::task::JoinSet::new();
    for (db, outbox) in [
        (db_a.clone(), outbox_a.clone()),
        (db_b.clone(), outbox_b.clone()),
    ] {
        writers.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..100 {
                ids.push(
                    write(
                        &db,
                        &outbox,
                        event("svc.thing.updated", &format!("agg-{}", i % 10)),
                    )
                    .await
                    .id,
                );
            }
            ids
        });
    }
    let ids: Vec<String> = tokio::time::timeout(support::LIMIT, writers.join_all())
        .await
        .expect("writers finish")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ids.len(), 200);
    sink.wait_until("all 200 events", |s| s.accepted.len() == 200)
        .await;
    sink.with_state(|s| {
        for id in &ids {
            assert_eq!(s.receipts_of(id), 1, "{id} delivered exactly once");
        }
        for (aggregate, versions) in versions_by_aggregate(&s.accepted) {
            assert_eq!(
                versions,
                (1..=20).collect::<Vec<_>>(),
                "order of {aggregate}"
            );
        }
    });
    relay_a.stop().await;
    relay_b.stop().await;
    test.drop_database().await;
}

/// A pair the sink keeps refusing retryably becomes dead after `max_attempts`, with the last
/// reason; the next version of its aggregate then goes ahead.
async fn exhausted_attempts_become_a_dead_letter(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let sink = TestSink::start().await;
    sink.set_rule(|e, _| {
        if e.aggregate_version == 1 {
            Verdict::Reject {
                reason: "busy".into(),
                retryable: true,
            }
        } else {
            Verdict::Accept
        }
    });
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let config = RelayConfig {
        max_attempts: 3,
        ..fast_config()
    };
    let relay = start_relay(&outbox, &db, config);
    let first = write(&db, &outbox, event("svc.thing.updated", "a")).await;
    let second = write(&db, &outbox, event("svc.thing.updated", "a")).await;
    sink.wait_until("version 2 after version 1 died", |s| {
        s.has_accepted(&second.id)
    })
    .await;
    assert_eq!(sink.with_state(|s| s.receipts_of(&first.id)), 3);
    let page = ironmesh_outbox::dead_letters::list(&db, Some("audit"), 10, "")
        .await
        .unwrap();
    assert_eq!(page.dead_letters.len(), 1);
    let dead = &page.dead_letters[0];
    assert_eq!(dead.event.id, first.id);
    assert_eq!(dead.attempts, 3);
    assert!(dead.last_error.contains("busy"), "{}", dead.last_error);
    relay.stop().await;
    test.drop_database().await;
}

/// Patterns choose the pairs: `auth.*` gets auth's events only, an exact type only that type,
/// and a type nobody wants creates no delivery at all.
async fn subscribers_get_only_the_types_they_want(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let prefix = TestSink::start().await;
    let exact = TestSink::start().await;
    let outbox = Outbox::new(
        "svc",
        vec![
            prefix.subscriber("prefix", &["auth.*"]),
            exact.subscriber("exact", &["orders.order.paid"]),
        ],
    );
    let relay = start_relay(&outbox, &db, fast_config());
    let login = write(&db, &outbox, event("auth.user.logged_in", "u")).await;
    let paid = write(&db, &outbox, event("orders.order.paid", "o")).await;
    write(&db, &outbox, event("orders.order.created", "o")).await;
    prefix
        .wait_until("the auth event", |s| s.has_accepted(&login.id))
        .await;
    exact
        .wait_until("the paid event", |s| s.has_accepted(&paid.id))
        .await;
    assert_eq!(prefix.with_state(|s| s.receipts.len()), 1);
    assert_eq!(exact.with_state(|s| s.receipts.len()), 1);
    let total: i64 = support::states(&db, "prefix").await.values().sum::<i64>()
        + support::states(&db, "exact").await.values().sum::<i64>();
    assert_eq!(total, 2, "no delivery rows for the unwanted type");
    relay.stop().await;
    test.drop_database().await;
}

/// A relay killed while its call hangs leaves the pair leased; another relay (a second
/// replica) takes it once the lease has run out and delivers it.
async fn a_relay_that_dies_mid_call_holds_its_pairs_only_until_the_lease_ends(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db_a = test.connect().await;
    let db_b = test.connect().await;
    let sink = TestSink::start().await;
    sink.set_rule(|_, seen| {
        if seen == 1 {
            Verdict::Hang
        } else {
            Verdict::Accept
        }
    });
    let outbox_a = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let outbox_b = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let config = RelayConfig {
        // The lease becomes call_timeout + 1 s; the call that hangs times out long after the
        // relay is killed.
        lease: std::time::Duration::ZERO,
        call_timeout: std::time::Duration::from_millis(500),
        ..fast_config()
    };
    let relay_a = start_relay(&outbox_a, &db_a, config.clone());
    let written = write(&db_a, &outbox_a, event("svc.thing.updated", "a")).await;
    sink.wait_until("the first, hanging call", |s| {
        s.receipts_of(&written.id) == 1
    })
    .await;
    relay_a.abort().await;

    let relay_b = start_relay(&outbox_b, &db_b, config);
    sink.wait_until("delivery by the other relay", |s| {
        s.has_accepted(&written.id)
    })
    .await;
    assert_eq!(sink.with_state(|s| s.receipts_of(&written.id)), 2);
    support::eventually("the pair delivered", || async {
        support::states(&db_b, "audit").await.get("delivered") == Some(&1)
    })
    .await;
    relay_b.stop().await;
    test.drop_database().await;
}

/// With at most 3 events per call every request carries 1..=3 events; with a byte limit below
/// one event's size every request carries exactly one (the rest of a claim is handed back and
/// sent next). Everything arrives once either way.
async fn batches_keep_to_the_configured_limits(backend: Backend) {
    for (config, most) in [
        (
            RelayConfig {
                batch_size: 3,
                ..fast_config()
            },
            3,
        ),
        (
            RelayConfig {
                batch_bytes: 1,
                ..fast_config()
            },
            1,
        ),
    ] {
        let mut test = TestDb::create(backend).await;
        let db = test.connect().await;
        let sink = TestSink::start().await;
        let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
        // Written before the relay starts, so its first claim finds all of them.
        for i in 0..10 {
            write(
                &db,
                &outbox,
                event("svc.thing.updated", &format!("agg-{i}")),
            )
            .await;
        }
        let relay = start_relay(&outbox, &db, config);
        sink.wait_until("all 10 events", |s| s.accepted.len() == 10)
            .await;
        sink.with_state(|s| {
            assert_eq!(s.receipts.len(), 10);
            assert!(
                s.batches.iter().all(|n| (1..=most).contains(n)),
                "{:?}",
                s.batches
            );
            assert_eq!(s.batches.iter().max(), Some(&most), "{:?}", s.batches);
        });
        relay.stop().await;
        test.drop_database().await;
    }
}

/// With a poll interval far beyond the test's bound, a retryably refused event is still retried
/// as soon as its backoff ends: the relay wakes for the retries it scheduled.
async fn retries_fall_due_without_waiting_for_the_poll(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let sink = TestSink::start().await;
    sink.set_rule(|_, seen| {
        if seen <= 3 {
            Verdict::Reject {
                reason: "later".into(),
                retryable: true,
            }
        } else {
            Verdict::Accept
        }
    });
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let config = RelayConfig {
        poll_interval: std::time::Duration::from_secs(3600),
        ..fast_config()
    };
    let relay = start_relay(&outbox, &db, config);
    let written = write(&db, &outbox, event("svc.thing.updated", "a")).await;
    sink.wait_until("the fourth attempt", |s| s.has_accepted(&written.id))
        .await;
    assert_eq!(sink.with_state(|s| s.receipts_of(&written.id)), 4);
    relay.stop().await;
    test.drop_database().await;
}
