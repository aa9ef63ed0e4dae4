//! Dead letters: a non-retryable rejection lands there with the reason at once; operators page
//! through them and replay one, or all of a subscriber's, which then arrive once.

#[macro_use]
mod support;

use ironmesh_outbox::Outbox;
use ironmesh_outbox::OutboxError;
use ironmesh_outbox::dead_letters::{self, Replay};
use support::{Backend, TestDb, TestSink, Verdict, event, fast_config, start_relay, write};

both_backends!(
    non_retryable_rejections_are_dead_lettered_and_replayed_once,
    bad_page_tokens_are_refused,
);

/// The sink refuses `svc.thing.bad` for good: each such pair is dead after one attempt with the
/// reason, the good event flows. Listing pages 2 + 1; replaying one by id, then all, delivers
/// each exactly once and empties the list.
async fn non_retryable_rejections_are_dead_lettered_and_replayed_once(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let sink = TestSink::start().await;
    sink.set_rule(|e, _| {
        if e.r#type == "svc.thing.bad" {
            Verdict::Reject {
                reason: "payload invalid".into(),
                retryable: false,
            }
        } else {
            Verdict::Accept
        }
    });
    let other = TestSink::start().await;
    let outbox = Outbox::new(
        "svc",
        vec![
            sink.subscriber("audit", &["*"]),
            other.subscriber("other", &["*"]),
        ],
    );
    let relay = start_relay(&outbox, &db, fast_config());
    let mut bad = Vec::new();
    for i in 0..3 {
        bad.push(write(&db, &outbox, event("svc.thing.bad", &format!("b{i}"))).await);
    }
    let good = write(&db, &outbox, event("svc.thing.good", "g")).await;
    sink.wait_until("the good event", |s| s.has_accepted(&good.id))
        .await;
    support::eventually("three dead letters", || async {
        support::states(&db, "audit").await.get("dead") == Some(&3)
    })
    .await;
    for e in &bad {
        assert_eq!(
            sink.with_state(|s| s.receipts_of(&e.id)),
            1,
            "tried once, not retried"
        );
    }

    let first = dead_letters::list(&db, Some("audit"), 2, "").await.unwrap();
    assert_eq!(first.dead_letters.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = dead_letters::list(&db, Some("audit"), 2, &first.next_page_token)
        .await
        .unwrap();
    assert_eq!(second.dead_letters.len(), 1);
    assert!(second.next_page_token.is_empty());
    let listed: Vec<_> = first
        .dead_letters
        .iter()
        .chain(&second.dead_letters)
        .map(|d| d.event.clone())
        .collect();
    assert_eq!(listed, bad, "in outbox order, events as written");
    for d in first.dead_letters.iter().chain(&second.dead_letters) {
        assert_eq!(d.subscriber, "audit");
        assert_eq!(d.attempts, 1);
        assert!(d.last_error.contains("payload invalid"), "{}", d.last_error);
    }
    // The other subscriber took them all: its list is empty, and so is an unfiltered list
    // beyond audit's three.
    assert!(
        dead_letters::list(&db, Some("other"), 10, "")
            .await
            .unwrap()
            .dead_letters
            .is_empty()
    );
    assert_eq!(
        dead_letters::list(&db, None, 10, "")
            .await
            .unwrap()
            .dead_letters
            .len(),
        3
    );

    // The consumer is fixed; replay one, then the rest.
    sink.set_rule(|_, _| Verdict::Accept);
    let one = Replay::Event {
        subscriber: "audit",
        event_id: &bad[1].id,
    };
    assert_eq!(dead_letters::replay(&db, one).await.unwrap(), 1);
    outbox.wake();
    sink.wait_until("the replayed event", |s| s.has_accepted(&bad[1].id))
        .await;
    assert_eq!(
        dead_letters::list(&db, Some("audit"), 10, "")
            .await
            .unwrap()
            .dead_letters
            .len(),
        2
    );

    assert_eq!(
        dead_letters::replay(
            &db,
            Replay::AllFor {
                subscriber: "audit"
            }
        )
        .await
        .unwrap(),
        2
    );
    outbox.wake();
    sink.wait_until("every replayed event", |s| {
        bad.iter().all(|e| s.has_accepted(&e.id))
    })
    .await;
    support::eventually("no dead letters left", || async {
        support::states(&db, "audit").await.get("delivered") == Some(&4)
    })
    .await;
    sink.with_state(|s| {
        for e in &bad {
            assert_eq!(
                s.accepted.iter().filter(|a| a.id == e.id).count(),
                1,
                "accepted once"
            );
            assert_eq!(s.receipts_of(&e.id), 2, "refused once, replayed once");
        }
    });
    assert!(
        dead_letters::list(&db, None, 10, "")
            .await
            .unwrap()
            .dead_letters
            .is_empty()
    );
    // Replaying what is not dead does nothing.
    assert_eq!(
        dead_letters::replay(
            &db,
            Replay::AllFor {
                subscriber: "audit"
            }
        )
        .await
        .unwrap(),
        0
    );
    relay.stop().await;
    test.drop_database().await;
}

/// A page token that is not one the list handed out is a typed error.
async fn bad_page_tokens_are_refused(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    for token in ["nonsense", "x:audit"] {
        assert!(matches!(
            dead_letters::list(&db, None, 10, token).await,
            Err(OutboxError::InvalidPageToken)
        ));
    }
    test.drop_database().await;
}
