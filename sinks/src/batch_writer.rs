//! The batch writer: the fetch half's sink. Groups chunks per source into batch files and
//! writes them to the store, emitting a [`BatchRef`] per file once it is durably written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use kass_pipeline::batch::{
    batch_id, batch_key, Batch, BatchRef, Compression, Tombstone, TombstoneOutbox,
};
use kass_pipeline::model::{chunk_keys, RunVersions};
use kass_pipeline::store::ObjectStore;
use kass_pipeline::telemetry::BatchWritten;
use kass_pipeline::{
    Chunk, FatalError, Inlet, MetaValue, Metadata, Outlet, StageContext, StreamStage,
};

/// `[batch]` in kass.toml: when a batch file is cut.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchWriterConfig {
    /// Most chunks in one file.
    #[serde(default = "default_max_chunks")]
    pub max_chunks: usize,
    /// Most bytes of (uncompressed) JSON in one file; a single larger chunk gets a file alone.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest a chunk waits for its batch to fill before the batch is written anyway, so a
    /// trickle of new messages still reaches the embed half promptly.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// `none` (`.json`) or `gzip` (`.json.gz`).
    #[serde(default)]
    pub compression: Compression,
}

fn default_max_chunks() -> usize {
    100
}
fn default_max_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_max_wait_ms() -> u64 {
    5_000
}

impl Default for BatchWriterConfig {
    fn default() -> Self {
        Self {
            max_chunks: default_max_chunks(),
            max_bytes: default_max_bytes(),
            max_wait_ms: default_max_wait_ms(),
            compression: Compression::default(),
        }
    }
}

/// Chunks of one source waiting for their batch.
struct Pending {
    chunks: Vec<Chunk>,
    bytes: usize,
    deadline: Instant,
}

pub struct BatchWriter {
    config: BatchWriterConfig,
    store: Arc<dyn ObjectStore>,
    clock: fn() -> DateTime<Utc>,
    tombstones: Option<TombstoneOutbox>,
    versions: RunVersions,
}

/// Most tombstones in one batch file: a tombstone is a few dozen bytes.
const MAX_TOMBSTONES_PER_BATCH: usize = 1_000;

/// Keys tried for one batch before giving up; each try after the first means another writer
/// took the key in the same second with the same 4-hex suffix.
const MAX_KEY_ATTEMPTS: u32 = 64;

impl BatchWriterConfig {
    /// Checks the limits against each other: a file must hold at least one chunk.
    pub fn validate(&self) -> Result<(), FatalError> {
        let bad = |reason: &str| Err(FatalError::Config(format!("[batch] {reason}")));
        if self.max_chunks < 1 {
            return bad("max_chunks must be at least 1");
        }
        if self.max_bytes < 1024 {
            return bad("max_bytes must be at least 1024");
        }
        Ok(())
    }

    /// The batch writer for these limits, writing into `store`.
    pub fn build(self, store: Arc<dyn ObjectStore>) -> Result<BatchWriter, FatalError> {
        self.validate()?;
        Ok(BatchWriter::new(self, store))
    }
}

impl BatchWriter {
    pub fn new(config: BatchWriterConfig, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            config,
            store,
            clock: Utc::now,
            tombstones: None,
            versions: RunVersions::default(),
        }
    }

    /// Also writes the tombstones posted to `outbox`, once the input is drained: the run's
    /// documents are written first, then its deletions (see [`TombstoneOutbox`]).
    pub fn with_tombstones(mut self, outbox: TombstoneOutbox) -> Self {
        self.tombstones = Some(outbox);
        self
    }

    /// The version each source's documents and tombstones get this run, where they carry none
    /// (see [`kass_pipeline::model::document_version`]); without it, the writer's start.
    pub fn with_versions(mut self, versions: RunVersions) -> Self {
        self.versions = versions;
        self
    }

    /// Replaces the wall clock that names batches (tests pin it to force key collisions).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    /// Writes the batch under a key no other batch has: `put_if_absent`, and on a taken key
    /// the next salt. Several writers (concurrent runs, Lambdas) can never overwrite each other.
    async fn write(
        &mut self,
        source: &str,
        mut chunks: Vec<Chunk>,
        mut tombstones: Vec<Tombstone>,
    ) -> Result<BatchRef, FatalError> {
        let version = self.versions.of(source);
        for chunk in &mut chunks {
            chunk
                .metadata
                .entry(chunk_keys::DOCUMENT_VERSION.into())
                .or_insert(MetaValue::Int(version as i64));
        }
        for tombstone in &mut tombstones {
            tombstone.version.get_or_insert(version);
        }
        let now = (self.clock)();
        let ids: Vec<String> = chunks
            .iter()
            .map(|c| c.id.clone())
            .chain(tombstones.iter().map(|t| format!("gone:{}", t.document_id)))
            .collect();
        let mut batch = Batch::new(String::new(), now, source, chunks).with_tombstones(tombstones);
        for salt in 0..MAX_KEY_ATTEMPTS {
            batch.batch_id = batch_id(now, ids.iter().map(String::as_str), salt);
            let key = batch_key(source, now, &batch.batch_id, self.config.compression);
            let body = batch.encode(self.config.compression);
            let bytes = body.len();
            if self.store.put_if_absent(&key, body).await? {
                BatchWritten {
                    source,
                    key: &key,
                    chunk_count: batch.chunk_count,
                    bytes,
                }
                .emit();
                return Ok(BatchRef {
                    key,
                    source: source.to_string(),
                    chunk_count: batch.chunk_count,
                    bytes,
                });
            }
            tracing::debug!(
                key,
                "batch key taken by another writer; trying the next salt"
            );
        }
        Err(FatalError::Stage {
            stage: "batch_writer".into(),
            reason: format!(
                "no free key for a {source} batch at {now} after {MAX_KEY_ATTEMPTS} attempts"
            ),
        })
    }
}

