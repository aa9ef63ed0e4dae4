//! What each order of the measured run cost the servers: inventory RPCs from its handled
//! counters in `/metrics`, PostgreSQL commits from `pg_stat_database`, read before and after.

use super::load::Shop;
use crate::error::BenchError;
use crate::scrape::{Scrape, scrape};
use crate::stores::xact_commits as commits;

/// What each order of the measured run cost.
#[derive(Debug)]
pub struct Costs {
    /// Inventory calls the orders service made (BatchGetProducts + Reserve), per order.
    pub inventory_rpcs: f64,
    /// Transactions committed on the server (every store: orders, inventory, audit, the relays),
    /// per order; PostgreSQL only.
    pub commits: Option<f64>,
}

/// Counters read before the measured run.
pub struct Mark {
    inventory: Scrape,
    commits: Option<i64>,
}

impl Shop {
    /// What the costs are measured from.
    pub async fn costs_mark(&self, database_url: Option<&str>) -> Result<Mark, BenchError> {
        Ok(Mark {
            inventory: scrape(self.inventory_admin)
                .await
                .map_err(BenchError::Failed)?,
            commits: match database_url {
                Some(url) => Some(commits(url).await?),
                None => None,
            },
        })
    }

    /// The costs since `mark`, per order of a run that placed `orders`. Also checks that
    /// inventory answered every Reserve OK and holds exactly the units those orders reserved.
    pub async fn costs_since(
        &self,
        mark: &Mark,
        database_url: Option<&str>,
        placed: u64,
    ) -> Result<Costs, BenchError> {
        let after = scrape(self.inventory_admin)
            .await
            .map_err(BenchError::Failed)?;
        let calls = |method: &str| after.handled_since(&mark.inventory, method);
        let reserves = calls("Reserve");
        let prices = calls("BatchGetProducts");
        let ok = |codes: &crate::scrape::Codes| codes.get("OK").copied().unwrap_or(0);
        if ok(&reserves) != placed || reserves.len() > 1 {
            return Err(BenchError::Failed(format!(
                "{placed} orders placed but inventory counted Reserve {}",
                crate::scrape::describe(&reserves)
            )));
        }
        let commits = match (database_url, mark.commits) {
            (Some(url), Some(before)) => Some((commits(url).await? - before) as f64),
            _ => None,
        };
        let per = |n: f64| n / placed.max(1) as f64;
        Ok(Costs {
            inventory_rpcs: per((ok(&reserves) + ok(&prices)) as f64),
            commits: commits.map(per),
        })
    }
}
