//! Verifying an exported chain without the server: entries in export order, the retention anchor
//! the export may start from, and a signed checkpoint the chain must reach — all against public
//! keys the verifier trusts. What `ironmesh audit verify` runs once it has parsed its files.

use super::checkpoint::{Checkpoint, TrustedKeys};
use super::{ChainCheck, Entry, ZERO_HASH};

/// The first thing that does not verify, at a sequence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("sequence {sequence}: {reason}")]
pub struct Failure {
    pub sequence: i64,
    pub reason: String,
}

fn fail<T>(sequence: i64, reason: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        sequence,
        reason: reason.into(),
    })
}

/// What verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// First and last sequence of the file (`None` when every entry had been purged).
    pub range: Option<(i64, i64)>,
    pub entries: i64,
    /// The retention anchor the file started from, if it did.
    pub anchor_sequence: Option<i64>,
    pub checkpoint_sequence: i64,
    pub key_id: String,
}

/// Checks an export entry by entry (constant memory), then against its checkpoint.
#[derive(Debug)]
pub struct ExportCheck {
    keys: TrustedKeys,
    checkpoint: Checkpoint,
    anchor: Option<Checkpoint>,
    chain: Option<ChainCheck>,
    first: Option<i64>,
    entries: i64,
}

impl ExportCheck {
    /// Starts with the checkpoint the export must reach: a head checkpoint, signed by one of
    /// `keys`.
    pub fn new(keys: TrustedKeys, checkpoint: Checkpoint) -> Result<Self, Failure> {
        let at = checkpoint.sequence;
        if checkpoint.retention_anchor {
            return fail(
                at,
                "the checkpoint is a retention anchor, not a signed head",
            );
        }
        if keys.get(&checkpoint.key_id).is_none() {
            return fail(
                at,
                format!(
                    "the checkpoint is signed by key `{}`, which is not among the trusted public keys",
                    checkpoint.key_id
                ),
            );
        }
        if !keys.verify(&checkpoint) {
            return fail(at, "the checkpoint's signature does not verify");
        }
        Ok(Self {
            keys,
            checkpoint,
            anchor: None,
            chain: None,
            first: None,
            entries: 0,
        })
    }

    /// A retention anchor from the export (before its first entry only).
    pub fn anchor(&mut self, anchor: Checkpoint) -> Result<(), Failure> {
        let at = anchor.sequence + 1;
        if self.chain.is_some() || self.anchor.is_some() {
            return fail(at, "a retention anchor in the middle of the export");
        }
        if !anchor.retention_anchor {
            return fail(
                at,
                "the export's anchor is not marked as a retention anchor",
            );
        }
        if !self.keys.verify(&anchor) {
            return fail(
                at,
                "the retention anchor's signature does not verify with the trusted keys",
            );
        }
        self.anchor = Some(anchor);
        Ok(())
    }

    /// The next entry of the export.
    pub fn entry(&mut self, entry: &Entry) -> Result<(), Failure> {
        let at = entry.sequence;
        let chain = match &mut self.chain {
            Some(chain) => chain,
            None => {
                let prev_hash = match &self.anchor {
                    _ if at == 1 => ZERO_HASH.to_vec(),
                    Some(anchor) if anchor.sequence + 1 == at => anchor.hash.clone(),
                    Some(anchor) => {
                        return fail(
                            at,
                            format!(
                                "the export starts here but its retention anchor is at sequence {}",
                                anchor.sequence
                            ),
                        );
                    }
                    None => {
                        return fail(
                            at,
                            "the export does not start at sequence 1 and carries no retention \
                             anchor (export from the start, or join the earlier parts first)",
                        );
                    }
                };
                self.first = Some(at);
                self.chain.insert(ChainCheck {
                    next_sequence: at,
                    prev_hash,
                })
            }
        };
        if let Err(reason) = chain.check(entry) {
            // A sequence out of order is named by the one the chain expected.
            let at = if reason == "gap" {
                chain.next_sequence
            } else {
                at
            };
            return fail(at, reason);
        }
        if at == self.checkpoint.sequence && entry.hash != self.checkpoint.hash {
            return fail(
                at,
                "checkpoint mismatch: the checkpoint signed another hash here",
            );
        }
        self.entries += 1;
        Ok(())
    }

