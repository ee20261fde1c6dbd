//! Deletions and versions crossing the S3 boundary: a batch's tombstones remove every
//! chunk of the named documents from a real Chroma, only in the batch's source, and re-delivery
//! changes nothing. Through the `kass` binary, a local store and a counting provider.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::path::Path;

use chrono::{TimeZone, Utc};
use fake_provider::{Api, FakeOptions, FakeProvider};
use kass_pipeline::batch::{batch_key, Batch, Compression, Tombstone};
use kass_pipeline::{Chunk, MetaValue, Metadata};
use support::{kass, run_ok, ChromaServer};

fn config(dir: &Path, chroma: &ChromaServer, provider: &FakeProvider) -> std::path::PathBuf {
    let path = dir.join("kass.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\ntype = \"local\"\npath = \"{}\"\n\n[[sources]]\ntype = \"jsonl\"\nname = \"unused\"\npath = \"{}\"\n\n[embed.provider]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"counted\"\ndimensions = 8\napi_key_env = \"KASS_TOMBSTONE_KEY\"\n{}",
            dir.join("store").display(),
            dir.join("none.jsonl").display(),
            provider.base_url(),
            chroma.config("tombstones"),
        ),
    )
    .unwrap();
    path
}

/// Writes a batch into the local store; returns its key.
fn write(store: &Path, source: &str, hour: u32, chunks: Vec<Chunk>, gone: &[&str]) -> String {
    let at = Utc.with_ymd_and_hms(2025, 10, 6, hour, 0, 0).unwrap();
    let id = format!("20251006_{hour:02}0000_abcd");
    let key = batch_key(source, at, &id, Compression::None);
    let tombstones = gone
        .iter()
        .map(|d| Tombstone {
            document_id: d.to_string(),
            reason: Some("deleted".into()),
            version: None,
        })
        .collect();
    let batch = Batch::new(id, at, source, chunks).with_tombstones(tombstones);
    let path = store.join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, batch.encode(Compression::None)).unwrap();
    key
}

fn document(source: &str, id: &str, n: usize) -> Vec<Chunk> {
    (0..n)
        .map(|i| {
            let mut meta = Metadata::new();
            meta.insert("document_chunks".into(), MetaValue::Int(n as i64));
            Chunk::new(source, id, i, format!("{id} part {i}"), meta)
        })
        .collect()
}

fn count(config: &Path) -> u64 {
    let out = run_ok(kass().args(["stats", "--config"]).arg(config));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("chunks"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a count")
}

fn embed(config: &Path, key: &str) -> String {
    let out = run_ok(
        kass()
            .env("KASS_TOMBSTONE_KEY", "test-key-123")
            .args(["embed", "--keys", key, "--config"])
            .arg(config),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_remove_their_documents_in_their_source_only() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let provider = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let config = config(dir.path(), &chroma, &provider);
    let store = dir.path().join("store");
    let mut chunks = document("slack", "C1/2025-10-05", 2);
    chunks.extend(document("slack", "C1/2025-10-06", 1));
    let first = write(&store, "slack", 9, chunks, &[]);
    // The same document id in another source must survive the slack tombstone.
    let other = write(&store, "wiki", 9, document("wiki", "C1/2025-10-05", 1), &[]);
    let cfg = config.clone();
    let (first_c, other_c) = (first.clone(), other.clone());
    tokio::task::spawn_blocking(move || {
        embed(&cfg, &first_c);
        embed(&cfg, &other_c);
    })
    .await
    .unwrap();
    let cfg = config.clone();
    assert_eq!(
        tokio::task::spawn_blocking(move || count(&cfg))
            .await
            .unwrap(),
        4
    );

    let gone = write(&store, "slack", 10, Vec::new(), &["C1/2025-10-05"]);
    let cfg = config.clone();
    let calls = provider.log().len();
    let (left, again) = tokio::task::spawn_blocking(move || {
        embed(&cfg, &gone);
        let left = count(&cfg);
        embed(&cfg, &gone);
        (left, count(&cfg))
    })
    .await
    .unwrap();
    assert_eq!(
        left, 2,
        "the deleted day's two chunks went; the other day and the wiki stay"
    );
    assert_eq!(again, 2, "a second delivery changes nothing");
    assert_eq!(
        provider.log().len(),
        calls,
        "a tombstone costs no embedding"
    );
    assert!(support::files_under(&store)
        .iter()
        .all(|f| !f.starts_with("_dead_letter/")));
}

/// A document state at `version`: `texts` as its chunks, in order.
fn state(id: &str, version: i64, texts: &[&str]) -> Vec<Chunk> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut meta = Metadata::new();
            meta.insert("document_chunks".into(), MetaValue::Int(texts.len() as i64));
            meta.insert("document_version".into(), MetaValue::Int(version));
            Chunk::new("slack", id, i, text.to_string(), meta)
        })
        .collect()
}

