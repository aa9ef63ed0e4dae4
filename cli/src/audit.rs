//! `ironmesh audit verify`: checks an exported audit log against a signed checkpoint and trusted
//! public keys, offline — no server is contacted. The reading and the checking are audit's own
//! (`ironmesh_audit::offline`, the same canonical encoding the service hashes with); this is the
//! command line around them.
//!
//! Exit codes: 0 verified; 1 the chain does not verify (stderr names the first bad sequence);
//! 2 an input cannot be used (unreadable file, not the contract's JSON, a malformed key).

use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use ironmesh_audit::domain::TrustedKeys;
use ironmesh_audit::offline::{self, OfflineError};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify an exported log offline: every hash recomputed, every link checked, the
    /// checkpoint's signature checked with a trusted key and its head found in the file.
    Verify {
        /// The export: the gateway's NDJSON (`GET /v1/audit/entries:export`, one
        /// `{"result": …}` per line) or grpcurl's JSON output of Export; `-` reads stdin.
        /// Parts of a resumed export are verified joined in order (`cat part1 part2`).
        #[arg(long, value_name = "FILE.ndjson")]
        entries: PathBuf,
        /// A checkpoint the file must reach: GetCheckpoint's JSON (`GET /v1/audit/checkpoint`).
        #[arg(long, value_name = "FILE.json")]
        checkpoint: PathBuf,
        /// A trusted audit public key, base64 of 32 bytes (`publicKey` from `GET
        /// /v1/audit/keys`, obtained out of band). Repeat for several keys.
        #[arg(long = "public-key", value_name = "BASE64", required = true)]
        public_keys: Vec<String>,
    },
}

const EXIT_NOT_VERIFIED: u8 = 1;
const EXIT_UNUSABLE: u8 = 2;

pub fn run(command: AuditCommand) -> ExitCode {
    let AuditCommand::Verify {
        entries,
        checkpoint,
        public_keys,
    } = command;
    match verify(&entries, &checkpoint, &public_keys) {
        Ok(summary) => {
            let range = summary
                .range
                .map_or("none (all purged)".to_owned(), |(a, b)| {
                    format!("{a}..={b}")
                });
            let anchor = summary.anchor_sequence.map_or(String::new(), |a| {
                format!(", from the retention anchor at {a}")
            });
            println!(
                "verified {} entries (sequences {range}{anchor}) against the checkpoint at \
                 sequence {} signed by {}",
                summary.entries, summary.checkpoint_sequence, summary.key_id
            );
            ExitCode::SUCCESS
        }
        Err(OfflineError::Failed(failure)) => {
            eprintln!(
                "ironmesh: audit log NOT verified: first bad sequence {}: {}",
                failure.sequence, failure.reason
            );
            ExitCode::from(EXIT_NOT_VERIFIED)
        }
        Err(OfflineError::Unusable(why)) => {
            eprintln!("ironmesh: audit verify: {why}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

fn verify(
    entries: &std::path::Path,
    checkpoint: &std::path::Path,
    public_keys: &[String],
) -> Result<ironmesh_audit::domain::offline::Summary, OfflineError> {
    let unreadable = |path: &std::path::Path, err: std::io::Error| {
        OfflineError::Unusable(format!("cannot read {}: {err}", path.display()))
    };
    let keys = public_keys
        .iter()
        .map(|k| offline::public_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    let checkpoint = offline::checkpoint(
        &std::fs::read(checkpoint).map_err(|err| unreadable(checkpoint, err))?,
    )?;
    let keys = TrustedKeys::new(keys);
    if entries.as_os_str() == "-" {
        offline::verify(BufReader::new(std::io::stdin().lock()), checkpoint, keys)
    } else {
        let file = std::fs::File::open(entries).map_err(|err| unreadable(entries, err))?;
        offline::verify(BufReader::new(file), checkpoint, keys)
    }
}
