//! Logging and the Prometheus endpoint for the binary.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::ValueEnum;
use kass_pipeline::redact::{redact, Redacting};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// The format logging was set up with (text until it is): what else writes to stderr for a
/// person (the progress display, the run's summary) follows it.
pub fn log_format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Logs go to stderr; `RUST_LOG` filters them (default `info`). Every formatted line, plain
/// or JSON, passes the redactor on its way out (secrets and URL user info become `***`).
pub fn init_logging(format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Redacting(std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// An error as it leaves the process (the binary's `Error: ...`, a Lambda's error response):
/// the whole chain of causes, redacted.
pub fn error_text(error: &anyhow::Error) -> String {
    redact(&format!("{error:#}")).into_owned()
}

/// The Prometheus recorder kass installs wherever it runs: histograms with buckets (not
/// summaries), so percentiles can be computed across processes and Lambda instances.
pub fn prometheus_builder() -> Result<metrics_exporter_prometheus::PrometheusBuilder> {
    use kass_pipeline::telemetry::{LATENCY_BUCKETS, LATENCY_TO_SEARCHABLE};
    use metrics_exporter_prometheus::Matcher;
    let seconds = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(LATENCY_TO_SEARCHABLE.into()), LATENCY_BUCKETS)
        })
        .context("invalid histogram buckets")
}

/// Serves every `kass_*` metric at `http://ADDR/metrics` for as long as the process runs.
pub fn serve_metrics(addr: SocketAddr) -> Result<()> {
    prometheus_builder()?
        .with_http_listener(addr)
        .install()
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    kass_pipeline::telemetry::describe();
    tracing::info!(%addr, "metrics at http://{addr}/metrics");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_leaving_the_process_is_redacted_through_its_causes() {
        kass_pipeline::redact::register("sk-telemetry-unit-0001");
        let error = anyhow::anyhow!("401: bad key sk-telemetry-unit-0001")
            .context("cannot reach Chroma at http://admin:hunter22@127.0.0.1:9/api/v2");
        assert_eq!(
            error_text(&error),
            "cannot reach Chroma at http://***@127.0.0.1:9/api/v2: 401: bad key ***"
        );
    }
}