/// Writes a batch of `chunks` and versioned `gone` tombstones at `hour`; returns its key.
fn write_versioned(store: &Path, hour: u32, chunks: Vec<Chunk>, gone: &[(&str, u64)]) -> String {
    let at = Utc.with_ymd_and_hms(2025, 10, 6, hour, 0, 0).unwrap();
    let id = format!("20251006_{hour:02}0000_beef");
    let key = batch_key("slack", at, &id, Compression::None);
    let tombstones = gone
        .iter()
        .map(|(d, v)| Tombstone {
            document_id: d.to_string(),
            reason: Some("deleted".into()),
            version: Some(*v),
        })
        .collect();
    let batch = Batch::new(id, at, "slack", chunks).with_tombstones(tombstones);
    let path = store.join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, batch.encode(Compression::None)).unwrap();
    key
}

/// Every stored text of `source` in the collection, sorted.
async fn stored_texts(chroma: &ChromaServer, source: &str) -> Vec<String> {
    let request = serde_json::json!({"where": {"source": source}, "include": ["documents"]});
    let records = support::chroma_get(&chroma.url(), "tombstones", request)
        .await
        .expect("the collection");
    let mut texts: Vec<String> = records["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    texts.sort();
    texts
}

/// Delivery is unordered: an older state delivered after a newer one, a tombstone before or
/// after the states it deletes, the same batch again. Whatever the order, Chroma ends with
/// the newest state of the document, or nothing once its tombstone is the newest, and an older
/// state costs no embedding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_state_wins_whatever_the_delivery_order() {
    let dir = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&dir.path().join("chroma"));
    let provider = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let config = config(dir.path(), &chroma, &provider);
    let store = dir.path().join("store");
    let d = "C1/2025-10-05";
    // Versions are the fetch runs' start times (unix milliseconds), a minute before each write.
    let run = |hour: u32| {
        Utc.with_ymd_and_hms(2025, 10, 6, hour, 0, 0)
            .unwrap()
            .timestamp_millis()
            - 60_000
    };
    let first = write_versioned(
        &store,
        9,
        state(d, run(9), &["ana: a first draft", "bo: ok"]),
        &[],
    );
    let second = write_versioned(
        &store,
        10,
        state(d, run(10), &["ana: the second edit"]),
        &[],
    );
    let gone = write_versioned(&store, 11, Vec::new(), &[(d, run(11) as u64)]);
    let back = write_versioned(&store, 12, state(d, run(12), &["ana: back again"]), &[]);
    // A batch from before versions (its chunks take the batch's time, 08:00: older than all).
    let legacy = write(&store, "slack", 8, document("slack", d, 1), &[]);

    let step = |keys: Vec<String>| {
        let cfg = config.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                for key in keys {
                    embed(&cfg, &key);
                }
            })
            .await
            .unwrap()
        }
    };
    step(vec![second.clone()]).await;
    let calls = provider.log().len();
    step(vec![first.clone(), legacy.clone(), first.clone()]).await;
    assert_eq!(
        stored_texts(&chroma, "slack").await,
        ["ana: the second edit"],
        "the older edit and the batch from before versions, delivered last, do not win"
    );
    assert_eq!(
        provider.log().len(),
        calls,
        "an older state costs no embedding"
    );

    step(vec![
        gone.clone(),
        second.clone(),
        first.clone(),
        legacy.clone(),
    ])
    .await;
    assert!(
        stored_texts(&chroma, "slack").await.is_empty(),
        "deleted stays deleted when its older states are delivered again"
    );

    step(vec![
        back.clone(),
        gone.clone(),
        second.clone(),
        first.clone(),
    ])
    .await;
    assert_eq!(
        stored_texts(&chroma, "slack").await,
        ["ana: back again"],
        "a document that came back after its deletion is not removed by the older tombstone"
    );

    // The tombstone delivered before every state it deletes: none of them is stored.
    let dir2 = tempfile::tempdir().unwrap();
    let config2 = self::config(dir2.path(), &chroma, &provider);
    let store2 = dir2.path().join("store");
    let d2 = "C2/2025-10-05";
    let gone2 = write_versioned(&store2, 11, Vec::new(), &[(d2, run(11) as u64)]);
    let old2 = write_versioned(
        &store2,
        9,
        state(d2, run(9), &["bo: never seen again"]),
        &[],
    );
    tokio::task::spawn_blocking(move || {
        embed(&config2, &gone2);
        embed(&config2, &old2);
    })
    .await
    .unwrap();
    assert!(
        !stored_texts(&chroma, "slack")
            .await
            .iter()
            .any(|t| t.contains("never seen again")),
        "a state older than a tombstone already applied is not stored"
    );
}
