//! The batch writer's promises: a partial batch is written after `max_wait_ms` even while input
//! keeps flowing, size limits hold, and two writers never overwrite each other's files.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kass_pipeline::batch::{read_batch, BatchRef};
use kass_pipeline::channel;
use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{LocalStore, ObjectStore};
use kass_pipeline::{Chunk, Metadata, StageContext, StreamStage};
use kass_sinks::batch_writer::{BatchWriter, BatchWriterConfig};

fn chunk(source: &str, i: usize) -> Chunk {
    Chunk::new(
        source,
        "doc",
        i,
        format!("chunk number {i}"),
        Metadata::new(),
    )
}

fn config(max_chunks: usize, max_wait_ms: u64) -> BatchWriterConfig {
    BatchWriterConfig {
        max_chunks,
        max_wait_ms,
        ..BatchWriterConfig::default()
    }
}

/// Starts a writer on its own channels; returns the input sender and the output receiver.
fn start(
    writer: BatchWriter,
    store: Arc<dyn ObjectStore>,
) -> (
    channel::Outlet<Chunk>,
    channel::Inlet<BatchRef>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, input) = channel::bounded::<Chunk>("test", "batch_writer", 16);
    let (out, rx) = channel::bounded::<BatchRef>("batch_writer", "test", 16);
    let (queue, _writer) = spawn_writer(store);
    let ctx = StageContext::new("batch_writer", Shutdown::default(), queue);
    let task = tokio::spawn(async move { Box::new(writer).run(input, out, ctx).await.unwrap() });
    (tx, rx, task)
}

#[tokio::test]
async fn a_partial_batch_is_written_after_max_wait_while_input_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let (tx, rx, _task) = start(
        BatchWriter::new(config(100, 100), store.clone()),
        store.clone(),
    );
    for i in 0..3 {
        tx.send(chunk("slack", i)).await.unwrap();
    }
    let written = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the timer must flush a partial batch while the input is still open")
        .unwrap();
    assert_eq!(written.chunk_count, 3);
    let batch = read_batch(&written.key, &store.get(&written.key).await.unwrap()).unwrap();
    assert_eq!(batch.chunk_count, 3);
    drop(tx);
}

#[tokio::test]
async fn batches_split_per_source_and_at_max_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let (tx, rx, task) = start(
        BatchWriter::new(config(4, 60_000), store.clone()),
        store.clone(),
    );
    for i in 0..10 {
        tx.send(chunk(if i % 2 == 0 { "slack" } else { "docs" }, i))
            .await
            .unwrap();
    }
    drop(tx);
    let mut written = Vec::new();
    while let Some(b) = rx.recv().await {
        written.push(b);
    }
    task.await.unwrap();
    let mut sizes: Vec<(String, usize)> = written
        .iter()
        .map(|b| (b.source.clone(), b.chunk_count))
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        [
            ("docs".into(), 1),
            ("docs".into(), 4),
            ("slack".into(), 1),
            ("slack".into(), 4)
        ]
    );
    for b in &written {
        assert!(
            b.key.starts_with(&format!("{}/chunked/", b.source)),
            "{}",
            b.key
        );
    }
}

fn pinned_clock() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 6, 12, 0, 0).unwrap()
}

#[tokio::test]
async fn two_writers_with_the_same_key_never_overwrite_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    // Same clock second and same chunk ids: both writers compute the same first key.
    let mut keys = Vec::new();
    for _ in 0..2 {
        let writer = BatchWriter::new(config(100, 60_000), store.clone()).with_clock(pinned_clock);
        let (tx, rx, task) = start(writer, store.clone());
        for i in 0..3 {
            tx.send(chunk("slack", i)).await.unwrap();
        }
        drop(tx);
        keys.push(rx.recv().await.unwrap().key);
        task.await.unwrap();
    }
    assert_ne!(keys[0], keys[1], "the second writer must pick a free key");
    assert_eq!(
        store.list("slack/chunked/").await.unwrap().len(),
        2,
        "a batch file was overwritten"
    );
}

#[tokio::test]
async fn max_bytes_bounds_the_whole_file_envelope_included() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let cfg = BatchWriterConfig {
        max_chunks: 1000,
        max_bytes: 2048,
        max_wait_ms: 60_000,
        ..BatchWriterConfig::default()
    };
    let (tx, rx, task) = start(BatchWriter::new(cfg, store.clone()), store.clone());
    for i in 0..40 {
        let text = format!("{i:03} {}", "words of a chat message ".repeat(10));
        tx.send(Chunk::new("slack", "doc", i, text, Metadata::new()))
            .await
            .unwrap();
    }
    drop(tx);
    let mut files = 0;
    while let Some(b) = rx.recv().await {
        files += 1;
        assert!(
            b.bytes <= 2048,
            "{} is {} bytes, over max_bytes",
            b.key,
            b.bytes
        );
        assert!(
            b.chunk_count > 1,
            "limit too eager: {} holds one chunk",
            b.key
        );
        assert_eq!(store.get(&b.key).await.unwrap().len(), b.bytes);
    }
    task.await.unwrap();
    assert!(files > 1);
}
