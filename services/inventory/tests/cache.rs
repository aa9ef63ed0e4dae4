//! The product cache: after UpdateProduct has returned, no replica serves the old price — on one
//! replica per backend (in process), on two PostgreSQL replicas without Redis (LISTEN/NOTIFY)
//! and with Redis (shared); a fill of a row read before an update never puts the old price back;
//! Redis down never fails a read; hits and misses are counted in `/metrics` (promtool-valid).

mod common;

use std::time::Duration;

use common::{Client, One, Two, create, product};
use ironmesh_inventory::cache::ProductCache;
use ironmesh_inventory::domain::Product;
use ironmesh_launcher::mesh::Component;
use ironmesh_proto::ironmesh::inventory::v1 as pb;
use ironmesh_runtime::{Config, ServiceKind, with_pool};
use ironmesh_testkit::{Backend, backends, eventually, redis_url};
use prost_types::FieldMask;

async fn price_of(client: &mut Client, id: &str) -> i64 {
    client
        .get_product(pb::GetProductRequest {
            product_id: id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .price_minor
}

async fn set_price(client: &mut Client, token: &str, id: &str, price: i64) {
    client
        .update_product(ironmesh_testkit::authed(
            pb::UpdateProductRequest {
                product: Some(pb::Product {
                    product_id: id.to_owned(),
                    price_minor: price,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["price_minor".into()],
                }),
            },
            token,
        ))
        .await
        .unwrap();
}

/// Sets the stored price behind the service's back: no revision, no notification — what only a
/// reader that serves from its cache would not see.
async fn write_behind(config: &Config, id: &str, price: i64) {
    let db = common::store(config).await;
    with_pool!(&db, pool => sqlx::query("UPDATE products SET price_minor = $1 WHERE id = $2")
        .bind(price).bind(id).execute(pool).await.unwrap().rows_affected());
    db.close().await;
}

/// Waits until `reader` serves products from its cache (a PostgreSQL replica does once its
/// listener is up): a warm-up product read, changed behind its back, still reads the same.
async fn until_cached(reader: &mut Client, writer: &mut Client, token: &str, config: &Config) {
    let id = create(
        writer,
        token,
        &format!("WARM-{}", uuid::Uuid::now_v7().simple()).to_uppercase(),
        5,
    )
    .await
    .product_id;
    let mut behind = 5;
    eventually("the cache to serve reads", Duration::from_secs(20), || {
        behind += 1;
        let (mut reader, id, config) = (reader.clone(), id.clone(), config.clone());
        async move {
            let first = price_of(&mut reader, &id).await;
            write_behind(&config, &id, behind).await;
            (price_of(&mut reader, &id).await == first).then_some(())
        }
    })
    .await;
}

/// Rounds of: every replica reads (and caches) the price; it is changed behind the service's
/// back and the replicas still answer the cached one (when `cached`); then one replica updates
/// it, and at once every replica must answer the new price.
async fn no_replica_serves_the_old_price(
    config: &Config,
    writer: &mut Client,
    token: &str,
    readers: &mut [Client],
    cached: bool,
) {
    if cached {
        for reader in readers.iter_mut() {
            until_cached(reader, writer, token, config).await;
        }
    }
    let id = create(writer, token, "CACHED", 1000).await.product_id;
    for round in 1..=30 {
        let old = 1000 + round - 1;
        for reader in readers.iter_mut() {
            assert_eq!(price_of(reader, &id).await, old);
        }
        if cached {
            write_behind(config, &id, 1).await;
            for reader in readers.iter_mut() {
                assert_eq!(price_of(reader, &id).await, old, "served from the cache");
            }
        }
        set_price(writer, token, &id, 1000 + round).await;
        for reader in readers.iter_mut() {
            assert_eq!(price_of(reader, &id).await, 1000 + round, "round {round}");
        }
    }
}

fn with_redis(config: &mut Config) {
    config.redis_url = redis_url();
}

/// One replica, in process: the updated price is served right after the update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_serves_the_new_price_after_an_update() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mut writer = one.client().await;
        let mut readers = [one.client().await];
        no_replica_serves_the_old_price(
            one.mesh.config(),
            &mut writer,
            &one.admin.access_token,
            &mut readers,
            true,
        )
        .await;
        one.stop().await;
    }
}

