//! Logging and tracing.
//!
//! Logs go to stderr (stdout is kept for command output such as `ironmesh up`'s table): JSON lines
//! when stderr is not a terminal (containers, CI), pretty text on a terminal. `RUST_LOG` refines
//! the configured level. Every line of a call carries its `request_id`, `trace_id`, `service`
//! and `rpc.method` — from the call context the server stack keeps for the task (`json`), not
//! from a span built per call — and the fields of the span it is in.
//!
//! Traces are exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and not at all
//! otherwise (no exporter, no OpenTelemetry layer, no span per call). When exported, calls are
//! sampled by `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default
//! `parentbased_always_on`); an unsampled call builds no span either.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use ironmesh_interceptors::server::Sampler;

use crate::config::{Config, LogFormat};

mod json;

/// The environment variable that turns OTLP export on.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Keeps the trace exporter alive; flushes and shuts it down when dropped.
#[must_use = "dropping the guard stops trace export"]
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now. (The exporter blocks while it waits for the collector, so
    /// it runs on the blocking pool, leaving the async workers free to drive the export.)
    pub async fn flush(&self) {
        if let Some(provider) = self.provider.clone() {
            match tokio::task::spawn_blocking(move || provider.force_flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "trace flush failed"),
                Err(err) => tracing::warn!(error = %err, "trace flush task failed"),
            }
        }
    }

    /// Flushes and stops the exporter.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Not shut down through `shutdown()`: stop without waiting on the collector.
        if let Some(provider) = self.provider.take() {
            std::thread::spawn(move || provider.shutdown());
        }
    }
}

/// Installs the global subscriber (once per process; later calls only return a no-op guard),
/// exporting traces when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. With export on, must be called
/// inside a tokio runtime.
pub fn init(config: &Config) -> TelemetryGuard {
    let endpoint = std::env::var(OTLP_ENDPOINT_ENV)
        .ok()
        .filter(|e| !e.is_empty());
    init_with(config, endpoint.as_deref())
}

/// [`init`] with the OTLP endpoint given explicitly (`None`: no export).
pub fn init_with(config: &Config, otlp_endpoint: Option<&str>) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Our crates at the configured level; noisy dependencies one level quieter.
        EnvFilter::new(format!(
            "{level},h2=warn,hyper=warn,hyper_util=warn,tower=warn,sqlx=warn,opentelemetry=warn",
            level = config.log_level.as_str()
        ))
    });
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonLines)
            .with_writer(std::io::stderr)
    });
    let pretty_layer = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(std::io::stderr)
    });

    let provider = otlp_endpoint.and_then(otlp_provider);
    let otel_layer = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("ironmesh")));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(json_layer)
        .with(pretty_layer)
        .with(otel_layer)
        .try_init()
        .is_ok();
    let provider = provider.filter(|_| installed);
    ironmesh_interceptors::server::set_sampling(provider.as_ref().map(|_| sampler()));
    TelemetryGuard { provider }
}

/// The sampler `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` name (OpenTelemetry's names;
/// default `parentbased_always_on`). The server stack decides with it whether a call gets a
/// span at all; the SDK then records every span it is given (`ParentBased(AlwaysOn)`), so the
/// two never disagree.
fn sampler() -> Sampler {
    let name = std::env::var("OTEL_TRACES_SAMPLER").ok();
    let arg = std::env::var("OTEL_TRACES_SAMPLER_ARG").ok();
    Sampler::from_env(name.as_deref(), arg.as_deref()).unwrap_or_else(|| {
        eprintln!(
            "ironmesh: OTEL_TRACES_SAMPLER={} is not one of always_on, always_off, traceidratio, \
             parentbased_always_on, parentbased_always_off, parentbased_traceidratio; using \
             parentbased_always_on",
            name.unwrap_or_default()
        );
        Sampler::DEFAULT
    })
}

fn otlp_provider(endpoint: &str) -> Option<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("ironmesh: OTLP export disabled ({OTLP_ENDPOINT_ENV}={endpoint}): {err}");
            return None;
        }
    };
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
                opentelemetry_sdk::trace::Sampler::AlwaysOn,
            )))
            .with_resource(Resource::builder().with_service_name("ironmesh").build())
            .build(),
    )
}
