//! The tonic adapter for `InventoryService`: each handler reads the caller, converts proto to
//! domain ([`convert`]), calls [`Inventory`] and converts back; every error goes through
//! [`status`], the one mapping to gRPC status. The server stack has already enforced each
//! method's access level; only "operators only" fields (ListProducts' `include_inactive`) are
//! checked here.
//!
//! - [`convert`]: proto ⇄ domain, plain functions.
//! - [`caller`]: who calls — the stack's principal, or (public methods) an optional credential.

pub mod caller;
pub mod convert;

use ironmesh_interceptors::context::{CallContext, RequestId};
use ironmesh_proto::ironmesh::inventory::v1::{
    self as pb, inventory_service_server::InventoryService,
};
use ironmesh_runtime::status;
use prost::Message as _;
use tonic::{Request, Response, Status};
use tonic_types::PreconditionViolation;

use crate::domain::{Adjustment, InventoryError, ReserveRequest};
use crate::service::Inventory;
use caller::{OptionalAuth, caller};

/// The one mapping from [`InventoryError`] to gRPC status. Internal errors are logged with the
/// request id and never shown to the caller.
pub fn status(err: InventoryError, request_id: Option<&RequestId>) -> Status {
    match err {
        InventoryError::Invalid(violations) => status::invalid_argument(&violations),
        InventoryError::NotFound(what) => Status::not_found(format!("{what} not found")),
        InventoryError::SkuTaken => {
            Status::already_exists("a product with this sku already exists")
        }
        InventoryError::Precondition { message, problems } => {
            let violations: Vec<PreconditionViolation> = problems
                .iter()
                .map(|p| PreconditionViolation::new(p.kind, &p.subject, &p.description))
                .collect();
            status::precondition_failure(&message, &violations)
        }
        InventoryError::Internal(fault) => status::internal(&*fault, request_id),
    }
}

/// Runs `f` and maps its error with the request's id.
async fn answer<T, R, F>(request: &Request<R>, f: F) -> Result<Response<T>, Status>
where
    F: std::future::Future<Output = Result<T, InventoryError>>,
{
    let request_id = CallContext::request_id_of(request.extensions());
    f.await
        .map(Response::new)
        .map_err(|err| status(err, request_id.as_ref()))
}

/// The `InventoryService` implementation.
pub struct InventoryApi {
    inventory: Inventory,
    optional: OptionalAuth,
}

