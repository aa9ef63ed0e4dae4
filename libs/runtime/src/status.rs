//! Constructors for the statuses every service returns, so the wording and the rules (no internal
//! detail to callers) live in one place.

use tonic::Status;

/// An RPC whose feature is not built yet. The message names the feature so a caller knows this
/// is a gap, not a failure.
pub fn not_yet(feature: &str) -> Status {
    Status::unimplemented(format!("not implemented yet: {feature}"))
}
