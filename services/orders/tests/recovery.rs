//! Recovery finishes what a crash left half done. A stopped process is simulated exactly where
//! it matters — the PENDING order committed (written through orders' own store, as CreateOrder
//! writes it) and, for the second case, inventory's Reserve already done — then orders starts
//! (the restart) and every order reaches RESERVED with stock adding up. An inventory that never
//! answers makes the order REJECTED after `orders.pending_timeout`, and a reservation that got
//! through before is released once inventory is back.

mod common;

use chrono::Utc;
use common::{LIMIT, get, status_of};
use ironmesh_orders::domain::create::{CatalogueProduct, NewOrder, RawLine};
use ironmesh_orders::settings::OrdersConfig;
use ironmesh_orders::store::Store;
use ironmesh_outbox::Events;
use ironmesh_proto::ironmesh::inventory::v1 as inv;
use ironmesh_proto::ironmesh::orders::v1 as pb;
use ironmesh_runtime::{Config, ServiceKind, clients};
use ironmesh_testkit::{Backend, TestDatabase, TestMesh, backends, eventually, test_config};

/// Storage a test keeps across meshes (stop one, start another on the same stores).
struct Stores {
    config: Config,
    pg: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

async fn stores(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(TestDatabase::create().await),
    };
    let mut config = test_config(dir.path(), pg.as_ref().map(|d| d.url()));
    common::quick_recovery(&mut config);
    adjust(&mut config);
    Stores {
        config,
        pg,
        _dir: dir,
    }
}

/// Writes a PENDING order of `quantity` × `product` for `customer` straight into orders'
/// store, as CreateOrder commits it just before calling Reserve.
async fn write_pending(
    config: &Config,
    customer: &str,
    product: &CatalogueProduct,
    quantity: i64,
) -> String {
    let db = common::store(config, ServiceKind::Orders).await;
    db.migrate("orders", &ironmesh_orders::MIGRATIONS)
        .await
        .unwrap();
    let outbox = Events::writer(config, ServiceKind::Orders).unwrap();
    let store = Store::new(db.clone(), outbox);
    let id = uuid::Uuid::now_v7().to_string();
    let new = NewOrder::new(
        &format!("key-{id}"),
        &[RawLine {
            product_id: &product.id,
            sku: "",
            quantity,
        }],
    )
    .unwrap();
    let order = new
        .price(
            id.clone(),
            customer,
            std::slice::from_ref(product),
            Utc::now(),
        )
        .unwrap();
    let event = ironmesh_orders::events::order("test", &order);
    store.insert(&order, "fingerprint", event).await.unwrap();
    db.close().await;
    id
}

