//! What the outbox tests share: a fresh database per test on either backend, a real tonic
//! `EventSinkService` on 127.0.0.1 whose answers the test controls, and bounded waits.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ironmesh_interceptors::client::{BreakerConfig, ClientBuilder, GrpcChannel};
use ironmesh_outbox::{NewEvent, Outbox, RelayConfig, Subscriber};
use ironmesh_proto::ironmesh::events::v1::event_sink_service_client::EventSinkServiceClient;
use ironmesh_proto::ironmesh::events::v1::event_sink_service_server::{
    EventSinkService, EventSinkServiceServer,
};
use ironmesh_proto::ironmesh::events::v1::{
    DeliverRequest, DeliverResponse, Event, EventRejection,
};
use ironmesh_runtime::storage::MigrationSet;
use ironmesh_runtime::{Database, with_pool};
use ironmesh_test_support::TestDatabase;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The bound on every wait in these tests.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The outbox and inbox tables, included the way a service includes them (tests the
/// `migrations!` arm for shared schema constants too).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "outbox", (ironmesh_outbox::schema::OUTBOX);
    2, "inbox", (ironmesh_outbox::schema::INBOX);
];

pub use ironmesh_test_support::Backend;

/// Generates `<name>_sqlite` and `<name>_postgres` tests running `async fn name(Backend)`. The
/// PostgreSQL one is skipped (with a note) when `TEST_DATABASE_URL` is unset, and fails then if
/// `CI=true`.
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if crate::support::postgres_available() {
                        super::$name(crate::support::Backend::Postgres).await;
                    }
                }
            )+
        }
    };
}

/// Whether the PostgreSQL variants run: panics when CI=true and TEST_DATABASE_URL is missing.
pub fn postgres_available() -> bool {
    ironmesh_test_support::backends().contains(&Backend::Postgres)
}

/// A database for one test: a temp SQLite file, or `ironmesh_test_<uuid>` on the server of
/// `TEST_DATABASE_URL`, dropped by [`TestDb::drop_database`].
pub struct TestDb {
    pub backend: Backend,
    url: String,
    postgres: Option<TestDatabase>,
    _dir: Option<tempfile::TempDir>,
    pools: Vec<Database>,
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/outbox.db", dir.path().display());
                Self {
                    backend,
                    url,
                    postgres: None,
                    _dir: Some(dir),
                    pools: Vec::new(),
                }
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                Self {
                    backend,
                    url: database.url().to_owned(),
                    postgres: Some(database),
                    _dir: None,
                    pools: Vec::new(),
                }
            }
        }
    }

    /// A new pool to this database, migrated (call twice for two "replicas").
    pub async fn connect(&mut self) -> Database {
        let db = Database::connect(&self.url, "svc").await.expect("connect");
        db.migrate("svc", &MIGRATIONS).await.expect("migrate");
        self.pools.push(db.clone());
        db
    }

    /// Closes every pool and drops the PostgreSQL database.
    pub async fn drop_database(self) {
        for pool in &self.pools {
            pool.close().await;
        }
        if let Some(database) = self.postgres {
            database.drop_database().await;
        }
    }
}

/// Relay settings with short waits, so retries happen within a test's time.
pub fn fast_config() -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(200),
        call_timeout: Duration::from_secs(5),
        lease: Duration::from_secs(15),
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(200),
        gauge_every: Duration::from_millis(50),
        ..RelayConfig::default()
    }
}

/// A running relay, stopped through its token.
pub struct RunningRelay {
    token: CancellationToken,
    task: JoinHandle<()>,
}

pub fn start_relay(outbox: &Outbox, db: &Database, config: RelayConfig) -> RunningRelay {
    let token = CancellationToken::new();
    let task = tokio::spawn(outbox.relay(db.clone(), config).run(token.clone()));
    RunningRelay { token, task }
}

impl RunningRelay {
    /// Kills the relay mid-work, as a crash would: no outcome of an in-flight call is recorded.
    pub async fn abort(self) {
        self.task.abort();
        let _ = tokio::time::timeout(LIMIT, self.task).await;
    }

    /// Cancels and waits (bounded) for every relay task to end.
    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("relay stops within the limit")
            .expect("relay task did not panic");
    }
}

/// Writes `event` in its own committed transaction and wakes the relay.
pub async fn write(db: &Database, outbox: &Outbox, event: NewEvent) -> Event {
    let written = with_pool!(db, pool => {
        let mut tx = pool.begin().await.expect("begin");
        let written = outbox.write(&mut *tx, event).await.expect("write event");
        tx.commit().await.expect("commit");
        written
    });
    outbox.wake();
    written
}

/// A JSON event of `event_type` about `aggregate_id`.
pub fn event(event_type: &str, aggregate_id: &str) -> NewEvent {
    NewEvent::new(
        event_type,
        "thing",
        aggregate_id,
        "user-1",
        "application/json",
        br#"{"k":1}"#.to_vec(),
    )
}

/// Polls `check` every 10 ms until it is true, failing after [`LIMIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waited = tokio::time::timeout(LIMIT, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

/// Delivery rows of one subscriber by state.
pub async fn states(db: &Database, subscriber: &str) -> HashMap<String, i64> {
    const SQL: &str =
        "SELECT state, COUNT(*) FROM outbox_deliveries WHERE subscriber = $1 GROUP BY state";
    let rows: Vec<(String, i64)> = with_pool!(db, pool => sqlx::query_as(SQL)
        .bind(subscriber)
        .fetch_all(pool)
        .await
        .expect("count states"));
    rows.into_iter().collect()
}