impl InventoryApi {
    /// `optional` verifies the credentials public methods may carry.
    pub fn new(inventory: Inventory, optional: OptionalAuth) -> Self {
        Self {
            inventory,
            optional,
        }
    }
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::CreateProductResponse>, Status> {
        let caller = caller(&request);
        let body = request.get_ref();
        answer(&request, async {
            let new = convert::new_product(body.product.as_ref());
            let product = self.inventory.create_product(&caller, new).await?;
            Ok(pb::CreateProductResponse {
                product: Some(convert::product(&product)),
            })
        })
        .await
    }

    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let product = self.inventory.product(&body.product_id).await?;
            Ok(pb::GetProductResponse {
                product: Some(convert::product(&product)),
            })
        })
        .await
    }

    async fn batch_get_products(
        &self,
        request: Request<pb::BatchGetProductsRequest>,
    ) -> Result<Response<pb::BatchGetProductsResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let products = self
                .inventory
                .products(&body.product_ids, &body.skus)
                .await?;
            Ok(pb::BatchGetProductsResponse {
                products: products.iter().map(convert::product).collect(),
            })
        })
        .await
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let caller = self.optional.caller(&request).await;
        let body = request.get_ref();
        answer(&request, async {
            let page = self
                .inventory
                .list_products(
                    &caller,
                    body.page_size,
                    &body.page_token,
                    &body.query,
                    body.include_inactive,
                )
                .await?;
            Ok(pb::ListProductsResponse {
                products: page.products.iter().map(convert::product).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::UpdateProductResponse>, Status> {
        let caller = caller(&request);
        let body = request.get_ref();
        answer(&request, async {
            let id = body
                .product
                .as_ref()
                .map(|p| p.product_id.as_str())
                .unwrap_or_default();
            let mask = body.update_mask.as_ref().map(|m| m.paths.as_slice());
            let values = convert::new_product(body.product.as_ref());
            let product = self
                .inventory
                .update_product(&caller, id, mask, values)
                .await?;
            Ok(pb::UpdateProductResponse {
                product: Some(convert::product(&product)),
            })
        })
        .await
    }

    async fn adjust_stock(
        &self,
        request: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::AdjustStockResponse>, Status> {
        let caller = caller(&request);
        let body = request.get_ref();
        answer(&request, async {
            let adjustment = Adjustment::new(
                &body.product_id,
                body.delta,
                convert::adjustment_reason(body.reason),
                &body.note,
                &body.idempotency_key,
            )?;
            let fingerprint = ironmesh_idempotency::fingerprint(&body.encode_to_vec());
            let stock = self
                .inventory
                .adjust_stock(&caller, adjustment, &fingerprint)
                .await?;
            Ok(pb::AdjustStockResponse {
                stock: Some(convert::stock(&stock)),
            })
        })
        .await
    }

    async fn get_stock(
        &self,
        request: Request<pb::GetStockRequest>,
    ) -> Result<Response<pb::GetStockResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let stock = self.inventory.stock(&body.product_id).await?;
            Ok(pb::GetStockResponse {
                stock: Some(convert::stock(&stock)),
            })
        })
        .await
    }

    async fn reserve(
        &self,
        request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::ReserveResponse>, Status> {
        let caller = caller(&request);
        let body = request.get_ref();
        answer(&request, async {
            let reserve = ReserveRequest::new(
                &body.order_id,
                &convert::raw_lines(&body.lines),
                convert::ttl(body.ttl.as_ref()),
                self.inventory.settings().reservation_ttl(),
            )?;
            let reservation = self.inventory.reserve(&caller, reserve).await?;
            Ok(pb::ReserveResponse {
                reservation: Some(convert::reservation(&reservation)),
            })
        })
        .await
    }

    async fn commit_reservation(
        &self,
        request: Request<pb::CommitReservationRequest>,
    ) -> Result<Response<pb::CommitReservationResponse>, Status> {
        let caller = caller(&request);
        let body = request.get_ref();
        answer(&request, async {
            let reservation = self
                .inventory
                .commit_reservation(&caller, &body.reservation_id)
                .await?;
            Ok(pb::CommitReservationResponse {
                reservation: Some(convert::reservation(&reservation)),
            })
        })
        .await
    }

    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::ReleaseReservationResponse>, Status> {
        let caller = caller(&request);
        let body = request.get_ref();
        answer(&request, async {
            let reservation = self
                .inventory
                .release_reservation(&caller, &body.reservation_id, &body.reason)
                .await?;
            Ok(pb::ReleaseReservationResponse {
                reservation: Some(convert::reservation(&reservation)),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Problem;
    use tonic_types::StatusExt;

    /// An internal fault reaches the caller as INTERNAL with the request id only.
    #[test]
    fn internal_faults_show_only_the_request_id() {
        let source = std::io::Error::other("connect to db-primary.internal:5432 refused");
        let id = RequestId("0190-req".into());
        let status = status(InventoryError::Internal(Box::new(source)), Some(&id));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("db-primary"));
        assert!(status.message().contains("0190-req"));
    }

    #[test]
    fn shortfalls_become_precondition_failures_per_sku() {
        let err = InventoryError::precondition(
            "insufficient stock",
            vec![Problem {
                kind: "INSUFFICIENT_STOCK",
                subject: "MUG".into(),
                description: "requested 2, available 1".into(),
            }],
        );
        let status = status(err, None);
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let failure = status.get_details_precondition_failure().unwrap();
        assert_eq!(failure.violations[0].r#type, "INSUFFICIENT_STOCK");
        assert_eq!(failure.violations[0].subject, "MUG");
    }
}
