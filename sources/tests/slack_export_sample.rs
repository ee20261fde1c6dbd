//! The `slack_export` source and the transform over a real Slack export (R Contributors, public
//! channels), checked against the raw JSON read independently here.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::{Document, DocumentKind, ItemStage, MetaValue, RawRecord, StageContext};
use kass_sources::slack_export::SlackExportConfig;
use kass_stages::transform::TransformConfig;
use serde_json::Value;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/slack-export-sample"
);

const CHANNELS: [(&str, &str); 4] = [
    ("C01EFL0CEBB", "general"),
    ("C01E37KBY1H", "random"),
    ("C01ESS92UMN", "core-dev-help"),
    ("C01TB88G56J", "bug-reporting"),
];

fn sample() -> PathBuf {
    let path = PathBuf::from(SAMPLE);
    assert!(
        path.join("channels.json").is_file(),
        "the real Slack export sample is missing at {}; these tests need ../shared/data (see its README)",
        path.display()
    );
    path
}

/// The raw messages of one channel folder, day file by day file, as the export holds them.
fn raw_days(channel_dir: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut days = BTreeMap::new();
    for entry in std::fs::read_dir(channel_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(day) = name.strip_suffix(".json") else {
            continue;
        };
        if chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err() {
            continue;
        }
        let messages: Vec<Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        days.insert(day.to_string(), messages);
    }
    days
}

fn str_field<'a>(m: &'a Value, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn is_dropped(m: &Value) -> bool {
    str_field(m, "subtype").is_some_and(|s| {
        TransformConfig::default()
            .drop_subtypes
            .iter()
            .any(|d| d == s)
    })
}

fn is_top_level(m: &Value) -> bool {
    let ts = str_field(m, "ts");
    match str_field(m, "thread_ts") {
        None => true,
        Some(thread_ts) => {
            Some(thread_ts) == ts || str_field(m, "subtype") == Some("thread_broadcast")
        }
    }
}

/// What the export should turn into, computed from the raw JSON alone.
#[derive(Default)]
struct Expected {
    messages_in: usize,
    dropped: BTreeMap<String, usize>,
    /// document id -> message ts, for day documents.
    days: BTreeMap<String, BTreeSet<String>>,
    /// document id -> message ts (parent and replies), for threads.
    threads: BTreeMap<String, BTreeSet<String>>,
    /// ts -> bot username, for bot messages.
    bots: HashMap<String, String>,
    /// Messages whose author wrote a literal `<` (`&lt;` in the export): their text may rightly
    /// show `<https://...>` once decoded.
    escaped: BTreeSet<String>,
}

fn expected() -> Expected {
    let mut e = Expected::default();
    for (id, name) in CHANNELS {
        for (day, messages) in raw_days(&sample().join(name)) {
            for m in &messages {
                e.messages_in += 1;
                let ts = str_field(m, "ts").unwrap().to_string();
                if m.to_string().contains("&lt;") {
                    e.escaped.insert(ts.clone());
                }
                if is_dropped(m) {
                    *e.dropped
                        .entry(str_field(m, "subtype").unwrap().to_string())
                        .or_default() += 1;
                    continue;
                }
                if str_field(m, "subtype") == Some("bot_message") {
                    e.bots
                        .insert(ts.clone(), str_field(m, "username").unwrap().to_string());
                }
                if is_top_level(m) {
                    e.days
                        .entry(format!("{id}/{day}"))
                        .or_default()
                        .insert(ts.clone());
                }
                let replies = m.get("reply_count").and_then(Value::as_u64).unwrap_or(0);
                if let Some(thread_ts) = str_field(m, "thread_ts") {
                    if thread_ts != ts || replies > 0 {
                        e.threads
                            .entry(format!("{id}/thread/{thread_ts}"))
                            .or_default()
                            .insert(ts);
                    }
                }
            }
        }
    }
    e
}

struct Output {
    documents: Vec<Document>,
    dead_letters: usize,
    records: usize,
}

