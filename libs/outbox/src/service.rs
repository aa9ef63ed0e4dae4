//! What a producing service adds to its process: [`Events`] — its [`Outbox`] with the
//! subscribers of the `events` section, each reached over the shared client stack as the
//! service itself (`Deliver` is internal), mounted on the server with [`Events::mount`] (the
//! operator's `EventsAdminService` and the relay as a background task).
//!
//! ```ignore
//! let events = Events::from_config(&config, KIND)?;
//! let outbox = events.outbox().clone();          // for the store's transactions
//! run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
//!     events.mount(GrpcService::new(KIND).add_service(…), db)
//! })
//! ```

use futures_util::future::BoxFuture;
use ironmesh_proto::ironmesh::events::v1::event_sink_service_client::EventSinkServiceClient;
use ironmesh_proto::ironmesh::events::v1::events_admin_service_server::EventsAdminServiceServer;
use ironmesh_proto::ironmesh::events::v1::{DeliverRequest, DeliverResponse};
use ironmesh_runtime::config::ConfigError;
use ironmesh_runtime::{
    Config, Database, GrpcService, RunError, ServiceKind, clients, limit_sizes,
};

use crate::admin::EventsAdmin;
use crate::config::EventsConfig;
use crate::relay::RelayConfig;
use crate::sink::Sink;
use crate::subscriber::Subscriber;
use crate::write::Outbox;

/// A producing service's events: its outbox and how its relay runs.
#[derive(Clone, Debug)]
pub struct Events {
    outbox: Outbox,
    relay: RelayConfig,
    max_message_bytes: usize,
}

impl Events {
    /// The outbox of `source` with the configured subscribers. A subscriber that is `source`
    /// itself is skipped (a service does not deliver to itself). Must run inside tokio.
    pub fn from_config(config: &Config, source: ServiceKind) -> Result<Self, RunError> {
        let section = config.section::<EventsConfig>()?;
        let mut subscribers = Vec::new();
        for entry in &section.subscribers {
            let kind = entry
                .service_kind()
                .expect("validated: a subscriber names a service");
            if kind == source {
                continue;
            }
            let channel = clients::channel(config, source.name(), kind).map_err(|err| {
                RunError::Setup(format!("events subscriber `{}`: {err}", entry.name))
            })?;
            subscribers.push(Subscriber::from_config(
                entry,
                EventSinkServiceClient::new(channel),
            ));
        }
        Ok(Self::new(
            Outbox::new(source.name(), subscribers),
            section.relay(),
            config.max_message_bytes,
        ))
    }

    /// An outbox that only writes: the configured subscribers get their delivery rows, but this
    /// process never delivers them — an operator command's, whose rows the running service's
    /// relay picks up at its next poll. Its sinks refuse every call, and no relay is started.
    pub fn writer(config: &Config, source: ServiceKind) -> Result<Outbox, ConfigError> {
        let section = config.section::<EventsConfig>()?;
        let subscribers = section
            .subscribers
            .iter()
            .filter(|s| s.service_kind() != Some(source))
            .map(|s| Subscriber::from_config(s, WriteOnly))
            .collect();
        Ok(Outbox::new(source.name(), subscribers))
    }

    /// From parts (tests that bring their own sinks).
    pub fn new(outbox: Outbox, relay: RelayConfig, max_message_bytes: usize) -> Self {
        Self {
            outbox,
            relay,
            max_message_bytes,
        }
    }

    /// The outbox to write through, inside the store's transactions.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Adds the operator's `EventsAdminService` over this outbox and its relay (a background
    /// task, stopped after the server has drained) to `service`.
    pub fn mount(self, service: GrpcService, db: Database) -> GrpcService {
        let limit = self.max_message_bytes;
        let relay = self.outbox.relay(db.clone(), self.relay);
        service
            .add_service(limit_sizes!(
                EventsAdminServiceServer::new(EventsAdmin::new(db, self.outbox)),
                limit
            ))
            .background("outbox relay", move |token| relay.run(token))
    }
}

/// The sink of [`Events::writer`]'s subscribers: that outbox never runs a relay, so nothing calls
/// it; if something did, the pair would be retried by a real relay later.
struct WriteOnly;

impl Sink for WriteOnly {
    fn deliver(
        &self,
        _request: DeliverRequest,
        _timeout: std::time::Duration,
    ) -> BoxFuture<'static, Result<DeliverResponse, tonic::Status>> {
        Box::pin(async {
            Err(tonic::Status::unavailable(
                "this process writes events but does not deliver them",
            ))
        })
    }
}
