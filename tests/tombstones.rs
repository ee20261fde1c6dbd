//! Deletions crossing the S3 boundary: a batch's tombstones (schema version 2) remove every
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
