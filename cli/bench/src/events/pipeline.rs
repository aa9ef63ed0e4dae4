//! The pipeline, producer → outbox → relay → audit, measured three ways on one producer store:
//! how fast one producer writes events (relay stopped), how fast the relay then delivers them
//! to audit, and how long an event takes to reach audit's store at half the slower of the two.

use std::time::{Duration, Instant};

use ironmesh_outbox::{NewEvent, Outbox, RelayConfig, Subscriber};
use ironmesh_proto::ironmesh::auth::v1::LoginFailed;
use ironmesh_proto::ironmesh::events::v1::event_sink_service_client::EventSinkServiceClient;
use ironmesh_runtime::{Config, Database, ServiceKind, with_pool};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::checks::{self, Deliveries};
use super::pace::Pace;
use super::{HALF, Rate, Storage, backend_name, failed};
use crate::args::BenchArgs;
use crate::error::BenchError;
use crate::h2load::percentile_ms;

/// The producer: it writes as auth does, to its subscriber `audit`, which wants every type.
pub(super) const PRODUCER: &str = "auth";
pub(super) const SUBSCRIBER: &str = "audit";
/// The producer's store: only the outbox tables.
const PRODUCER_MIGRATIONS: ironmesh_runtime::storage::MigrationSet =
    ironmesh_runtime::migrations![1, "outbox", (ironmesh_outbox::schema::OUTBOX);];
/// Every event is auth's failed login: its own aggregate (the attempt), so the relay's
/// per-aggregate order never holds an event back behind another.
pub(super) const EVENT_TYPE: &str = "auth.login.failed";
const AGGREGATE_TYPE: &str = "login";
const ACTOR: &str = "anonymous";
/// How often the bench looks whether the relay is done.
pub(super) const POLL: Duration = Duration::from_millis(20);
/// The relay is stuck when the pending count has not dropped for this long.
const STALL_LIMIT: Duration = Duration::from_secs(30);
/// The half-load writer's timer.
const TICK: Duration = Duration::from_millis(1);

/// What the pipeline measured.
#[derive(Debug)]
pub(super) struct Pipeline {
    /// The producer's events, one per transaction, relay stopped.
    pub insert: Rate,
    /// The same events delivered by the relay, from its start until none is pending.
    pub relay: Rate,
    /// What the outbox says of every pair afterwards (both runs).
    pub deliveries: Deliveries,
    pub half_load: HalfLoad,
}

/// The run at half load.
#[derive(Debug)]
pub(super) struct HalfLoad {
    /// The rate asked for: half the slower of insert and relay.
    pub asked_per_sec: f64,
    /// Events written and the time writing them took.
    pub written: Rate,
    /// recorded_at − occurred_at of those events' audit entries.
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
}

