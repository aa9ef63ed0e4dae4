//! The gateway suite's memory soak (`--soak-secs N`, off by default): after the measured runs,
//! N more seconds of the REST run's load against the same mesh, its resident memory read ten
//! times on the way. Memory that grows with the number of requests served (a leak, an unbounded
//! cache or map) shows as a steady climb and a growth per million requests well above zero;
//! buffers and allocator pools filling for the load show as a step at the first reading and a
//! flat line after (the growth figure starts from that reading).

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

    /// KiB of RSS per million requests from the first reading under load (the second: the
    /// first is taken before the load starts, and the step between them is buffers and
    /// allocator pools filling for the load's connections) to the last; the requests in that
    /// span are counted in proportion to its time (the load is steady).
    fn growth_per_million(&self) -> Option<f64> {
        let [(start, _), (from_at, from), ..] = self.samples.as_slice() else {
            return None;
        };
        let &(end, last) = self.samples.last()?;
        let requests = self.requests as f64 * (end - from_at) / (end - start);
        (requests > 0.0).then(|| (last as f64 - *from as f64) / (requests / 1e6))
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
            "memory soak: {} s of the REST load, {} requests; RSS MiB {}; peak {:.1} MiB; change per million requests after the first reading under load {growth}\n",
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
