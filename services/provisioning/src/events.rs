//! The events provisioning writes: `provisioning.request.<what>` for every transition —
//! `submitted`, `claimed`, `succeeded`, `requeued` (a retryable failure or a lapsed lease),
//! `failed` and `dead_lettered` (both, when a request fails for good), `cancelled`,
//! `replayed` — with the
//! request as the contract shows it as payload (`ironmesh.provisioning.v1.ProvisioningRequest`,
//! never credential material). The actor is the caller's principal subject, or
//! [`crate::domain::PROVISIONING_SERVICE`] for what the reaper does. A stored credential set
//! is `provisioning.credentials.stored` (metadata only).

use ironmesh_outbox::NewEvent;

use crate::domain::Request;
use crate::grpc::convert;
use crate::store::StoredCredential;

/// A transition of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Submitted,
    Claimed,
    Succeeded,
    Requeued,
    Failed,
    DeadLettered,
    Cancelled,
    Replayed,
}

impl Transition {
    pub fn word(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Claimed => "claimed",
            Self::Succeeded => "succeeded",
            Self::Requeued => "requeued",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Cancelled => "cancelled",
            Self::Replayed => "replayed",
        }
    }
}

/// `provisioning.request.<transition>` for `request` as it now is.
pub fn request(transition: Transition, actor: &str, request: &Request) -> NewEvent {
    crate::metrics::transition(transition.word());
    NewEvent::protobuf(
        &format!("provisioning.request.{}", transition.word()),
        "provisioning_request",
        &request.id,
        actor,
        &convert::request(request),
    )
}

/// `provisioning.credentials.stored`: a credential set stored for a request, its metadata as
/// payload (`ironmesh.provisioning.v1.CredentialInfo`: kind, entry names, key id — never the
/// material).
pub fn credentials_stored(actor: &str, stored: &StoredCredential) -> NewEvent {
    crate::metrics::credentials_stored();
    NewEvent::protobuf(
        "provisioning.credentials.stored",
        "provisioning_request",
        &stored.request_id,
        actor,
        &convert::credential_info(stored),
    )
}
