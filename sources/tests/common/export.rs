//! A Slack export through the source, the transform and the chunk router, and the checks every
//! export must pass, computed from the raw JSON read independently here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::tokenizer::{default_tokenizer_path, TokenCounter};
use kass_pipeline::{Chunk, Document, ItemStage, RawRecord, StageContext};
use kass_sources::slack_export::SlackExportConfig;
use kass_sources::BuildSource;
use kass_stages::chunk_router::ChunkRouter;
use kass_stages::chunking::ChunkingConfig;
use kass_stages::transform::TransformConfig;
use serde_json::Value;

/// What the source and the transform made of an export.
pub struct Output {
    pub documents: Vec<Document>,
    pub dead_letters: usize,
    pub records: usize,
}

/// Runs the source and the transform over an export.
pub async fn read(config: SlackExportConfig) -> Output {
    let run = super::run_source(config.build().unwrap(), "slack_export").await;
    Output {
        documents: transform_all(&run.records).await,
        dead_letters: run.dead_letters.len(),
        records: run.records.len(),
    }
}

pub async fn transform_all(records: &[RawRecord]) -> Vec<Document> {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _writer) = spawn_writer(Arc::new(LocalStore::new(dir.path()).unwrap()));
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

fn counter() -> &'static TokenCounter {
    static COUNTER: OnceLock<TokenCounter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let path = default_tokenizer_path();
        TokenCounter::from_file(&path).unwrap_or_else(|e| {
            panic!(
                "chunking needs the model's tokenizer at {}: {e}. Run scripts/fetch-model.sh first.",
                path.display()
            )
        })
    })
}

/// Every chunk of `documents`, cut as the chunk router cuts them with `config`.
pub fn chunk_all(documents: &[Document], config: ChunkingConfig) -> Vec<Chunk> {
    let router = ChunkRouter::new(config, counter().clone());
    documents
        .iter()
        .flat_map(|d| router.chunk(d).expect("chat documents always chunk"))
        .collect()
}

/// Fails naming every text held by more than one chunk.
pub fn assert_no_twin_chunks(chunks: &[Chunk]) {
    let mut holders: HashMap<&str, Vec<&str>> = HashMap::new();
    for chunk in chunks {
        holders
            .entry(chunk.text.as_str())
            .or_default()
            .push(chunk.document_id.as_str());
    }
    let twins: Vec<_> = holders.iter().filter(|(_, docs)| docs.len() > 1).collect();
    assert!(
        twins.is_empty(),
        "{} of {} chunk texts are held by more than one chunk, e.g. {:?}",
        twins.len(),
        holders.len(),
        twins.iter().take(3).collect::<Vec<_>>()
    );
}

/// The raw messages of one channel folder, day file by day file, as the export holds them.
pub fn raw_days(channel_dir: &Path) -> BTreeMap<String, Vec<Value>> {
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

/// `(id, name)` of every channel `channels.json` lists that has a folder.
pub fn channels_with_folders(export: &Path) -> Vec<(String, String)> {
    let listed: Vec<Value> =
        serde_json::from_slice(&std::fs::read(export.join("channels.json")).unwrap()).unwrap();
    listed
        .iter()
        .map(|c| {
            (
                str_field(c, "id").unwrap().to_string(),
                str_field(c, "name").unwrap().to_string(),
            )
        })
        .filter(|(_, name)| export.join(name).is_dir())
        .collect()
}

pub fn str_field<'a>(m: &'a Value, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// Noise the transform drops by subtype (joins, topic changes, tombstones).
pub fn is_dropped(m: &Value) -> bool {
    str_field(m, "subtype").is_some_and(|s| {
        TransformConfig::default()
            .drop_subtypes
            .iter()
            .any(|d| d == s)
    })
}

/// A message with nothing to show: no text, no file, no attachment.
fn is_empty(m: &Value) -> bool {
    let blank = str_field(m, "text").is_none_or(|t| t.trim().is_empty());
    let none = |key| {
        m.get(key)
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };
    blank && none("files") && none("attachments")
}

/// Where a message must end up: `{channel_id}/{day}`, or the thread `{channel_id}/thread/{ts}`
/// (or a continuation of it, `.../{first late reply}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    Day(String),
    Thread(String),
}

impl Home {
    pub fn holds(&self, document_id: &str) -> bool {
        match self {
            Home::Day(id) => document_id == id,
            Home::Thread(id) => document_id == id || document_id.starts_with(&format!("{id}/")),
        }
    }
}

/// What an export should turn into, from its raw JSON alone.
#[derive(Default)]
pub struct Expected {
    pub messages_in: usize,
    pub dropped: BTreeMap<String, usize>,
    /// (channel id, ts) of every kept message -> the document it belongs in.
    pub homes: BTreeMap<(String, String), Home>,
    /// (channel id, ts) -> bot username, for bot messages.
    pub bots: HashMap<(String, String), String>,
    /// Messages whose author wrote a literal `<` (`&lt;` in the export): their text may rightly
    /// show `<https://...>` once decoded.
    pub escaped: BTreeSet<(String, String)>,
}

