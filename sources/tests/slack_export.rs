//! The `slack_export` source and the transform over the project's own fixture export
//! (`tests/fixtures/slack-export`), which carries the real exports' quirks: bot posts, joins,
//! threads across days with replies after `latest_reply`, a broadcast reply, a deleted parent,
//! files, edits, `user_profile` names, mrkdwn links and mentions, channels listed without
//! folders. The same checks run on the real export in `slack_export_sample.rs`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::export::{self, assert_export_reads_cleanly, str_field, Output};
use common::test_data::fixture;
use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::{Document, DocumentKind, MetaValue, StageContext};
use kass_sources::slack_export::SlackExportConfig;
use kass_sources::BuildSource;
use serde_json::Value;

fn export_fixture() -> PathBuf {
    fixture("slack-export")
}

fn find<'a>(out: &'a Output, id: &str) -> &'a Document {
    out.documents
        .iter()
        .find(|d| d.id == id)
        .unwrap_or_else(|| {
            let ids: Vec<&str> = out.documents.iter().map(|d| d.id.as_str()).collect();
            panic!("no document {id} among {ids:?}")
        })
}

fn texts(doc: &Document) -> Vec<(&str, &str)> {
    doc.messages
        .iter()
        .map(|m| (m.author.as_str(), m.text.as_str()))
        .collect()
}

const ARM64_THREAD: &str = "C01GENERAL/thread/1709632800.000000";

#[tokio::test]
async fn fixture_puts_each_message_in_one_document_and_no_chunk_twice() {
    let (out, chunks) = assert_export_reads_cleanly(&export_fixture()).await;
    let kinds: BTreeSet<&str> = out.documents.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["chat_conversation", "thread"]));
    assert!(chunks.len() >= 15, "{} chunks", chunks.len());
}

#[tokio::test]
async fn a_day_holding_only_a_thread_parent_has_no_document_of_its_own() {
    let out = export::read(SlackExportConfig::new(export_fixture())).await;
    // 2024-03-05 in #general: a join and a thread parent with its first replies.
    assert!(!out
        .documents
        .iter()
        .any(|d| d.id == "C01GENERAL/2024-03-05"));
    let thread = find(&out, ARM64_THREAD);
    assert_eq!(thread.kind, DocumentKind::Thread);
    assert_eq!(
        texts(thread),
        [
            (
                "Ben Okafor",
                "Does anyone know why the nightly build on arm64 takes twice as long since Monday?"
            ),
            (
                "ana",
                "I think the cache key changed; the runners rebuild everything from scratch."
            ),
            ("Cho Min-jun", "Yes, the toolchain bump invalidated it."),
            (
                "Ben Okafor",
                "Fixed: the cache key now ignores the toolchain patch version."
            ),
            ("ci-bot", "Nightly build on arm64 finished in 40 min"),
        ],
        "parent, replies, the broadcast, and a bot reply after latest_reply"
    );
}

#[tokio::test]
async fn a_broadcast_reply_is_in_its_thread_only() {
    let out = export::read(SlackExportConfig::new(export_fixture())).await;
    let day = find(&out, "C01GENERAL/2024-03-06");
    assert_eq!(
        texts(day),
        [
            (
                "deploy-bot",
                "Nightly build finished\n[arm64: 41 min (was 83 min)]"
            ),
            ("ana", "Lunch order closes at noon :taco:"),
        ],
        "the broadcast stays in the thread; the empty bot post is dropped"
    );
}

#[tokio::test]
async fn a_reply_long_after_its_thread_went_quiet_is_a_continuation() {
    let out = export::read(SlackExportConfig::new(export_fixture())).await;
    let late = find(&out, &format!("{ARM64_THREAD}/1711298700.000000"));
    assert_eq!(late.kind, DocumentKind::Thread);
    assert_eq!(
        texts(late),
        [(
            "dee",
            "Late to the party: the arm64 build got slow again after the runner update."
        )]
    );
    assert_eq!(
        late.metadata.get("thread_ts"),
        Some(&MetaValue::from("1709632800.000000"))
    );
}

