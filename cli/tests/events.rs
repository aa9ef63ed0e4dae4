//! Platform events end to end: auth writes each security event in the transaction of its change,
//! its relay delivers it over `EventSinkService.Deliver` as `service:auth`, and audit records it
//! once — across a stopped relay, an audit outage under load, and two auth replicas sharing one
//! PostgreSQL outbox. Real services, real stores; waits are for observable state, bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use ironmesh_outbox::EventsConfig;
use ironmesh_proto::ironmesh::auth::v1 as auth_pb;
use ironmesh_runtime::{Config, Database, ServiceKind, with_pool};
use ironmesh_testkit::{Backend, PASSWORD, Rest, TestDatabase, TestMesh, backends, test_config};
use serde_json::{Value, json};

/// The longest any wait for delivery may take before the test fails.
const DELIVERY_LIMIT: Duration = Duration::from_secs(60);

/// Retries come quickly in tests (production: up to 5 minutes apart), and as many as a long
/// outage needs (production: 50 over about two hours).
fn quick_events(config: &mut Config) {
    config
        .update_section::<EventsConfig>(|events| {
            events.backoff_base_ms = 20;
            events.backoff_cap_secs = 1;
            events.max_attempts = 10_000;
            events.poll_interval_ms = 200;
        })
        .expect("valid events section");
}

async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    ironmesh_testkit::eventually(what, DELIVERY_LIMIT, check).await
}

async fn store(config: &Config, kind: ServiceKind) -> Database {
    Database::connect(&config.database_url(kind), kind.name())
        .await
        .expect("open store")
}

/// Ids of every event in auth's outbox.
async fn outbox_ids(config: &Config) -> BTreeSet<String> {
    let db = store(config, ServiceKind::Auth).await;
    let rows: Vec<(String,)> = with_pool!(&db, pool => sqlx::query_as("SELECT id FROM outbox_events")
        .fetch_all(pool).await.unwrap());
    db.close().await;
    rows.into_iter().map(|(id,)| id).collect()
}

/// `idempotency_key → count` of audit's entries from auth (keys of event entries are event ids).
async fn audit_keys(config: &Config) -> BTreeMap<String, i64> {
    let db = store(config, ServiceKind::Audit).await;
    let sql = "SELECT idempotency_key, COUNT(*) FROM entries WHERE source_service = 'auth' GROUP BY idempotency_key";
    let rows: Vec<(String, i64)> =
        with_pool!(&db, pool => sqlx::query_as(sql).fetch_all(pool).await.unwrap());
    db.close().await;
    rows.into_iter().collect()
}

/// Waits until every event in auth's outbox is an audit entry, then checks none is there twice
/// and nothing else is. Returns how many.
async fn all_recorded_once(auth: &Config, audit: &Config) -> usize {
    let ids = outbox_ids(auth).await;
    assert!(!ids.is_empty(), "the test produced events");
    let keys = eventually("every event to reach audit", || async {
        let keys = audit_keys(audit).await;
        ids.iter().all(|id| keys.contains_key(id)).then_some(keys)
    })
    .await;
    assert!(keys.values().all(|n| *n == 1), "an event recorded twice");
    assert_eq!(
        keys.keys().cloned().collect::<BTreeSet<_>>(),
        ids,
        "audit holds exactly auth's events"
    );
    ids.len()
}

/// A config over storage the test keeps, for meshes started and stopped in turn.
struct Storage {
    dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

impl Storage {
    async fn new(backend: Backend) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            database: match backend {
                Backend::Sqlite => None,
                Backend::Postgres => Some(TestDatabase::create().await),
            },
        }
    }

    /// The config every mesh of the test shares, with audit on a port of its own so that a
    /// restarted audit is where producers already look for it.
    fn config(&self) -> Config {
        let mut config = test_config(
            self.dir.path(),
            self.database.as_ref().map(TestDatabase::url),
        );
        quick_events(&mut config);
        config.service_mut(ServiceKind::Audit).grpc_port = free_port();
        config
    }

    async fn drop(self) {
        if let Some(database) = self.database {
            database.drop_database().await;
        }
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn register(mesh: &TestMesh, email: &str) -> auth_pb::RegisterResponse {
    mesh.auth()
        .await
        .register(auth_pb::RegisterRequest {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            display_name: "Events".to_owned(),
        })
        .await
        .unwrap_or_else(|s| panic!("register {email}: {s:?}"))
        .into_inner()
}

fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", uuid::Uuid::now_v7().simple())
}

