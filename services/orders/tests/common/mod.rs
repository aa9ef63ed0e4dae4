//! What orders' behaviour tests share: a mesh of auth + inventory + orders (one of each, or on
//! PostgreSQL a second orders and inventory replica on the same database), customers and an
//! operator, products with stock, and readers of the services' own tables.
#![allow(dead_code)]

use std::time::Duration;

use ironmesh_proto::ironmesh::inventory::v1::{
    self as inv, inventory_service_client::InventoryServiceClient,
};
use ironmesh_proto::ironmesh::orders::v1::{
    self as pb, orders_service_client::OrdersServiceClient,
};
use ironmesh_runtime::{Config, Database, ServiceKind, with_pool};
use ironmesh_testkit::{Backend, Session, TestDatabase, TestMesh, authed, test_config};
use tonic::transport::Channel;

pub type Orders = OrdersServiceClient<Channel>;
pub type Inventory = InventoryServiceClient<Channel>;

pub const SERVICES: &[ServiceKind] = &[
    ServiceKind::Auth,
    ServiceKind::Inventory,
    ServiceKind::Orders,
];
pub const LIMIT: Duration = Duration::from_secs(30);

/// Recovery every 100 ms (tests wait for what it does, never for a fixed time).
pub fn quick_recovery(config: &mut Config) {
    config
        .update_section::<ironmesh_orders::settings::OrdersConfig>(|s| s.recovery_interval_ms = 100)
        .unwrap();
}

/// One mesh and its administrator.
pub struct One {
    pub mesh: TestMesh,
    pub admin: Session,
}

impl One {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, quick_recovery).await
    }

    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let mesh = TestMesh::start_with(backend, SERVICES, false, adjust).await;
        let admin = mesh.admin().await;
        Self { mesh, admin }
    }

    pub async fn orders(&self) -> Orders {
        self.mesh.orders().await
    }

    pub async fn inventory(&self) -> Inventory {
        self.mesh.inventory().await
    }

    pub fn op<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.admin.access_token)
    }

    /// An active product `sku` at `price` EUR cents with `units` in stock; its id.
    pub async fn product(&self, sku: &str, price: i64, units: i64) -> String {
        product(
            &mut self.inventory().await,
            &self.admin.access_token,
            sku,
            price,
            units,
        )
        .await
    }

    pub async fn stop(self) {
        assert!(self.mesh.shutdown().await.is_empty(), "clean shutdown");
    }
}

/// Two replicas each of orders and inventory (the first beside auth) on one PostgreSQL
/// database; each orders replica calls the inventory replica beside it.
pub struct Two {
    pub first: TestMesh,
    pub second: TestMesh,
    pub admin: Session,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Two {
    pub async fn start() -> Self {
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), Some(database.url()));
        quick_recovery(&mut config);
        let first = TestMesh::start_on(config, SERVICES, false).await;
        let mut config = first.config().clone();
        for kind in [ServiceKind::Orders, ServiceKind::Inventory] {
            let own = config.service_mut(kind);
            own.grpc_port = 0;
            own.admin_port = 0;
            own.endpoint = None;
        }
        let second = TestMesh::start_on(
            config,
            &[ServiceKind::Inventory, ServiceKind::Orders],
            false,
        )
        .await;
        let admin = first.admin().await;
        Self {
            first,
            second,
            admin,
            database,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        assert!(self.second.shutdown().await.is_empty(), "clean shutdown");
        assert!(self.first.shutdown().await.is_empty(), "clean shutdown");
        self.database.drop_database().await;
    }
}