#[tokio::test]
async fn a_parent_without_replies_is_a_channel_message_and_markup_is_rendered() {
    let out = export::read(SlackExportConfig::new(export_fixture())).await;
    let day = find(&out, "C01DEVHELP/2024-03-04");
    assert_eq!(
        texts(day),
        [
            ("Ben Okafor", "Is the wiki down for anyone else? @here"),
            (
                "ana",
                "Works for me ✅ — the wiki loads fine from Zürich; 日本語のページも大丈夫です。"
            ),
        ]
    );
    let general = find(&out, "C01GENERAL/2024-03-04");
    assert_eq!(
        texts(general),
        [
            (
                "ana",
                "Morning! The staging deploy is done, see run 42 (https://deploy.example.com/runs/42) for the log."
            ),
            (
                "Ben Okafor",
                "@ana thanks, the smoke tests pass on https://staging.example.com"
            ),
            (
                "Cho Min-jun",
                "Uploaded the Q1 roadmap for review\n[file: roadmap-q1.pdf]"
            ),
            ("Cho Min-jun", "[file]"),
            (
                "ana",
                "Reminder: retro at 15:00 in #dev-help & bring your notes <3"
            ),
        ]
    );
    assert!(general.messages[0].edited && !general.messages[1].edited);
}

#[tokio::test]
async fn a_deleted_parent_keeps_its_thread() {
    let out = export::read(SlackExportConfig::new(export_fixture())).await;
    let thread = find(&out, "C01GENERAL/thread/1709906400.000000");
    assert_eq!(
        texts(thread),
        [
            ("ana", "Whatever it was, the answer is: restart the runner."),
            ("Ben Okafor", "Restarting fixed it, thanks."),
        ]
    );
    assert!(!out
        .documents
        .iter()
        .any(|d| d.id == "C01GENERAL/2024-03-08"));
}

#[tokio::test]
async fn channel_allow_list_and_date_range_limit_what_is_read() {
    let mut config = SlackExportConfig::new(export_fixture());
    config.channels = vec!["general".into()];
    config.since = chrono::NaiveDate::from_ymd_opt(2024, 3, 5);
    config.until = chrono::NaiveDate::from_ymd_opt(2024, 3, 8);
    let out = export::read(config).await;
    let ids: BTreeSet<&str> = out.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            "C01GENERAL/2024-03-06",
            ARM64_THREAD,
            "C01GENERAL/thread/1709906400.000000"
        ])
    );
}

/// Links `to` at `link`.
fn symlink(to: &Path, link: &Path) {
    std::os::unix::fs::symlink(to, link).unwrap();
}

/// The fixture assembled from links: the listings and `general`'s day files linked one by
/// one, every other channel folder linked whole.
fn linked_export() -> tempfile::TempDir {
    let fixture = export_fixture();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "general" {
            std::fs::create_dir(root.join("general")).unwrap();
            for day in std::fs::read_dir(entry.path()).unwrap() {
                let day = day.unwrap();
                symlink(&day.path(), &root.join("general").join(day.file_name()));
            }
        } else {
            symlink(&entry.path(), &root.join(&name));
        }
    }
    dir
}

