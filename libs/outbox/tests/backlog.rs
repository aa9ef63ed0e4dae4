//! A relay that starts on a large backlog in tables PostgreSQL has never analyzed (they grew from
//! nothing faster than autovacuum looked — a consumer outage on a fresh deployment): without
//! statistics the planner compares every pending pair with every other and one claim runs for
//! minutes. The claim's statement timeout notices, the relay analyzes the tables, and delivery
//! goes on.

#[allow(unused_macros)]
mod support;

use ironmesh_outbox::Outbox;
use ironmesh_runtime::with_pool;
use support::{Backend, TestDb, TestSink, fast_config, start_relay};

const BACKLOG: i64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_in_never_analyzed_tables_is_delivered() {
    if !support::postgres_available() {
        return;
    }
    let mut test = TestDb::create(Backend::Postgres).await;
    let db = test.connect().await;
    let fill = [
        "ALTER TABLE outbox_deliveries SET (autovacuum_enabled = false)",
        "ALTER TABLE outbox_events SET (autovacuum_enabled = false)",
        "INSERT INTO outbox_events (id, event_type, source, aggregate_type, aggregate_id, aggregate_version, \
         occurred_at, actor, content_type, payload) \
         SELECT 'e-' || g, 'svc.thing.updated', 'svc', 'thing', 'a-' || g, 1, now(), 'user-1', 'application/json', '' \
         FROM generate_series(1, $1) g",
        "INSERT INTO outbox_deliveries (event_seq, subscriber, aggregate_type, aggregate_id, aggregate_version, \
         state, attempts, next_attempt_at, updated_at) \
         SELECT seq, 'audit', aggregate_type, aggregate_id, aggregate_version, 'pending', 0, now(), now() FROM outbox_events",
    ];
    with_pool!(&db, pool => {
        for sql in fill {
            let query = sqlx::query(sql);
            let query = if sql.contains("$1") { query.bind(BACKLOG) } else { query };
            query.execute(pool).await.unwrap();
        }
    });
    let sink = TestSink::start().await;
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let relay = start_relay(&outbox, &db, fast_config());
    sink.wait_until("the whole backlog", |s| {
        s.accepted.len() == BACKLOG as usize
    })
    .await;
    relay.stop().await;
    test.drop_database().await;
}
