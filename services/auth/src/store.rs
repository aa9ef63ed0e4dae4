//! Storage for auth: the schema per backend and every query, written once in SQL both SQLite and
//! PostgreSQL accept (`$n` parameters, `RETURNING`), run through `with_pool!`.

use chrono::{DateTime, Utc};
use ironmesh_runtime::storage::{Database, MigrationSet, is_unique_violation};
use ironmesh_runtime::with_pool;

use crate::domain::{AuthError, Role};

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "accounts", "0002_accounts.sql";
    3, "admin locks", "0003_admin.sql";
    4, "totp", "0004_totp.sql";
    5, "outbox", "0005_outbox.sql";
];

/// An account as stored.
#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub locked: bool,
    pub locked_reason: String,
    pub locked_until: Option<DateTime<Utc>>,
    pub display_name: String,
    pub totp_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

type UserTuple = (
    String,
    String,
    String,
    String,
    bool,
    String,
    bool,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
    Option<DateTime<Utc>>,
);

const USER_COLUMNS: &str = "id, email, password_hash, roles, locked, display_name, totp_enabled, created_at, updated_at, last_login_at, locked_reason, locked_until";

fn user(row: UserTuple) -> UserRow {
    UserRow {
        id: row.0,
        email: row.1,
        password_hash: row.2,
        roles: Role::parse_list(&row.3),
        locked: row.4,
        display_name: row.5,
        totp_enabled: row.6,
        created_at: row.7,
        updated_at: row.8,
        last_login_at: row.9,
        locked_reason: row.10,
        locked_until: row.11,
    }
}

impl UserRow {
    /// Locked by an administrator, and the lock has not run out.
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked && self.locked_until.is_none_or(|until| until > now)
    }
}

/// A page of users for administrators.
pub struct UserFilter<'a> {
    pub after_id: &'a str,
    pub email_contains: &'a str,
    pub role: Option<Role>,
    pub locked_only: bool,
    pub limit: i64,
}

