//! What more than one of auth's test files needs.

use ironmesh_proto::ironmesh::orders::v1::ListOrdersRequest;
use ironmesh_testkit::{TestMesh, authed};
use tonic::Code;

/// Orders (a different service) accepts the token: the call gets past its authentication
/// layer to the handler (UNIMPLEMENTED while orders is not built, an answer once it is). An
/// unauthenticated call never gets that far.
pub async fn orders_accepts(mesh: &TestMesh, token: &str) -> bool {
    let result = mesh
        .orders()
        .await
        .list_orders(authed(ListOrdersRequest::default(), token))
        .await;
    match result {
        Ok(_) => true,
        Err(status) => match status.code() {
            Code::Unimplemented => true,
            Code::Unauthenticated => false,
            other => panic!("unexpected {other:?}: {status:?}"),
        },
    }
}