/// Creates the active product `sku` as the operator of `token` with `units` in stock.
pub async fn product(
    client: &mut Inventory,
    token: &str,
    sku: &str,
    price: i64,
    units: i64,
) -> String {
    let created = client
        .create_product(authed(
            inv::CreateProductRequest {
                product: Some(inv::Product {
                    sku: sku.to_owned(),
                    name: format!("Product {sku}"),
                    price_minor: price,
                    currency: "EUR".to_owned(),
                    active: true,
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .unwrap_or_else(|s| panic!("create {sku}: {s:?}"))
        .into_inner()
        .product
        .unwrap();
    if units > 0 {
        client
            .adjust_stock(authed(
                inv::AdjustStockRequest {
                    product_id: created.product_id.clone(),
                    delta: units,
                    reason: inv::AdjustmentReason::Restock.into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap_or_else(|s| panic!("restock {sku}: {s:?}"));
    }
    created.product_id
}

/// `(on_hand, reserved)` of a product, read through inventory.
pub async fn stock(client: &mut Inventory, token: &str, product_id: &str) -> (i64, i64) {
    let s = client
        .get_stock(authed(
            inv::GetStockRequest {
                product_id: product_id.to_owned(),
            },
            token,
        ))
        .await
        .unwrap_or_else(|s| panic!("get stock: {s:?}"))
        .into_inner()
        .stock
        .unwrap();
    (s.on_hand, s.reserved)
}

/// A CreateOrder of `(sku, quantity)` lines under `key`.
pub fn order_of(key: &str, lines: &[(&str, i64)]) -> pb::CreateOrderRequest {
    pb::CreateOrderRequest {
        idempotency_key: key.to_owned(),
        lines: lines
            .iter()
            .map(|(sku, quantity)| pb::OrderLine {
                sku: (*sku).to_owned(),
                quantity: *quantity,
                ..Default::default()
            })
            .collect(),
    }
}

/// Creates an order as `token`, expecting success.
pub async fn create(
    client: &mut Orders,
    token: &str,
    key: &str,
    lines: &[(&str, i64)],
) -> pb::Order {
    client
        .create_order(authed(order_of(key, lines), token))
        .await
        .unwrap_or_else(|s| panic!("create order: {s:?}"))
        .into_inner()
        .order
        .unwrap()
}

pub async fn get(
    client: &mut Orders,
    token: &str,
    order_id: &str,
) -> Result<pb::Order, tonic::Status> {
    client
        .get_order(authed(
            pb::GetOrderRequest {
                order_id: order_id.to_owned(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().order.unwrap())
}

pub fn pay_request(order: &pb::Order, reference: &str) -> pb::PayOrderRequest {
    pb::PayOrderRequest {
        order_id: order.order_id.clone(),
        amount_minor: order.total_minor,
        currency: order.currency.clone(),
        payment_reference: reference.to_owned(),
    }
}

pub fn status_of(order: &pb::Order) -> pb::OrderStatus {
    pb::OrderStatus::try_from(order.status).unwrap()
}

/// `kind`'s database, opened beside the running service.
pub async fn store(config: &Config, kind: ServiceKind) -> Database {
    Database::connect(&config.database_url(kind), kind.name())
        .await
        .expect("open the store")
}

/// Runs one statement against `kind`'s database.
pub async fn execute(config: &Config, kind: ServiceKind, sql: &str, binds: &[&str]) -> u64 {
    let db = store(config, kind).await;
    let done = with_pool!(&db, pool => {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        query.execute(pool).await.unwrap().rows_affected()
    });
    db.close().await;
    done
}

/// `(event_type, aggregate_id)` of orders' outbox, in the order written.
pub async fn order_events(config: &Config) -> Vec<(String, String)> {
    let db = store(config, ServiceKind::Orders).await;
    let rows: Vec<(String, String)> = with_pool!(&db, pool => sqlx::query_as(
        "SELECT event_type, aggregate_id FROM outbox_events ORDER BY seq"
    ).fetch_all(pool).await.unwrap());
    db.close().await;
    rows
}

/// Every order's status in orders' table, by status.
pub async fn count_by_status(config: &Config) -> Vec<(String, i64)> {
    let db = store(config, ServiceKind::Orders).await;
    let rows: Vec<(String, i64)> = with_pool!(&db, pool => sqlx::query_as(
        "SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status"
    ).fetch_all(pool).await.unwrap());
    db.close().await;
    rows
}

/// Backends for tests that need a second replica: PostgreSQL only.
pub fn postgres_configured() -> bool {
    ironmesh_testkit::backends().contains(&Backend::Postgres)
}