/// Runs the three measurements against the audit service `config` reaches.
pub(super) async fn run(
    args: &BenchArgs,
    storage: &Storage,
    config: &Config,
) -> Result<Pipeline, BenchError> {
    let name = backend_name(storage.backend());
    let db = storage.open("producer", &PRODUCER_MIGRATIONS).await?;
    // Audit's own store, read by the checks only.
    let audit_db = Database::connect(&config.database_url(ServiceKind::Audit), "audit")
        .await
        .map_err(failed("cannot open audit's store"))?;
    // As a producing service reaches its subscribers: the shared client stack, as the service
    // itself (`Deliver` is internal).
    let channel = ironmesh_runtime::clients::channel(config, PRODUCER, ServiceKind::Audit)
        .map_err(failed("cannot build the client to audit"))?;
    let sink = EventSinkServiceClient::new(channel);
    let outbox = Outbox::new(PRODUCER, vec![Subscriber::new(SUBSCRIBER, &["*"], sink)]);

    crate::progress(
        args,
        &format!(
            "events on {name}: the producer writes {} events, relay stopped…",
            args.events
        ),
    );
    let started = Instant::now();
    let mut ids = Vec::with_capacity(usize::try_from(args.events).unwrap_or(0));
    for _ in 0..args.events {
        ids.push(write_event(&outbox, &db).await?);
    }
    let insert = Rate::new(args.events, started.elapsed());
    let pending = checks::pending(&db).await?;
    if pending != args.events {
        return Err(BenchError::Failed(format!(
            "after writing {} events the outbox has {pending} pending deliveries",
            args.events
        )));
    }

    crate::progress(
        args,
        &format!("events on {name}: the relay delivers them to audit…"),
    );
    let stop = CancellationToken::new();
    // Stops the relay on every way out of this function.
    let _stop_relay = stop.clone().drop_guard();
    let started = Instant::now();
    let relay = tokio::spawn(
        outbox
            .relay(db.clone(), RelayConfig::default())
            .run(stop.clone()),
    );
    outbox.wake();
    drained(&db).await?;
    let relayed = Rate::new(args.events, started.elapsed());
    checks::audit_holds(&audit_db, 0, &ids).await?;

    let pace = Pace::new(
        HALF * insert.per_sec().min(relayed.per_sec()),
        Duration::from_secs(args.duration),
    );
    crate::progress(
        args,
        &format!(
            "events on {name}: {:.0} events/s for {} s with the relay running…",
            pace.per_sec(),
            args.duration
        ),
    );
    let (half_ids, written) = paced(&outbox, &db, pace).await?;
    drained(&db).await?;
    let times =
        checks::audit_holds(&audit_db, i64::try_from(ids.len()).unwrap_or(0), &half_ids).await?;
    let deliveries = checks::deliveries(&db, args.events + half_ids.len() as u64).await?;

    stop.cancel();
    relay
        .await
        .map_err(|err| BenchError::Failed(format!("the relay task failed: {err}")))?;
    audit_db.close().await;
    db.close().await;

    let mut lags_us: Vec<u64> = times
        .iter()
        .map(|&(occurred_ns, recorded_ns)| {
            u64::try_from(recorded_ns.saturating_sub(occurred_ns) / 1000).unwrap_or(0)
        })
        .collect();
    lags_us.sort_unstable();
    Ok(Pipeline {
        insert,
        relay: relayed,
        deliveries,
        half_load: HalfLoad {
            asked_per_sec: pace.per_sec(),
            written,
            lag_p50_ms: percentile_ms(&lags_us, 0.50),
            lag_p99_ms: percentile_ms(&lags_us, 0.99),
            lag_max_ms: percentile_ms(&lags_us, 1.0),
        },
    })
}

/// One event in its own transaction, as a producer writes it beside its change; its id.
async fn write_event(outbox: &Outbox, db: &Database) -> Result<String, BenchError> {
    let attempt = uuid::Uuid::now_v7().to_string();
    let payload = LoginFailed {
        reason: "invalid_credentials".to_owned(),
        address: "127.0.0.1".to_owned(),
        user_id: String::new(),
    };
    let event = NewEvent::protobuf(EVENT_TYPE, AGGREGATE_TYPE, &attempt, ACTOR, &payload);
    let written = with_pool!(db, pool => {
        let mut tx = pool.begin().await.map_err(failed("cannot begin a producer transaction"))?;
        let written = outbox
            .write(&mut *tx, event)
            .await
            .map_err(failed("Outbox::write failed"))?;
        tx.commit().await.map_err(failed("cannot commit a producer transaction"))?;
        written
    });
    Ok(written.id)
}

/// Writes `pace`'s events, waking the relay after each commit; their ids and the rate achieved.
async fn paced(
    outbox: &Outbox,
    db: &Database,
    pace: Pace,
) -> Result<(Vec<String>, Rate), BenchError> {
    let mut ids = Vec::with_capacity(usize::try_from(pace.total()).unwrap_or(0));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    while (ids.len() as u64) < pace.total() {
        tick.tick().await;
        let due = pace.due(started.elapsed());
        while (ids.len() as u64) < due {
            ids.push(write_event(outbox, db).await?);
            outbox.wake();
        }
    }
    let written = Rate::new(pace.total(), started.elapsed());
    Ok((ids, written))
}

/// Waits until no delivery is pending, looking every [`POLL`]; fails when the count has not
/// dropped for [`STALL_LIMIT`].
async fn drained(db: &Database) -> Result<(), BenchError> {
    let mut lowest = u64::MAX;
    let mut dropped_at = Instant::now();
    loop {
        let pending = checks::pending(db).await?;
        if pending == 0 {
            return Ok(());
        }
        if pending < lowest {
            lowest = pending;
            dropped_at = Instant::now();
        } else if dropped_at.elapsed() > STALL_LIMIT {
            let worst = match checks::last_error(db).await? {
                Some((attempts, error)) => {
                    format!("; one was tried {attempts} time(s), last error: {error:?}")
                }
                None => String::new(),
            };
            return Err(BenchError::Failed(format!(
                "the relay delivered nothing for {} s; {pending} deliveries still pending{worst}",
                STALL_LIMIT.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
