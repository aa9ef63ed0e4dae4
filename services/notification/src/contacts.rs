//! Where notification learns a user's email address: auth's internal `GetUserContact`, called
//! as `service:notification` through the shared client stack, at send time. Addresses are not
//! copied here (nor put in events), so erasing a user at auth leaves none behind, and an
//! address change applies to the next email.

use ironmesh_interceptors::client::GrpcChannel;
use ironmesh_proto::ironmesh::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
use tonic::Code;

/// Where to email a user. `Debug` does not show the address.
#[derive(Clone, PartialEq, Eq)]
pub struct Contact {
    pub email: String,
    pub display_name: String,
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Contact { .. }")
    }
}

/// Auth gave no definite answer (down, overloaded, timed out); the code is for the log.
#[derive(Debug, thiserror::Error)]
#[error("auth did not answer GetUserContact: {0:?}")]
pub struct Unreachable(pub Code);

/// A client for auth's `GetUserContact`.
#[derive(Clone, Debug)]
pub struct Contacts {
    client: AuthServiceClient<GrpcChannel>,
}

impl Contacts {
    /// `channel` is `ironmesh_runtime::clients::channel(config, "notification", Auth)`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self {
            client: AuthServiceClient::new(channel),
        }
    }

    /// `user_id`'s contact, or `None` when auth knows no such user (never registered, or
    /// deleted).
    pub async fn lookup(&self, user_id: &str) -> Result<Option<Contact>, Unreachable> {
        let request = pb::GetUserContactRequest {
            user_id: user_id.to_owned(),
        };
        match self.client.clone().get_user_contact(request).await {
            Ok(response) => {
                let contact = response.into_inner();
                Ok(Some(Contact {
                    email: contact.email,
                    display_name: contact.display_name,
                }))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(Unreachable(status.code())),
        }
    }
}
