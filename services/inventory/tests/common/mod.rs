//! What inventory's behaviour tests share: a mesh of auth + inventory (one, or two inventory
//! replicas on one PostgreSQL database), clients as an operator and as the orders service, and
//! small builders. Every RPC is bounded (the testkit's channel limit, or the client stack's
//! default deadline for service calls).
#![allow(dead_code)]

use std::time::Duration;

use ironmesh_interceptors::client::GrpcChannel;
use ironmesh_proto::ironmesh::inventory::v1::{
    self as pb, inventory_service_client::InventoryServiceClient,
};
use ironmesh_runtime::{Config, Database, ServiceKind, clients, with_pool};
use ironmesh_testkit::{Backend, Session, TestDatabase, TestMesh, authed, test_config};
use tonic::transport::Channel;

pub type Client = InventoryServiceClient<Channel>;
pub type ServiceClient = InventoryServiceClient<GrpcChannel>;

/// Services every inventory test runs: auth issues the operators' and customers' tokens.
pub const SERVICES: &[ServiceKind] = &[ServiceKind::Auth, ServiceKind::Inventory];

/// One mesh (auth + inventory) and its administrator.
pub struct One {
    pub mesh: TestMesh,
    pub admin: Session,
}

impl One {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let mesh = TestMesh::start_with(backend, SERVICES, false, adjust).await;
        let admin = mesh.admin().await;
        Self { mesh, admin }
    }

    pub async fn client(&self) -> Client {
        self.mesh.inventory().await
    }

    /// A client calling as the orders service (what internal methods accept).
    pub fn orders(&self) -> ServiceClient {
        as_orders(self.mesh.config())
    }

    pub fn op<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.admin.access_token)
    }

    pub async fn stop(self) {
        assert!(self.mesh.shutdown().await.is_empty(), "clean shutdown");
    }
}

pub fn as_orders(config: &Config) -> ServiceClient {
    InventoryServiceClient::new(
        clients::channel(config, "orders", ServiceKind::Inventory).expect("orders' channel"),
    )
}

/// Two inventory replicas (the first beside auth) sharing one PostgreSQL database, as
/// replicas behind a Kubernetes Service do.
pub struct Two {
    pub first: TestMesh,
    pub second: TestMesh,
    pub admin: Session,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Two {
    pub async fn start(adjust: impl Fn(&mut Config)) -> Self {
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), Some(database.url()));
        adjust(&mut config);
        let first = TestMesh::start_on(config, SERVICES, false).await;
        // The second replica reaches the first's auth (for JWKS), on listeners of its own.
        let mut config = first.config().clone();
        let own = config.service_mut(ServiceKind::Inventory);
        own.grpc_port = 0;
        own.admin_port = 0;
        own.endpoint = None;
        let second = TestMesh::start_on(config, &[ServiceKind::Inventory], false).await;
        let admin = first.admin().await;
        Self {
            first,
            second,
            admin,
            database,
            _dir: dir,
        }
    }

    pub fn op<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.admin.access_token)
    }

    pub async fn stop(self) {
        assert!(self.second.shutdown().await.is_empty(), "clean shutdown");
        assert!(self.first.shutdown().await.is_empty(), "clean shutdown");
        self.database.drop_database().await;
    }
}

/// A product named `sku`, priced `price` EUR cents.
pub fn product(sku: &str, price: i64, active: bool) -> pb::Product {
    pb::Product {
        sku: sku.to_owned(),
        name: format!("Product {sku}"),
        price_minor: price,
        currency: "EUR".to_owned(),
        active,
        ..Default::default()
    }
}

/// Creates `sku` as the operator of `token` and returns it.
pub async fn create(client: &mut Client, token: &str, sku: &str, price: i64) -> pb::Product {
    client
        .create_product(authed(
            pb::CreateProductRequest {
                product: Some(product(sku, price, true)),
            },
            token,
        ))
        .await
        .unwrap_or_else(|s| panic!("create {sku}: {s:?}"))
        .into_inner()
        .product
        .unwrap()
}

/// Adds `delta` units to the product's stock.
pub async fn restock(client: &mut Client, token: &str, product_id: &str, delta: i64) -> pb::Stock {
    client
        .adjust_stock(authed(
            pb::AdjustStockRequest {
                product_id: product_id.to_owned(),
                delta,
                reason: pb::AdjustmentReason::Restock.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap_or_else(|s| panic!("restock: {s:?}"))
        .into_inner()
        .stock
        .unwrap()
}

pub async fn stock(client: &mut Client, token: &str, product_id: &str) -> pb::Stock {
    client
        .get_stock(authed(
            pb::GetStockRequest {
                product_id: product_id.to_owned(),
            },
            token,
        ))
        .await
        .unwrap_or_else(|s| panic!("get stock: {s:?}"))
        .into_inner()
        .stock
        .unwrap()
}

/// A Reserve of `(product_id, quantity)` lines for a new order.
pub fn reserve(lines: &[(&str, i64)]) -> pb::ReserveRequest {
    pb::ReserveRequest {
        order_id: uuid::Uuid::now_v7().to_string(),
        lines: lines
            .iter()
            .map(|(id, quantity)| pb::ReservationLine {
                product_id: (*id).to_owned(),
                sku: String::new(),
                quantity: *quantity,
            })
            .collect(),
        ttl: None,
    }
}

/// Inventory's database, opened beside the running service.
pub async fn store(config: &Config) -> Database {
    Database::connect(
        &config.database_url(ServiceKind::Inventory),
        ServiceKind::Inventory.name(),
    )
    .await
    .expect("open inventory's store")
}

/// Types of the events in inventory's outbox, in the order written.
pub async fn event_types(config: &Config) -> Vec<(String, String, String)> {
    let db = store(config).await;
    let rows: Vec<(String, String, String)> = with_pool!(&db, pool => sqlx::query_as(
        "SELECT event_type, aggregate_id, actor FROM outbox_events ORDER BY seq"
    ).fetch_all(pool).await.unwrap());
    db.close().await;
    rows
}

/// Moves the reservation's expiry into the past, as if its TTL had run out (a minute is the
/// contract's shortest TTL; tests do not wait for it).
pub async fn lapse(config: &Config, reservation_id: &str) {
    let db = store(config).await;
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    let done = with_pool!(&db, pool => sqlx::query("UPDATE reservations SET expires_at = $1 WHERE id = $2")
        .bind(past)
        .bind(reservation_id)
        .execute(pool).await.unwrap().rows_affected());
    assert_eq!(done, 1);
    db.close().await;
}

/// A sweeper that never runs on its own during a test (the test expires reservations itself
/// or lowers it).
pub fn slow_sweeper(config: &mut Config) {
    config
        .update_section::<ironmesh_inventory::settings::InventoryConfig>(|s| {
            s.sweep_interval_ms = 3_600_000;
        })
        .unwrap();
}

pub const LIMIT: Duration = Duration::from_secs(30);