impl BatchWriter {
    /// Writes the tombstones posted during the run, in files of their own.
    async fn write_tombstones(&mut self, out: &Outlet<BatchRef>) -> Result<(), FatalError> {
        let Some(outbox) = self.tombstones.clone() else {
            return Ok(());
        };
        for (source, tombstones) in outbox.take() {
            for part in tombstones.chunks(MAX_TOMBSTONES_PER_BATCH) {
                let written = self.write(&source, Vec::new(), part.to_vec()).await?;
                if out.send(written).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Bytes a chunk adds to its batch file, as serialised, counted without copying the chunk.
fn encoded_len(chunk: &Chunk) -> usize {
    #[derive(Serialize)]
    struct View<'a> {
        id: &'a str,
        text: &'a str,
        metadata: &'a Metadata,
    }
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(1); // the separating comma
    let view = View {
        id: &chunk.id,
        text: &chunk.text,
        metadata: &chunk.metadata,
    };
    match serde_json::to_writer(&mut counter, &view) {
        Ok(()) => counter.0,
        Err(_) => chunk.text.len(),
    }
}

/// Bytes of a batch file around its chunks (`schema_version`, `batch_id`, `timestamp`, ...),
/// so that `max_bytes` bounds the whole file.
fn envelope_len(source: &str) -> usize {
    160 + source.len()
}

#[async_trait]
impl StreamStage for BatchWriter {
    type Input = Chunk;
    type Output = BatchRef;

    fn name(&self) -> &'static str {
        "batch_writer"
    }

    async fn run(
        mut self: Box<Self>,
        input: Inlet<Chunk>,
        out: Outlet<BatchRef>,
        _ctx: StageContext,
    ) -> Result<(), FatalError> {
        let max_wait = Duration::from_millis(self.config.max_wait_ms);
        let mut pending: HashMap<String, Pending> = HashMap::new();
        loop {
            let next_deadline = pending.values().map(|p| p.deadline).min();
            let timer = async {
                match next_deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let (ready, input_done): (Vec<(String, Vec<Chunk>)>, bool) = tokio::select! {
                item = input.recv() => match item {
                    Some(chunk) => {
                        let size = encoded_len(&chunk);
                        let entry = pending.entry(chunk.source.clone()).or_insert_with(|| Pending {
                            chunks: Vec::new(),
                            bytes: envelope_len(&chunk.source),
                            deadline: Instant::now() + max_wait,
                        });
                        let mut ready = Vec::new();
                        if !entry.chunks.is_empty() && entry.bytes + size > self.config.max_bytes {
                            ready.push((chunk.source.clone(), std::mem::take(&mut entry.chunks)));
                            entry.bytes = envelope_len(&chunk.source);
                            entry.deadline = Instant::now() + max_wait;
                        }
                        entry.bytes += size;
                        entry.chunks.push(chunk);
                        if entry.chunks.len() >= self.config.max_chunks || entry.bytes >= self.config.max_bytes {
                            let source = entry.chunks[0].source.clone();
                            ready.push((source.clone(), std::mem::take(&mut entry.chunks)));
                            pending.remove(&source);
                        }
                        (ready, false)
                    }
                    // Input finished: write everything still pending, then stop.
                    None => (pending.drain().map(|(s, p)| (s, p.chunks)).collect(), true),
                },
                () = timer => {
                    let now = Instant::now();
                    let expired: Vec<String> = pending.iter().filter(|(_, p)| p.deadline <= now).map(|(s, _)| s.clone()).collect();
                    (expired.into_iter().filter_map(|s| pending.remove(&s).map(|p| (s, p.chunks))).collect(), false)
                }
            };
            for (source, chunks) in ready.into_iter().filter(|(_, c)| !c.is_empty()) {
                let written = self.write(&source, chunks, Vec::new()).await?;
                if out.send(written).await.is_err() {
                    return Ok(());
                }
            }
            if input_done {
                return self.write_tombstones(&out).await;
            }
        }
    }
}
