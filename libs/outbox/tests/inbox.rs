//! The consumer inbox: an id recorded in one transaction is a duplicate in the next; an id
//! recorded in a transaction that rolled back is new again.

#[macro_use]
mod support;

use ironmesh_outbox::Inbox;
use ironmesh_proto::ironmesh::events::v1::Event;
use ironmesh_runtime::{Database, with_pool};
use support::{Backend, TestDb};

both_backends!(the_same_id_twice_is_new_then_duplicate);

async fn record(db: &Database, inbox: &Inbox, event: &Event, commit: bool) -> bool {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await.unwrap();
        let new = inbox.record(&mut *tx, event).await.unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        new
    })
}

/// First delivery in its own transaction: new. Second, in another: duplicate. An id whose
/// transaction rolled back (the effect failed) is new on the next delivery.
async fn the_same_id_twice_is_new_then_duplicate(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let inbox = Inbox::new("consumer");
    let event = Event {
        id: uuid::Uuid::now_v7().to_string(),
        source: "svc".into(),
        ..Event::default()
    };
    assert!(record(&db, &inbox, &event, true).await, "first time: new");
    assert!(
        !record(&db, &inbox, &event, true).await,
        "second time: duplicate"
    );

    let other = Event {
        id: uuid::Uuid::now_v7().to_string(),
        source: "svc".into(),
        ..Event::default()
    };
    assert!(
        record(&db, &inbox, &other, false).await,
        "new, but rolled back"
    );
    assert!(
        record(&db, &inbox, &other, true).await,
        "the rollback left no trace"
    );
    assert!(!record(&db, &inbox, &other, true).await);
    test.drop_database().await;
}
