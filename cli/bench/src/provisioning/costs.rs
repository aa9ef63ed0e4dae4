//! What a window of a run cost the service: the CPU time of this process's threads split into
//! the services' (the mesh runtime's threads and sqlx's SQLite workers: every thread but the
//! main one and the clients' runtime's [`CLIENT_THREADS`]) and the clients' (the workers',
//! watchers' and submitters' tonic tasks), from /proc; the position queries provisioning
//! counted (its admin `/metrics`); and, on PostgreSQL, the transactions committed in its
//! database (`pg_stat_database.xact_commit`). Work the PostgreSQL server does in its own
//! processes is not in the CPU figure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::cpu::{self, Threads};
use crate::error::BenchError;
use crate::scrape::{metrics_text, samples_by};
use crate::stores::xact_commits;

/// The name of the clients' runtime's threads (a thread's name is at most 15 bytes).
pub const CLIENT_THREADS: &str = "bench-clients";
/// Provisioning's counter of position queries, by `kind` (`board`, `single`).
const POSITION_QUERIES: &str = "ironmesh_provisioning_position_queries_total";
/// Provisioning's gauge of open WatchQueuePosition streams.
const WATCHERS: &str = "ironmesh_provisioning_position_watchers";

/// The counters at the start of a window.
pub struct Mark {
    at: Instant,
    threads: Option<Threads>,
    queries: BTreeMap<String, u64>,
    commits: Option<i64>,
}

/// What the window cost.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    pub secs: f64,
    /// CPU seconds of the services' threads, and of the clients'; None if /proc could not tell.
    pub service_cpu: Option<f64>,
    pub clients_cpu: Option<f64>,
    pub board_queries: u64,
    pub single_queries: u64,
    /// PostgreSQL only.
    pub commits: Option<i64>,
}

impl Costs {
    /// `n` per second of the window.
    pub fn rate(&self, n: f64) -> f64 {
        n / self.secs
    }

    /// CPU seconds as % of one core over the window.
    pub fn percent(&self, cpu: Option<f64>) -> Option<f64> {
        cpu.map(|cpu| 100.0 * cpu / self.secs)
    }
}

/// Where the counters are read.
#[derive(Clone, Copy)]
pub struct Counters<'a> {
    pub admin: SocketAddr,
    /// The service's PostgreSQL database; None on SQLite.
    pub database_url: Option<&'a str>,
}

impl Counters<'_> {
    pub async fn mark(&self) -> Result<Mark, BenchError> {
        let threads = cpu::threads("self");
        let queries = self.queries().await?;
        let commits = self.commits().await?;
        Ok(Mark {
            at: Instant::now(),
            threads,
            queries,
            commits,
        })
    }

    /// What the window from `mark` to `end` (taken at the end) cost.
    pub async fn since(&self, mark: &Mark, end: Instant) -> Result<Costs, BenchError> {
        let queries = self.queries().await?;
        let commits = self.commits().await?;
        let threads = cpu::threads("self");
        let main = std::process::id();
        let split = |client: bool| {
            let (before, after) = (mark.threads.as_ref()?, threads.as_ref()?);
            let cpu = after.since(before, |tid, name| {
                (tid == main || name.starts_with(CLIENT_THREADS)) == client
            });
            Some(cpu.as_secs_f64())
        };
        let delta = |kind: &str| {
            let now = queries.get(kind).copied().unwrap_or(0);
            now.saturating_sub(mark.queries.get(kind).copied().unwrap_or(0))
        };
        Ok(Costs {
            secs: (end - mark.at).as_secs_f64(),
            service_cpu: split(false),
            clients_cpu: split(true),
            board_queries: delta("board"),
            single_queries: delta("single"),
            commits: commits.zip(mark.commits).map(|(now, then)| now - then),
        })
    }

    /// The WatchQueuePosition streams provisioning has open.
    pub async fn watchers(&self) -> Result<u64, BenchError> {
        let text = metrics_text(self.admin).await.map_err(BenchError::Failed)?;
        Ok(samples_by(&text, WATCHERS, "service")
            .get("provisioning")
            .copied()
            .unwrap_or(0))
    }

    async fn queries(&self) -> Result<BTreeMap<String, u64>, BenchError> {
        let text = metrics_text(self.admin).await.map_err(BenchError::Failed)?;
        Ok(samples_by(&text, POSITION_QUERIES, "kind"))
    }

    async fn commits(&self) -> Result<Option<i64>, BenchError> {
        match self.database_url {
            Some(url) => Ok(Some(xact_commits(url).await?)),
            None => Ok(None),
        }
    }
}