/// Two PostgreSQL replicas, each with its own in-process cache kept coherent by LISTEN/NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_process_never_serve_the_old_price() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    }
    let two = Two::start(|_| {}).await;
    let mut writer = two.first.inventory().await;
    let mut readers = [two.second.inventory().await, two.first.inventory().await];
    no_replica_serves_the_old_price(
        two.first.config(),
        &mut writer,
        &two.admin.access_token,
        &mut readers,
        true,
    )
    .await;
    two.stop().await;
}

/// Two PostgreSQL replicas sharing the Redis cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_over_redis_never_serve_the_old_price() {
    if !backends().contains(&Backend::Postgres) || redis_url().is_none() {
        eprintln!("skipped: needs PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL)");
        return;
    }
    let two = Two::start(with_redis).await;
    let mut writer = two.first.inventory().await;
    let mut readers = [two.second.inventory().await, two.first.inventory().await];
    no_replica_serves_the_old_price(
        two.first.config(),
        &mut writer,
        &two.admin.access_token,
        &mut readers,
        true,
    )
    .await;
    two.stop().await;
}

/// With Redis configured but unreachable, reads and updates still work (from the database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_never_fails_a_read() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let one = One::start_with(Backend::Sqlite, |config| {
        config.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    let mut client = one.client().await;
    let mut readers = [one.client().await];
    no_replica_serves_the_old_price(
        one.mesh.config(),
        &mut client,
        &one.admin.access_token,
        &mut readers,
        false,
    )
    .await;
    one.stop().await;
}

fn row(id: &str, revision: i64, price: i64) -> Product {
    let at = chrono::Utc::now();
    Product {
        id: id.to_owned(),
        sku: "RACE".into(),
        name: "Race".into(),
        description: String::new(),
        price_minor: price,
        currency: "EUR".into(),
        active: true,
        revision,
        created_at: at,
        updated_at: at,
    }
}

/// A reader that read revision 1, then lost the race to an update (revision 2), fills the
/// cache late: the old price does not come back — in Redis and in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_fill_never_puts_the_old_price_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/race.db", dir.path().display());
    let db = ironmesh_runtime::Database::connect(&url, "inventory")
        .await
        .unwrap();
    let mut caches = vec![ProductCache::local(Duration::from_secs(60), &db)];
    if let Some(url) = redis_url() {
        caches.push(ProductCache::redis(&url, Duration::from_secs(60)).unwrap());
    }
    for cache in caches {
        let id = uuid::Uuid::now_v7().to_string();
        let ids = [id.clone()];
        let (found, ticket) = cache.lookup(&ids).await;
        assert!(found.is_empty());
        cache.updated(&row(&id, 2, 200)).await;
        cache.fill(ticket, &[row(&id, 1, 100)]).await;
        let (found, _) = cache.lookup(&ids).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].price_minor, 200, "the newer revision stays");
    }
    db.close().await;
}

/// Reads count as hits or misses in `/metrics`, which promtool accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_and_misses_are_counted() {
    let one = One::start(Backend::Sqlite).await;
    let admin = one
        .mesh
        .admin_addr(Component::Service(ServiceKind::Inventory));
    let scrape = || ironmesh_testkit::metrics::scrape(admin);
    let count = |text: &str, result: &str| {
        let labels = [("service", "inventory"), ("result", result)];
        ironmesh_testkit::metrics::sample(text, "ironmesh_inventory_cache_requests_total", &labels)
            .unwrap_or_else(|| panic!("a {result} series in:\n{text}"))
    };
    let before = scrape().await;
    let mut client = one.client().await;
    let created = client
        .create_product(one.op(pb::CreateProductRequest {
            product: Some(product("COUNTED", 1, true)),
        }))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    price_of(&mut client, &created.product_id).await;
    price_of(&mut client, &created.product_id).await;
    let after = scrape().await;
    assert!(count(&after, "miss") > count(&before, "miss"));
    assert!(count(&after, "hit") > count(&before, "hit"));
    ironmesh_testkit::metrics::check_with_promtool(&after);
    one.stop().await;
}
