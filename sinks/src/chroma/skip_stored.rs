//! Skips chunks already in the collection before they cost an embedding call, and chunks of a
//! state older than the one stored. A chunk's id covers its content hash, so an id Chroma
//! already holds means the same text: a re-run over unchanged data makes no embedding
//! requests at all.
//!
//! The stored chunks of the incoming chunks' documents are read back once (by document, with
//! their metadata), which answers three questions per chunk:
//!
//! - **Older?** A chunk whose `document_version` is older than a version stored for its
//!   document belongs to a superseded state (a replay, a late redelivery): it is dropped, and
//!   nothing older ever overwrites anything newer.
//! - **Held?** Same id: the text is stored. Its metadata is brought up to date in place if it
//!   changed (a channel renamed, a newer version of an unchanged chunk, a document that changed
//!   length) without embedding anything; a document that changed length also has the positions
//!   past its new end deleted.
//! - Otherwise the chunk goes on to be embedded.
//!
//! If Chroma is unreachable, nothing more is embedded: vectors that cannot be stored only
//! spend the provider's budget, and a redelivery would pay again. The stage holds its chunks
//! ([`super::outage`]); past the hold the chunks are dead-lettered as `chroma_unavailable`,
//! unembedded, which leaves their delivery for a retry. Any other failure to ask (an odd
//! answer) lets the chunks pass: embedding them again is only a cost, and the upsert is
//! idempotent.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use kass_pipeline::model::{chunk_keys, DocumentVersion};
use kass_pipeline::{
    telemetry, Chunk, FailureKind, FatalError, Inlet, ItemError, Outlet, StageContext, StreamStage,
};

use super::documents;
use super::metadata::to_chroma;
use super::outage;
use super::stale::{self, stored_version};
use super::target::ChromaTarget;
use super::ChromaError;

pub struct SkipStored {
    target: Arc<ChromaTarget>,
    max_wait: Duration,
}

/// What the collection holds of some documents.
#[derive(Debug, Default)]
struct Stored {
    /// Stored id -> its metadata.
    records: HashMap<String, Map<String, Value>>,
    /// (source, document) -> the newest version stored.
    newest: HashMap<(String, String), DocumentVersion>,
}

impl SkipStored {
    pub fn new(target: Arc<ChromaTarget>, max_wait: Duration) -> Self {
        Self { target, max_wait }
    }

    async fn pass_new(
        &self,
        chunks: Vec<Chunk>,
        out: &Outlet<Chunk>,
        ctx: &StageContext,
    ) -> Result<(), FatalError> {
        let stored = match self.stored(&chunks, ctx).await {
            Ok(stored) => stored,
            Err(e) => {
                let error =
                    ItemError::new(FailureKind::ChromaUnavailable, format!("not embedded: {e}"));
                for chunk in &chunks {
                    ctx.dead_letter_item(chunk, &error).await?;
                }
                return Ok(());
            }
        };
        let mut changed = Vec::new();
        for chunk in chunks {
            let key = (chunk.source.clone(), chunk.document_id.clone());
            let newest = stored.newest.get(&key).copied();
            if newest.is_some_and(|newest| chunk.document_version().unwrap_or(0) < newest) {
                telemetry::chunk_superseded(&chunk.source);
                continue;
            }
            if let Some(metadata) = stored.records.get(&chunk.id) {
                telemetry::chroma_skipped(&chunk.source);
                let wanted = to_chroma(&chunk);
                if wanted.iter().any(|(k, v)| metadata.get(k) != Some(v)) {
                    let resized = metadata.get(chunk_keys::DOCUMENT_CHUNKS)
                        != wanted.get(chunk_keys::DOCUMENT_CHUNKS);
                    changed.push((chunk, wanted, resized));
                }
                continue;
            }
            out.send(chunk).await.map_err(|e| FatalError::Stage {
                stage: "skip_stored".into(),
                reason: e.to_string(),
            })?;
        }
        if !changed.is_empty() {
            self.update_in_place(&changed).await;
        }
        Ok(())
    }

    /// The stored chunks of the documents of `chunks`, with their metadata; waits out an
    /// outage for at most the hold (see the module docs).
    async fn stored(&self, chunks: &[Chunk], ctx: &StageContext) -> Result<Stored, ChromaError> {
        let mut by_source: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for chunk in chunks {
            by_source
                .entry(chunk.source.as_str())
                .or_default()
                .insert(chunk.document_id.as_str());
        }
        let mut stored = Stored::default();
        for (source, names) in by_source {
            let names: Vec<&str> = names.into_iter().collect();
            let found = outage::hold(&self.target, ctx, || {
                documents::stored_chunks(&self.target, source, &names)
            })
            .await;
            let found = match found {
                Ok(found) => found,
                Err(e @ ChromaError::Unavailable { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot ask Chroma which chunks it holds; embedding them all");
                    continue;
                }
            };
            for (id, metadata) in found {
                if let Some(document) = metadata
                    .get(chunk_keys::DOCUMENT_ID)
                    .and_then(Value::as_str)
                {
                    let newest = stored
                        .newest
                        .entry((source.to_string(), document.to_string()))
                        .or_insert(0);
                    *newest = (*newest).max(stored_version(&metadata));
                }
                stored.records.insert(id, metadata);
            }
        }
        Ok(stored)
    }

    /// Stored chunks whose metadata changed: updated in place (no embedding); documents that
    /// changed length also lose the positions past their new end.
    async fn update_in_place(&self, changed: &[(Chunk, Map<String, Value>, bool)]) {
        for part in changed.chunks(self.target.max_batch.max(1)) {
            let ids: Vec<&str> = part.iter().map(|(c, _, _)| c.id.as_str()).collect();
            let metadatas: Vec<Map<String, Value>> =
                part.iter().map(|(_, m, _)| m.clone()).collect();
            match self
                .target
                .client
                .update_metadata(&self.target.collection.id, &ids, &metadatas)
                .await
            {
                Ok(()) => {
                    for (chunk, _, _) in part {
                        telemetry::chroma_metadata_updated(&chunk.source);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot update stored chunks' metadata"),
            }
        }
        let resized = changed.iter().filter(|(_, _, r)| *r).map(|(c, _, _)| c);
        stale::settle(&self.target, resized).await;
    }
}

#[async_trait]
impl StreamStage for SkipStored {
    type Input = Chunk;
    type Output = Chunk;

    fn name(&self) -> &'static str {
        "skip_stored"
    }

    async fn run(
        self: Box<Self>,
        input: Inlet<Chunk>,
        out: Outlet<Chunk>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        while let Some(batch) = input.recv_batch(self.target.max_batch, self.max_wait).await {
            self.pass_new(batch, &out, &ctx).await?;
        }
        Ok(())
    }
}
