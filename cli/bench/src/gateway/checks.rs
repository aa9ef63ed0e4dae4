//! The gateway suite's checks: the same JWKS over gRPC and through the REST gateway around every
//! run, every response of a run exactly that answer ([`Answer`]), and auth's handled counters
//! showing every request OK ([`cut_calls`]).

use std::net::SocketAddr;

use ironmesh_proto::ironmesh::auth::v1::GetJwksRequest;
use ironmesh_proto::ironmesh::auth::v1::auth_service_client::AuthServiceClient;
use prost::Message;
use serde_json::Value;

use super::{METHOD, REST_PATH};
use crate::calls::{CALL_TIMEOUT, connect, grpc_failure};
use crate::h2load::Summary;
use crate::scrape::{Codes, Scrape, describe};

/// What every response of a run must carry.
#[derive(Clone, Copy, Debug)]
pub(super) enum Answer {
    /// gRPC: exactly one response frame of this size per request. An error answer is
    /// trailers-only with HTTP 200 and no body, so the total is what proves grpc-status 0.
    Frame(u64),
    /// REST: HTTP 200 (every logged request) and the JSON body of this size. h2load's data
    /// total may also hold the bodies of requests still completing when `-D` ran out (seen
    /// over HTTP/1.1), which it does not count as done: whole bodies, at most one per request
    /// it sent.
    Json(u64),
}

impl Answer {
    pub(super) fn check(self, summary: &Summary) -> Result<(), String> {
        match self {
            Self::Frame(bytes) => summary.check(Some(bytes)),
            Self::Json(bytes) => {
                summary.check(None)?;
                let bytes = bytes.max(1);
                let bodies = summary.data_bytes / bytes;
                if !summary.data_bytes.is_multiple_of(bytes)
                    || !(summary.succeeded..=summary.started).contains(&bodies)
                {
                    return Err(format!(
                        "response bodies total {} bytes: not whole {bytes}-byte JSON answers, one \
                         for each of the {} requests that succeeded (or at most the {} sent)",
                        summary.data_bytes, summary.succeeded, summary.started
                    ));
                }
                Ok(())
            }
        }
    }
}

/// One GetJwks over gRPC that must answer OK with at least one key; returns the key ids and
/// the size of the answer as one gRPC frame.
pub(super) async fn check_direct(addr: SocketAddr) -> Result<(Vec<String>, u64), String> {
    let response = AuthServiceClient::new(connect(addr).await?)
        .get_jwks(GetJwksRequest {})
        .await
        .map_err(|status| grpc_failure("GetJwks", &status))?
        .into_inner();
    if response.keys.is_empty() {
        return Err("GetJwks answered OK without a key".to_owned());
    }
    let frame = 5 + response.encoded_len() as u64;
    Ok((
        response.keys.into_iter().map(|key| key.kid).collect(),
        frame,
    ))
}

/// One `GET /v1/auth/jwks` through the gateway that must answer 200 with a JSON `keys` list;
/// returns the key ids and the size of the body.
pub(super) async fn check_rest(addr: SocketAddr) -> Result<(Vec<String>, u64), String> {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{REST_PATH}"))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|err| err.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "HTTP {status}, not 200: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let json: Value = serde_json::from_slice(&body).map_err(|err| format!("not JSON: {err}"))?;
    let kids: Vec<String> = json
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no `keys` list in {json}"))?
        .iter()
        .map(|key| key.get("kid").and_then(Value::as_str).map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("a key without `kid` in {json}"))?;
    if kids.is_empty() {
        return Err("200 with an empty `keys` list".to_owned());
    }
    Ok((kids, body.len() as u64))
}

/// What auth counted for GetJwks between two scrapes: at least `succeeded` OK, and no more
/// calls ending otherwise than h2load cut (`cut`: sent, then abandoned when its time ran out,
/// so never counted by it). Returns those other endings by code.
pub(super) fn cut_calls(
    before: &Scrape,
    after: &Scrape,
    succeeded: u64,
    cut: u64,
) -> Result<Codes, String> {
    let mut codes = after.handled_since(before, METHOD);
    let ok = codes.remove("OK").unwrap_or(0);
    if ok < succeeded {
        return Err(format!(
            "h2load counted {succeeded} successful calls but auth only {ok} OK"
        ));
    }
    let others: u64 = codes.values().sum();
    if others > cut {
        return Err(format!(
            "auth ended {others} calls not OK ({}), more than the {cut} h2load cut when its time ran out",
            describe(&codes)
        ));
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
finished in 10.00s, 100.00 req/s, 2.14MB/s
requests: 1000 total, 1010 started, 1000 done, 1000 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 300KB (300000) total, 100KB (100000) headers (space savings 0.00%), 158KB (158000) data
";

    fn handled(lines: &[(&str, &str, u64)]) -> Scrape {
        let text: String = lines
            .iter()
            .map(|(method, code, n)| {
                format!(
                    "ironmesh_grpc_server_handled_total{{grpc_code=\"{code}\",grpc_method=\"{method}\",grpc_service=\"x\",service=\"auth\"}} {n}\n"
                )
            })
            .collect();
        Scrape::parse(&text)
    }

    #[test]
    fn json_bodies_may_include_late_ones() {
        let summary = Summary::parse(OUTPUT).unwrap();
        Answer::Json(158).check(&summary).unwrap();
        // Bodies of requests still completing at the end: whole, and no more than were sent.
        let late = OUTPUT.replace("(158000) data", "(159580) data");
        Answer::Json(158)
            .check(&Summary::parse(&late).unwrap())
            .unwrap();
        for bad in ["(157999) data", "(157842) data", "(161000) data"] {
            let output = OUTPUT.replace("(158000) data", bad);
            assert!(
                Answer::Json(158)
                    .check(&Summary::parse(&output).unwrap())
                    .is_err(),
                "{bad}"
            );
        }
        // gRPC frames stay exact: a missing frame is an error answer.
        assert!(Answer::Frame(158).check(&summary).is_ok());
        let late = Summary::parse(&OUTPUT.replace("(158000) data", "(158158) data")).unwrap();
        assert!(Answer::Frame(158).check(&late).is_err());
    }

    #[test]
    fn only_cut_calls_may_end_otherwise() {
        let before = handled(&[("GetJwks", "OK", 10), ("GetJwks", "INTERNAL", 1)]);
        let after = handled(&[
            ("GetJwks", "OK", 110),
            ("GetJwks", "INTERNAL", 2),
            ("GetJwks", "CANCELLED", 3),
            ("Login", "INTERNAL", 50),
        ]);
        let codes = cut_calls(&before, &after, 100, 4).unwrap();
        assert_eq!(describe(&codes), "3 × CANCELLED, 1 × INTERNAL");
        assert!(cut_calls(&before, &after, 100, 3).is_err(), "more than cut");
        assert!(cut_calls(&before, &after, 101, 4).is_err(), "fewer OK");
        assert_eq!(describe(&Codes::new()), "none");
    }
}
