//! `ReceiveWebhook` on [`Queue`]: verify the sender's signature, refuse a replayed id (the
//! receipt table, shared by every replica), then apply what the report says to the request's
//! live job — as its Heartbeat, CompleteJob or FailJob would.

use http::HeaderMap;
use ironmesh_runtime::validation::Violations;

use super::{FailureReport, Queue};
use crate::domain::{Failure, State};
use crate::inbound::{self, Refusal, Report};

/// What a webhook came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub webhook_id: String,
    pub duplicate: bool,
}

/// Why a webhook was not accepted (beyond [`Failure`]): the signature's verdict.
#[derive(Debug)]
pub enum WebhookFailure {
    Refused(Refusal),
    Other(Failure),
}

impl From<Failure> for WebhookFailure {
    fn from(f: Failure) -> Self {
        Self::Other(f)
    }
}

impl Queue {
    pub async fn receive(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Received, WebhookFailure> {
        let Some(sender) = self.settings.webhook_source(source) else {
            return Err(Failure::NotFound("webhook source").into());
        };
        let now = ironmesh_runtime::storage::now().timestamp();
        let webhook_id =
            inbound::verify(sender, headers, body, now).map_err(WebhookFailure::Refused)?;
        if webhook_id.is_empty() || webhook_id.chars().count() > 255 {
            return Err(WebhookFailure::Refused(Refusal::Malformed(
                "the webhook id must be 1–255 characters".into(),
            )));
        }
        let report = Report::parse(body)
            .map_err(|why| Failure::Invalid(Violations::one("http_body", why)))?;
        if !self
            .store
            .claim_receipt(source, &webhook_id)
            .await
            .map_err(Failure::from)?
        {
            return Ok(Received {
                webhook_id,
                duplicate: true,
            });
        }
        match self.apply(source, &report).await {
            Ok(()) => Ok(Received {
                webhook_id,
                duplicate: false,
            }),
            Err(failure) => {
                // Not applied: the sender may retry it with the same id.
                if let Err(err) = self.store.forget_receipt(source, &webhook_id).await {
                    tracing::warn!(error = %err, "forgetting an unapplied webhook's receipt failed");
                }
                Err(failure.into())
            }
        }
    }

    async fn apply(&self, source: &str, report: &Report) -> Result<(), Failure> {
        let id = report.request_id();
        super::check_id("http_body.request_id", id)?;
        let request = self
            .store
            .request(id)
            .await?
            .ok_or(Failure::NotFound("request"))?;
        let job = match (&request.state, &request.job_id) {
            (State::Running, Some(job_id)) => self
                .store
                .job(job_id)
                .await?
                .ok_or(Failure::NotFound("job"))?,
            _ => {
                return Err(Failure::Precondition(
                    "REQUEST_STATE",
                    format!("provisioning/requests/{id}"),
                    format!("the request is {}, not RUNNING", request.state.as_str()),
                ));
            }
        };
        let actor = format!("webhook:{source}");
        match report {
            Report::Progress { progress, .. } => {
                let note: String = progress.chars().take(200).collect();
                self.heartbeat(&job.id, &job.lease_token, None, &note)
                    .await?;
            }
            Report::Succeeded { result, .. } => {
                self.complete(&actor, &job.id, &job.lease_token, result)
                    .await?;
            }
            Report::Failed {
                error, retryable, ..
            } => {
                let report = FailureReport {
                    error: error.chars().take(2000).collect(),
                    retryable: *retryable,
                    retry_after: None,
                };
                self.fail(&actor, &job.id, &job.lease_token, report).await?;
            }
        }
        Ok(())
    }
}