#[tokio::test]
async fn an_export_assembled_from_links_reads_like_the_plain_one() {
    let plain = export::read(SlackExportConfig::new(export_fixture())).await;
    let linked_dir = linked_export();
    let linked = export::read(SlackExportConfig::new(linked_dir.path())).await;
    assert!(!plain.documents.is_empty());
    assert_eq!(linked.dead_letters, 0);
    let strip = |docs: &[Document]| -> Vec<(String, Vec<(String, String)>)> {
        docs.iter()
            .map(|d| {
                (
                    d.id.clone(),
                    d.messages
                        .iter()
                        .map(|m| (m.id.clone(), m.text.clone()))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(strip(&linked.documents), strip(&plain.documents));
}

#[tokio::test]
async fn links_that_cannot_be_followed_are_skipped_without_hanging() {
    let dir = linked_export();
    let root = dir.path();
    symlink(&root.join("loop"), &root.join("loop"));
    symlink(Path::new("/nonexistent/kass-export"), &root.join("broken"));
    // A folder linking back to the root is read one level deep only: no day files in it.
    symlink(root, &root.join("upward"));
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        export::read(SlackExportConfig::new(root)),
    )
    .await
    .expect("reading an export with link loops finishes");
    let plain = export::read(SlackExportConfig::new(export_fixture())).await;
    assert_eq!(out.documents.len(), plain.documents.len());
    assert_eq!(out.dead_letters, 0);
}

/// A small export: the fixture's listings, `general`'s day files, and a folder no listing
/// names; the day file `corrupt` broken.
fn small_export(corrupt: &str) -> tempfile::TempDir {
    let fixture = export_fixture();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for file in ["users.json", "channels.json"] {
        std::fs::copy(fixture.join(file), root.join(file)).unwrap();
    }
    std::fs::create_dir(root.join("general")).unwrap();
    // A folder no listing names: its name stands in for the channel.
    std::fs::create_dir(root.join("lost-channel")).unwrap();
    for (day, _) in export::raw_days(&fixture.join("general")) {
        let file = format!("{day}.json");
        std::fs::copy(
            fixture.join("general").join(&file),
            root.join("general").join(&file),
        )
        .unwrap();
    }
    std::fs::copy(
        fixture.join("dev-help/2024-03-05.json"),
        root.join("lost-channel/2024-03-05.json"),
    )
    .unwrap();
    let bad = root.join("general").join(format!("{corrupt}.json"));
    let body = std::fs::read_to_string(&bad).unwrap();
    std::fs::write(
        &bad,
        format!("[\n  {{\"ts\": \"1.0\",\n    ,{}", &body[1..]),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn malformed_day_file_is_dead_lettered_and_the_rest_still_read() {
    let export = small_export("2024-03-06");
    let run = common::run_source(
        SlackExportConfig::new(export.path()).build().unwrap(),
        "slack_export",
    )
    .await;

    assert_eq!(run.dead_letters.len(), 1, "{:?}", run.dead_letters);
    let (key, letter) = &run.dead_letters[0];
    assert!(key.starts_with("_dead_letter/slack_export/"), "{key}");
    assert_eq!(letter.item_id, "C01GENERAL/2024-03-06");
    assert_eq!(letter.error_type, "malformed_json");
    let bad = export.path().join("general/2024-03-06.json");
    assert!(
        letter.reason.starts_with(&format!("{}: ", bad.display())),
        "{}",
        letter.reason
    );
    assert!(
        letter.reason.contains("line 3 column 5"),
        "{}",
        letter.reason
    );

    let documents = export::transform_all(&run.records).await;
    let out_ts: BTreeSet<&str> = documents
        .iter()
        .flat_map(|d| d.messages.iter().map(|m| m.id.as_str()))
        .collect();
    for (day, messages) in export::raw_days(&export_fixture().join("general")) {
        if day == "2024-03-06" {
            continue;
        }
        for m in messages.iter().filter(|m| !export::is_dropped(m)) {
            let ts = str_field(m, "ts").unwrap();
            assert!(out_ts.contains(ts), "message {ts} of {day} is missing");
        }
    }
    assert!(
        documents.iter().any(|d| d.id.starts_with("lost-channel/")
            && d.metadata.get("channel") == Some(&MetaValue::from("lost-channel"))),
        "a folder absent from channels.json is read under its own name"
    );
}

#[test]
fn missing_export_directory_is_a_config_error_naming_it() {
    let err = SlackExportConfig::new("/no/such/export")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/export"), "{err}");
}

#[tokio::test]
async fn export_without_users_json_stops_the_run_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        export_fixture().join("channels.json"),
        dir.path().join("channels.json"),
    )
    .unwrap();
    let source = Box::new(SlackExportConfig::new(dir.path()).build().unwrap());
    let store = tempfile::tempdir().unwrap();
    let (queue, _writer) =
        spawn_writer(std::sync::Arc::new(LocalStore::new(store.path()).unwrap()));
    let ctx = StageContext::new("slack_export", Shutdown::default(), queue);
    let (outlet, _inlet) = kass_pipeline::channel::bounded("slack_export", "test", 4);
    let err = kass_pipeline::Source::run(source, outlet, ctx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("users.json"), "{err}");
}

#[test]
fn fixture_carries_the_quirks_of_real_exports() {
    let fixture = export_fixture();
    let mut subtypes = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut late_reply = false;
    for (_, name) in export::channels_with_folders(&fixture) {
        let days = export::raw_days(&fixture.join(&name));
        let all: Vec<&Value> = days.values().flatten().collect();
        for m in &all {
            subtypes.extend(str_field(m, "subtype").map(str::to_string));
            keys.extend(m.as_object().unwrap().keys().cloned());
            if let Some(latest) = str_field(m, "latest_reply") {
                let thread = str_field(m, "ts").unwrap();
                late_reply |= all.iter().any(|r| {
                    str_field(r, "thread_ts") == Some(thread)
                        && str_field(r, "ts").unwrap() > latest
                });
            }
        }
    }
    for subtype in [
        "bot_message",
        "channel_join",
        "channel_purpose",
        "thread_broadcast",
        "tombstone",
    ] {
        assert!(subtypes.contains(subtype), "no {subtype} message");
    }
    for key in [
        "thread_ts",
        "reply_count",
        "latest_reply",
        "files",
        "attachments",
        "edited",
        "user_profile",
    ] {
        assert!(keys.contains(key), "no message has `{key}`");
    }
    assert!(late_reply, "no reply after its parent's latest_reply");
    let listed = std::fs::read_to_string(fixture.join("channels.json")).unwrap();
    assert!(
        listed.contains("old-announcements") && !fixture.join("old-announcements").exists(),
        "a channel listed without a folder"
    );
}
