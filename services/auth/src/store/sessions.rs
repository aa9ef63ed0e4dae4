//! Refresh tokens and the sessions they form: issue, rotate (with race and reuse detection,
//! see `domain::refresh`), list, revoke.

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::with_pool;

use super::{Result, Store};
use crate::domain::refresh::{self, RefreshState, Rotation};
use crate::domain::{PasswordHash, Session, TokenHash};
use crate::events::{self, AUTH_SERVICE, Revocation};

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
    /// Opens a session: stores its first refresh token, records the login time and writes
    /// `event`, in one transaction.
    pub async fn open_session(
        &self,
        token: &NewRefresh<'_>,
        now: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<()> {
        let record_login = "UPDATE users SET last_login_at = $1 WHERE id = $2";
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            insert_refresh_on(&mut *tx, token).await?;
            sqlx::query(record_login).bind(now).bind(token.user_id).execute(&mut *tx).await?;
            self.write_event(&mut *tx, event).await?;
            tx.commit().await?;
        });
        self.committed();
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
        let inspect = "SELECT family_id, user_id, rotated_at, revoked_at FROM refresh_tokens WHERE token_hash = $1";
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
                    let seen = sqlx::query_as::<_, (String, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>(inspect)
                        .bind(old_hash.expose())
                        .fetch_optional(&mut *tx)
                        .await?;
                    let state = seen.as_ref().map(|(family_id, _, rotated_at, revoked_at)| RefreshState {
                        family_id: family_id.clone(),
                        rotated_at: *rotated_at,
                        revoked_at: *revoked_at,
                    });
                    let rotation = refresh::classify(state.as_ref(), now, race_window);
                    if let (Rotation::Reused, Some((family_id, user_id, _, _))) = (&rotation, &seen) {
                        let revoked = sqlx::query(revoke).bind(now).bind(family_id).execute(&mut *tx).await?.rows_affected();
                        if revoked > 0 {
                            let event = events::sessions_revoked(AUTH_SERVICE, user_id, Some(family_id), 1, Revocation::RefreshTokenReused);
                            self.write_event(&mut *tx, event).await?;
                        }
                    }
                    rotation
                }
            };
            tx.commit().await?;
            rotation
        });
        if rotation == Rotation::Reused {
            self.committed();
        }
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
    /// many sessions were revoked; when any were, `event(count)` is written with the change.
    pub async fn revoke_sessions(
        &self,
        user_id: &str,
        only: Option<&str>,
        keep: Option<&str>,
        now: DateTime<Utc>,
        event: impl FnOnce(u64) -> NewEvent,
    ) -> Result<u64> {
        let revoked = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let revoked = revoke_on(&mut *tx, user_id, only, keep, now).await?;
            if revoked > 0 {
                self.write_event(&mut *tx, event(revoked)).await?;
                tx.commit().await?;
            }
            revoked
        });
        if revoked > 0 {
            self.committed();
        }
        Ok(revoked)
    }

    /// Replaces the password and revokes every session but `keep`, with `event(revoked)`, in one
    /// transaction. Returns how many sessions were revoked.
    pub async fn change_password(
        &self,
        user_id: &str,
        password_hash: &PasswordHash,
        keep: Option<&str>,
        now: DateTime<Utc>,
        event: impl FnOnce(u64) -> NewEvent,
    ) -> Result<u64> {
        let set = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
        let revoked = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(set).bind(password_hash.expose()).bind(now).bind(user_id).execute(&mut *tx).await?;
            let revoked = revoke_on(&mut *tx, user_id, None, keep, now).await?;
            self.write_event(&mut *tx, event(revoked)).await?;
            tx.commit().await?;
            revoked
        });
        self.committed();
        Ok(revoked)
    }
}

/// Revokes the live refresh tokens of `user_id` — of one session (`only`), or of all but `keep`,
/// or of all — in one statement on `conn`; returns how many sessions (refresh families) that
/// ended.
async fn revoke_on<'c, E, DB>(
    conn: E,
    user_id: &str,
    only: Option<&str>,
    keep: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = DB>,
    DB: sqlx::Database,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    (String,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let revoke = "UPDATE refresh_tokens SET revoked_at = $4 WHERE user_id = $1 AND revoked_at IS NULL \
                  AND ($2 = '' OR family_id = $2) AND family_id <> $3 RETURNING family_id";
    let families: Vec<(String,)> = sqlx::query_as(revoke)
        .bind(user_id)
        .bind(only.unwrap_or(""))
        .bind(keep.unwrap_or(""))
        .bind(now)
        .fetch_all(conn)
        .await?;
    let distinct: std::collections::HashSet<&str> =
        families.iter().map(|(f,)| f.as_str()).collect();
    Ok(u64::try_from(distinct.len()).unwrap_or(u64::MAX))
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
