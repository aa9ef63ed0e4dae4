//! Webhook endpoints and their signing secrets, sealed at rest: the current one and, for the
//! rotation grace, the previous one with when it stops signing.

use chrono::{DateTime, Utc};
use ironmesh_runtime::with_pool;

use super::{Result, Store, StoreError};
use crate::domain::Endpoint;

/// An endpoint's secrets as stored: sealed bytes (ironmesh-sealing envelopes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSecrets {
    pub current: Vec<u8>,
    /// The rotated-out secret and when it stops signing (ms since the epoch).
    pub previous: Option<(Vec<u8>, i64)>,
}

/// An endpoint with its sealed secrets, for the sender.
#[derive(Clone, Debug)]
pub struct EndpointSecrets {
    pub endpoint: Endpoint,
    pub secrets: SealedSecrets,
}

const COLUMNS: &str = "id, owner_id, url, description, event_types, created_at, \
     secret_rotated_at, disabled_at, secret, previous_secret, previous_expires_ms";

type Row = (
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<i64>,
);

fn endpoint(row: Row) -> Result<EndpointSecrets> {
    let (
        id,
        owner_id,
        url,
        description,
        types,
        created_at,
        rotated,
        disabled_at,
        secret,
        previous,
        expires,
    ) = row;
    let previous = match (previous, expires) {
        (Some(sealed), Some(until)) => Some((sealed, until)),
        (None, None) => None,
        _ => return Err(StoreError::Corrupt("endpoint secrets")),
    };
    Ok(EndpointSecrets {
        endpoint: Endpoint {
            id,
            owner_id,
            url,
            description,
            event_types: types
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at,
            secret_rotated_at: rotated,
            disabled_at,
        },
        secrets: SealedSecrets {
            current: secret,
            previous,
        },
    })
}

impl Store {
    /// Inserts `endpoint` with its sealed secret unless its owner already has `max`; false then.
    pub async fn insert_endpoint(
        &self,
        endpoint: &Endpoint,
        sealed: &[u8],
        max: i64,
    ) -> Result<bool> {
        let count = "SELECT COUNT(*) FROM webhook_endpoints WHERE owner_id = $1";
        let insert = "INSERT INTO webhook_endpoints (id, owner_id, url, description, \
             event_types, secret, previous_secret, previous_expires_ms, secret_rotated_at, \
             disabled_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, NULL, $8)";
        let made = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // Serializes one owner's creations, so two at once cannot pass the count together.
            super::notifications::lock_user(&mut *tx, &endpoint.owner_id).await?;
            let (n,): (i64,) = sqlx::query_as(count)
                .bind(&endpoint.owner_id)
                .fetch_one(&mut *tx)
                .await?;
            if n >= max {
                return Ok(false);
            }
            sqlx::query(insert)
                .bind(&endpoint.id)
                .bind(&endpoint.owner_id)
                .bind(&endpoint.url)
                .bind(&endpoint.description)
                .bind(endpoint.event_types.join(","))
                .bind(sealed)
                .bind(endpoint.secret_rotated_at)
                .bind(endpoint.created_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            true
        });
        Ok(made)
    }

    /// One endpoint with its secrets.
    pub async fn endpoint(&self, id: &str) -> Result<Option<EndpointSecrets>> {
        let sql = format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1");
        let row: Option<Row> = with_pool!(&self.db, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        row.map(endpoint).transpose()
    }

    /// `owner`'s endpoints, oldest first, after `after` (an id) when set; at most `limit`.
    pub async fn endpoints(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EndpointSecrets>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE owner_id = $1 \
             AND ($2 = '' OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<Row> = with_pool!(&self.db, pool => sqlx::query_as(&sql)
            .bind(owner)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(endpoint).collect()
    }

    /// Makes `sealed` the current secret and the old current one the previous until
    /// `previous_until_ms`; returns the endpoint, or `None` if it is gone.
    pub async fn rotate_secret(
        &self,
        id: &str,
        sealed: &[u8],
        previous_until_ms: i64,
        at: DateTime<Utc>,
    ) -> Result<Option<EndpointSecrets>> {
        let sql = "UPDATE webhook_endpoints SET previous_secret = secret, \
             previous_expires_ms = $3, secret = $2, secret_rotated_at = $4 WHERE id = $1";
        let done = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(id)
            .bind(sealed)
            .bind(previous_until_ms)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Ok(None);
        }
        self.endpoint(id).await
    }

    /// Deletes endpoint `id` and fails its pending deliveries (abandoned); false if it was not
    /// there.
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool> {
        let delete = "DELETE FROM webhook_endpoints WHERE id = $1";
        let abandon = "UPDATE deliveries SET state = 'FAILED', next_attempt_ms = NULL, \
             lease_until_ms = 0, last_error = 'the endpoint was deleted' \
             WHERE endpoint_id = $1 AND state = 'PENDING'";
        let gone = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(delete).bind(id).execute(&mut *tx).await?.rows_affected();
            if n > 0 {
                sqlx::query(abandon).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        });
        Ok(gone)
    }

    /// Disables endpoint `id` (its receiver answered 410 Gone) and fails its pending
    /// deliveries.
    pub async fn disable_endpoint(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        let disable = "UPDATE webhook_endpoints SET disabled_at = $2 \
             WHERE id = $1 AND disabled_at IS NULL";
        let abandon = "UPDATE deliveries SET state = 'FAILED', next_attempt_ms = NULL, \
             lease_until_ms = 0, last_error = 'the endpoint was disabled (410 Gone)' \
             WHERE endpoint_id = $1 AND state = 'PENDING'";
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(disable).bind(id).bind(at).execute(&mut *tx).await?;
            sqlx::query(abandon).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
