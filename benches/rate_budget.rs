//! Rate-budget utilisation: how much of a provider's requests-per-minute budget the embed
//! stage uses, and how many 429s it provokes, against a local server that enforces the limit
//! strictly (sliding window, 429 + Retry-After), like `stages/tests/support/fake_provider.rs`
//! documents.
//!
//! ```text
//! cargo bench --bench rate_budget -- [--rpm 120] [--seconds 60]
//! ```
//! Prints one JSON line: requests accepted in the measured span, per minute, as a fraction of
//! the limit (goal >= 0.95), and the 429 count (goal 0).

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::sync::Arc;
use std::time::Duration;

use fake_provider::{Api, FakeOptions, FakeProvider};
use futures::stream;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{LocalStore, ObjectStore};
use kass_pipeline::{Chunk, Metadata, Topology, TopologyConfig};
use kass_stages::embed::{EmbedConfig, EndpointConfig, ProviderKind};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args
        .iter()
        .any(|a| a == "--bench" || a == "--rpm" || a == "--seconds")
    {
        eprintln!("rate_budget: run with `cargo bench --bench rate_budget`; nothing to do");
        return;
    }
    let rpm = arg(&args, "--rpm", 120) as usize;
    let seconds = arg(&args, "--seconds", 60);
    let mut options = FakeOptions::new(Api::Voyage);
    options.requests_per_window = Some(rpm);
    options.window = Duration::from_secs(60);
    options.latency = Duration::from_millis(30);
    let server = FakeProvider::start(options).await;
    std::env::set_var("KASS_BENCH_VOYAGE_KEY", "test-key-123");
    let config = EmbedConfig {
        provider: EndpointConfig {
            kind: ProviderKind::Voyage,
            base_url: Some(server.base_url()),
            api_key_env: Some("KASS_BENCH_VOYAGE_KEY".into()),
            model: Some("voyage-3.5".into()),
            dimensions: Some(8),
            requests_per_minute: Some(rpm as u32),
            tokens_per_minute: Some(0),
            ..Default::default()
        },
        batch_size: 10,
        max_in_flight: Some(4),
        ..Default::default()
    };
    let embedder = config.build_embedder().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let shutdown = Shutdown::default();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.trigger();
    });
    // More chunks than the budget allows in the span: the stage is always waiting on it.
    let chunks = (0..usize::MAX).map(|i| {
        Chunk::new(
            "bench",
            "doc",
            i,
            format!("chunk number {i} of the budget run"),
            Metadata::new(),
        )
    });
    let mut embedded = 0u64;
    Topology::new(TopologyConfig::default(), store, shutdown)
        .from_stream("chunks", stream::iter(chunks))
        .then_stream(config.stage(embedder))
        .run(|_| embedded += 1)
        .await
        .unwrap();
    let log = server.log();
    let first = log.first().expect("requests were sent").at;
    let span = Duration::from_secs(seconds);
    let in_span: Vec<_> = log
        .iter()
        .filter(|l| l.at.duration_since(first) < span)
        .collect();
    let accepted = in_span.iter().filter(|l| l.status == 200).count();
    let per_minute = accepted as f64 * 60.0 / seconds as f64;
    println!(
        "{}",
        serde_json::json!({
            "bench": "rate_budget",
            "limit_rpm": rpm,
            "seconds": seconds,
            "requests_accepted": accepted,
            "requests_per_minute": per_minute,
            "utilisation": per_minute / rpm as f64,
            "responses_429": server.count(429),
            "chunks_embedded": embedded,
            "max_requests_in_any_window": server.max_in_any_window().0,
        })
    );
}