/// Pending pairs of `subscriber` that have been attempted at least once.
pub async fn attempted(db: &Database, subscriber: &str) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM outbox_deliveries WHERE subscriber = $1 AND state = 'pending' AND attempts > 0";
    let (n,): (i64,) = with_pool!(db, pool => sqlx::query_as(SQL)
        .bind(subscriber)
        .fetch_one(pool)
        .await
        .expect("count attempted"));
    n
}

// ─── The sink ───────────────────────────────────────────────────────────────

/// How the test sink answers one event it has not accepted before; `seen` counts this event's
/// receipts including this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject {
        reason: String,
        retryable: bool,
    },
    /// Never answer the call (the event counts as received).
    Hang,
}

type Rule = Arc<dyn Fn(&Event, usize) -> Verdict + Send + Sync>;

/// What the sink saw.
#[derive(Default)]
pub struct SinkState {
    /// Every event received, in arrival order (retries and duplicates included).
    pub receipts: Vec<Event>,
    /// Events accepted for the first time, in order.
    pub accepted: Vec<Event>,
    /// Ids answered as duplicates.
    pub duplicates: Vec<String>,
    /// The number of events of each call, in order.
    pub batches: Vec<usize>,
}

impl SinkState {
    pub fn receipts_of(&self, id: &str) -> usize {
        self.receipts.iter().filter(|e| e.id == id).count()
    }

    pub fn has_accepted(&self, id: &str) -> bool {
        self.accepted.iter().any(|e| e.id == id)
    }
}

struct Shared {
    state: Mutex<SinkState>,
    rule: Mutex<Rule>,
    changed: watch::Sender<u64>,
}

#[derive(Clone)]
struct SinkService(Arc<Shared>);

#[tonic::async_trait]
impl EventSinkService for SinkService {
    async fn deliver(
        &self,
        request: tonic::Request<DeliverRequest>,
    ) -> Result<tonic::Response<DeliverResponse>, tonic::Status> {
        let rule = self.0.rule.lock().clone();
        let mut response = DeliverResponse::default();
        let mut hang = false;
        {
            let mut state = self.0.state.lock();
            let events = request.into_inner().events;
            state.batches.push(events.len());
            for event in events {
                state.receipts.push(event.clone());
                let seen = state.receipts_of(&event.id);
                if state.has_accepted(&event.id) {
                    state.duplicates.push(event.id.clone());
                    response.duplicate_ids.push(event.id);
                    continue;
                }
                match rule(&event, seen) {
                    Verdict::Accept => {
                        response.accepted_ids.push(event.id.clone());
                        state.accepted.push(event);
                    }
                    Verdict::Reject { reason, retryable } => {
                        response.rejected.push(EventRejection {
                            event_id: event.id,
                            reason,
                            retryable,
                        });
                    }
                    Verdict::Hang => hang = true,
                }
            }
        }
        self.0.changed.send_modify(|n| *n += 1);
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(tonic::Response::new(response))
    }
}

/// A real `EventSinkService` server on 127.0.0.1, stoppable and restartable on the same port.
pub struct TestSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl TestSink {
    /// A sink accepting everything, serving on a fresh port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let (changed, _) = watch::channel(0);
        let rule: Rule = Arc::new(|_, _| Verdict::Accept);
        let mut sink = Self {
            addr,
            shared: Arc::new(Shared {
                state: Mutex::new(SinkState::default()),
                rule: Mutex::new(rule),
                changed,
            }),
            server: None,
        };
        sink.serve(listener);
        sink
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let service = EventSinkServiceServer::new(SinkService(self.shared.clone()));
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
                .expect("sink serves");
        });
        self.server = Some((stop, task));
    }

    /// Stops serving (the port then refuses connections).
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.server.take() {
            let _ = stop.send(());
            tokio::time::timeout(LIMIT, task)
                .await
                .expect("sink stops within the limit")
                .expect("sink task did not panic");
        }
    }

    /// Serves again on the same port.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebind the sink's port");
        self.serve(listener);
    }

    /// How the sink answers events from now on.
    pub fn set_rule(&self, rule: impl Fn(&Event, usize) -> Verdict + Send + Sync + 'static) {
        *self.shared.rule.lock() = Arc::new(rule);
    }

    /// A client to this sink on the shared client stack, with a breaker and ejection short
    /// enough for a test that stops and restarts the sink.
    pub fn client(&self) -> EventSinkServiceClient<GrpcChannel> {
        let channel = ClientBuilder::new("outbox-test", "sink", &format!("http://{}", self.addr))
            .breaker(BreakerConfig {
                cool_down: Duration::from_millis(50),
                ..BreakerConfig::default()
            })
            .ejection(Duration::from_millis(20))
            .build()
            .expect("client to the sink");
        EventSinkServiceClient::new(channel)
    }

    /// A subscriber `name` wanting `types`, delivering to this sink.
    pub fn subscriber(&self, name: &str, types: &[&str]) -> Subscriber {
        Subscriber::new(name, types, self.client())
    }

    /// Reads the state.
    pub fn with_state<T>(&self, read: impl FnOnce(&SinkState) -> T) -> T {
        read(&self.shared.state.lock())
    }

    /// Waits (bounded by [`LIMIT`]) until `check` holds for the sink's state.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&SinkState) -> bool) {
        let mut changed = self.shared.changed.subscribe();
        let waited = tokio::time::timeout(LIMIT, async {
            loop {
                if check(&self.shared.state.lock()) {
                    return;
                }
                changed.changed().await.expect("sink state channel open");
            }
        })
        .await;
        assert!(waited.is_ok(), "timed out waiting for the sink: {what}");
    }
}
