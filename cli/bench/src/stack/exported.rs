//! The stack with traces exported: the same server child started again with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` naming an OTLP receiver in the bench process (the test-support
//! one, on its own one-thread runtime) and `OTEL_TRACES_SAMPLER=parentbased_traceidratio` at a
//! ratio; h2load sends no `traceparent`, so every call is a root the ratio decides for. The
//! receiver counts the spans it gets, so a run that exported nothing would show.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Measurement, STOP_WAIT, Target, measure_one};
use crate::args::BenchArgs;
use crate::calls::calls_runtime;
use crate::child::ServerChild;
use crate::error::BenchError;

/// One exported run: the sampling ratio, the stack's measurement, the spans received.
#[derive(Debug)]
pub struct Exported {
    pub ratio: f64,
    pub measurement: Measurement,
    pub spans: u64,
}

/// The stack target measured with export on at `ratio`.
pub fn measure_exported(
    args: &BenchArgs,
    body: &Path,
    workdir: &Path,
    jwk_arg: &str,
    ratio: f64,
) -> Result<Exported, BenchError> {
    let receiver_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-otlp")
        .enable_all()
        .build()
        .map_err(BenchError::io("cannot start the OTLP receiver's runtime"))?;
    let spans = Arc::new(AtomicU64::new(0));
    let counted = spans.clone();
    let addr = receiver_runtime.block_on(async move {
        let (addr, mut received) = ironmesh_test_support::otlp::receiver().await;
        tokio::spawn(async move {
            while received.recv().await.is_some() {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        addr
    });
    let env = [
        (
            ironmesh_runtime::telemetry::OTLP_ENDPOINT_ENV,
            format!("http://{addr}"),
        ),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".to_owned()),
        ("OTEL_TRACES_SAMPLER_ARG", ratio.to_string()),
    ];
    let server = ServerChild::start_with_env(
        Some(args.server_cpu),
        "stack",
        &[OsStr::new("--serve-jwk"), OsStr::new(jwk_arg)],
        &env,
        workdir,
        STOP_WAIT,
    )?;
    let [_, stack, _] = server.ready_addrs::<3>()?;
    let runtime = calls_runtime()?;
    let measurement = measure_one(
        args,
        &runtime,
        &server,
        Target::Stack,
        stack,
        None,
        body,
        workdir,
    )?;
    drop(runtime);
    // Stopping flushes the exporter's last batch.
    let _ = server.stop();
    Ok(Exported {
        ratio,
        measurement,
        spans: spans.load(Ordering::Relaxed),
    })
}