pub fn expected(export: &Path) -> Expected {
    let mut e = Expected::default();
    for (id, name) in channels_with_folders(export) {
        // Threads whose parent or replies were seen: a later "parent" without replies joins them.
        let mut threads_seen = BTreeSet::new();
        for (day, messages) in raw_days(&export.join(&name)) {
            for m in &messages {
                e.messages_in += 1;
                let ts = str_field(m, "ts").unwrap().to_string();
                let key = (id.clone(), ts.clone());
                if m.to_string().contains("&lt;") {
                    e.escaped.insert(key.clone());
                }
                if is_dropped(m) || is_empty(m) {
                    let reason = if is_dropped(m) {
                        str_field(m, "subtype").unwrap()
                    } else {
                        "empty"
                    };
                    *e.dropped.entry(reason.to_string()).or_default() += 1;
                    // A deleted parent still opens its thread.
                    if let Some(thread_ts) = str_field(m, "thread_ts") {
                        threads_seen.insert(thread_ts.to_string());
                    }
                    continue;
                }
                if str_field(m, "subtype") == Some("bot_message") {
                    e.bots
                        .insert(key.clone(), str_field(m, "username").unwrap().to_string());
                }
                let replies = m.get("reply_count").and_then(Value::as_u64).unwrap_or(0);
                let home = match str_field(m, "thread_ts") {
                    Some(thread_ts)
                        if thread_ts != ts || replies > 0 || threads_seen.contains(thread_ts) =>
                    {
                        threads_seen.insert(thread_ts.to_string());
                        Home::Thread(format!("{id}/thread/{thread_ts}"))
                    }
                    _ => Home::Day(format!("{id}/{day}")),
                };
                e.homes.insert(key, home);
            }
        }
    }
    e
}

/// Every kept message is in exactly one document, the one it belongs in; nothing else is.
pub fn assert_each_message_in_its_one_document(expected: &Expected, documents: &[Document]) {
    let mut found: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for doc in documents {
        let channel = doc.id.split('/').next().unwrap().to_string();
        for m in &doc.messages {
            found
                .entry((channel.clone(), m.id.clone()))
                .or_default()
                .push(&doc.id);
        }
    }
    for (key, home) in &expected.homes {
        match found.get(key).map(Vec::as_slice) {
            Some([doc]) => assert!(home.holds(doc), "message {key:?} is in {doc}, not {home:?}"),
            Some(docs) => panic!("message {key:?} is in {} documents: {docs:?}", docs.len()),
            None => panic!("message {key:?} is in no document (expected in {home:?})"),
        }
    }
    let unexpected: Vec<_> = found
        .keys()
        .filter(|k| !expected.homes.contains_key(*k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "dropped messages kept: {unexpected:?}"
    );
    let ids: BTreeSet<&str> = documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), documents.len(), "document ids are unique");
}

/// No markup or noise survives the transform, every author is a name, bots keep theirs.
pub fn assert_clean_text(expected: &Expected, documents: &[Document]) {
    let id_like = |s: &str| {
        s.len() >= 9
            && (s.starts_with('U') || s.starts_with('W') || s.starts_with('B'))
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    let mut bots_seen = 0;
    for doc in documents {
        let channel = doc.id.split('/').next().unwrap().to_string();
        for m in &doc.messages {
            let key = (channel.clone(), m.id.clone());
            let markup: &[&str] = if expected.escaped.contains(&key) {
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
            if let Some(username) = expected.bots.get(&key) {
                assert_eq!(&m.author, username, "bot message {} keeps its name", m.id);
                bots_seen += 1;
            }
        }
    }
    assert_eq!(
        bots_seen,
        expected.bots.len(),
        "every bot message is kept under its name"
    );
}

/// The checks every export passes: each kept message in its one document, clean text, no
/// dead letters, and no two chunks with the same text. Returns the documents and chunks.
pub async fn assert_export_reads_cleanly(export: &Path) -> (Output, Vec<Chunk>) {
    let expected = expected(export);
    let out = read(SlackExportConfig::new(export)).await;
    assert_eq!(out.dead_letters, 0, "the export has nothing malformed");
    assert_each_message_in_its_one_document(&expected, &out.documents);
    assert_clean_text(&expected, &out.documents);
    let chunks = chunk_all(&out.documents, ChunkingConfig::default());
    assert_no_twin_chunks(&chunks);
    eprintln!(
        "{}: {} messages in, dropped {:?}, {} records, {} documents, {} chunks",
        export.display(),
        expected.messages_in,
        expected.dropped,
        out.records,
        out.documents.len(),
        chunks.len()
    );
    (out, chunks)
}
