//! Skips chunks already in the collection before they cost an embedding call. A chunk's id
//! covers its content hash, so an id Chroma already holds means the same text: a re-run over
//! unchanged data makes no embedding requests at all.
//!
//! A skipped chunk whose document changed length (a chat day that got one more message keeps
//! its earlier chunks) still matters: its stored `document_chunks` is brought up to date
//! and the positions past the document's new end are deleted, without embedding anything.
//!
//! If Chroma is unreachable, nothing more is embedded: vectors that cannot be stored only
//! spend the provider's budget, and a redelivery would pay again. The stage holds its chunks
//! ([`super::outage`]); past the hold the chunks are dead-lettered as `chroma_unavailable`,
//! unembedded, which leaves their delivery for a retry. Any other failure to ask (an odd answer) lets the chunks
//! pass: embedding them again is only a cost, and the upsert is idempotent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use kass_pipeline::model::chunk_keys;
use kass_pipeline::{
    telemetry, Chunk, FailureKind, FatalError, Inlet, ItemError, Outlet, StageContext, StreamStage,
};

use super::client::GetResult;
use super::outage;
use super::stale;
use super::target::ChromaTarget;
use super::ChromaError;

pub struct SkipStored {
    target: Arc<ChromaTarget>,
    max_wait: Duration,
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
        let mut resized = Vec::new();
        for chunk in chunks {
            if let Some(stored_n) = stored.get(&chunk.id) {
                telemetry::chroma_skipped(&chunk.source);
                let n = chunk.document_chunks();
                if n.is_some() && n != *stored_n {
                    resized.push(chunk);
                }
                continue;
            }
            out.send(chunk).await.map_err(|e| FatalError::Stage {
                stage: "skip_stored".into(),
                reason: e.to_string(),
            })?;
        }
        if !resized.is_empty() {
            self.record_new_lengths(&resized).await;
        }
        Ok(())
    }

    /// The ids among `chunks` that Chroma holds, with their recorded document length; waits out
    /// an outage for at most the hold (see the module docs).
    async fn stored(
        &self,
        chunks: &[Chunk],
        ctx: &StageContext,
    ) -> Result<HashMap<String, Option<i64>>, ChromaError> {
        let ids: Vec<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
        let found = outage::hold(&self.target, ctx, || {
            self.target.client.get(
                &self.target.collection.id,
                Some(&ids),
                None,
                &["metadatas"],
                None,
                None,
            )
        })
        .await;
        match found {
            Ok(found) => Ok(lengths(found)),
            Err(e @ ChromaError::Unavailable { .. }) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask Chroma which chunks it holds; embedding them all");
                Ok(HashMap::new())
            }
        }
    }

    /// Stored chunks of documents that changed length: new count in their metadata, positions
    /// past the new end deleted.
    async fn record_new_lengths(&self, chunks: &[Chunk]) {
        let ids: Vec<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
        let metadatas: Vec<Map<String, Value>> = chunks
            .iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert(
                    chunk_keys::DOCUMENT_CHUNKS.into(),
                    c.document_chunks().into(),
                );
                m
            })
            .collect();
        if let Err(e) = self
            .target
            .client
            .update_metadata(&self.target.collection.id, &ids, &metadatas)
            .await
        {
            tracing::warn!(error = %e, "cannot record new document lengths");
        }
        stale::delete_stale(&self.target, chunks).await;
    }
}

/// Ids found, with the `document_chunks` each records.
fn lengths(found: GetResult) -> HashMap<String, Option<i64>> {
    let metadatas = found.metadatas.unwrap_or_default();
    found
        .ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let n = metadatas
                .get(i)
                .and_then(Option::as_ref)
                .and_then(|m| m.get(chunk_keys::DOCUMENT_CHUNKS))
                .and_then(Value::as_i64);
            (id, n)
        })
        .collect()
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