/// An event committed while audit is unreachable stays pending; the producer stops (its relay
/// with it) before delivering. After a restart it is delivered, and audit records it once — a
/// further restart delivers it no second time.
#[tokio::test]
async fn an_event_left_by_a_stopped_relay_is_delivered_once_after_restart() {
    for backend in backends() {
        let storage = Storage::new(backend).await;
        let config = storage.config();

        let producer = TestMesh::start_on(config.clone(), &[ServiceKind::Auth], false).await;
        let first = register(&producer, &unique_email("restart")).await;
        let first_id = first.user.unwrap().user_id;
        assert!(producer.shutdown().await.is_empty());
        let db = store(&config, ServiceKind::Auth).await;
        let states: Vec<(String, String)> = with_pool!(&db, pool => sqlx::query_as(
            "SELECT e.aggregate_id, d.state FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq \
             WHERE d.subscriber = 'audit' AND e.event_type = 'auth.user.registered'"
        ).fetch_all(pool).await.unwrap());
        db.close().await;
        assert_eq!(
            states,
            vec![(first_id.clone(), "pending".to_owned())],
            "{backend:?}: committed, not delivered"
        );

        let mesh = TestMesh::start_on(
            config.clone(),
            &[ServiceKind::Auth, ServiceKind::Audit],
            false,
        )
        .await;
        let recorded = all_recorded_once(&config, &config).await;
        assert!(mesh.shutdown().await.is_empty());

        // Once more: a new event flows, the old one is not delivered again.
        let mesh = TestMesh::start_on(
            config.clone(),
            &[ServiceKind::Auth, ServiceKind::Audit],
            false,
        )
        .await;
        register(&mesh, &unique_email("again")).await;
        let now = all_recorded_once(&config, &config).await;
        assert_eq!(now, recorded + 1, "{backend:?}");
        assert!(mesh.shutdown().await.is_empty());
        storage.drop().await;
    }
}

/// Latency percentiles of `samples`, for the log: the test asserts answers, the benchmark speed.
fn percentiles(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    format!("n={} p50={:?} p99={:?}", samples.len(), at(0.5), at(0.99))
}

