//! Contacts: where the notification service emails a user (`GetUserContact`). Events carry no
//! email address, so notification asks here at send time and keeps no copy.

use super::Accounts;
use crate::domain::{AuthError, Contact, check_id};

impl Accounts {
    /// The contact of `user_id`: `NotFound` for an unknown or deleted account. The address is
    /// returned, never logged.
    pub async fn contact(&self, user_id: &str) -> Result<Contact, AuthError> {
        check_id("user_id", user_id).map_err(|v| AuthError::Invalid(vec![v]))?;
        self.store
            .contact_by_id(user_id)
            .await?
            .ok_or(AuthError::NotFound)
    }
}