/// Inventory's catalogue entry of `product_id`, as orders would have priced it.
async fn catalogue(mesh: &TestMesh, token: &str, product_id: &str) -> CatalogueProduct {
    let p = mesh
        .inventory()
        .await
        .get_product(ironmesh_testkit::authed(
            inv::GetProductRequest {
                product_id: product_id.to_owned(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    CatalogueProduct {
        id: p.product_id,
        sku: p.sku,
        name: p.name,
        price_minor: p.price_minor,
        currency: p.currency,
        active: p.active,
    }
}

/// Reserve as the orders service would have, before it stopped; the reservation id.
async fn reserve_as_orders(
    config: &Config,
    order_id: &str,
    product_id: &str,
    quantity: i64,
) -> String {
    let mut client = inv::inventory_service_client::InventoryServiceClient::new(
        clients::channel(config, "orders", ServiceKind::Inventory).unwrap(),
    );
    client
        .reserve(inv::ReserveRequest {
            order_id: order_id.to_owned(),
            lines: vec![inv::ReservationLine {
                product_id: product_id.to_owned(),
                sku: String::new(),
                quantity,
            }],
            ttl: None,
        })
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap()
        .reservation_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_stopped_mid_saga_are_finished_after_restart() {
    for backend in backends() {
        let stores = stores(backend, |_| {}).await;
        // Auth and inventory run; orders "stopped" after committing two PENDING orders.
        let base = TestMesh::start_on(
            stores.config.clone(),
            &[ServiceKind::Auth, ServiceKind::Inventory],
            false,
        )
        .await;
        let admin = base.admin().await;
        let token = &admin.access_token;
        let mug = common::product(&mut base.inventory().await, token, "MUG", 500, 10).await;
        let product = catalogue(&base, token, &mug).await;
        let before_reserve = write_pending(base.config(), &admin.user_id, &product, 2).await;
        let after_reserve = write_pending(base.config(), &admin.user_id, &product, 3).await;
        let held = reserve_as_orders(base.config(), &after_reserve, &mug, 3).await;

        // The restart.
        let orders = TestMesh::start_on(base.config().clone(), &[ServiceKind::Orders], false).await;
        let mut client = orders.orders().await;
        for id in [&before_reserve, &after_reserve] {
            eventually("the PENDING order is RESERVED", LIMIT, || {
                let mut client = client.clone();
                async move {
                    let order = get(&mut client, token, id).await.unwrap();
                    (status_of(&order) == pb::OrderStatus::Reserved).then_some(())
                }
            })
            .await;
        }
        let second = get(&mut client, token, &after_reserve).await.unwrap();
        assert_eq!(
            second.reservation_id, held,
            "{backend:?}: the reservation made before the crash"
        );
        let mut inventory = base.inventory().await;
        assert_eq!(
            common::stock(&mut inventory, token, &mug).await,
            (10, 5),
            "{backend:?}: 2 + 3, nothing twice"
        );
        assert!(orders.shutdown().await.is_empty());
        assert!(base.shutdown().await.is_empty());
        if let Some(pg) = stores.pg {
            pg.drop_database().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_inventory_rejects_after_the_timeout_and_nothing_stays_held() {
    for backend in backends() {
        let stores = stores(backend, |config| {
            config
                .update_section::<OrdersConfig>(|s| s.pending_timeout_secs = 1)
                .unwrap();
        })
        .await;
        let base = TestMesh::start_on(
            stores.config.clone(),
            &[ServiceKind::Auth, ServiceKind::Inventory],
            false,
        )
        .await;
        let admin = base.admin().await;
        let token = &admin.access_token;
        let mug = common::product(&mut base.inventory().await, token, "MUG", 500, 4).await;
        let product = catalogue(&base, token, &mug).await;
        let id = write_pending(base.config(), &admin.user_id, &product, 1).await;
        // Its Reserve got through before the crash, but inventory is unreachable from the
        // orders that restarts (its endpoint points at a closed port).
        reserve_as_orders(base.config(), &id, &mug, 1).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut cut_off = base.config().clone();
        cut_off.service_mut(ServiceKind::Inventory).endpoint = Some(format!("http://{closed}"));
        let orders = TestMesh::start_on(cut_off, &[ServiceKind::Orders], false).await;
        let client = orders.orders().await;
        let rejected = eventually(
            "the order is REJECTED after the pending timeout",
            LIMIT,
            || {
                let mut client = client.clone();
                let id = id.clone();
                async move {
                    let order = get(&mut client, token, &id).await.unwrap();
                    (status_of(&order) == pb::OrderStatus::Rejected).then_some(order)
                }
            },
        )
        .await;
        assert!(
            rejected.status_reason.contains("pending timeout"),
            "{}",
            rejected.status_reason
        );
        assert!(orders.shutdown().await.is_empty());
        let mut inventory = base.inventory().await;
        assert_eq!(
            common::stock(&mut inventory, token, &mug).await,
            (4, 1),
            "still held while unreachable"
        );

        // Inventory reachable again: recovery releases the hold of the rejected order.
        let orders = TestMesh::start_on(base.config().clone(), &[ServiceKind::Orders], false).await;
        eventually("the rejected order's hold is released", LIMIT, || {
            let mut inventory = inventory.clone();
            let mug = mug.clone();
            async move { (common::stock(&mut inventory, token, &mug).await == (4, 0)).then_some(()) }
        })
        .await;
        assert!(orders.shutdown().await.is_empty());
        assert!(base.shutdown().await.is_empty());
        if let Some(pg) = stores.pg {
            pg.drop_database().await;
        }
    }
}