/// Drives register + login from `workers` concurrent clients for `length`; every call must
/// succeed. Returns each call's latency.
async fn load(mesh: &TestMesh, workers: usize, length: Duration) -> Vec<Duration> {
    let until = Instant::now() + length;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let mut auth = mesh.auth().await;
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let email = unique_email("load");
                let started = Instant::now();
                auth.register(auth_pb::RegisterRequest {
                    email: email.clone(),
                    password: PASSWORD.to_owned(),
                    display_name: "Load".to_owned(),
                })
                .await
                .unwrap_or_else(|s| panic!("register under load: {s:?}"));
                latencies.push(started.elapsed());
                let started = Instant::now();
                auth.login(auth_pb::LoginRequest {
                    email,
                    password: PASSWORD.to_owned(),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|s| panic!("login under load: {s:?}"));
                latencies.push(started.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    all
}

/// Audit goes away for 30 s while auth serves a steady register/login load: every call still
/// succeeds (delivery is the relay's business, never the caller's), nothing is lost, and when
/// audit is back every event is recorded exactly once.
#[tokio::test]
async fn audit_down_for_30_seconds_loses_nothing_and_slows_nobody() {
    for backend in backends() {
        let storage = Storage::new(backend).await;
        let config = storage.config();
        let producer = TestMesh::start_on(config.clone(), &[ServiceKind::Auth], false).await;

        let audit = TestMesh::start_on(config.clone(), &[ServiceKind::Audit], false).await;
        let mut up = load(&producer, 3, Duration::from_secs(3)).await;
        assert!(audit.shutdown().await.is_empty());
        let mut down = load(&producer, 3, Duration::from_secs(30)).await;
        eprintln!(
            "{backend:?}: auth with audit up: {}; with audit down: {}",
            percentiles(&mut up),
            percentiles(&mut down)
        );

        let audit = TestMesh::start_on(config.clone(), &[ServiceKind::Audit], false).await;
        let recorded = all_recorded_once(&config, &config).await;
        assert!(
            recorded >= up.len() + down.len(),
            "{backend:?}: one event per call at least ({recorded})"
        );
        assert!(audit.shutdown().await.is_empty());
        assert!(producer.shutdown().await.is_empty());
        storage.drop().await;
    }
}

/// Two auth replicas over one PostgreSQL database share one outbox; both relays run. Every event
/// reaches audit exactly once, and each user's events in `aggregate_version` order.
#[tokio::test]
async fn two_auth_replicas_over_one_outbox_record_each_event_once() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    }
    let storage = Storage::new(Backend::Postgres).await;
    let config = storage.config();
    let first = TestMesh::start_on(
        config.clone(),
        &[ServiceKind::Auth, ServiceKind::Audit],
        false,
    )
    .await;
    let second = TestMesh::start_on(config.clone(), &[ServiceKind::Auth], false).await;

    let mut tasks = tokio::task::JoinSet::new();
    for mesh in [&first, &second] {
        for _ in 0..3 {
            let mut auth = mesh.auth().await;
            tasks.spawn(async move {
                for _ in 0..8 {
                    let email = unique_email("replica");
                    auth.register(auth_pb::RegisterRequest {
                        email: email.clone(),
                        password: PASSWORD.to_owned(),
                        display_name: "Replica".to_owned(),
                    })
                    .await
                    .unwrap();
                    let login = auth
                        .login(auth_pb::LoginRequest {
                            email,
                            password: PASSWORD.to_owned(),
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    let token = login.tokens.unwrap().access_token;
                    let mut logout =
                        tonic::Request::new(auth_pb::LogoutRequest { all_sessions: true });
                    logout
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {token}").parse().unwrap());
                    auth.logout(logout).await.unwrap();
                }
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let recorded = all_recorded_once(&config, &config).await;
    assert!(recorded >= 2 * 3 * 8 * 3, "{recorded} events");
    // Both replicas' first logins wanted a signing key at once: one was made, and both sign
    // with it (a second key would be unknown to a verifier that cached the set a moment before).
    let db = store(&config, ServiceKind::Auth).await;
    let (keys,): (i64,) = with_pool!(&db, pool => sqlx::query_as("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(pool).await.unwrap());
    db.close().await;
    assert_eq!(keys, 1, "concurrent first logins made one signing key");

    // Per user, versions 1, 2, 3… in chain order.
    let db = store(&config, ServiceKind::Audit).await;
    let rows: Vec<(String, String)> = with_pool!(&db, pool => sqlx::query_as(
        "SELECT resource, details FROM entries WHERE source_service = 'auth' AND resource LIKE 'user/%' ORDER BY sequence"
    ).fetch_all(pool).await.unwrap());
    db.close().await;
    let mut versions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (resource, details) in rows {
        let details: Value = serde_json::from_str(&details).unwrap();
        let version = details["aggregate_version"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("event entries carry their aggregate version");
        versions.entry(resource).or_default().push(version);
    }
    for (resource, seen) in &versions {
        let expected: Vec<i64> = (1..=seen.len() as i64).collect();
        assert_eq!(seen, &expected, "{resource}");
    }
    assert!(second.shutdown().await.is_empty());
    assert!(first.shutdown().await.is_empty());
    storage.drop().await;
}

/// Through the gateway: a registration, a failed login and a login show up in audit's Query —
/// with the right actor, outcome, request id and details — as an operator reads them over REST.
#[tokio::test]
async fn auth_events_reach_audit_through_the_gateway() {
    for backend in backends() {
        let mesh = TestMesh::start_with(backend, &ServiceKind::ALL, true, quick_events).await;
        let rest = Rest::new(&mesh);
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let email = format!("trail-{tag}@example.com");
        let (status, registered) = rest
            .call_with(
                "POST",
                "/v1/auth/register",
                None,
                &[("x-request-id", &format!("register-{tag}"))],
                Some(json!({"email": email, "password": PASSWORD, "display_name": "Trail"})),
            )
            .await;
        assert_eq!(status, 201, "{registered}");
        let user_id = registered["user"]["userId"].as_str().unwrap().to_owned();
        let (status, _) = rest
            .call_with(
                "POST",
                "/v1/auth/login",
                None,
                &[("x-request-id", &format!("failed-{tag}"))],
                Some(json!({"email": email, "password": "not the password at all"})),
            )
            .await;
        assert_eq!(status, 401);
        let (status, login) = rest
            .call_with(
                "POST",
                "/v1/auth/login",
                None,
                &[("x-request-id", &format!("login-{tag}"))],
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, 200, "{login}");

        let admin = mesh.admin().await;
        let entries = eventually("the three entries in audit", || async {
            let (status, page) = rest
                .call(
                    "GET",
                    "/v1/audit/entries?action=auth.*&pageSize=1000",
                    Some(&admin.access_token),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            // Keyed by (request id, action): the first login also made the signing key.
            let mine: BTreeMap<(String, String), Value> = page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| {
                    let id = e["requestId"].as_str()?;
                    let action = e["action"].as_str()?.to_owned();
                    id.ends_with(tag.as_str())
                        .then(|| ((id.to_owned(), action), e.clone()))
                })
                .collect();
            let wanted = [
                ("register", "auth.user.registered"),
                ("failed", "auth.login.failed"),
                ("login", "auth.login.succeeded"),
            ];
            wanted
                .iter()
                .all(|(id, action)| {
                    mine.contains_key(&(format!("{id}-{tag}"), (*action).to_owned()))
                })
                .then_some(mine)
        })
        .await;
        let entry = |id: &str, action: &str| &entries[&(format!("{id}-{tag}"), action.to_owned())];

        let registered = entry("register", "auth.user.registered");
        assert_eq!(registered["action"], "auth.user.registered");
        assert_eq!(registered["actor"], user_id.as_str());
        assert_eq!(registered["resource"], format!("user/{user_id}"));
        assert_eq!(registered["outcome"], "OUTCOME_SUCCESS");
        assert_eq!(registered["sourceService"], "auth");
        assert_eq!(registered["details"]["roles"], "ROLE_CUSTOMER");

        let failed = entry("failed", "auth.login.failed");
        assert_eq!(failed["action"], "auth.login.failed");
        assert_eq!(failed["actor"], "anonymous");
        assert_eq!(failed["outcome"], "OUTCOME_FAILURE");
        assert_eq!(failed["details"]["reason"], "invalid_credentials");
        assert_eq!(failed["details"]["user_id"], user_id.as_str());
        assert_eq!(
            failed["details"]["address"], "127.0.0.1",
            "the client's address, as the gateway relays it"
        );

        let login = entry("login", "auth.login.succeeded");
        assert_eq!(login["action"], "auth.login.succeeded");
        assert_eq!(login["actor"], user_id.as_str());
        assert_eq!(login["outcome"], "OUTCOME_SUCCESS");
        assert!(
            login["details"]["session_id"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );

        // Never a secret: neither the password nor a token appears in any entry.
        let text = serde_json::to_string(&entries.values().collect::<Vec<_>>()).unwrap();
        assert!(!text.contains(PASSWORD) && !text.contains("not the password"));
        assert!(!text.contains("eyJ"), "no JWT in the audit log");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// `ironmesh events dead-letters list|replay` on a real dead letter: an event audit refuses for
/// good (a type it cannot record) lands in auth's dead letters; the CLI lists it and replays it.
#[tokio::test]
async fn the_cli_lists_and_replays_dead_letters() {
    let storage = Storage::new(Backend::Sqlite).await;
    let config = storage.config();
    let mesh = TestMesh::start_on(
        config.clone(),
        &[ServiceKind::Auth, ServiceKind::Audit],
        false,
    )
    .await;
    // Written as auth writes (its outbox, its store), with a type audit rejects as not
    // retryable; the running auth's relay delivers it at its next poll.
    let db = store(&config, ServiceKind::Auth).await;
    let outbox = ironmesh_outbox::Events::writer(&config, ServiceKind::Auth).unwrap();
    let event = with_pool!(&db, pool => {
        let mut tx = pool.begin().await.unwrap();
        let event = outbox
            .write(&mut *tx, ironmesh_outbox::NewEvent::new(
                "Not A Type", "user", "u-dead", "service:auth", "application/json", b"{}".to_vec(),
            ))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        event
    });
    eventually("the refusal to be a dead letter", || async {
        let page = ironmesh_outbox::dead_letters::list(&db, Some("audit"), 10, "")
            .await
            .unwrap();
        (!page.dead_letters.is_empty()).then_some(())
    })
    .await;
    db.close().await;

    let config_file = storage.dir.path().join("ironmesh.toml");
    std::fs::write(&config_file, toml_of(&config)).unwrap();
    let listed = cli(
        &config_file,
        &["events", "dead-letters", "list", "--service", "auth"],
    )
    .await;
    assert!(listed.status.success(), "{listed:?}");
    let line: Value = serde_json::from_slice(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .next()
            .expect("one dead letter")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(line["event_id"], event.id.as_str());
    assert_eq!(line["subscriber"], "audit");
    assert!(
        line["last_error"].as_str().unwrap().contains("rejected"),
        "{line}"
    );

    let replayed = cli(
        &config_file,
        &[
            "events",
            "dead-letters",
            "replay",
            "--service",
            "auth",
            "--subscriber",
            "audit",
            "--event-id",
            &event.id,
        ],
    )
    .await;
    assert!(replayed.status.success(), "{replayed:?}");
    assert!(
        String::from_utf8_lossy(&replayed.stdout).contains("replayed 1"),
        "{replayed:?}"
    );
    let unknown = cli(
        &config_file,
        &["events", "dead-letters", "list", "--service", "billing"],
    )
    .await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(mesh.shutdown().await.is_empty());
    storage.drop().await;
}

/// Runs the `ironmesh` binary with `config_file` and `args`, bounded by [`CLI_LIMIT`]. Awaited, not
/// blocking: the mesh runs on this test's (single-threaded) runtime, and a relay task caught
/// between its claim's UPDATE and COMMIT holds SQLite's write lock until the runtime polls it
/// again — a blocking wait for the CLI would freeze that task, and the CLI's own write would
/// fail with "database is locked" after the busy timeout.
async fn cli(config_file: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ironmesh"));
    command
        .arg("--config")
        .arg(config_file)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(CLI_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`ironmesh {}` did not finish within {CLI_LIMIT:?}",
                args.join(" ")
            )
        })
        .unwrap()
}

/// The longest one CLI command may take before the test fails.
const CLI_LIMIT: Duration = Duration::from_secs(30);

/// The parts of `config` the CLI needs to open the same stores with the same keys, as TOML.
fn toml_of(config: &Config) -> String {
    let secrets = config.section::<ironmesh_sealing::SecretsConfig>().unwrap();
    format!(
        "data_dir = {:?}\n[service_identity]\nsecret = {:?}\n[secrets]\nmaster_key = {:?}\n",
        config.data_dir.display().to_string(),
        config.service_identity.secret.clone().unwrap_or_default(),
        secrets.master_key.unwrap_or_default(),
    )
}
