//! The embed stage's metrics agree with what the provider saw: requests by status, retries,
//! billed tokens, embeddings, batch sizes and rate-limit waits, read from the Prometheus
//! exposition after a run against a local OpenAI-like server that answers 429s.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::sync::Arc;
use std::time::Duration;

use fake_provider::{Api, FakeOptions, FakeProvider};
use futures::stream;
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{LocalStore, ObjectStore};
use kass_pipeline::{Chunk, Metadata, Topology, TopologyConfig};
use kass_stages::embed::{EmbedConfig, EndpointConfig, ProviderKind};
use support::metric_value;

fn value_of(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_value(exposition, name, labels)
        .unwrap_or_else(|| panic!("no series {name}{labels:?} in:\n{exposition}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_metrics_match_what_the_provider_saw() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    kass_pipeline::telemetry::describe();
    let mut options = FakeOptions::new(Api::OpenAi);
    options.requests_per_window = Some(3);
    options.window = Duration::from_millis(500);
    let server = FakeProvider::start(options).await;
    std::env::set_var("KASS_METRICS_TEST_KEY", "test-key-123");
    let config = EmbedConfig {
        provider: EndpointConfig {
            kind: ProviderKind::OpenAi,
            name: Some("metered".into()),
            base_url: Some(server.base_url()),
            api_key_env: Some("KASS_METRICS_TEST_KEY".into()),
            model: Some("test-model".into()),
            dimensions: Some(8),
            requests_per_minute: Some(0),
            tokens_per_minute: Some(0),
            ..Default::default()
        },
        batch_size: 3,
        max_in_flight: Some(4),
        retry: RetryPolicy {
            max_attempts: 20,
            initial_backoff_ms: 10,
            max_backoff_ms: 2_000,
        },
        ..Default::default()
    };
    let embedder = config.build_embedder().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let chunks: Vec<Chunk> = (0..24)
        .map(|i| {
            Chunk::new(
                "slack",
                "doc",
                i,
                format!("message {i} about the deploy"),
                Metadata::new(),
            )
        })
        .collect();
    let report = Topology::new(TopologyConfig::default(), store, Shutdown::default())
        .from_stream("chunks", stream::iter(chunks))
        .then_stream(config.stage(embedder))
        .run(|_| {})
        .await
        .unwrap();
    assert_eq!(report.outputs, 24);

    let text = handle.render();
    let ok = server.count(200) as f64;
    let limited = server.count(429) as f64;
    assert!(limited > 0.0, "the server did limit");
    let p = ("provider", "metered");
    assert_eq!(
        value_of(&text, "kass_embed_requests_total", &[p, ("status", "ok")]),
        ok
    );
    assert_eq!(
        value_of(&text, "kass_embed_requests_total", &[p, ("status", "429")]),
        limited
    );
    assert_eq!(
        value_of(
            &text,
            "kass_embed_retries_total",
            &[p, ("reason", "rate_limited")]
        ),
        limited
    );
    assert_eq!(value_of(&text, "kass_embed_embeddings_total", &[p]), 24.0);
    let billed: usize = server
        .log()
        .iter()
        .filter(|l| l.status == 200)
        .map(|l| l.tokens)
        .sum();
    assert_eq!(
        value_of(&text, "kass_embed_tokens_total", &[p, ("kind", "billed")]),
        billed as f64
    );
    assert!(
        value_of(
            &text,
            "kass_embed_tokens_total",
            &[p, ("kind", "estimated")]
        ) >= billed as f64,
        "the estimate is conservative"
    );
    assert_eq!(value_of(&text, "kass_embed_batch_inputs_count", &[p]), ok);
    assert_eq!(value_of(&text, "kass_embed_batch_inputs_sum", &[p]), 24.0);
    assert!(value_of(&text, "kass_embed_rate_limit_wait_seconds_sum", &[p]) > 0.0);
    assert_eq!(value_of(&text, "kass_embed_requests_in_flight", &[p]), 0.0);
    // No budget configured (0): the gauges say so, for "used / allowed".
    assert_eq!(
        value_of(&text, "kass_embed_budget_requests_per_minute", &[p]),
        0.0
    );
    assert_eq!(
        value_of(&text, "kass_embed_budget_tokens_per_minute", &[p]),
        0.0
    );
    // The shared HTTP exchange counts the same tries, under the endpoint's name.
    let c = ("client", "metered");
    for (status, tries) in [("200", ok), ("429", limited)] {
        let series = [c, ("status", status)];
        assert_eq!(value_of(&text, "kass_http_requests_total", &series), tries);
    }
    assert_eq!(
        value_of(&text, "kass_http_request_seconds_count", &[c]),
        ok + limited
    );
}
