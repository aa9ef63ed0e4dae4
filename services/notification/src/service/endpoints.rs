//! Webhook endpoints (SSRF-checked at registration, secrets sealed, rotated with a grace) and
//! deliveries (listed, redelivered) of [`Notifications`], for their owners (operators see all).

use chrono::{DateTime, Utc};
use ironmesh_runtime::storage::{new_id, now};
use ironmesh_runtime::validation::Violations;

use super::{Caller, Failure, Notifications, check_id};
use crate::domain::{
    Delivery, DeliveryState, Endpoint, MAX_ENDPOINTS, NewEndpoint, ROTATION_GRACE,
};
use crate::preferences::Channel;
use crate::signing::Secret;
use crate::ssrf;
use crate::store::DeliveryFilter;

impl Notifications {
    /// Registers an endpoint for the caller after resolving its host (every address must be
    /// public unless the test-only policy allows private ones); returns it and its secret.
    pub async fn create_endpoint(
        &self,
        caller: &Caller,
        new: NewEndpoint,
    ) -> Result<(Endpoint, Secret), Failure> {
        if let Err(refusal) = ssrf::resolve(&new.target, self.policy).await {
            return Err(Failure::Invalid(Violations::one(
                "endpoint.url",
                refusal.to_string(),
            )));
        }
        let secret = Secret::generate();
        let sealed = self.seal(&secret)?;
        let at = now();
        let endpoint = Endpoint {
            id: new_id(),
            owner_id: caller.subject.clone(),
            url: new.target.url.to_string(),
            description: new.description,
            event_types: new.event_types,
            created_at: at,
            secret_rotated_at: at,
            disabled_at: None,
        };
        if !self
            .store
            .insert_endpoint(&endpoint, &sealed, MAX_ENDPOINTS)
            .await?
        {
            return Err(Failure::Precondition(
                "ENDPOINT_LIMIT",
                "webhook-endpoints".to_owned(),
                format!("at most {MAX_ENDPOINTS} webhook endpoints per user"),
            ));
        }
        Ok((endpoint, secret))
    }

    fn seal(&self, secret: &Secret) -> Result<Vec<u8>, Failure> {
        self.sealing
            .seal(secret.expose().as_bytes())
            .map_err(|err| Failure::Internal(Box::new(err)))
    }

    /// The caller's endpoints, oldest first.
    pub async fn endpoints(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Endpoint>, Failure> {
        let rows = self.store.endpoints(&caller.subject, after, limit).await?;
        Ok(rows.into_iter().map(|e| e.endpoint).collect())
    }

    async fn owned_endpoint(
        &self,
        caller: &Caller,
        id: &str,
        operator_too: bool,
    ) -> Result<Endpoint, Failure> {
        check_id("endpoint_id", id)?;
        match self.store.endpoint(id).await? {
            Some(e) if e.endpoint.owner_id == caller.subject => Ok(e.endpoint),
            Some(e) if operator_too && caller.operator => Ok(e.endpoint),
            _ => Err(Failure::NotFound("webhook endpoint")),
        }
    }

    /// A new secret for the owner's endpoint; the old one signs too for [`ROTATION_GRACE`].
    pub async fn rotate_secret(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Endpoint, Secret, DateTime<Utc>), Failure> {
        self.owned_endpoint(caller, id, false).await?;
        let secret = Secret::generate();
        let sealed = self.seal(&secret)?;
        let at = now();
        let until = at + chrono::Duration::from_std(ROTATION_GRACE).unwrap_or_default();
        let endpoint = self
            .store
            .rotate_secret(id, &sealed, until.timestamp_millis(), at)
            .await?
            .ok_or(Failure::NotFound("webhook endpoint"))?;
        Ok((endpoint.endpoint, secret, until))
    }

    /// Deletes the owner's endpoint (an operator may delete any); its pending deliveries fail.
    pub async fn delete_endpoint(&self, caller: &Caller, id: &str) -> Result<(), Failure> {
        self.owned_endpoint(caller, id, true).await?;
        if self.store.delete_endpoint(id).await? {
            Ok(())
        } else {
            Err(Failure::NotFound("webhook endpoint"))
        }
    }

    /// Deliveries the caller may see matching `filter`, newest first.
    pub async fn deliveries(
        &self,
        caller: &Caller,
        mut filter: DeliveryFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>, Failure> {
        if !caller.operator {
            filter.recipient_id = caller.subject.clone();
        }
        Ok(self.store.deliveries(&filter, before, limit).await?)
    }

    /// Schedules one more attempt of a delivery the caller may see, now.
    pub async fn redeliver(&self, caller: &Caller, id: &str) -> Result<Delivery, Failure> {
        check_id("delivery_id", id)?;
        let delivery = match self.store.delivery(id).await? {
            Some(d) if caller.sees(&d.recipient_id) => d,
            _ => return Err(Failure::NotFound("delivery")),
        };
        if delivery.state == DeliveryState::Pending {
            return Ok(delivery);
        }
        if delivery.channel == Channel::Webhook {
            match self.store.endpoint(&delivery.endpoint_id).await? {
                Some(e) if e.endpoint.disabled_at.is_none() => {}
                Some(_) => {
                    return Err(Failure::Precondition(
                        "ENDPOINT_DISABLED",
                        format!("webhook-endpoints/{}", delivery.endpoint_id),
                        "the endpoint answered 410 Gone and was disabled".to_owned(),
                    ));
                }
                None => {
                    return Err(Failure::Precondition(
                        "ENDPOINT_DELETED",
                        format!("webhook-endpoints/{}", delivery.endpoint_id),
                        "the endpoint was deleted".to_owned(),
                    ));
                }
            }
        }
        let again = self
            .store
            .redeliver(id, now().timestamp_millis())
            .await?
            .ok_or(Failure::NotFound("delivery"))?;
        self.wake.notify_one();
        Ok(again)
    }
}