async fn transform_all(records: &[RawRecord]) -> Vec<Document> {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _writer) = spawn_writer(std::sync::Arc::new(LocalStore::new(dir.path()).unwrap()));
    let ctx = StageContext::new("transform", Shutdown::default(), queue);
    let transform = TransformConfig::default().build().unwrap();
    let mut documents = Vec::new();
    for record in records {
        let out = transform
            .process(record, &ctx)
            .await
            .unwrap_or_else(|e| panic!("transform failed on {record:?}: {e}"));
        documents.extend(out);
    }
    documents
}

async fn run(config: SlackExportConfig) -> Output {
    let run = common::run_source(config.build().unwrap(), "slack_export").await;
    Output {
        documents: transform_all(&run.records).await,
        dead_letters: run.dead_letters.len(),
        records: run.records.len(),
    }
}

fn ids(documents: &[Document], kind: DocumentKind) -> BTreeMap<String, BTreeSet<String>> {
    documents
        .iter()
        .filter(|d| d.kind == kind)
        .map(|d| {
            (
                d.id.clone(),
                d.messages.iter().map(|m| m.id.clone()).collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn real_export_becomes_whole_days_and_whole_threads() {
    let expected = expected();
    let out = run(SlackExportConfig::new(sample())).await;
    assert_eq!(out.dead_letters, 0, "the real export has nothing malformed");

    let days = ids(&out.documents, DocumentKind::ChatConversation);
    let threads = ids(&out.documents, DocumentKind::Thread);
    // Days holding only dropped messages (joins) produce no document.
    let expected_days: BTreeMap<_, _> = expected
        .days
        .iter()
        .filter(|(_, ts)| !ts.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        days, expected_days,
        "each day holds exactly its top-level messages"
    );
    assert_eq!(
        threads, expected.threads,
        "each thread holds its parent and every reply"
    );

    let messages_out: usize = out.documents.iter().map(|d| d.messages.len()).sum();
    let expected_out: usize = expected
        .days
        .values()
        .chain(expected.threads.values())
        .map(BTreeSet::len)
        .sum();
    assert_eq!(messages_out, expected_out);
    let dropped: usize = expected.dropped.values().sum();
    let unique_out: BTreeSet<&str> = out
        .documents
        .iter()
        .flat_map(|d| d.messages.iter().map(|m| m.id.as_str()))
        .collect();
    assert_eq!(
        unique_out.len(),
        expected.messages_in - dropped,
        "every kept message appears"
    );

    let unique_ids: BTreeSet<&str> = out.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        unique_ids.len(),
        out.documents.len(),
        "document ids are unique"
    );
    for (id, name) in CHANNELS {
        assert!(
            out.documents.iter().any(|d| d.id.starts_with(id)
                && d.metadata.get("channel") == Some(&MetaValue::from(name))),
            "#{name} produced no documents"
        );
    }
    eprintln!(
        "slack sample: {} messages in, dropped {:?}, {} records, {} documents ({} days, {} threads), {} messages out",
        expected.messages_in,
        expected.dropped,
        out.records,
        out.documents.len(),
        days.len(),
        threads.len(),
        messages_out
    );
}

#[tokio::test]
async fn no_markup_or_noise_survives_and_authors_are_names() {
    let expected = expected();
    let out = run(SlackExportConfig::new(sample())).await;
    let id_like = |s: &str| {
        s.len() >= 9
            && (s.starts_with('U') || s.starts_with('W') || s.starts_with('B'))
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    let mut bots_seen = 0;
    for doc in &out.documents {
        for m in &doc.messages {
            let markup: &[&str] = if expected.escaped.contains(&m.id) {
                &["&lt;", "&gt;", "&amp;"]
            } else {
                &["<@U", "<@W", "<http", "<#C", "<!", "&lt;", "&gt;", "&amp;"]
            };
            for raw in markup {
                assert!(
                    !m.text.contains(raw),
                    "{raw:?} left in {}/{}: {}",
                    doc.id,
                    m.id,
                    m.text
                );
            }
            assert!(
                !m.text.contains("has joined the channel"),
                "{}: {}",
                doc.id,
                m.text
            );
            assert!(
                !m.text.trim().is_empty(),
                "empty message {}/{}",
                doc.id,
                m.id
            );
            assert!(
                !m.author.is_empty() && m.author != "unknown" && !id_like(&m.author),
                "author {:?} of {}/{} is not a name",
                m.author,
                doc.id,
                m.id
            );
            if let Some(username) = expected.bots.get(&m.id) {
                assert_eq!(&m.author, username, "bot message {} keeps its name", m.id);
                bots_seen += 1;
            }
        }
    }
    assert!(
        bots_seen >= expected.bots.len(),
        "every bot message is kept: saw {bots_seen} of {}",
        expected.bots.len()
    );
}

#[tokio::test]
async fn deleted_parent_is_dropped_but_its_thread_is_kept() {
    let out = run(SlackExportConfig::new(sample())).await;
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
    // The parent says 12 replies, latest 2025-02-16; four more (bot posts among them) follow on
    // 2025-02-22.
    let out = run(SlackExportConfig::new(sample())).await;
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
    let out = run(SlackExportConfig::new(sample())).await;
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
    let mut config = SlackExportConfig::new(sample());
    config.channels = vec!["core-dev-help".into()];
    config.since = chrono::NaiveDate::from_ymd_opt(2022, 1, 1);
    config.until = chrono::NaiveDate::from_ymd_opt(2022, 12, 31);
    let out = run(config).await;
    assert!(!out.documents.is_empty());
    for doc in &out.documents {
        assert!(doc.id.starts_with("C01ESS92UMN/"), "{}", doc.id);
        if doc.kind == DocumentKind::ChatConversation {
            assert!(doc.id.contains("/2022-"), "{}", doc.id);
        }
    }
}

/// A small export: users, channels and three `general` day files, one of them corrupt.
fn small_export(corrupt: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for file in ["users.json", "channels.json"] {
        std::fs::copy(sample().join(file), root.join(file)).unwrap();
    }
    std::fs::create_dir(root.join("general")).unwrap();
    // A folder no listing names: its name stands in for the channel.
    std::fs::create_dir(root.join("lost-channel")).unwrap();
    for day in ["2020-11-05", "2020-11-09", "2020-11-10"] {
        let from = sample().join("general").join(format!("{day}.json"));
        std::fs::copy(&from, root.join("general").join(format!("{day}.json"))).unwrap();
    }
    std::fs::copy(
        sample().join("random/2021-04-22.json"),
        root.join("lost-channel/2021-04-22.json"),
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
    let available: Vec<String> = raw_days(&sample().join("general"))
        .into_keys()
        .take(3)
        .collect();
    assert_eq!(
        available,
        ["2020-11-05", "2020-11-09", "2020-11-10"],
        "sample changed"
    );
    let export = small_export("2020-11-09");
    let run = common::run_source(
        SlackExportConfig::new(export.path()).build().unwrap(),
        "slack_export",
    )
    .await;

    assert_eq!(run.dead_letters.len(), 1, "{:?}", run.dead_letters);
    let (key, letter) = &run.dead_letters[0];
    assert!(key.starts_with("_dead_letter/slack_export/"), "{key}");
    assert_eq!(letter.item_id, "C01EFL0CEBB/2020-11-09");
    assert_eq!(letter.error_type, "malformed_json");
    let bad = export.path().join("general/2020-11-09.json");
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

    let documents = transform_all(&run.records).await;
    let out_ts: BTreeSet<&str> = documents
        .iter()
        .flat_map(|d| d.messages.iter().map(|m| m.id.as_str()))
        .collect();
    for day in ["2020-11-05", "2020-11-10"] {
        let messages: Vec<Value> = serde_json::from_slice(
            &std::fs::read(sample().join(format!("general/{day}.json"))).unwrap(),
        )
        .unwrap();
        for m in messages.iter().filter(|m| !is_dropped(m)) {
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
        sample().join("channels.json"),
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
