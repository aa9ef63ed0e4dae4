//! Audit's operations over the store: the input rules, paging, VerifyChain's ranges (from the
//! zero hash, the entry before, or a retention anchor, and checked against the latest
//! checkpoint), signing the head, Export's plan and batches, and one batch of retention. No
//! proto, no SQL; `grpc` converts and calls these.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use chrono::{DateTime, Utc};

use crate::domain::{
    self, AuditError, ChainCheck, Checkpoint, Entry, Filter, MAX_BATCH, NewEntry, Verification,
    Violations, ZERO_HASH,
};
use crate::keys::{PublicKey, SigningKeys};
use crate::store::Store;

/// Most entries in one Export message (audit.proto).
pub const EXPORT_BATCH: i64 = 500;

/// The audit log's operations.
#[derive(Clone, Debug)]
pub struct Audit {
    store: Store,
    keys: SigningKeys,
}

/// Where an Export is: what it sends next, up to where.
#[derive(Clone, Debug)]
pub struct ExportPlan {
    /// The retention anchor to send first, when the export starts at the first retained entry.
    pub anchor: Option<Checkpoint>,
    /// The last sequence sent (or before the first to send).
    pub after: i64,
    /// The last sequence to send: the head at call start unless asked for less.
    pub end: i64,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
}

/// One page of a Query.
#[derive(Debug)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next_page_token: String,
}

