//! The isolation runs of one backend: a healthy endpoint's delivery latency at a fixed rate,
//! beside Sends at the same rate to another user — without an endpoint, then with one that
//! hangs.

use ironmesh_notification::settings::NotificationConfig;

use super::load::{self, Calls};
use super::receiver::Hanging;
use super::{
    HANG_TIMEOUT_MS, Isolation, OnBackend, RETRY_MS, checks, latency, notification_state_delivered,
};
use crate::error::BenchError;

impl OnBackend<'_> {
    /// The isolation runs: a healthy endpoint's latency at a fixed rate, with another user's
    /// Sends at the same rate, that user first without an endpoint, then with a hanging one.
    pub(super) async fn isolation(&self, hanging: &Hanging) -> Result<Isolation, BenchError> {
        self.progress("starting auth and notification (isolation)…");
        let settings = NotificationConfig {
            retry_schedule_ms: std::iter::once(0)
                .chain(std::iter::repeat_n(RETRY_MS, 19))
                .collect(),
            breaker_cool_down_ms: RETRY_MS,
            ..Self::settings(HANG_TIMEOUT_MS)
        };
        let running = self.start("isolation", settings).await?;
        let result = self.isolation_on(&running.calls, hanging).await;
        // Refuse further attempts at once, so the engine's drain has nothing to wait for.
        hanging.close();
        running.stop().await?;
        result
    }

    async fn isolation_on(
        &self,
        calls: &Calls,
        hanging: &Hanging,
    ) -> Result<Isolation, BenchError> {
        let (rate, secs) = (self.args.notification_rate, self.args.duration);
        let healthy = calls.customer("bench-healthy").await?;
        let (endpoint, _) = calls
            .endpoint(&healthy, &format!("http://{}/hook", self.hook.addr))
            .await?;
        let neighbour = calls.customer("bench-neighbour").await?;
        let recipients = [healthy.id.as_str(), neighbour.id.as_str()];
        self.hook.take();
        if self.args.warmup > 0 {
            self.progress("warming up…");
            let sent = calls.paced(&recipients, rate, self.args.warmup).await?;
            let arrivals = self.arrive("warm-up", sent[0].len() as u64).await?;
            let deliveries =
                load::settled(calls, &endpoint, &sent[0].iter().collect::<Vec<_>>()).await?;
            checks::exactly_once("warm-up", &sent[0], &deliveries, &arrivals)?;
        }
        let run = async |what: &str| {
            self.progress(&format!(
                "{rate}/s to the healthy endpoint and {rate}/s to the neighbour ({what}) for \
                 {secs} s…"
            ));
            let sent = calls.paced(&recipients, rate, secs).await?;
            let arrivals = self.arrive(what, sent[0].len() as u64).await?;
            let deliveries =
                load::settled(calls, &endpoint, &sent[0].iter().collect::<Vec<_>>()).await?;
            let trips = checks::exactly_once(what, &sent[0], &deliveries, &arrivals)?;
            Ok::<_, BenchError>(latency(&trips))
        };
        let baseline = run("no endpoint").await?;
        let url = format!("http://{}/hang", hanging.addr);
        let (hang_endpoint, _) = calls.endpoint(&neighbour, &url).await?;
        let with_hanging = run("hanging endpoint").await?;
        let hung = calls.deliveries(&hang_endpoint).await?;
        let delivered = notification_state_delivered();
        Ok(Isolation {
            baseline,
            hanging: with_hanging,
            hang_connections: hanging.accepted(),
            hang_deliveries: hung.len(),
            hang_attempts: hung.iter().map(|d| i64::from(d.attempts)).sum(),
            hang_delivered: hung.iter().filter(|d| d.state == delivered).count(),
        })
    }
}
