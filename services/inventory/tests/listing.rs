//! ListProducts on both backends: ordered by sku, paged with tokens bound to the filters,
//! filtered case-insensitively on name or sku, inactive products only for operators who ask.

mod common;

use common::{One, create, product};
use ironmesh_proto::ironmesh::inventory::v1 as pb;
use ironmesh_testkit::{authed, backends, violations};

async fn list(
    client: &mut common::Client,
    token: Option<&str>,
    request: pb::ListProductsRequest,
) -> Result<pb::ListProductsResponse, tonic::Status> {
    let request = match token {
        Some(token) => authed(request, token),
        None => tonic::Request::new(request),
    };
    client.list_products(request).await.map(|r| r.into_inner())
}

fn skus(page: &pb::ListProductsResponse) -> Vec<&str> {
    page.products.iter().map(|p| p.sku.as_str()).collect()
}

/// Ordered by sku, paged with tokens bound to the filters, filtered case-insensitively on name
/// or sku; inactive products only for operators who ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_orders_pages_filters_and_hides_inactive() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        for sku in ["C-3", "A-1", "E-5", "B-2", "D-4"] {
            create(&mut client, &token, sku, 100).await;
        }
        client
            .create_product(one.op(pb::CreateProductRequest {
                product: Some(pb::Product {
                    name: "Blue 100% Mug".into(),
                    ..product("HIDDEN", 1, false)
                }),
            }))
            .await
            .unwrap();

        let mut seen = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = list(
                &mut client,
                None,
                pb::ListProductsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert!(page.products.len() <= 2);
            seen.extend(skus(&page).into_iter().map(str::to_owned));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!(seen, ["A-1", "B-2", "C-3", "D-4", "E-5"], "{backend:?}");

        // A token is bound to the filters it was made with.
        let first = list(
            &mut client,
            None,
            pb::ListProductsRequest {
                page_size: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let status = list(
            &mut client,
            None,
            pb::ListProductsRequest {
                page_size: 1,
                page_token: first.next_page_token.clone(),
                query: "a".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(violations(&status), ["page_token"]);
        let status = list(
            &mut client,
            None,
            pb::ListProductsRequest {
                page_size: -1,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(violations(&status), ["page_size"]);

        // Query: substring of sku or name, any case; LIKE's own characters are literal.
        let by_sku = list(
            &mut client,
            None,
            pb::ListProductsRequest {
                query: "d-".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(skus(&by_sku), ["D-4"]);
        let by_name = list(
            &mut client,
            None,
            pb::ListProductsRequest {
                query: "PRODUCT b".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(skus(&by_name), ["B-2"]);

        // Inactive: hidden from the public even when asked, shown to operators who ask.
        let percent = pb::ListProductsRequest {
            query: "100%".into(),
            include_inactive: true,
            ..Default::default()
        };
        let public = list(&mut client, None, percent.clone()).await.unwrap();
        assert!(public.products.is_empty());
        let customer = one.mesh.customer().await;
        let theirs = list(&mut client, Some(&customer.access_token), percent.clone())
            .await
            .unwrap();
        assert!(theirs.products.is_empty(), "customers are not operators");
        let operator = list(&mut client, Some(&token), percent).await.unwrap();
        assert_eq!(skus(&operator), ["HIDDEN"]);
        let all = list(
            &mut client,
            Some(&token),
            pb::ListProductsRequest {
                page_size: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(all.products.len(), 5, "inactive only when asked");
        one.stop().await;
    }
}
