//! The preferences queries: one row per user, replaced whole by SetPreferences.

use chrono::{DateTime, Utc};
use ironmesh_runtime::with_pool;

use super::{Store, StoreError, decode_channels, encode_channels};
use crate::preferences::{Override, Preferences};

impl Store {
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
                channels: decode_channels(channels)?,
            });
        }
        let preferences = Preferences {
            default_channels: decode_channels(&defaults)?,
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
            .map(|o| format!("{}\t{}\n", o.pattern, encode_channels(&o.channels)))
            .collect();
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(user_id)
            .bind(encode_channels(&preferences.default_channels))
            .bind(overrides)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}
