//! Accounts: creation, lookup, password and login bookkeeping, and what administrators change
//! (listing, roles, locks).

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::storage::is_unique_violation;
use ironmesh_runtime::with_pool;

use super::{Result, Store};
use crate::domain::{Contact, PasswordHash, Role, User};

/// A users row as selected by [`COLUMNS`].
type Row = (
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

const COLUMNS: &str = "id, email, password_hash, roles, locked, display_name, totp_enabled, created_at, updated_at, last_login_at, locked_reason, locked_until";

fn user(row: Row) -> User {
    User {
        id: row.0,
        email: row.1,
        password_hash: PasswordHash::new(row.2),
        roles: parse_roles(&row.3),
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

/// Roles as stored: comma-separated names (unknown names are skipped, so a role removed from
/// the code cannot fail every read of the row).
fn parse_roles(text: &str) -> Vec<Role> {
    text.split(',')
        .filter_map(|r| Role::parse(r.trim()))
        .collect()
}

fn join_roles(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A page of users for administrators.
pub struct UserFilter<'a> {
    pub after_id: &'a str,
    pub email_contains: &'a str,
    pub role: Option<Role>,
    pub locked_only: bool,
    pub limit: i64,
}

impl Store {
    /// Stores a new account with `event`; false (and no event) when the email is taken.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_user(
        &self,
        id: &str,
        email: &str,
        password_hash: &PasswordHash,
        display_name: &str,
        roles: &[Role],
        now: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<bool> {
        let sql = "INSERT INTO users (id, email, password_hash, roles, display_name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";
        let inserted = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let result = sqlx::query(sql)
                .bind(id)
                .bind(email)
                .bind(password_hash.expose())
                .bind(join_roles(roles))
                .bind(display_name)
                .bind(now)
                .execute(&mut *tx)
                .await;
            match result {
                // The transaction is dropped: rolled back.
                Err(err) if is_unique_violation(&err) => false,
                Err(err) => return Err(err.into()),
                Ok(_) => {
                    self.write_event(&mut *tx, event).await?;
                    tx.commit().await?;
                    true
                }
            }
        });
        if inserted {
            self.committed();
        }
        Ok(inserted)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.user_where("email", email).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        self.user_where("id", id).await
    }

    /// Where to reach the user `id`: only the columns a contact needs (no hash is read).
    pub async fn contact_by_id(&self, id: &str) -> Result<Option<Contact>> {
        type ContactRow = (String, String, String, bool, Option<DateTime<Utc>>);
        let sql = "SELECT id, email, display_name, locked, locked_until FROM users WHERE id = $1";
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, ContactRow>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(
            |(user_id, email, display_name, locked, locked_until)| Contact {
                user_id,
                email,
                display_name,
                locked,
                locked_until,
            },
        ))
    }

    /// The user whose unique `column` (a fixed name, never input) equals `value`.
    async fn user_where(&self, column: &str, value: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE {column} = $1");
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(value)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(user))
    }

    pub async fn set_password(
        &self,
        id: &str,
        password_hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(password_hash.expose())
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Users in id order (ids are UUIDv7: creation order) after `filter.after_id`.
    pub async fn users(&self, filter: &UserFilter<'_>) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE id > $1 \
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
        let rows = with_pool!(&self.db, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(filter.after_id)
            .bind(&pattern)
            .bind(role)
            .bind(filter.locked_only)
            .bind(filter.limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(user).collect())
    }

    /// Replaces the roles, with `event`; false (and no event) when no such user.
    pub async fn set_roles(
        &self,
        id: &str,
        roles: &[Role],
        now: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<bool> {
        let sql = "UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3";
        let done = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql)
                .bind(join_roles(roles))
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
            if done {
                self.write_event(&mut *tx, event).await?;
                tx.commit().await?;
            }
            done
        });
        if done {
            self.committed();
        }
        Ok(done)
    }

    /// Locks (with a reason and optional end) or unlocks an account, with `event`. False (and no
    /// event) when no such user.
    pub async fn set_lock(
        &self,
        id: &str,
        lock: Option<(&str, Option<DateTime<Utc>>)>,
        now: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<bool> {
        let sql = "UPDATE users SET locked = $1, locked_reason = $2, locked_until = $3, updated_at = $4 WHERE id = $5";
        let (locked, reason, until) = match lock {
            Some((reason, until)) => (true, reason, until),
            None => (false, "", None),
        };
        let done = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql)
                .bind(locked)
                .bind(reason)
                .bind(until)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
            if done {
                self.write_event(&mut *tx, event).await?;
                tx.commit().await?;
            }
            done
        });
        if done {
            self.committed();
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_their_stored_form() {
        let roles = [Role::Customer, Role::Admin];
        assert_eq!(join_roles(&roles), "customer,admin");
        assert_eq!(parse_roles("customer, admin,retired"), roles);
    }
}
