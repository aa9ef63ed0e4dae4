//! Inventory as orders calls it — as itself (`service:orders`, the contract's `internal`
//! level) through the shared client stack — with its answers sorted into what the saga needs:
//! a definite outcome, or [`Unreachable`] (retry later; every call here is idempotent).

use chrono::{DateTime, Utc};
use ironmesh_interceptors::client::GrpcChannel;
use ironmesh_proto::ironmesh::inventory::v1::{
    self as pb, inventory_service_client::InventoryServiceClient,
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::domain::{CatalogueProduct, Problem};

/// Inventory did not give a definite answer (down, overloaded, timed out, or an answer orders
/// cannot act on); the status is kept for the log only.
#[derive(Debug, thiserror::Error)]
#[error("inventory call failed: {0:?} {1}")]
pub struct Unreachable(pub Code, pub String);

impl From<tonic::Status> for Unreachable {
    fn from(status: tonic::Status) -> Self {
        Unreachable(status.code(), status.message().to_owned())
    }
}

/// How a Reserve ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// The units are held.
    Held {
        reservation_id: String,
        expires_at: DateTime<Utc>,
    },
    /// Nothing is held: the lines inventory refused (short, unknown or inactive products).
    Refused(Vec<Problem>),
}

/// How a CommitReservation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// The stock is taken (now or before).
    Yes,
    /// The reservation expired or was released first: nothing was taken.
    Lapsed,
}

/// A client for inventory's internal methods.
#[derive(Clone, Debug)]
pub struct Inventory {
    client: InventoryServiceClient<GrpcChannel>,
}

impl Inventory {
    /// `channel` is `ironmesh_runtime::clients::channel(config, "orders", Inventory)`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self {
            client: InventoryServiceClient::new(channel),
        }
    }

    /// The catalogue entries of `ids` and `skus` (missing ones are simply absent).
    pub async fn products(
        &self,
        ids: Vec<String>,
        skus: Vec<String>,
    ) -> Result<Vec<CatalogueProduct>, Unreachable> {
        let request = pb::BatchGetProductsRequest {
            product_ids: ids,
            skus,
        };
        let products = self
            .client
            .clone()
            .batch_get_products(request)
            .await?
            .into_inner()
            .products;
        Ok(products
            .into_iter()
            .map(|p| CatalogueProduct {
                id: p.product_id,
                sku: p.sku,
                name: p.name,
                price_minor: p.price_minor,
                currency: p.currency,
                active: p.active,
            })
            .collect())
    }

    /// Holds `lines` (`(product_id, quantity)`) for `order_id` for `ttl` — or, since Reserve is
    /// idempotent per order, returns what an earlier call for the order holds.
    pub async fn reserve(
        &self,
        order_id: &str,
        lines: &[(String, i64)],
        ttl: std::time::Duration,
    ) -> Result<Reserved, Unreachable> {
        let request = pb::ReserveRequest {
            order_id: order_id.to_owned(),
            lines: lines
                .iter()
                .map(|(product_id, quantity)| pb::ReservationLine {
                    product_id: product_id.clone(),
                    sku: String::new(),
                    quantity: *quantity,
                })
                .collect(),
            ttl: Some(prost_types::Duration {
                seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
                nanos: 0,
            }),
        };
        match self.client.clone().reserve(request).await {
            Ok(answer) => {
                let reservation = answer
                    .into_inner()
                    .reservation
                    .ok_or_else(|| Unreachable(Code::Internal, "no reservation".into()))?;
                let expires_at = ironmesh_runtime::time::from_timestamp(reservation.expires_at)
                    .ok_or_else(|| Unreachable(Code::Internal, "no expiry".into()))?;
                Ok(Reserved::Held {
                    reservation_id: reservation.reservation_id,
                    expires_at,
                })
            }
            Err(status) if status.code() == Code::FailedPrecondition => {
                let problems: Vec<Problem> = status
                    .get_details_precondition_failure()
                    .map(|failure| {
                        failure
                            .violations
                            .into_iter()
                            .map(|v| Problem::new(&v.r#type, &v.subject, v.description))
                            .collect()
                    })
                    .unwrap_or_default();
                if problems.is_empty() {
                    return Err(status.into());
                }
                Ok(Reserved::Refused(problems))
            }
            Err(status) => Err(status.into()),
        }
    }

    pub async fn commit(&self, reservation_id: &str) -> Result<Committed, Unreachable> {
        let request = pb::CommitReservationRequest {
            reservation_id: reservation_id.to_owned(),
        };
        match self.client.clone().commit_reservation(request).await {
            Ok(_) => Ok(Committed::Yes),
            Err(status) if status.code() == Code::FailedPrecondition => Ok(Committed::Lapsed),
            Err(status) => Err(status.into()),
        }
    }

    /// Gives the reservation's units back (a released or expired one stays as it is). A
    /// committed or unknown one holds nothing to give back: logged, and done.
    pub async fn release(&self, reservation_id: &str, reason: &str) -> Result<(), Unreachable> {
        let request = pb::ReleaseReservationRequest {
            reservation_id: reservation_id.to_owned(),
            reason: reason.chars().take(500).collect(),
        };
        match self.client.clone().release_reservation(request).await {
            Ok(_) => Ok(()),
            Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) => {
                tracing::warn!(reservation_id, code = ?status.code(), "a reservation to release holds nothing");
                Ok(())
            }
            Err(status) => Err(status.into()),
        }
    }
}
