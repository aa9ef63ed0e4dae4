//! Where a subscriber's events go: anything that answers `EventSinkService.Deliver`. A generated
//! `EventSinkServiceClient` over any channel is one — the caller builds it (normally on the shared
//! client stack, `ClientBuilder`), so identity and credentials are the caller's concern.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body::Body;
use ironmesh_proto::ironmesh::events::v1::event_sink_service_client::EventSinkServiceClient;
use ironmesh_proto::ironmesh::events::v1::{DeliverRequest, DeliverResponse};

type StdError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One consumer endpoint, as the relay calls it.
pub trait Sink: Send + Sync + 'static {
    /// Delivers one batch; `timeout` goes along as the call's deadline.
    fn deliver(
        &self,
        request: DeliverRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<DeliverResponse, tonic::Status>>;
}

impl<T> Sink for EventSinkServiceClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + Sync + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    fn deliver(
        &self,
        request: DeliverRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<DeliverResponse, tonic::Status>> {
        let mut client = self.clone();
        Box::pin(async move {
            let mut request = tonic::Request::new(request);
            request.set_timeout(timeout);
            EventSinkServiceClient::deliver(&mut client, request)
                .await
                .map(tonic::Response::into_inner)
        })
    }
}
