//! The `slack_export` source and the transform over a real Slack export (R Contributors, public
//! channels) in `../shared/data`, checked against the raw JSON read independently. Without the
//! shared data these tests print `SKIPPED` and pass, unless `KASS_REQUIRE_SHARED_DATA=1`; the
//! same checks run on the project's own fixture in `slack_export.rs` either way.

mod common;

use std::path::PathBuf;

use common::export::{self, assert_export_reads_cleanly};
use common::test_data::shared_data;
use kass_pipeline::{DocumentKind, MetaValue};
use kass_sources::slack_export::SlackExportConfig;

fn sample() -> Option<PathBuf> {
    shared_data("slack-export-sample")
}

#[tokio::test]
async fn real_export_puts_each_message_in_one_document_and_no_chunk_twice() {
    let Some(sample) = sample() else { return };
    let (out, chunks) = assert_export_reads_cleanly(&sample).await;
    for (id, name) in [
        ("C01EFL0CEBB", "general"),
        ("C01E37KBY1H", "random"),
        ("C01ESS92UMN", "core-dev-help"),
        ("C01TB88G56J", "bug-reporting"),
    ] {
        assert!(
            out.documents.iter().any(|d| d.id.starts_with(id)
                && d.metadata.get("channel") == Some(&MetaValue::from(name))),
            "#{name} produced no documents"
        );
    }
    assert!(
        chunks.len() >= out.documents.len(),
        "{} chunks for {} documents",
        chunks.len(),
        out.documents.len()
    );
}

#[tokio::test]
async fn a_day_holding_only_a_thread_parent_has_no_document_of_its_own() {
    let Some(sample) = sample() else { return };
    // 2023-05-01 in #general holds one message, a thread parent with replies.
    let out = export::read(SlackExportConfig::new(sample)).await;
    assert!(!out
        .documents
        .iter()
        .any(|d| d.id == "C01EFL0CEBB/2023-05-01"));
    let thread = out
        .documents
        .iter()
        .find(|d| d.id == "C01EFL0CEBB/thread/1682950106.135319")
        .expect("the thread");
    assert_eq!(thread.messages[0].id, "1682950106.135319");
}

#[tokio::test]
async fn deleted_parent_is_dropped_but_its_thread_is_kept() {
    let Some(sample) = sample() else { return };
    let out = export::read(SlackExportConfig::new(sample)).await;
    let thread = out
        .documents
        .iter()
        .find(|d| d.id == "C01EFL0CEBB/thread/1710500968.450909")
        .expect("the thread under the tombstone");
    assert_eq!(thread.messages.len(), 2, "{:?}", thread.messages);
    assert!(thread
        .messages
        .iter()
        .all(|m| !m.text.contains("This message was deleted")));
    assert_eq!(
        thread.metadata.get("thread_ts"),
        Some(&MetaValue::from("1710500968.450909"))
    );
    assert!(thread
        .title
        .as_deref()
        .unwrap()
        .starts_with("#general thread: "));
}

#[tokio::test]
async fn thread_with_replies_a_week_after_latest_reply_stays_whole() {
    let Some(sample) = sample() else { return };
    // The parent says 12 replies, latest 2025-02-16; four more (bot posts among them) follow on
    // 2025-02-22.
    let out = export::read(SlackExportConfig::new(sample)).await;
    let thread = out
        .documents
        .iter()
        .find(|d| d.id == "C01EFL0CEBB/thread/1739716279.088449")
        .unwrap();
    assert_eq!(thread.messages.len(), 17);
    assert!(
        thread.messages.windows(2).all(|w| w[0].ts <= w[1].ts),
        "in time order"
    );
    assert_eq!(thread.created_at, Some(thread.messages[0].ts));
    assert_eq!(thread.updated_at, Some(thread.messages[16].ts));
}

#[tokio::test]
async fn day_documents_are_titled_by_channel_and_file_date() {
    let Some(sample) = sample() else { return };
    let out = export::read(SlackExportConfig::new(sample)).await;
    let day = out
        .documents
        .iter()
        .find(|d| d.id == "C01ESS92UMN/2021-02-06")
        .unwrap();
    assert_eq!(day.title.as_deref(), Some("#core-dev-help 2021-02-06"));
    assert_eq!(day.source, "slack");
    assert_eq!(
        day.metadata.get("channel_id"),
        Some(&MetaValue::from("C01ESS92UMN"))
    );
}

#[tokio::test]
async fn channel_allow_list_and_date_range_limit_what_is_read() {
    let Some(sample) = sample() else { return };
    let mut config = SlackExportConfig::new(sample);
    config.channels = vec!["core-dev-help".into()];
    config.since = chrono::NaiveDate::from_ymd_opt(2022, 1, 1);
    config.until = chrono::NaiveDate::from_ymd_opt(2022, 12, 31);
    let out = export::read(config).await;
    assert!(!out.documents.is_empty());
    for doc in &out.documents {
        assert!(doc.id.starts_with("C01ESS92UMN/"), "{}", doc.id);
        if doc.kind == DocumentKind::ChatConversation {
            assert!(doc.id.contains("/2022-"), "{}", doc.id);
        }
    }
}
