//! The read side of the store: Query's filtered pages, VerifyChain's walk over a range and
//! Export's batches.

use ironmesh_runtime::with_pool;

use super::{COLUMNS, RawRow, Result, Row, Store};
use crate::domain::{ActionFilter, ChainCheck, Entry, Filter, Verification};

impl Store {
    /// Up to `limit` entries matching `filter`, after the sequence `after` (before it when
    /// newest first), ordered by sequence in the filter's direction.
    pub async fn query(
        &self,
        filter: &Filter,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Entry>> {
        let (cursor, order) = if filter.newest_first {
            ("($9 IS NULL OR sequence < $9)", "DESC")
        } else {
            ("($9 IS NULL OR sequence > $9)", "ASC")
        };
        // Fixed text: every filter is a bound parameter that is empty/NULL when unused.
        let sql = format!(
            "SELECT {COLUMNS} FROM entries WHERE ($1 = '' OR actor = $1) \
             AND ($2 = '' OR action = $2) AND ($3 = '' OR substr(action, 1, $4) = $3) \
             AND ($5 = '' OR resource = $5) AND ($6 IS NULL OR occurred_at_ns >= $6) \
             AND ($7 IS NULL OR occurred_at_ns < $7) AND ($8 = 0 OR outcome = $8) \
             AND {cursor} ORDER BY sequence {order} LIMIT $10"
        );
        let (exact, prefix) = match &filter.action {
            ActionFilter::Any => ("", ""),
            ActionFilter::Exact(a) => (a.as_str(), ""),
            ActionFilter::Prefix(p) => ("", p.as_str()),
        };
        // i32: PostgreSQL has substr(text, int, int) only.
        let prefix_chars = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        let outcome = filter.outcome.map_or(0, |o| i64::from(o.number()));
        let rows: Vec<RawRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(&filter.actor)
                .bind(exact)
                .bind(prefix)
                .bind(prefix_chars)
                .bind(&filter.resource)
                .bind(filter.start_ns)
                .bind(filter.end_ns)
                .bind(outcome)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|r| Row::from(r).into_entry())
            .collect()
    }

    /// Walks `start..=end` in batches, the entry before `start` having hashed to `prev_hash`,
    /// stopping early at `deadline`; the range actually verified comes back in the result. Where
    /// the walk starts (the zero hash, the entry before, a retention anchor) and the checkpoint
    /// check are the service's.
    pub async fn walk(
        &self,
        start: i64,
        prev_hash: Vec<u8>,
        end: i64,
        deadline: tokio::time::Instant,
    ) -> Result<Verification> {
        const BATCH: i64 = 500;
        let mut check = ChainCheck {
            next_sequence: start,
            prev_hash,
        };
        let mut checked = 0;
        let sql = format!(
            "SELECT {COLUMNS} FROM entries WHERE sequence >= $1 AND sequence <= $2 \
             ORDER BY sequence LIMIT $3"
        );
        while check.next_sequence <= end {
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            let from = check.next_sequence;
            let rows: Vec<RawRow> = with_pool!(&self.db, pool => {
                sqlx::query_as(&sql).bind(from).bind(end).bind(BATCH).fetch_all(pool).await?
            });
            if rows.is_empty() {
                // Entries promised by the range (or the head) are missing.
                return Ok(broken(start, check.next_sequence, "gap", checked));
            }
            for row in rows {
                let at = check.next_sequence;
                // A row edited into something no entry can be is as broken as a bad hash.
                let Ok(entry) = Row::from(row).into_entry() else {
                    return Ok(broken(start, at, "unreadable entry", checked));
                };
                if let Err(reason) = check.check(&entry) {
                    return Ok(broken(start, at, reason, checked));
                }
                checked += 1;
            }
        }
        Ok(Verification {
            first_broken: None,
            start_sequence: start,
            end_sequence: check.next_sequence - 1,
            entries_checked: checked,
            checkpoint_sequence: 0,
            anchor_sequence: 0,
        })
    }

    /// Up to `limit` entries after `after` up to `end`, with `occurred_at` in `[start_ns,
    /// end_ns)` when bounded, ascending: one batch of Export.
    pub async fn export_batch(
        &self,
        after: i64,
        end: i64,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Entry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM entries WHERE sequence > $1 AND sequence <= $2 \
             AND ($3 IS NULL OR occurred_at_ns >= $3) AND ($4 IS NULL OR occurred_at_ns < $4) \
             ORDER BY sequence LIMIT $5"
        );
        let rows: Vec<RawRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(end)
                .bind(start_ns)
                .bind(end_ns)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|r| Row::from(r).into_entry())
            .collect()
    }
}

fn broken(start: i64, at: i64, reason: &'static str, checked: i64) -> Verification {
    Verification {
        first_broken: Some((at, reason)),
        start_sequence: start,
        end_sequence: at,
        entries_checked: checked + 1,
        checkpoint_sequence: 0,
        anchor_sequence: 0,
    }
}