/// A signing key as stored (private half sealed).
#[derive(Clone, Debug)]
pub struct SigningKeyRow {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_key_enc: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// An API key as stored (only a hash of its secret).
#[derive(Clone, Debug)]
pub struct ApiKeyRow {
    pub id: String,
    pub user_id: String,
    pub prefix: String,
    pub secret_hash: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRow {
    /// Not revoked and not expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

type ApiKeyTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

const API_KEY_COLUMNS: &str = "id, user_id, prefix, secret_hash, name, scopes, created_at, expires_at, last_used_at, revoked_at";

fn api_key(row: ApiKeyTuple) -> ApiKeyRow {
    ApiKeyRow {
        id: row.0,
        user_id: row.1,
        prefix: row.2,
        secret_hash: row.3,
        name: row.4,
        scopes: row
            .5
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.6,
        expires_at: row.7,
        last_used_at: row.8,
        revoked_at: row.9,
    }
}

/// An event to write to the outbox with the change it describes.
pub struct OutboxEvent<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub actor: &'a str,
    pub payload: &'a [u8],
    pub request_id: Option<&'a str>,
    pub traceparent: Option<&'a str>,
}

/// A new refresh token to store.
pub struct NewRefresh<'a> {
    pub id: &'a str,
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub token_hash: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub label: &'a str,
    pub user_agent: Option<&'a str>,
    pub client_ip: Option<&'a str>,
}

/// What presenting a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// It was current: the new token now stands in the same session (family).
    Rotated { user_id: String, family_id: String },
    /// It had just been rotated by a concurrent request: nothing changed.
    Race,
    /// It had been rotated earlier (stolen and replayed?): its whole session is now revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// One login session (refresh token family) as listed.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub id: String,
    pub label: String,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn insert_user(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        display_name: &str,
        roles: &[Role],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let sql = "INSERT INTO users (id, email, password_hash, roles, display_name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";
        let result = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(id)
            .bind(email)
            .bind(password_hash)
            .bind(Role::join(roles))
            .bind(display_name)
            .bind(now)
            .execute(pool)
            .await
            .map(drop));
        match result {
            Err(err) if is_unique_violation(&err) => Err(AuthError::EmailTaken),
            other => Ok(other?),
        }
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, AuthError> {
        self.user_where("email", email).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, AuthError> {
        self.user_where("id", id).await
    }

    /// The user whose unique `column` (a fixed name, never input) equals `value`.
    async fn user_where(&self, column: &str, value: &str) -> Result<Option<UserRow>, AuthError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = $1");
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, UserTuple>(&sql)
            .bind(value)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(user))
    }

    pub async fn set_password(
        &self,
        id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let sql = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(password_hash)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Users in id order (ids are UUIDv7: creation order) after `filter.after_id`.
    pub async fn users(&self, filter: &UserFilter<'_>) -> Result<Vec<UserRow>, AuthError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id > $1 \
             AND ($2 = '' OR email LIKE '%' || $2 || '%' ESCAPE '\\') \
             AND ($3 = '' OR (',' || roles || ',') LIKE '%,' || $3 || ',%') \
             AND ($4 = FALSE OR locked = TRUE) ORDER BY id LIMIT $5"
        );
        let pattern = filter
            .email_contains
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let role = filter.role.map(Role::as_str).unwrap_or("");
        let rows = with_pool!(&self.db, pool => sqlx::query_as::<_, UserTuple>(&sql)
            .bind(filter.after_id)
            .bind(&pattern)
            .bind(role)
            .bind(filter.locked_only)
            .bind(filter.limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(user).collect())
    }

    pub async fn set_roles(
        &self,
        id: &str,
        roles: &[Role],
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let sql = "UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3";
        let done = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(Role::join(roles))
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Locks (with a reason and optional end) or unlocks an account. False when no such user.
    pub async fn set_lock(
        &self,
        id: &str,
        lock: Option<(&str, Option<DateTime<Utc>>)>,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let sql = "UPDATE users SET locked = $1, locked_reason = $2, locked_until = $3, updated_at = $4 WHERE id = $5";
        let (locked, reason, until) = match lock {
            Some((reason, until)) => (true, reason, until),
            None => (false, "", None),
        };
        let done = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(locked)
            .bind(reason)
            .bind(until)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    pub async fn record_login(&self, id: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        let sql = "UPDATE users SET last_login_at = $1 WHERE id = $2";
        with_pool!(&self.db, pool => sqlx::query(sql).bind(now).bind(id).execute(pool).await.map(drop))?;
        Ok(())
    }

    // ---- signing keys ----

    pub async fn newest_signing_key(&self) -> Result<Option<SigningKeyRow>, AuthError> {
        let sql = "SELECT kid, public_key, private_key_enc, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1";
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, (String, Vec<u8>, Vec<u8>, DateTime<Utc>)>(sql)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(
            |(kid, public_key, private_key_enc, created_at)| SigningKeyRow {
                kid,
                public_key,
                private_key_enc,
                created_at,
            },
        ))
    }

    /// Retires every active key (published until `retired_until`) and stores `new`, atomically.
    pub async fn rotate_signing_keys(
        &self,
        new: &SigningKeyRow,
        now: DateTime<Utc>,
        retired_until: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let retire =
            "UPDATE signing_keys SET retired_at = $1, expires_at = $2 WHERE retired_at IS NULL";
        let insert = "INSERT INTO signing_keys (kid, public_key, private_key_enc, created_at) VALUES ($1, $2, $3, $4)";
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(retire).bind(now).bind(retired_until).execute(&mut *tx).await?;
            sqlx::query(insert)
                .bind(&new.kid)
                .bind(&new.public_key)
                .bind(&new.private_key_enc)
                .bind(new.created_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// `(kid, public key)` of every key whose tokens may still be live, oldest first.
    pub async fn published_keys(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Vec<u8>)>, AuthError> {
        let sql = "SELECT kid, public_key FROM signing_keys WHERE expires_at IS NULL OR expires_at > $1 ORDER BY created_at";
        Ok(
            with_pool!(&self.db, pool => sqlx::query_as::<_, (String, Vec<u8>)>(sql)
            .bind(now)
            .fetch_all(pool)
            .await)?,
        )
    }

    // ---- TOTP ----

    /// The sealed TOTP secret, whether it is enabled, and when enrollment started.
    pub async fn totp(
        &self,
        user_id: &str,
    ) -> Result<Option<(Vec<u8>, bool, Option<DateTime<Utc>>)>, AuthError> {
        let sql = "SELECT totp_secret_enc, totp_enabled, totp_pending_at FROM users WHERE id = $1 AND totp_secret_enc IS NOT NULL";
        Ok(
            with_pool!(&self.db, pool => sqlx::query_as::<_, (Vec<u8>, bool, Option<DateTime<Utc>>)>(sql)
            .bind(user_id)
            .fetch_optional(pool)
            .await)?,
        )
    }

    /// Starts (or restarts) enrollment with a new sealed secret — unless TOTP is already on.
    pub async fn start_totp(
        &self,
        user_id: &str,
        sealed: &[u8],
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let sql = "UPDATE users SET totp_secret_enc = $1, totp_pending_at = $2, totp_last_step = NULL WHERE id = $3 AND totp_enabled = FALSE";
        let changed = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(sealed)
            .bind(now)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Turns TOTP on with fresh recovery codes (hashed), replacing any old ones, atomically.
    pub async fn enable_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_hashes: &[String],
    ) -> Result<bool, AuthError> {
        let enable = "UPDATE users SET totp_enabled = TRUE, totp_pending_at = NULL, totp_last_step = $1 WHERE id = $2 AND totp_enabled = FALSE";
        let clear = "DELETE FROM recovery_codes WHERE user_id = $1";
        let insert = "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)";
        let enabled = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(enable).bind(step).bind(user_id).execute(&mut *tx).await?.rows_affected();
            if changed == 1 {
                sqlx::query(clear).bind(user_id).execute(&mut *tx).await?;
                for hash in recovery_hashes {
                    sqlx::query(insert).bind(user_id).bind(hash).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            changed == 1
        });
        Ok(enabled)
    }

    /// Records `step` as used if it is later than the last used one (a code works once, even
    /// across replicas).
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, AuthError> {
        let sql = "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)";
        let changed = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(step)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Spends a recovery code; false if it is unknown or already used.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let sql = "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL";
        let changed = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(now)
            .bind(user_id)
            .bind(hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    // ---- GDPR ----

    /// Deletes the account and everything hanging off it (sessions, API keys, recovery codes
    /// cascade), and records `event` in the outbox — in one transaction, so the event exists
    /// exactly when the deletion happened.
    pub async fn delete_user(&self, id: &str, event: &OutboxEvent<'_>) -> Result<bool, AuthError> {
        let delete = "DELETE FROM users WHERE id = $1";
        let outbox = "INSERT INTO outbox (id, event_type, source, aggregate_type, aggregate_id, occurred_at, actor, content_type, payload, request_id, traceparent) \
                      VALUES ($1, $2, 'auth', $3, $4, $5, $6, 'application/json', $7, $8, $9)";
        let deleted = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query(delete).bind(id).execute(&mut *tx).await?.rows_affected() == 1;
            if gone {
                sqlx::query(outbox)
                    .bind(event.id)
                    .bind(event.event_type)
                    .bind(event.aggregate_type)
                    .bind(event.aggregate_id)
                    .bind(event.occurred_at)
                    .bind(event.actor)
                    .bind(event.payload)
                    .bind(event.request_id)
                    .bind(event.traceparent)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            gone
        });
        Ok(deleted)
    }

    // ---- API keys ----

    pub async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<(), AuthError> {
        let sql = "INSERT INTO api_keys (id, user_id, prefix, secret_hash, name, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(&key.id)
            .bind(&key.user_id)
            .bind(&key.prefix)
            .bind(&key.secret_hash)
            .bind(&key.name)
            .bind(key.scopes.join(" "))
            .bind(key.created_at)
            .bind(key.expires_at)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// The user's keys, newest first.
    pub async fn api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyRow>, AuthError> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows = with_pool!(&self.db, pool => sqlx::query_as::<_, ApiKeyTuple>(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(api_key).collect())
    }

    pub async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRow>, AuthError> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE prefix = $1");
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, ApiKeyTuple>(&sql)
            .bind(prefix)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(api_key))
    }

    /// Revokes one of the user's keys (idempotent); `None` when the user has no such key.
    pub async fn revoke_api_key(
        &self,
        user_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKeyRow>, AuthError> {
        let sql = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND user_id = $3";
        let changed = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(now)
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Ok(None);
        }
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, ApiKeyTuple>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(api_key))
    }

    /// Records use, at most once a minute per key (no write per call).
    pub async fn touch_api_key(&self, id: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        let sql = "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(now)
            .bind(id)
            .bind(now - chrono::Duration::minutes(1))
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    // ---- refresh tokens and sessions ----

    pub async fn insert_refresh(&self, token: &NewRefresh<'_>) -> Result<(), AuthError> {
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
        old_hash: &str,
        new: &NewRefresh<'_>,
        now: DateTime<Utc>,
        race_window: chrono::Duration,
    ) -> Result<Rotation, AuthError> {
        let claim = "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $1 RETURNING user_id, family_id, label";
        let inspect =
            "SELECT family_id, rotated_at, revoked_at FROM refresh_tokens WHERE token_hash = $1";
        let revoke =
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL";
        let rotation = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query_as::<_, (String, String, String)>(claim)
                .bind(now)
                .bind(old_hash)
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
                        .bind(old_hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                    match seen {
                        Some((_, Some(rotated), None)) if now - rotated < race_window => Rotation::Race,
                        Some((family_id, Some(_), None)) => {
                            sqlx::query(revoke).bind(now).bind(&family_id).execute(&mut *tx).await?;
                            Rotation::Reused
                        }
                        _ => Rotation::Invalid,
                    }
                }
            };
            tx.commit().await?;
            rotation
        });
        Ok(rotation)
    }

    /// The user's live sessions, most recently used first.
    pub async fn sessions(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRow>, AuthError> {
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
            .map(|r| SessionRow {
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
    ) -> Result<u64, AuthError> {
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
) -> Result<(), sqlx::Error>
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
        .bind(token.token_hash)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.label)
        .bind(token.user_agent)
        .bind(token.client_ip)
        .execute(executor)
        .await?;
    Ok(())
}
