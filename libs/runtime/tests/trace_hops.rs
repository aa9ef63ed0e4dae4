//! One trace across three hops, exported over OTLP to a receiver started by this test.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Last, client, start};
use ironmesh_interceptors::context::{CallContext, RequestId, TraceContext};
use ironmesh_test_support::otlp::{Span, attribute, receiver};
use tonic_health::pb::HealthCheckRequest;

const LIMIT: Duration = Duration::from_secs(20);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A call made with a known trace, request id and authorization passes three hops; every hop's
/// handler sees all three. The receiver gets one server
/// span per hop, all in the caller's trace, each the child of the one before (the first, of the
/// caller's span), each carrying the same request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_and_request_id_across_three_hops_reach_the_otlp_receiver() {
    let (otlp, mut spans) = receiver().await;
    let telemetry = ironmesh_runtime::telemetry::init_with(
        &ironmesh_runtime::Config::default(),
        Some(&format!("http://{otlp}")),
    );

    let mut hops = start(3, Last::Answer).await;
    let mut caller = client("caller", hops.first);
    let root = TraceContext::new_root();
    let context = CallContext {
        request_id: Some(RequestId("req-trace-1".into())),
        trace: Some(root),
        authorization: Some("Bearer test-token".parse().unwrap()),
        ..Default::default()
    };
    context
        .scope(caller.check(HealthCheckRequest::default()))
        .await
        .expect("three hops answer");

    for _ in 0..3 {
        let seen = hops.seen.recv().await.unwrap();
        assert_eq!(
            seen.request_id.as_deref(),
            Some("req-trace-1"),
            "hop {}",
            seen.hop
        );
        assert_eq!(seen.trace_id, Some(root.trace_id_hex()), "hop {}", seen.hop);
        assert_eq!(
            seen.authorization.as_deref(),
            Some("Bearer test-token"),
            "the caller's authorization reached hop {}",
            seen.hop
        );
    }

    telemetry.flush().await;
    let mut server_spans: Vec<Span> = Vec::new();
    let collected = tokio::time::timeout(LIMIT, async {
        while server_spans.len() < 3 {
            let span = spans.recv().await.expect("receiver open");
            if attribute(&span, "otel.kind").is_some() || span.kind == 2 {
                server_spans.push(span);
            }
        }
    })
    .await;
    assert!(
        collected.is_ok(),
        "three server spans exported, got {}",
        server_spans.len()
    );

    let by_id: HashMap<String, &Span> = server_spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    let first = server_spans
        .iter()
        .find(|s| s.parent_span_id == root.span_id.to_vec())
        .expect("one span is the child of the caller's span");
    let mut chain = vec![first];
    while let Some(child) = server_spans
        .iter()
        .find(|s| s.parent_span_id == chain.last().unwrap().span_id)
    {
        chain.push(child);
    }
    assert_eq!(
        chain.len(),
        3,
        "parent links chain the three hops: {:?}",
        by_id.keys()
    );
    for span in &chain {
        assert_eq!(hex(&span.trace_id), root.trace_id_hex());
        assert_eq!(
            attribute(span, "request_id").as_deref(),
            Some("req-trace-1")
        );
        assert_eq!(attribute(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(attribute(span, "rpc.method").as_deref(), Some("Check"));
        assert_eq!(
            attribute(span, "rpc.grpc.status_code").as_deref(),
            Some("0")
        );
    }
    hops.stop();
}
