//! How the `kass` binary assembles the stages. The same functions build the whole graph in one
//! process (`kass run`) or only the fetch half (`kass fetch`); the embed half starts from any
//! stream of batch references (in one process: the batch writer's output; split: S3 events).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};

use kass_pipeline::batch::{BatchRef, TombstoneOutbox};
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::ObjectStore;
use kass_pipeline::tokenizer::TokenCounter;

use kass_pipeline::model::RunVersions;
use kass_pipeline::{Chunk, Flow, Topology};
use kass_sinks::chroma::{ChromaTarget, StoredChunk};
use kass_sources::cursor::Cursor;
use kass_sources::SourceDeps;
use kass_stages::batch_loader::BatchLoader;
use kass_stages::embed::Embedder;

use crate::config::KassConfig;

/// Per-source cursors: a fetch given them reads only what changed since they were saved.
pub type Cursors = BTreeMap<String, Arc<Cursor>>;

/// The saved cursor of every configured source.
pub async fn load_cursors(config: &KassConfig, store: &dyn ObjectStore) -> Result<Cursors> {
    let mut cursors = Cursors::new();
    for source in &config.sources {
        let name = source.name().to_string();
        // What the inputs were read with: other settings make other chunks, so a file source
        // reads everything again. A source keeping state keeps it whatever the chunking: it is
        // what lets it delete, and a backfill may have taken days; documents it reads again
        // (its window) get the new chunking.
        let settings = if source.keeps_state() {
            source.cursor_settings()
        } else {
            format!(
                "{}|{:?}|{:?}|{:?}",
                source.cursor_settings(),
                config.transform,
                config.chunking,
                config.tokenizer
            )
        };
        let cursor = Cursor::load(store, &name, &settings)
            .await
            .with_context(|| format!("cannot read the cursor of source `{name}`"))?;
        cursors.insert(name, Arc::new(cursor));
    }
    Ok(cursors)
}

/// Advances the cursors; call only after the fetch that used them wrote all its batches.
pub async fn save_cursors(cursors: &Cursors, store: &dyn ObjectStore) -> Result<()> {
    for (name, cursor) in cursors {
        cursor
            .save(store, name)
            .await
            .with_context(|| format!("cannot save the cursor of source `{name}`"))?;
    }
    Ok(())
}

/// Marks the sources of a fetch that was not interrupted as fresh
/// (`kass_source_last_success_timestamp_seconds`, `kass_source_runs_completed_total`). Sources
/// that keep state (API sources) are left out: they know whether every scope was read, and
/// report it themselves.
pub fn record_fetch_success(config: &KassConfig, interrupted: bool) {
    if interrupted {
        return;
    }
    let now = chrono::Utc::now().timestamp() as f64;
    for source in config.sources.iter().filter(|s| !s.keeps_state()) {
        kass_pipeline::telemetry::source_succeeded(source.name(), now);
    }
}

/// How a fetch treats the sources' cursors and deletions.
#[derive(Debug, Clone, Default)]
pub struct FetchPlan {
    /// Sources with a cursor here read only what changed since it was saved; the others read
    /// everything.
    pub cursors: Cursors,
    /// `--allow-deletions`: sources may delete more than their deletion share this run.
    pub allow_deletions: bool,
}

/// sources -> transform -> chunk_router -> batch_writer, the tombstones the sources find
/// written by the batch writer after the run's documents.
pub fn fetch_half(
    config: &KassConfig,
    store: Arc<dyn ObjectStore>,
    shutdown: Shutdown,
    plan: &FetchPlan,
) -> Result<Flow<BatchRef>> {
    if config.sources.is_empty() {
        anyhow::bail!("configuration error: no [[sources]] configured");
    }
    let tokenizer_path = config.tokenizer.resolved_path();
    let counter = TokenCounter::from_file(&tokenizer_path)?;
    let chunk_router = config.chunking.clone().build(counter)?;
    let transform = config.transform.clone().build()?;
    let tombstones = TombstoneOutbox::default();
    // Each source's documents get this run's version: from its cursor (newer than its last
    // run's), else the run's start.
    let mut versions = RunVersions::starting(chrono::Utc::now());
    for (name, cursor) in &plan.cursors {
        versions.set(name, cursor.run_version());
    }
    let sources = config
        .sources
        .iter()
        .cloned()
        .map(|s| {
            let cursor = plan.cursors.get(s.name()).cloned();
            s.build_with(SourceDeps {
                cursor,
                tombstones: Some(tombstones.clone()),
                allow_deletions: plan.allow_deletions,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .context("cannot start sources")?;
    Ok(
        Topology::new(config.pipeline.clone(), store.clone(), shutdown)
            .sources(sources)
            .then(transform)
            .then(chunk_router)
            .then_stream(
                config
                    .batch
                    .clone()
                    .build(store)?
                    .with_tombstones(tombstones)
                    .with_versions(versions),
            ),
    )
}

/// batch_loader -> skip_stored -> embed -> chroma_sink.
///
/// The embedder and the Chroma collection are resolved by the caller, before any source is
/// read, so that a missing key, model or server (or a collection of another model) fails the
/// command at once rather than after the fetch half has done its work.
pub fn embed_half(
    config: &KassConfig,
    batches: Flow<BatchRef>,
    store: Arc<dyn ObjectStore>,
    embedder: Arc<Embedder>,
    target: Arc<ChromaTarget>,
) -> Flow<StoredChunk> {
    let loader = BatchLoader::new(store).removing_with(target.clone());
    embed_chunks(config, batches.then(loader), embedder, target)
}

/// skip_stored -> embed -> chroma_sink: the embed half past the batch files (dead-lettered
/// chunks re-enter here).
pub fn embed_chunks(
    config: &KassConfig,
    chunks: Flow<Chunk>,
    embedder: Arc<Embedder>,
    target: Arc<ChromaTarget>,
) -> Flow<StoredChunk> {
    chunks
        .then_stream(config.chroma.build_skip_stored(target.clone()))
        .then_stream(config.embed.stage(embedder))
        .then_stream(config.chroma.build_sink(target))
}

/// The collection `[chroma]` names, created if absent and checked to hold the embedder's model.
pub async fn connect_chroma(config: &KassConfig, embedder: &Embedder) -> Result<Arc<ChromaTarget>> {
    Ok(ChromaTarget::connect(&config.chroma, embedder.model()).await?)
}

/// The embedding endpoints `[embed]` configures (loads the local model).
pub fn build_embedder(config: &KassConfig) -> Result<Arc<Embedder>> {
    Ok(config.embed.build_embedder()?)
}
