//! The catalogue over gRPC, on both backends: CreateProduct's rules (each broken one named),
//! ALREADY_EXISTS, Get (inactive too), BatchGetProducts (internal), UpdateProduct's mask rules
//! and events, and what callers without the right principal are refused. ListProducts is in
//! `listing.rs`.

mod common;

use common::{One, create, product};
use ironmesh_proto::ironmesh::inventory::v1 as pb;
use ironmesh_runtime::with_pool;
use ironmesh_testkit::{authed, backends, violations};
use prost::Message as _;
use prost_types::FieldMask;

/// Every broken field rule comes back as a named BadRequest violation; a taken sku is
/// ALREADY_EXISTS; a new product has zero stock; Get returns it, inactive or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_validates_refuses_taken_skus_and_starts_at_zero_stock() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mut client = one.client().await;
        let bad = pb::Product {
            sku: "bad sku".into(),
            name: String::new(),
            description: "x".repeat(5001),
            price_minor: -1,
            currency: "euro".into(),
            ..Default::default()
        };
        let status = client
            .create_product(one.op(pb::CreateProductRequest { product: Some(bad) }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{backend:?}");
        assert_eq!(
            violations(&status),
            [
                "product.sku",
                "product.name",
                "product.description",
                "product.price_minor",
                "product.currency"
            ]
        );
        let status = client
            .create_product(one.op(pb::CreateProductRequest { product: None }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);

        let inactive = client
            .create_product(one.op(pb::CreateProductRequest {
                product: Some(product("MUG-01", 1250, false)),
            }))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        assert!(!inactive.active, "inactive unless asked");
        assert!(uuid::Uuid::parse_str(&inactive.product_id).is_ok());
        assert!(inactive.created_at.is_some());
        let taken = client
            .create_product(one.op(pb::CreateProductRequest {
                product: Some(product("MUG-01", 1, true)),
            }))
            .await
            .unwrap_err();
        assert_eq!(taken.code(), tonic::Code::AlreadyExists);

        let stock = common::stock(&mut client, &one.admin.access_token, &inactive.product_id).await;
        assert_eq!((stock.on_hand, stock.reserved, stock.available), (0, 0, 0));
        assert_eq!(stock.sku, "MUG-01");

        // Public: no token needed, inactive included.
        let got = client
            .get_product(pb::GetProductRequest {
                product_id: inactive.product_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        assert_eq!(got, inactive);
        for (id, code) in [
            (uuid::Uuid::now_v7().to_string(), tonic::Code::NotFound),
            ("not-a-uuid".to_owned(), tonic::Code::InvalidArgument),
        ] {
            let status = client
                .get_product(pb::GetProductRequest { product_id: id })
                .await
                .unwrap_err();
            assert_eq!(status.code(), code);
        }
        // Changes are for operators only.
        let customer = one.mesh.customer().await;
        let denied = client
            .create_product(authed(
                pb::CreateProductRequest {
                    product: Some(product("X", 1, true)),
                },
                &customer.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        one.stop().await;
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// The mask names what changes; unset = every non-default field; sku, output-only and
/// unknown paths are INVALID_ARGUMENT on `update_mask`; unknown ids NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_follows_the_mask_rules() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let created = create(&mut client, &token, "LAMP", 4000).await;
        let update = |product: pb::Product, update_mask| pb::UpdateProductRequest {
            product: Some(product),
            update_mask,
        };
        let id = created.product_id.clone();

        // Only the price: the other (different) values in the body are ignored.
        let body = pb::Product {
            product_id: id.clone(),
            name: "Ignored".into(),
            price_minor: 4500,
            ..Default::default()
        };
        let priced = client
            .update_product(one.op(update(body, mask(&["price_minor"]))))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        assert_eq!(
            (priced.price_minor, priced.name.as_str()),
            (4500, created.name.as_str())
        );
        let at = |p: &pb::Product| {
            let t = p.updated_at.unwrap();
            (t.seconds, t.nanos)
        };
        assert!(at(&priced) > at(&created));
        assert_eq!(priced.created_at, created.created_at);

        // Unset mask: every non-default field (so `active: false` changes nothing).
        let body = pb::Product {
            product_id: id.clone(),
            name: "Desk lamp".into(),
            description: "Warm light".into(),
            ..Default::default()
        };
        let renamed = client
            .update_product(one.op(update(body, None)))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        assert_eq!(renamed.name, "Desk lamp");
        assert_eq!(renamed.description, "Warm light");
        assert_eq!(renamed.price_minor, 4500);
        assert!(renamed.active, "unset mask leaves a default bool alone");

        // Named explicitly, false deactivates.
        let body = pb::Product {
            product_id: id.clone(),
            ..Default::default()
        };
        let hidden = client
            .update_product(one.op(update(body.clone(), mask(&["active"]))))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        assert!(!hidden.active);

        // Nothing set and nothing named: refused (a default value must be named).
        let status = client
            .update_product(one.op(update(body.clone(), None)))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["update_mask"]);
        for paths in [&["sku"][..], &["created_at"], &["updated_at"], &["colour"]] {
            let status = client
                .update_product(one.op(update(body.clone(), mask(paths))))
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{paths:?}");
            assert_eq!(violations(&status), ["update_mask"], "{paths:?}");
        }
        let status = client
            .update_product(one.op(update(body.clone(), mask(&["currency"]))))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["product.currency"]);
        let unknown = pb::Product {
            product_id: uuid::Uuid::now_v7().to_string(),
            name: "x".into(),
            ..Default::default()
        };
        let status = client
            .update_product(one.op(update(unknown, None)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        let malformed = pb::Product {
            product_id: "42".into(),
            name: "x".into(),
            ..Default::default()
        };
        let status = client
            .update_product(one.op(update(malformed, None)))
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["product.product_id"]);

        // Each change wrote its event, with the product as it was then and the operator.
        let events = common::event_types(one.mesh.config()).await;
        let mine: Vec<_> = events
            .iter()
            .filter(|(_, aggregate, _)| *aggregate == id)
            .collect();
        let types: Vec<&str> = mine.iter().map(|(t, _, _)| t.as_str()).collect();
        assert_eq!(
            types,
            [
                "inventory.product.created",
                "inventory.product.updated",
                "inventory.product.updated",
                "inventory.product.updated"
            ]
        );
        assert!(mine.iter().all(|(_, _, actor)| *actor == one.admin.user_id));
        let db = common::store(one.mesh.config()).await;
        let payloads: Vec<(Vec<u8>,)> = with_pool!(&db, pool => sqlx::query_as(
            "SELECT payload FROM outbox_events WHERE aggregate_id = $1 ORDER BY seq"
        ).bind(&id).fetch_all(pool).await.unwrap());
        db.close().await;
        let prices: Vec<i64> = payloads
            .iter()
            .map(|(p,)| pb::Product::decode(p.as_slice()).unwrap().price_minor)
            .collect();
        assert_eq!(prices, [4000, 4500, 4500, 4500]);
        one.stop().await;
    }
}

/// BatchGetProducts (internal): by ids and skus together, each product once, inactive
/// included, unknown names left out; refused to user tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_returns_named_products_to_services_only() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let a = create(&mut client, &token, "A", 1).await;
        let b = client
            .create_product(one.op(pb::CreateProductRequest {
                product: Some(product("B", 2, false)),
            }))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        let request = pb::BatchGetProductsRequest {
            product_ids: vec![a.product_id.clone(), uuid::Uuid::now_v7().to_string()],
            skus: vec!["B".into(), "A".into(), "NOPE".into()],
        };
        let mut orders = one.orders();
        let mut found = orders
            .batch_get_products(request.clone())
            .await
            .unwrap()
            .into_inner()
            .products;
        found.sort_by(|x, y| x.sku.cmp(&y.sku));
        assert_eq!(found, [a.clone(), b.clone()], "{backend:?}");

        let status = orders
            .batch_get_products(pb::BatchGetProductsRequest {
                product_ids: vec!["nope".into()],
                skus: vec![],
            })
            .await
            .unwrap_err();
        assert_eq!(violations(&status), ["product_ids[0]"]);
        let status = orders
            .batch_get_products(pb::BatchGetProductsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);

        // Internal: not even an administrator's token passes.
        let status = client
            .batch_get_products(authed(request, &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        one.stop().await;
    }
}
