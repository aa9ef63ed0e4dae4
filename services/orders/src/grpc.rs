//! The tonic adapter for `OrdersService`: proto ⇄ domain, and domain errors → gRPC status in one
//! place. Until the orders behaviour is built, every RPC answers `UNIMPLEMENTED` and says what is
//! missing — never a fake success.

use ironmesh_proto::ironmesh::orders::v1::{self as pb, orders_service_server::OrdersService};
use ironmesh_runtime::status::not_yet;
use tonic::{Request, Response, Status};

/// What is not built yet, named in every `UNIMPLEMENTED` answer.
const FEATURE: &str = "the order lifecycle (planned orders issue)";

/// The `OrdersService` implementation.
pub struct OrdersApi;

#[tonic::async_trait]
impl OrdersService for OrdersApi {
    async fn create_order(
        &self,
        _request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::CreateOrderResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_order(
        &self,
        _request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_orders(
        &self,
        _request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn cancel_order(
        &self,
        _request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn pay_order(
        &self,
        _request: Request<pb::PayOrderRequest>,
    ) -> Result<Response<pb::PayOrderResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn fulfill_order(
        &self,
        _request: Request<pb::FulfillOrderRequest>,
    ) -> Result<Response<pb::FulfillOrderResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn refund_order(
        &self,
        _request: Request<pb::RefundOrderRequest>,
    ) -> Result<Response<pb::RefundOrderResponse>, Status> {
        Err(not_yet(FEATURE))
    }
}
