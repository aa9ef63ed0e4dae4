//! Refresh tokens and the sessions they form: issue, rotate (with race and reuse detection,
//! see `domain::refresh`), list, revoke.

use chrono::{DateTime, Utc};
use ironmesh_runtime::with_pool;

use super::{Result, Store};
use crate::domain::refresh::{self, RefreshState, Rotation};
use crate::domain::{Session, TokenHash};

/// A new refresh token to store.
pub struct NewRefresh<'a> {
    pub id: &'a str,
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub token_hash: &'a TokenHash,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub label: &'a str,
    pub user_agent: Option<&'a str>,
    pub client_ip: Option<&'a str>,
}

impl Store {
    pub async fn insert_refresh(&self, token: &NewRefresh<'_>) -> Result<()> {
        with_pool!(&self.db, pool => {
            let mut conn = pool.acquire().await?;
            insert_refresh_on(&mut *conn, token).await?;
        });
        Ok(())
    }

    /// Rotates the refresh token hashed `old_hash` into `new` (whose `family_id` and `user_id`
    /// are taken from the old one), detecting races and reuse; see [`Rotation`].
    pub async fn rotate_refresh(
        &self,
        old_hash: &TokenHash,
        new: &NewRefresh<'_>,
        now: DateTime<Utc>,
        race_window: chrono::Duration,
    ) -> Result<Rotation> {
        let claim = "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $1 RETURNING user_id, family_id, label";
        let inspect =
            "SELECT family_id, rotated_at, revoked_at FROM refresh_tokens WHERE token_hash = $1";
        let revoke =
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL";
        let rotation = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query_as::<_, (String, String, String)>(claim)
                .bind(now)
                .bind(old_hash.expose())
                .fetch_optional(&mut *tx)
                .await?;
            let rotation = match claimed {
                Some((user_id, family_id, label)) => {
                    let token = NewRefresh { user_id: &user_id, family_id: &family_id, label: &label, ..*new };
                    insert_refresh_on(&mut *tx, &token).await?;
                    Rotation::Rotated { user_id, family_id }
                }
                None => {
                    let seen = sqlx::query_as::<_, (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>(inspect)
                        .bind(old_hash.expose())
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|(family_id, rotated_at, revoked_at)| RefreshState { family_id, rotated_at, revoked_at });
                    let rotation = refresh::classify(seen.as_ref(), now, race_window);
                    if let (Rotation::Reused, Some(seen)) = (&rotation, &seen) {
                        sqlx::query(revoke).bind(now).bind(&seen.family_id).execute(&mut *tx).await?;
                    }
                    rotation
                }
            };
            tx.commit().await?;
            rotation
        });
        Ok(rotation)
    }

    /// The user's live sessions, most recently used first.
    pub async fn sessions(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<Session>> {
        let sql = "SELECT family_id, MAX(label), MAX(user_agent), MAX(client_ip), MIN(created_at), MAX(created_at), MAX(expires_at) \
                   FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL \
                   GROUP BY family_id HAVING MAX(expires_at) > $2 ORDER BY MAX(created_at) DESC, family_id";
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            DateTime<Utc>,
            DateTime<Utc>,
            DateTime<Utc>,
        );
        let rows = with_pool!(&self.db, pool => sqlx::query_as::<_, Row>(sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| Session {
                id: r.0,
                label: r.1.unwrap_or_default(),
                user_agent: r.2,
                client_ip: r.3,
                created_at: r.4,
                last_used_at: r.5,
                expires_at: r.6,
            })
            .collect())
    }

    /// Revokes sessions of `user_id`: one (`Some(family)`), or all but `keep`, or all. Returns how
    /// many sessions were revoked.
    pub async fn revoke_sessions(
        &self,
        user_id: &str,
        only: Option<&str>,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let count = "SELECT COUNT(DISTINCT family_id) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL AND ($2 = '' OR family_id = $2) AND family_id <> $3";
        let revoke = "UPDATE refresh_tokens SET revoked_at = $4 WHERE user_id = $1 AND revoked_at IS NULL AND ($2 = '' OR family_id = $2) AND family_id <> $3";
        let only = only.unwrap_or("");
        let keep = keep.unwrap_or("");
        let revoked = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let (sessions,): (i64,) = sqlx::query_as(count)
                .bind(user_id)
                .bind(only)
                .bind(keep)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(revoke)
                .bind(user_id)
                .bind(only)
                .bind(keep)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            sessions
        });
        Ok(u64::try_from(revoked).unwrap_or(0))
    }
}

async fn insert_refresh_on<'c, E, DB>(
    executor: E,
    token: &NewRefresh<'_>,
) -> std::result::Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = DB>,
    DB: sqlx::Database,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let sql = "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at, label, user_agent, client_ip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    sqlx::query(sql)
        .bind(token.id)
        .bind(token.family_id)
        .bind(token.user_id)
        .bind(token.token_hash.expose().as_str())
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.label)
        .bind(token.user_agent)
        .bind(token.client_ip)
        .execute(executor)
        .await?;
    Ok(())
}
