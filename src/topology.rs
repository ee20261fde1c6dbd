//! How the `kass` binary assembles the stages. The same functions build the whole graph in one
//! process (`kass run`) or only the fetch half (`kass fetch`); the embed half starts from any
//! stream of batch references (in one process: the batch writer's output; split: S3 events).

use std::sync::Arc;

use anyhow::{Context, Result};

use kass_pipeline::batch::BatchRef;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::ObjectStore;
use kass_pipeline::tokenizer::TokenCounter;
use kass_pipeline::{EmbeddedChunk, Flow, Topology};
use kass_sinks::batch_writer::BatchWriter;
use kass_stages::batch_loader::BatchLoader;
use kass_stages::chunk_router::ChunkRouter;
use kass_stages::embed::Embedder;

use crate::config::KassConfig;

/// sources -> transform -> chunk_router -> batch_writer.
pub fn fetch_half(
    config: &KassConfig,
    store: Arc<dyn ObjectStore>,
    shutdown: Shutdown,
) -> Result<Flow<BatchRef>> {
    if config.sources.is_empty() {
        anyhow::bail!("configuration error: no [[sources]] configured");
    }
    let tokenizer_path = config.tokenizer.resolved_path();
    let counter = TokenCounter::from_file(&tokenizer_path)?;
    config
        .chunking
        .validate(counter.special_tokens())
        .map_err(|e| anyhow::anyhow!("configuration error: [chunking] {e}"))?;
    let transform = config.transform.clone().build()?;
    let sources = config
        .sources
        .iter()
        .cloned()
        .map(|s| s.build())
        .collect::<Result<Vec<_>, _>>()
        .context("cannot start sources")?;
    Ok(
        Topology::new(config.pipeline.clone(), store.clone(), shutdown)
            .sources(sources)
            .then(transform)
            .then(ChunkRouter::new(config.chunking.clone(), counter))
            .then_stream(BatchWriter::new(config.batch.clone(), store)),
    )
}

/// batch_loader -> embed (-> vector store sink, next).
///
/// The embedder is built by the caller, before any source is read, so that a missing key or
/// model fails the command at once rather than after the fetch half has done its work.
pub fn embed_half(
    config: &KassConfig,
    batches: Flow<BatchRef>,
    store: Arc<dyn ObjectStore>,
    embedder: Arc<Embedder>,
) -> Flow<EmbeddedChunk> {
    batches
        .then(BatchLoader::new(store))
        .then_stream(config.embed.stage(embedder))
}

/// The embedding endpoints `[embed]` configures (loads the local model).
pub fn build_embedder(config: &KassConfig) -> Result<Arc<Embedder>> {
    Ok(config.embed.build_embedder()?)
}
