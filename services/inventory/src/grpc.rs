//! The tonic adapter for `InventoryService`: proto ⇄ domain, and domain errors → gRPC status in one
//! place. Until the inventory behaviour is built, every RPC answers `UNIMPLEMENTED` and says what is
//! missing — never a fake success.

use ironmesh_proto::ironmesh::inventory::v1::{
    self as pb, inventory_service_server::InventoryService,
};
use ironmesh_runtime::status::not_yet;
use tonic::{Request, Response, Status};

/// What is not built yet, named in every `UNIMPLEMENTED` answer.
const FEATURE: &str = "the catalogue and stock reservations (planned inventory issue)";

/// The `InventoryService` implementation.
pub struct InventoryApi;

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn create_product(
        &self,
        _request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::CreateProductResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_product(
        &self,
        _request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn batch_get_products(
        &self,
        _request: Request<pb::BatchGetProductsRequest>,
    ) -> Result<Response<pb::BatchGetProductsResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_products(
        &self,
        _request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn update_product(
        &self,
        _request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::UpdateProductResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn adjust_stock(
        &self,
        _request: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::AdjustStockResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_stock(
        &self,
        _request: Request<pb::GetStockRequest>,
    ) -> Result<Response<pb::GetStockResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn reserve(
        &self,
        _request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::ReserveResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn commit_reservation(
        &self,
        _request: Request<pb::CommitReservationRequest>,
    ) -> Result<Response<pb::CommitReservationResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn release_reservation(
        &self,
        _request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::ReleaseReservationResponse>, Status> {
        Err(not_yet(FEATURE))
    }
}
