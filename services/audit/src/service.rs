//! Audit's operations over the store: the input rules, paging, the verification budget, and the
//! entry an event becomes. No proto, no SQL; `grpc` converts and calls these.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::domain::{
    self, AuditError, Entry, Filter, MAX_BATCH, NewEntry, Verification, Violations,
};
use crate::store::Store;

/// The audit log's operations.
#[derive(Clone, Debug)]
pub struct Audit {
    store: Store,
}

/// One page of a Query.
#[derive(Debug)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next_page_token: String,
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
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

    /// VerifyChain over `start..=end` (0 = defaults), stopping at `deadline`.
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
        Ok(self.store.verify(start, end, deadline).await?)
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
