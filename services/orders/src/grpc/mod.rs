//! The tonic adapter for `OrdersService`: each handler reads the caller, converts proto to
//! domain ([`convert`]), calls [`Orders`] and converts back; every error goes through
//! [`status`], the one mapping to gRPC status. The server stack has already enforced each
//! method's access level (authenticated; operator for fulfil and refund); "own order" is the
//! service's check ([`Orders::visible`]).

pub mod convert;

use ironmesh_interceptors::auth::{Principal, ROLE_ADMIN, ROLE_OPERATOR};
use ironmesh_interceptors::context::{CallContext, RequestId};
use ironmesh_proto::ironmesh::orders::v1::{self as pb, orders_service_server::OrdersService};
use ironmesh_runtime::status;
use tonic::{Request, Response, Status};
use tonic_types::PreconditionViolation;

use crate::domain::create::NewOrder;
use crate::domain::lifecycle::Payment;
use crate::domain::{Caller, Order, OrdersError};
use crate::service::Orders;
use crate::service::requests::ListRequest;

/// The one mapping from [`OrdersError`] to gRPC status. Internal errors are logged with the
/// request id and never shown to the caller.
pub fn status(err: OrdersError, request_id: Option<&RequestId>) -> Status {
    match err {
        OrdersError::Invalid(violations) => status::invalid_argument(&violations),
        OrdersError::NotFound => Status::not_found("order not found"),
        OrdersError::Denied(message) => Status::permission_denied(message),
        OrdersError::Precondition { message, problems } => {
            let violations: Vec<PreconditionViolation> = problems
                .iter()
                .map(|p| PreconditionViolation::new(&p.kind, &p.subject, &p.description))
                .collect();
            status::precondition_failure(&message, &violations)
        }
        OrdersError::Aborted(message) => Status::aborted(message),
        OrdersError::Unavailable(message) => Status::unavailable(message),
        OrdersError::Internal(fault) => status::internal(&*fault, request_id),
    }
}

/// The principal the stack attached (every orders method needs one).
fn caller<R>(request: &Request<R>) -> Caller {
    match request.extensions().get::<Principal>() {
        Some(p) => Caller {
            subject: p.subject.to_string(),
            operator: p.has_role(ROLE_OPERATOR) || p.has_role(ROLE_ADMIN),
        },
        None => Caller {
            subject: String::new(),
            operator: false,
        },
    }
}

/// Runs `f` for the caller and maps its error with the request's id.
async fn answer<T, R, F, Fut>(request: Request<R>, f: F) -> Result<Response<T>, Status>
where
    F: FnOnce(Caller, R) -> Fut,
    Fut: Future<Output = Result<T, OrdersError>>,
{
    let request_id = CallContext::request_id_of(request.extensions());
    let who = caller(&request);
    if who.subject.is_empty() {
        return Err(Status::unauthenticated("a credential is required"));
    }
    f(who, request.into_inner())
        .await
        .map(Response::new)
        .map_err(|err| status(err, request_id.as_ref()))
}

fn shown(order: &Order) -> Option<pb::Order> {
    Some(convert::order(order))
}

/// The `OrdersService` implementation.
pub struct OrdersApi {
    orders: Orders,
}

impl OrdersApi {
    pub fn new(orders: Orders) -> Self {
        Self { orders }
    }
}

#[tonic::async_trait]
impl OrdersService for OrdersApi {
    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::CreateOrderResponse>, Status> {
        answer(request, |caller, body| async move {
            let new = NewOrder::new(&body.idempotency_key, &convert::raw_lines(&body.lines))?;
            let fingerprint = convert::create_fingerprint(&body);
            let order = self.orders.create_order(&caller, new, &fingerprint).await?;
            Ok(pb::CreateOrderResponse {
                order: shown(&order),
            })
        })
        .await
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        answer(request, |caller, body| async move {
            let order = self.orders.order(&caller, &body.order_id).await?;
            Ok(pb::GetOrderResponse {
                order: shown(&order),
            })
        })
        .await
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        answer(request, |caller, body| async move {
            let status = convert::status_filter(body.status)?;
            let list = ListRequest {
                page_size: body.page_size,
                page_token: body.page_token,
                status,
                customer_id: body.customer_id,
            };
            let page = self.orders.list_orders(&caller, &list).await?;
            Ok(pb::ListOrdersResponse {
                orders: page.orders.iter().map(convert::order).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        answer(request, |caller, body| async move {
            let order = self
                .orders
                .cancel_order(&caller, &body.order_id, &body.reason)
                .await?;
            Ok(pb::CancelOrderResponse {
                order: shown(&order),
            })
        })
        .await
    }

    async fn pay_order(
        &self,
        request: Request<pb::PayOrderRequest>,
    ) -> Result<Response<pb::PayOrderResponse>, Status> {
        answer(request, |caller, body| async move {
            let payment = Payment {
                amount_minor: body.amount_minor,
                currency: body.currency,
                reference: body.payment_reference,
            };
            let order = self
                .orders
                .pay_order(&caller, &body.order_id, payment)
                .await?;
            Ok(pb::PayOrderResponse {
                order: shown(&order),
            })
        })
        .await
    }

    async fn fulfill_order(
        &self,
        request: Request<pb::FulfillOrderRequest>,
    ) -> Result<Response<pb::FulfillOrderResponse>, Status> {
        answer(request, |caller, body| async move {
            let order = self
                .orders
                .fulfill_order(&caller, &body.order_id, &body.shipment_reference)
                .await?;
            Ok(pb::FulfillOrderResponse {
                order: shown(&order),
            })
        })
        .await
    }

    async fn refund_order(
        &self,
        request: Request<pb::RefundOrderRequest>,
    ) -> Result<Response<pb::RefundOrderResponse>, Status> {
        answer(request, |caller, body| async move {
            let order = self
                .orders
                .refund_order(&caller, &body.order_id, &body.reason)
                .await?;
            Ok(pb::RefundOrderResponse {
                refunded_minor: order.total_minor,
                order: shown(&order),
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
        let status = status(OrdersError::Internal(Box::new(source)), Some(&id));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("db-primary"));
        assert!(status.message().contains("0190-req"));
    }

    #[test]
    fn problems_become_precondition_violations() {
        let err = OrdersError::precondition(
            "insufficient stock",
            vec![Problem::new("INSUFFICIENT_STOCK", "MUG", "requested 2")],
        );
        let status = status(err, None);
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let failure = status.get_details_precondition_failure().unwrap();
        assert_eq!(failure.violations[0].r#type, "INSUFFICIENT_STOCK");
        assert_eq!(failure.violations[0].subject, "MUG");
    }
}