impl Audit {
    pub fn new(store: Store, keys: SigningKeys) -> Self {
        Self { store, keys }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// Append: 1–500 entries, each valid, stored atomically in order.
    pub async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Entry>, AuditError> {
        let mut violations = Violations::default();
        if entries.is_empty() || entries.len() > MAX_BATCH {
            violations.add("entries", format!("1–{MAX_BATCH} entries"));
        }
        for (i, entry) in entries.iter().enumerate() {
            domain::check_entry(entry, &format!("entries[{i}]"), &mut violations);
        }
        violations.into_result()?;
        Ok(self.store.append(&entries).await?)
    }

    pub async fn entry(&self, sequence: i64) -> Result<Entry, AuditError> {
        if sequence < 1 {
            return Err(AuditError::invalid("sequence", "must be >= 1"));
        }
        self.store
            .entry(sequence)
            .await?
            .ok_or(AuditError::NotFound)
    }

    /// Query: one page of `filter`'s matches after `page_token`.
    pub async fn query(
        &self,
        filter: &Filter,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page, AuditError> {
        let limit = domain::page_size(page_size)?;
        let after = decode_token(page_token, filter)?;
        let mut entries = self.store.query(filter, after, limit + 1).await?;
        let more = entries.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_page_token = match entries.last() {
            Some(last) if more => encode_token(last.sequence, filter),
            _ => String::new(),
        };
        Ok(Page {
            entries,
            next_page_token,
        })
    }

    /// VerifyChain over `start..=end` (0 = defaults), stopping at `deadline`. A range starting
    /// at or before the highest retention anchor starts after it (from its signed hash); a range
    /// that covers the latest checkpoint, or reaches the head, is checked against it.
    pub async fn verify(
        &self,
        start: i64,
        end: i64,
        deadline: tokio::time::Instant,
    ) -> Result<Verification, AuditError> {
        let mut violations = Violations::default();
        if start < 0 {
            violations.add("start_sequence", "must be >= 1 (or 0 for the default, 1)");
        }
        if end < 0 {
            violations.add("end_sequence", "must be >= 0 (0 = the current head)");
        }
        let start = start.max(1);
        if end > 0 && end < start {
            violations.add("end_sequence", "must not be before start_sequence");
        }
        violations.into_result()?;
        let head = self.store.head().await?;
        let target = if end == 0 { head } else { end };
        let trusted = self.keys.trusted().await?;
        // Where the walk starts, and what the entry before it hashed to.
        let (from, prev_hash, anchor_sequence) = match self.store.latest_anchor().await? {
            Some(anchor) if start <= anchor.sequence + 1 => {
                if !trusted.verify(&anchor) {
                    return Ok(broken(start, anchor.sequence + 1, "bad anchor"));
                }
                (anchor.sequence + 1, anchor.hash, anchor.sequence)
            }
            _ if start == 1 => (1, ZERO_HASH.to_vec(), 0),
            _ => match self.store.entry(start - 1).await? {
                // The stored hash of the entry before the range (itself not verified).
                Some(before) => (start, before.hash, 0),
                None => return Ok(broken(start, start - 1, "gap")),
            },
        };
        let mut found = self.store.walk(from, prev_hash, target, deadline).await?;
        found.anchor_sequence = anchor_sequence;
        if found.first_broken.is_some() {
            return Ok(found);
        }
        let Some(checkpoint) = self.store.latest_checkpoint().await? else {
            return Ok(found);
        };
        let at = checkpoint.sequence;
        let covered = (from..=found.end_sequence).contains(&at);
        // Not cut short by the deadline: a head behind the checkpoint is then truncation.
        let reached_head = end == 0 && found.end_sequence == target;
        if !covered && !reached_head {
            return Ok(found);
        }
        let failure = if !trusted.verify(&checkpoint) || checkpoint.retention_anchor {
            Some((at, "bad checkpoint"))
        } else if covered {
            let stored = self.store.entry(at).await?.map(|e| e.hash);
            (stored.as_ref() != Some(&checkpoint.hash)).then_some((at, "checkpoint mismatch"))
        } else if at > found.end_sequence {
            Some((found.end_sequence + 1, "truncated"))
        } else {
            None
        };
        found.checkpoint_sequence = at;
        found.first_broken = failure;
        Ok(found)
    }

    /// GetCheckpoint: the latest checkpoint if it is of the current head, else the head signed
    /// now (stored, so every replica answers the same one). `None` for an empty log. A head
    /// behind the latest checkpoint is never signed: the tail was removed.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let (sequence, hash) = self.store.head_hash().await?;
        let latest = self.store.latest_checkpoint().await?;
        match latest {
            Some(latest) if latest.sequence == sequence => return Ok(Some(latest)),
            Some(latest) if latest.sequence > sequence => {
                return Err(AuditError::Truncated {
                    head: sequence,
                    checkpoint: latest.sequence,
                });
            }
            _ if sequence == 0 => return Ok(None),
            _ => {}
        }
        let signed = self.keys.sign(sequence, hash, false).await?;
        Ok(Some(self.store.insert_checkpoint(&signed).await?))
    }

    /// ListPublicKeys.
    pub async fn public_keys(&self) -> Result<Vec<PublicKey>, AuditError> {
        Ok(self.keys.public_keys().await?)
    }

    /// Export's validation and starting point: from `start` (0 = 1), or after the retention
    /// anchor when `start` is at or before it, up to `end` (0 = the head now).
    pub async fn export_plan(
        &self,
        start: i64,
        end: i64,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
    ) -> Result<ExportPlan, AuditError> {
        let mut violations = Violations::default();
        if start < 0 {
            violations.add("start_sequence", "must be >= 1 (or 0 for the default, 1)");
        }
        if end < 0 {
            violations.add("end_sequence", "must be >= 0 (0 = the head at call start)");
        }
        let start = start.max(1);
        if end > 0 && end < start {
            violations.add("end_sequence", "must not be before start_sequence");
        }
        violations.into_result()?;
        let end = if end == 0 {
            self.store.head().await?
        } else {
            end
        };
        let (anchor, after) = match self.store.latest_anchor().await? {
            Some(anchor) if start <= anchor.sequence + 1 => {
                let after = anchor.sequence;
                (Some(anchor), after)
            }
            _ => (None, start - 1),
        };
        Ok(ExportPlan {
            anchor,
            after,
            end,
            start_ns,
            end_ns,
        })
    }

    /// The next batch of an export (empty when it is done), advancing `plan`.
    pub async fn export_batch(&self, plan: &mut ExportPlan) -> Result<Vec<Entry>, AuditError> {
        if plan.after >= plan.end {
            return Ok(Vec::new());
        }
        let batch = self
            .store
            .export_batch(
                plan.after,
                plan.end,
                plan.start_ns,
                plan.end_ns,
                EXPORT_BATCH,
            )
            .await?;
        plan.after = match batch.last() {
            Some(last) => last.sequence,
            None => plan.end,
        };
        Ok(batch)
    }

    /// One step of retention: purges up to `limit` of the oldest entries recorded before
    /// `cutoff` (a prefix of the chain: it stops at the first younger entry), after checking
    /// they still link from the previous anchor, and leaves a signed anchor at the last one.
    /// Returns how many entries were removed (0: nothing to purge now).
    pub async fn purge_batch(&self, cutoff: DateTime<Utc>, limit: i64) -> Result<u64, AuditError> {
        let cutoff_ns = domain::to_nanos(cutoff).unwrap_or(i64::MIN);
        let (after, prev_hash) = match self.store.latest_anchor().await? {
            Some(anchor) => (anchor.sequence, anchor.hash),
            None => (0, ZERO_HASH.to_vec()),
        };
        let entries = self.store.entries_after(after, limit).await?;
        if entries.first().is_some_and(|e| e.sequence != after + 1) {
            let moved = self.store.latest_anchor().await?.map(|a| a.sequence);
            if moved.unwrap_or(0) > after {
                // Another replica purged meanwhile: its anchor covers this; the next run goes on.
                return Ok(0);
            }
        }
        let mut check = ChainCheck {
            next_sequence: after + 1,
            prev_hash,
        };
        let mut last = None;
        for entry in &entries {
            if domain::to_nanos(entry.recorded_at).unwrap_or(i64::MAX) >= cutoff_ns {
                break;
            }
            // Signing an anchor over a broken chain would bless the break and erase its
            // evidence: stop before it (VerifyChain reports it) and let an operator look.
            if let Err(reason) = check.check(entry) {
                tracing::error!(
                    sequence = entry.sequence,
                    reason,
                    "retention stopped: the chain does not verify here"
                );
                break;
            }
            last = Some(entry);
        }
        let Some(last) = last else {
            return Ok(0);
        };
        let anchor = self
            .keys
            .sign(last.sequence, last.hash.clone(), true)
            .await?;
        let removed = self.store.purge_through(&anchor).await?;
        if removed > 0 {
            tracing::info!(
                removed,
                anchor = anchor.sequence,
                "purged audit entries past retention"
            );
        }
        Ok(removed)
    }
}

/// A verification that failed at `at` before walking anything.
fn broken(start: i64, at: i64, reason: &'static str) -> Verification {
    Verification {
        first_broken: Some((at, reason)),
        start_sequence: start,
        end_sequence: at,
        entries_checked: 0,
        checkpoint_sequence: 0,
        anchor_sequence: 0,
    }
}

/// What a page token binds to: the filters, so a token used with other filters is refused.
fn fingerprint(filter: &Filter) -> String {
    let text = format!("{filter:?}");
    let digest = Sha256::digest(text.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..9])
}

fn encode_token(last: i64, filter: &Filter) -> String {
    URL_SAFE_NO_PAD.encode(format!("{last}:{}", fingerprint(filter)))
}

fn decode_token(token: &str, filter: &Filter) -> Result<Option<i64>, AuditError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        AuditError::invalid(
            "page_token",
            "not a page token of this query (the other fields must match the request that produced it)",
        )
    };
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (last, print) = text.split_once(':').ok_or_else(bad)?;
    if print != fingerprint(filter) {
        return Err(bad());
    }
    last.parse().map(Some).map_err(|_| bad())
}
