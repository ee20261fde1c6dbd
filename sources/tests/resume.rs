//! Every source built with a cursor (`SourceDeps { cursor }`) skips what the cursor's run read
//! completely and records what it reads; built without one, it reads everything.

mod common;

use std::sync::Arc;

use common::test_data::fixture;
use kass_pipeline::store::LocalStore;
use kass_sources::cursor::Cursor;
use kass_sources::files::FilesConfig;
use kass_sources::jsonl::JsonlConfig;
use kass_sources::slack_export::SlackExportConfig;
use kass_sources::{BuildSource, SourceDeps};

/// Runs the source built with the cursor saved in `store` (if any), then saves the advanced
/// cursor; returns how many records came out.
async fn fetch(store: &LocalStore, config: impl BuildSource + Clone) -> usize {
    let name = config.name().to_string();
    let cursor = Arc::new(Cursor::load(store, &name, "settings").await.unwrap());
    let deps = SourceDeps {
        cursor: Some(cursor.clone()),
        ..Default::default()
    };
    let run = common::run_source(config.build_with(deps).unwrap(), "resume").await;
    cursor.save(store, &name).await.unwrap();
    run.records.len()
}

#[tokio::test]
async fn files_and_jsonl_read_again_only_the_file_that_changed() {
    let state = tempfile::tempdir().unwrap();
    let store = LocalStore::new(state.path()).unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("a.md"), "# A\n").unwrap();
    std::fs::write(docs.path().join("b.md"), "# B\n").unwrap();
    let lines = tempfile::tempdir().unwrap();
    let line = |id: &str| format!("{{\"_id\": \"{id}\", \"text\": \"t\"}}\n");
    std::fs::write(lines.path().join("a.jsonl"), line("a")).unwrap();
    std::fs::write(lines.path().join("b.jsonl"), line("b")).unwrap();
    let files = FilesConfig::new(docs.path());
    let jsonl = JsonlConfig::new(lines.path());

    assert_eq!(fetch(&store, files.clone()).await, 2);
    assert_eq!(fetch(&store, jsonl.clone()).await, 2);
    assert_eq!(fetch(&store, files.clone()).await, 0, "nothing changed");
    assert_eq!(fetch(&store, jsonl.clone()).await, 0, "nothing changed");

    std::fs::write(docs.path().join("b.md"), "# B, longer\n").unwrap();
    std::fs::write(lines.path().join("b.jsonl"), line("b") + &line("c")).unwrap();
    assert_eq!(fetch(&store, files.clone()).await, 1);
    assert_eq!(
        fetch(&store, jsonl.clone()).await,
        2,
        "both lines of b.jsonl"
    );

    let without_cursor = common::run_source(files.build().unwrap(), "resume").await;
    assert_eq!(without_cursor.records.len(), 2);
}

#[tokio::test]
async fn slack_export_skips_channels_unchanged_since_the_cursor() {
    let state = tempfile::tempdir().unwrap();
    let store = LocalStore::new(state.path()).unwrap();
    let export = SlackExportConfig::new(fixture("slack-export"));
    assert!(fetch(&store, export.clone()).await > 0);
    assert_eq!(fetch(&store, export).await, 0, "nothing changed");
}
