//! The onboarding queue's types and rules, without proto or SQL: requests and their states,
//! tiers, jobs (one leased attempt), dead letters, the input rules of provisioning.proto, the
//! retry backoff, and [`Failure`] — what an operation fails with (mapped to status in `grpc`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ironmesh_runtime::validation::{Violations, check_uuid};

/// Queue priority: higher tiers are always served first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Standard = 1,
    Expedited = 2,
    Critical = 3,
}

impl Tier {
    pub fn from_i32(n: i32) -> Option<Self> {
        match n {
            1 => Some(Self::Standard),
            2 => Some(Self::Expedited),
            3 => Some(Self::Critical),
            _ => None,
        }
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// SUCCEEDED, FAILED or CANCELLED.
    pub fn terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A customer's request to provision a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub customer_id: String,
    pub plan: String,
    pub tier: Tier,
    pub state: State,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: String,
    pub result: BTreeMap<String, String>,
    pub idempotency_key: String,
    /// Claimable from (ms since the epoch); 0 = at once.
    pub not_before_ms: i64,
    /// The live job while RUNNING.
    pub job_id: Option<String>,
    pub progress: String,
    /// Kinds of the credentials stored for it, sorted.
    pub credential_kinds: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One leased attempt at a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub request_id: String,
    pub attempt: i32,
    pub lease_token: String,
    pub worker_id: String,
    pub lease_ms: i64,
    pub lease_expires_ms: i64,
    /// None while the lease is live.
    pub outcome: Option<Outcome>,
    pub dead_letter_id: Option<String>,
}

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Failed, retryable, the request queued again.
    Requeued,
    /// Failed for good: the request FAILED with a dead letter.
    Failed,
    /// The lease lapsed before the worker finished.
    Lapsed,
    /// The request was cancelled while the job ran.
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Requeued => "REQUEUED",
            Self::Failed => "FAILED",
            Self::Lapsed => "LAPSED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Succeeded,
            Self::Requeued,
            Self::Failed,
            Self::Lapsed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A request that exhausted its attempts or failed for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: String,
    pub request_id: String,
    pub attempts: i32,
    pub last_error: String,
    pub dead_lettered_at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
    pub replayed_by: String,
}

/// What an operation fails with; `grpc::status` is the one mapping to gRPC status.
#[derive(Debug)]
pub enum Failure {
    Invalid(Violations),
    /// The thing (named) does not exist — or is not the caller's to see.
    NotFound(&'static str),
    /// Not allowed for this caller (why).
    Denied(&'static str),
    /// A state the operation cannot apply to: (type, subject, description).
    Precondition(&'static str, String, String),
    /// The caller's lease is no longer theirs: `LEASE_LOST` or `REQUEST_CANCELLED`.
    Lease(LeaseLoss),
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// Why a lease token no longer works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseLoss {
    Lost,
    Cancelled,
}

impl LeaseLoss {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Lost => "LEASE_LOST",
            Self::Cancelled => "REQUEST_CANCELLED",
        }
    }
}

impl From<Violations> for Failure {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}

/// The actor of what the service does by itself (the reaper).
pub const PROVISIONING_SERVICE: &str = "service:provisioning";

/// Longest idempotency key.
pub const MAX_KEY_CHARS: usize = 64;
/// Lease lengths a worker may ask for, and the default.
pub const MIN_LEASE: Duration = Duration::from_secs(5);
pub const MAX_LEASE: Duration = Duration::from_secs(600);
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Longest ClaimJob long-poll.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// A plan name: 1–64 characters of `[a-z0-9-_]`.
pub fn is_plan_name(plan: &str) -> bool {
    (1..=64).contains(&plan.len())
        && plan
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A checked `SubmitRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRequest {
    /// Empty = the caller.
    pub customer_id: String,
    pub plan: String,
    pub tier: Tier,
    pub idempotency_key: String,
}

impl NewRequest {
    pub fn checked(
        customer_id: String,
        plan: String,
        tier: i32,
        idempotency_key: String,
        plans: &[String],
    ) -> Result<Self, Violations> {
        let mut v = Violations::default();
        if !customer_id.is_empty() {
            check_uuid(&mut v, "customer_id", &customer_id);
        }
        if !is_plan_name(&plan) {
            v.add("plan", "1–64 characters of a-z, 0-9, - and _");
        } else if !plans.contains(&plan) {
            v.add(
                "plan",
                format!("unknown plan; one of: {}", plans.join(", ")),
            );
        }
        let tier = Tier::from_i32(tier);
        if tier.is_none() {
            v.add("priority_tier", "STANDARD, EXPEDITED or CRITICAL");
        }
        if idempotency_key.chars().count() > MAX_KEY_CHARS {
            v.add("idempotency_key", "at most 64 characters");
        } else if idempotency_key.chars().any(char::is_control) {
            v.add("idempotency_key", "must not contain control characters");
        }
        v.into_result()?;
        Ok(Self {
            customer_id,
            plan,
            tier: tier.expect("checked above"),
            idempotency_key,
        })
    }
}

/// A lease length asked for (`field`): unset = `default`; else 5 s – 10 min.
pub fn lease_length(
    v: &mut Violations,
    field: &str,
    asked: Option<Duration>,
    default: Duration,
) -> Duration {
    match asked {
        None => default,
        Some(d) if (MIN_LEASE..=MAX_LEASE).contains(&d) => d,
        Some(_) => {
            v.add(field, "between 5 seconds and 10 minutes");
            default
        }
    }
}

/// The delay before retry number `attempts` (1 = after the first failure): the platform's
/// exponential backoff with full jitter (`ironmesh_outbox::backoff`); `retry_after`, when
/// given, is the floor.
pub fn backoff(
    attempts: i32,
    base: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let jittered = ironmesh_outbox::backoff::Backoff::new(base, cap).delay(attempts - 1);
    retry_after.map_or(jittered, |floor| jittered.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_submissions_name_each_field() {
        let plans = ["starter".to_owned()];
        let err =
            NewRequest::checked("x".into(), "Big".into(), 0, "k".repeat(65), &plans).unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.clone()).collect();
        assert_eq!(
            fields,
            ["customer_id", "plan", "priority_tier", "idempotency_key"]
        );
        let unknown = NewRequest::checked(String::new(), "gold".into(), 1, String::new(), &plans)
            .unwrap_err();
        assert!(
            unknown
                .iter()
                .next()
                .unwrap()
                .description
                .contains("starter")
        );
        let ok = NewRequest::checked(String::new(), "starter".into(), 3, "k1".into(), &plans);
        assert_eq!(ok.unwrap().tier, Tier::Critical);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(1));
        for attempts in 1..40 {
            let d = backoff(attempts, base, cap, None);
            let ceiling = base.saturating_mul(1 << (attempts - 1).min(30)).min(cap);
            assert!(d <= ceiling, "{attempts}: {d:?}");
        }
        let floor = Duration::from_secs(7);
        assert!(backoff(1, base, cap, Some(floor)) >= floor);
    }

    #[test]
    fn lease_lengths_outside_the_bounds_are_refused() {
        let mut v = Violations::default();
        let d = DEFAULT_LEASE;
        assert_eq!(lease_length(&mut v, "f", None, d), d);
        assert_eq!(lease_length(&mut v, "f", Some(MAX_LEASE), d), MAX_LEASE);
        assert!(v.is_empty());
        lease_length(&mut v, "f", Some(Duration::from_secs(4)), d);
        assert_eq!(v.len(), 1);
    }
}
