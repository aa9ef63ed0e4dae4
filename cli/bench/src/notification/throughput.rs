//! The throughput runs of one backend: N Sends delivered as they go (end to end), N more
//! queued behind a held receiver and then released (the engine alone), and wrk replaying the
//! first delivery's request to the same receiver.

use std::time::Duration;

use super::load::{self, Calls};
use super::receiver::now_us;
use super::{HOLD_TIMEOUT_MS, OnBackend, SENDERS, Throughput, Timed, checks, wrk};
use crate::error::BenchError;

impl OnBackend<'_> {
    /// The throughput runs: end to end, the engine alone, wrk.
    pub(super) async fn throughput(&self) -> Result<Throughput, BenchError> {
        self.progress("starting auth and notification (throughput)…");
        let running = self
            .start("throughput", Self::settings(HOLD_TIMEOUT_MS))
            .await?;
        let result = self.throughput_on(&running.calls).await;
        running.stop().await?;
        result
    }

    async fn throughput_on(&self, calls: &Calls) -> Result<Throughput, BenchError> {
        let n = self.args.notifications;
        let customer = calls.customer("bench-throughput").await?;
        let url = format!("http://{}/hook", self.hook.addr);
        let (endpoint, secret) = calls.endpoint(&customer, &url).await?;
        self.hook.take();
        self.hook.recapture();
        let first = calls.send(0, &customer.id).await?;
        let first_arrival = self.arrive("the first delivery", 1).await?;
        let captured = self
            .hook
            .captured()
            .ok_or_else(|| BenchError::Failed("the first delivery was not captured".into()))?;
        checks::signature(&captured, &secret)?;

        self.progress(&format!(
            "{n} Sends from {SENDERS} callers, delivered as they go…"
        ));
        let started = now_us();
        let sent = calls.batch(&customer.id, n, SENDERS).await?;
        let sends = Timed {
            deliveries: n,
            secs: (now_us() - started) as f64 / 1e6,
        };
        let arrivals = self.arrive("end to end", n).await?;
        let last = arrivals.iter().map(|a| a.at_us).max().unwrap_or(started);
        let end_to_end = Timed {
            deliveries: n,
            secs: (last - started) as f64 / 1e6,
        };

        self.progress(&format!(
            "{n} Sends queued behind a held receiver, then released…"
        ));
        self.hook.hold(true);
        let queued = calls.batch(&customer.id, n, SENDERS).await;
        let held = self.concurrency as u64;
        let waited = self.hook.wait_for_held(held, Duration::from_secs(10)).await;
        let released = now_us();
        self.hook.hold(false);
        let queued = queued?;
        if !waited {
            return Err(BenchError::Failed(format!(
                "the engine had {} attempts in flight to the held receiver, not {held}",
                self.hook.held()
            )));
        }
        let backlog = self.arrive("engine alone", n).await?;
        let last = backlog.iter().map(|a| a.at_us).max().unwrap_or(released);
        let engine = Timed {
            deliveries: n,
            secs: (last - released) as f64 / 1e6,
        };

        let all: Vec<&load::Sent> = sent.iter().chain(&queued).chain([&first]).collect();
        let deliveries = load::settled(calls, &endpoint, &all).await?;
        checks::exactly_once("the first delivery", &[first], &deliveries, &first_arrival)?;
        checks::exactly_once("end to end", &sent, &deliveries, &arrivals)?;
        checks::exactly_once("engine alone", &queued, &deliveries, &backlog)?;

        let wrk = if self.wrk {
            self.progress(&format!(
                "wrk -t1 -c{} -d{}s, the captured delivery…",
                self.concurrency, self.args.duration
            ));
            let (dir, addr, secs) = (self.dir.to_path_buf(), self.hook.addr, self.args.duration);
            let connections = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
            let request = captured.clone();
            let run = tokio::task::spawn_blocking(move || {
                wrk::run(&dir, &request, addr, connections, secs)
            })
            .await
            .map_err(|err| BenchError::Failed(format!("wrk's thread panicked: {err}")))??;
            let received = self.hook.count();
            self.hook.take();
            if received < run.requests {
                return Err(BenchError::Failed(format!(
                    "wrk counted {} answers, the receiver only {received} requests",
                    run.requests
                )));
            }
            Some(run)
        } else {
            None
        };
        Ok(Throughput {
            end_to_end,
            sends,
            engine,
            wrk,
        })
    }
}
