//! What the worker and its program exchange: the job as JSON on the program's stdin (with the
//! decrypted credentials, read through the lease-fenced GetJobCredentials), and the result
//! object and stderr tail read back.

use std::collections::BTreeMap;

use ironmesh_proto::ironmesh::provisioning::v1 as pb;
use serde_json::{Map, Value};

use super::{Client, STDERR_TAIL};

/// The program's stdin: the job and its credentials. Holds secrets: never logged.
pub(super) fn job(job: &pb::Job, credentials: Map<String, Value>) -> String {
    serde_json::json!({
        "job_id": job.job_id,
        "request_id": job.request_id,
        "customer_id": job.customer_id,
        "plan": job.plan,
        "priority_tier": pb::PriorityTier::try_from(job.priority_tier).map(|t| t.as_str_name()).unwrap_or(""),
        "attempt": job.attempt,
        "credentials": credentials,
    })
    .to_string()
}

/// The job's decrypted credentials as `{kind: {name: value}}` (none asked for when the job
/// lists none). Only ever written to the program's stdin.
pub(super) async fn credentials(
    client: &mut Client,
    job: &pb::Job,
) -> Result<Map<String, Value>, tonic::Status> {
    let mut out = Map::new();
    if job.credentials.is_empty() {
        return Ok(out);
    }
    let request = pb::GetJobCredentialsRequest {
        job_id: job.job_id.clone(),
        lease_token: job.lease_token.clone(),
    };
    for set in client
        .get_job_credentials(request)
        .await?
        .into_inner()
        .credentials
    {
        let kind = set.info.map(|i| i.kind).unwrap_or_default();
        let material: Map<String, Value> = set
            .material
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        out.insert(kind, Value::Object(material));
    }
    Ok(out)
}

/// The last [`STDERR_TAIL`] bytes of `bytes`, as text.
pub(super) fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
}

/// A JSON object of strings (other scalars are written as their JSON text).
pub(super) fn parse_result(stdout: &[u8]) -> Option<BTreeMap<String, String>> {
    let value: serde_json::Value = serde_json::from_slice(stdout).ok()?;
    let object = value.as_object()?;
    Some(
        object
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_objects_and_tails_are_bounded() {
        let r = parse_result(br#"{"tenant_id":"t-1","port":8443}"#).unwrap();
        assert_eq!(r["tenant_id"], "t-1");
        assert_eq!(r["port"], "8443");
        assert!(parse_result(b"[1,2]").is_none());
        assert!(parse_result(b"not json").is_none());
        let long = vec![b'x'; 5000];
        assert_eq!(tail(&long).len(), STDERR_TAIL);
    }
}
