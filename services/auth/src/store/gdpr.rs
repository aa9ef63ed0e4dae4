//! GDPR: deleting an account together with the event that says so.

use ironmesh_outbox::NewEvent;
use ironmesh_runtime::with_pool;

use super::{Result, Store};

impl Store {
    /// Deletes the account and everything hanging off it (sessions, API keys, recovery codes
    /// cascade), and writes `event` — in one transaction, so the event exists exactly when the
    /// deletion happened. False (and no event) when there was no such account.
    pub async fn delete_user(&self, id: &str, event: NewEvent) -> Result<bool> {
        let delete = "DELETE FROM users WHERE id = $1";
        let deleted = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query(delete).bind(id).execute(&mut *tx).await?.rows_affected() == 1;
            if gone {
                self.write_event(&mut *tx, event).await?;
                tx.commit().await?;
            }
            gone
        });
        if deleted {
            self.committed();
        }
        Ok(deleted)
    }
}
