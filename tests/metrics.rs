//! Every stage reports through the `metrics` facade under the documented names; this test
//! installs the Prometheus recorder in-process, runs the fetch half, and reads the exposition.

mod support;

use kass::assembly::fetch_half;
use kass::config::KassConfig;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::build_store;
use support::{example_config, files_under, metric_value, repo_root};

fn value_of(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_value(exposition, name, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_export_items_errors_timings_and_channel_depths() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    kass_pipeline::telemetry::describe();
    let dir = tempfile::tempdir().unwrap();
    let examples = repo_root().join("examples/data");
    let config = KassConfig::parse(&example_config(
        &dir.path().join("store"),
        &examples.join("slack-export"),
        &examples.join("docs"),
    ))
    .unwrap();
    let store = build_store(&config.store).await.unwrap();
    let report = fetch_half(&config, store, Shutdown::default(), &Default::default())
        .unwrap()
        .run(|_| {})
        .await
        .unwrap();
    let batch_files = files_under(&dir.path().join("store"))
        .iter()
        .filter(|f| f.starts_with("slack/"))
        .count();

    let text = handle.render();
    let received = |stage, source| {
        value_of(
            &text,
            "kass_stage_received_items_total",
            &[("stage", stage), ("source", source)],
        )
    };
    let sent = |stage, source| {
        value_of(
            &text,
            "kass_stage_sent_items_total",
            &[("stage", stage), ("source", source)],
        )
    };
    assert!(received("transform", "slack").unwrap() >= 3.0, "{text}");
    assert_eq!(
        received("chunk_router", "slack"),
        sent("transform", "slack"),
        "{text}"
    );
    assert_eq!(
        sent("chunk_router", "slack"),
        received("batch_writer", "slack"),
        "{text}"
    );
    assert!(received("chunk_router", "docs").unwrap() >= 2.0, "{text}");
    assert_eq!(
        value_of(&text, "kass_batches_written_total", &[("source", "slack")]),
        Some(batch_files as f64),
        "{text}"
    );
    assert!(
        value_of(&text, "kass_records_dropped_total", &[("source", "slack")]).unwrap() >= 1.0,
        "joins are dropped and counted: {text}"
    );
    assert!(text.contains("kass_stage_processing_seconds"), "{text}");
    assert!(
        text.contains("kass_channel_depth_items{channel=\"chunk_router\"}"),
        "{text}"
    );
    assert!(text.contains("# HELP kass_stage_errors_total") || report.dead_letters == 0);
    assert_eq!(
        report.outputs as usize,
        files_under(&dir.path().join("store")).len()
    );
}
