//! The gateway suite's memory soak (`--soak-secs N`, off by default): after the measured runs,
//! N more seconds of the REST run's load against the same mesh, its resident memory read ten
//! times on the way. Memory that grows with the number of requests served (a leak, an unbounded
//! cache or map) shows as a steady climb and a growth per million requests well above zero;
//! allocator pools settling show as a step early on and a flat line after.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::child::ServerChild;
use crate::error::BenchError;
use crate::figures::failed_run;
use crate::h2load::{Load, Summary};

/// Samples per soak.
const SAMPLES: u32 = 10;

#[derive(Debug)]
pub struct Soak {
    secs: u64,
    /// Seconds into the soak and the mesh's RSS then (KiB); the first at its start.
    samples: Vec<(f64, u64)>,
    requests: u64,
}

impl Soak {
    /// Runs `load` for `secs` against `server`, reading its RSS every tenth of the time.
    pub fn run(
        server: &ServerChild,
        load: &Load<'_>,
        secs: u64,
        workdir: &Path,
    ) -> Result<Self, BenchError> {
        let mut load = load.clone();
        load.secs = secs;
        let started = Instant::now();
        let mut samples = Vec::new();
        let sample = |samples: &mut Vec<(f64, u64)>| {
            if let Some(kib) = server.rss_kib() {
                samples.push((started.elapsed().as_secs_f64(), kib));
            }
        };
        sample(&mut samples);
        let mut running = load.spawn(None, &workdir.join("gateway-soak.out"))?;
        let every = Duration::from_secs(secs) / SAMPLES;
        for _ in 1..SAMPLES {
            // A reading interval, not a wait for something to happen.
            std::thread::sleep(every);
            if !running.running() {
                break;
            }
            sample(&mut samples);
        }
        let output = running.finish()?;
        sample(&mut samples);
        let summary = Summary::parse(&output).map_err(failed_run("soak", &output))?;
        Ok(Self {
            secs,
            samples,
            requests: summary.done,
        })
    }

    fn first_last(&self) -> Option<(u64, u64)> {
        Some((self.samples.first()?.1, self.samples.last()?.1))
    }

    /// KiB of RSS per million requests served during the soak (last sample − first).
    fn growth_per_million(&self) -> Option<f64> {
        let (first, last) = self.first_last()?;
        (self.requests > 0).then(|| (last as f64 - first as f64) / (self.requests as f64 / 1e6))
    }

    pub fn table(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let curve: Vec<String> = self
            .samples
            .iter()
            .map(|(at, kib)| format!("{at:.0}s {:.1}", mib(*kib)))
            .collect();
        let peak = self.samples.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
        let growth = self
            .growth_per_million()
            .map_or_else(|| "n/a".to_owned(), |kib| format!("{kib:+.0} KiB"));
        format!(
            "memory soak: {} s of the REST load, {} requests; RSS MiB {}; peak {:.1} MiB; change per million requests {growth}\n",
            self.secs,
            self.requests,
            curve.join(", "),
            mib(peak),
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "secs": self.secs,
            "requests": self.requests,
            "rss_kib": self.samples.iter().map(|(at, kib)| json!({ "at_s": at, "kib": kib })).collect::<Vec<_>>(),
            "growth_kib_per_million_requests": self.growth_per_million(),
        })
    }
}
