//! Credentials in [`Queue`]: a customer stores a set for their own non-terminal request; the
//! worker holding the request's live lease reads the sets back decrypted; each replica
//! re-wraps data keys after a key rotation in the background. The crypto is
//! `crate::credentials`'; the deletions when a request can no longer run are the store's.

use tokio_util::sync::CancellationToken;

use super::{Caller, Queue, check_id, now_ms};
use crate::credentials::{CredentialError, Material, NewCredential};
use crate::domain::{Failure, State};
use crate::events;
use crate::store::{Put, StoredCredential};

impl From<CredentialError> for Failure {
    fn from(err: CredentialError) -> Self {
        Failure::Internal(Box::new(err))
    }
}

impl Queue {
    /// Stores `new` for the caller's own request `request_id` (replacing the set of that
    /// kind) while it is QUEUED or RUNNING; the stored set's metadata.
    pub async fn submit_credentials(
        &self,
        caller: &Caller,
        request_id: &str,
        new: NewCredential,
    ) -> Result<StoredCredential, Failure> {
        check_id("request_id", request_id)?;
        let request = self.request(caller, request_id).await?;
        if request.customer_id != caller.subject {
            return Err(Failure::Denied(
                "only the customer may submit credentials for a request",
            ));
        }
        let terminal = |state: State| {
            Failure::Precondition(
                "REQUEST_STATE",
                format!("provisioning/requests/{request_id}"),
                format!("a {} request takes no credentials", state.as_str()),
            )
        };
        if !matches!(request.state, State::Queued | State::Running) {
            return Err(terminal(request.state));
        }
        let ring = self.keys.keyring().await?;
        let stored = self.keys.seal(&ring, request_id, &new)?;
        let event = events::credentials_stored(&caller.subject, &stored);
        match self.store.put_credential(&stored, event).await? {
            Put::Stored => Ok(stored),
            Put::NotRunnable => match self.store.request(request_id).await? {
                Some(now) => Err(terminal(now.state)),
                None => Err(Failure::NotFound("request")),
            },
        }
    }

    /// The decrypted credential sets of the request `(job_id, token)` holds a live lease on.
    pub async fn job_credentials(
        &self,
        job_id: &str,
        token: &str,
    ) -> Result<Vec<(StoredCredential, Material)>, Failure> {
        check_id("job_id", job_id)?;
        let request_id = self
            .store
            .leased_request(job_id, token, now_ms())
            .await?
            .map_err(Failure::Lease)?;
        let rows = self.store.credentials(&request_id).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ring = self.keys.keyring().await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let material = self.keys.open(&ring, &row)?;
            out.push((row, material));
        }
        crate::metrics::credentials_read(out.len());
        Ok(out)
    }

    /// Re-wraps data keys still under an older key-encryption key, every
    /// `credential_rewrap_interval` until cancelled.
    pub async fn run_rewrap(self, token: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.credential_rewrap_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.keys.rewrap_all().await {
                Ok(0) => {}
                Ok(n) => {
                    crate::metrics::credentials_rewrapped(n);
                    tracing::info!(
                        rows = n,
                        "re-wrapped credential data keys under the newest key"
                    );
                }
                Err(err) => {
                    tracing::warn!(error = %err, "re-wrapping credentials failed; retrying next tick")
                }
            }
        }
    }

    /// The key-encryption keys (rotation, rewrap, the report).
    pub fn credential_keys(&self) -> &crate::credentials::CredentialKeys {
        &self.keys
    }
}
