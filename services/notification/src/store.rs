//! Storage for notification: the schema per backend ([`MIGRATIONS`]) and the queries of what is
//! built so far (preferences), in SQL both SQLite and PostgreSQL accept.

use chrono::{DateTime, Utc};
use ironmesh_runtime::storage::{Database, MigrationSet};
use ironmesh_runtime::with_pool;

use crate::preferences::{Channel, Override, Preferences};

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "channel preferences", "0002_preferences.sql";
];

/// A query failed, or a stored row does not hold what it should; callers see an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("a stored row does not hold valid {0}")]
    Corrupt(&'static str),
}

/// Notification's tables.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// `user_id`'s preferences and when they were set; `None` if never.
    pub async fn preferences(
        &self,
        user_id: &str,
    ) -> Result<Option<(Preferences, DateTime<Utc>)>, StoreError> {
        let sql = "SELECT default_channels, overrides, updated_at FROM notification_preferences \
             WHERE user_id = $1";
        let row: Option<(String, String, DateTime<Utc>)> = with_pool!(&self.db, pool => sqlx::query_as(sql)
            .bind(user_id)
            .fetch_optional(pool)
            .await)?;
        let Some((defaults, overrides, at)) = row else {
            return Ok(None);
        };
        let mut parsed = Vec::new();
        for line in overrides.lines().filter(|l| !l.is_empty()) {
            let (pattern, channels) = line
                .split_once('\t')
                .ok_or(StoreError::Corrupt("preferences"))?;
            parsed.push(Override {
                pattern: pattern.to_owned(),
                channels: decode(channels)?,
            });
        }
        let preferences = Preferences {
            default_channels: decode(&defaults)?,
            overrides: parsed,
        };
        Ok(Some((preferences, at)))
    }

    /// Replaces `user_id`'s preferences.
    pub async fn set_preferences(
        &self,
        user_id: &str,
        preferences: &Preferences,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO notification_preferences (user_id, default_channels, overrides, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
             default_channels = excluded.default_channels, overrides = excluded.overrides, \
             updated_at = excluded.updated_at";
        let overrides: String = preferences
            .overrides
            .iter()
            .map(|o| format!("{}\t{}\n", o.pattern, encode(&o.channels)))
            .collect();
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(user_id)
            .bind(encode(&preferences.default_channels))
            .bind(overrides)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

fn name(channel: Channel) -> &'static str {
    match channel {
        Channel::InApp => "IN_APP",
        Channel::Email => "EMAIL",
        Channel::Webhook => "WEBHOOK",
    }
}

fn encode(channels: &[Channel]) -> String {
    channels
        .iter()
        .map(|c| name(*c))
        .collect::<Vec<_>>()
        .join(",")
}

fn decode(text: &str) -> Result<Vec<Channel>, StoreError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "IN_APP" => Ok(Channel::InApp),
            "EMAIL" => Ok(Channel::Email),
            "WEBHOOK" => Ok(Channel::Webhook),
            _ => Err(StoreError::Corrupt("preferences")),
        })
        .collect()
}