    /// After the last entry: the file must reach the checkpoint.
    pub fn finish(self) -> Result<Summary, Failure> {
        let checkpoint = self.checkpoint.sequence;
        let summary = |range| Summary {
            range,
            entries: self.entries,
            anchor_sequence: self.anchor.as_ref().map(|a| a.sequence),
            checkpoint_sequence: checkpoint,
            key_id: self.checkpoint.key_id.clone(),
        };
        let Some(chain) = &self.chain else {
            // No entries: fine only if everything up to the checkpoint was purged.
            return match &self.anchor {
                Some(anchor)
                    if anchor.sequence == checkpoint && anchor.hash == self.checkpoint.hash =>
                {
                    Ok(summary(None))
                }
                Some(anchor) => fail(
                    anchor.sequence + 1,
                    format!(
                        "truncated: no entries, but the checkpoint is at sequence {checkpoint}"
                    ),
                ),
                None => fail(1, "the export holds no entries"),
            };
        };
        let last = chain.next_sequence - 1;
        let first = self.first.unwrap_or(last);
        if last < checkpoint {
            return fail(
                last + 1,
                format!(
                    "truncated: the export ends at sequence {last}, before the checkpoint at {checkpoint}"
                ),
            );
        }
        if checkpoint < first {
            let anchored = self
                .anchor
                .as_ref()
                .is_some_and(|a| a.sequence == checkpoint && a.hash == self.checkpoint.hash);
            if !anchored {
                return fail(
                    checkpoint,
                    format!("the checkpoint is before the export's first entry ({first})"),
                );
            }
        }
        Ok(summary(Some((first, last))))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;
    use crate::domain::{ALGORITHM, NewEntry, Outcome, from_nanos, key_id};

    fn chain(n: i64) -> Vec<Entry> {
        let mut prev = ZERO_HASH.to_vec();
        (1..=n)
            .map(|sequence| {
                let mut e = Entry {
                    sequence,
                    entry_id: format!("e{sequence}"),
                    recorded_at: from_nanos(1_700_000_000_000_000_000 + sequence),
                    body: NewEntry {
                        occurred_at: from_nanos(1_700_000_000_000_000_000),
                        actor: "u".into(),
                        action: "auth.user.login".into(),
                        resource: String::new(),
                        outcome: Outcome::Success,
                        source_service: "auth".into(),
                        request_id: String::new(),
                        idempotency_key: format!("k{sequence}"),
                        details: BTreeMap::new(),
                    },
                    prev_hash: std::mem::take(&mut prev),
                    hash: Vec::new(),
                };
                e.hash = e.computed_hash().to_vec();
                prev.clone_from(&e.hash);
                e
            })
            .collect()
    }

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn sign(pair: &Ed25519KeyPair, entry: &Entry, retention_anchor: bool) -> Checkpoint {
        let mut c = Checkpoint {
            sequence: entry.sequence,
            hash: entry.hash.clone(),
            signed_at: from_nanos(1_800_000_000_000_000_000),
            key_id: key_id(pair.public_key().as_ref()),
            algorithm: ALGORITHM.into(),
            signature: Vec::new(),
            retention_anchor,
        };
        c.signature = pair.sign(&c.signing_input()).as_ref().to_vec();
        c
    }

    fn run(
        pair: &Ed25519KeyPair,
        checkpoint: Checkpoint,
        anchor: Option<Checkpoint>,
        entries: &[Entry],
    ) -> Result<Summary, Failure> {
        let keys = TrustedKeys::new([pair.public_key().as_ref().to_vec()]);
        let mut check = ExportCheck::new(keys, checkpoint)?;
        if let Some(anchor) = anchor {
            check.anchor(anchor)?;
        }
        for e in entries {
            check.entry(e)?;
        }
        check.finish()
    }

    /// A whole chain verifies; an edited, a missing and a cut-off entry are each named; a
    /// checkpoint by another key, or an anchor passed off as a checkpoint, is refused.
    #[test]
    fn tampering_is_named_at_its_sequence() {
        let pair = key();
        let entries = chain(6);
        let head = sign(&pair, &entries[5], false);
        let ok = run(&pair, head.clone(), None, &entries).unwrap();
        assert_eq!((ok.range, ok.entries), (Some((1, 6)), 6));

        let mut edited = entries.clone();
        edited[2].body.actor = "mallory".into();
        let err = run(&pair, head.clone(), None, &edited).unwrap_err();
        assert_eq!((err.sequence, err.reason.as_str()), (3, "hash mismatch"));

        let mut missing = entries.clone();
        missing.remove(3);
        assert_eq!(
            run(&pair, head.clone(), None, &missing)
                .unwrap_err()
                .sequence,
            4
        );

        let err = run(&pair, head.clone(), None, &entries[..4]).unwrap_err();
        assert_eq!(err.sequence, 5);
        assert!(err.reason.starts_with("truncated"), "{err}");

        let other = key();
        assert!(run(&other, head.clone(), None, &entries).is_err());
        let mut forged = head.clone();
        forged.sequence = 5;
        assert!(run(&pair, forged, None, &entries).is_err());
        let anchor_as_head = sign(&pair, &entries[5], true);
        assert!(run(&pair, anchor_as_head, None, &entries).is_err());
    }

    /// After retention the file starts after a signed anchor; without it, or with a head
    /// checkpoint in its place, the first entry is refused.
    #[test]
    fn a_chain_may_start_at_its_anchor() {
        let pair = key();
        let entries = chain(6);
        let head = sign(&pair, &entries[5], false);
        let anchor = sign(&pair, &entries[2], true);
        let ok = run(&pair, head.clone(), Some(anchor.clone()), &entries[3..]).unwrap();
        assert_eq!((ok.range, ok.anchor_sequence), (Some((4, 6)), Some(3)));
        assert_eq!(
            run(&pair, head.clone(), None, &entries[3..])
                .unwrap_err()
                .sequence,
            4
        );
        let not_anchor = sign(&pair, &entries[2], false);
        assert!(run(&pair, head.clone(), Some(not_anchor), &entries[3..]).is_err());
        let wrong = sign(&pair, &entries[1], true);
        assert_eq!(
            run(&pair, head, Some(wrong), &entries[3..])
                .unwrap_err()
                .sequence,
            4
        );
        // Everything purged up to the checkpoint: no entries, the anchor is the head.
        let all = sign(&pair, &entries[5], true);
        let ok = run(&pair, sign(&pair, &entries[5], false), Some(all), &[]).unwrap();
        assert_eq!(ok.range, None);
    }
}
