//! Skips chunks already in the collection before they cost an embedding call. A chunk's id
//! covers its content hash, so an id Chroma already holds means the same text: a re-run over
//! unchanged data makes no embedding requests at all.
//!
//! A skipped chunk whose document changed length (a chat day that got one more message keeps
//! its earlier chunks) still matters: its stored `document_chunks` is brought up to date
//! and the positions past the document's new end are deleted, without embedding anything.
//!
//! If Chroma cannot be asked (down past the retries), the chunks pass through: embedding them
//! again is only a cost, and the upsert is idempotent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use kass_pipeline::{telemetry, Chunk, FatalError, Inlet, Outlet, StageContext, StreamStage};

use super::stale;
use super::target::ChromaTarget;

pub struct SkipStored {
    target: Arc<ChromaTarget>,
    max_wait: Duration,
}

impl SkipStored {
    pub fn new(target: Arc<ChromaTarget>, max_wait: Duration) -> Self {
        Self { target, max_wait }
    }

    async fn pass_new(&self, chunks: Vec<Chunk>, out: &Outlet<Chunk>) -> Result<(), FatalError> {
        let ids: Vec<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
        let stored: HashMap<String, Option<i64>> = match self
            .target
            .client
            .get(
                &self.target.collection.id,
                Some(&ids),
                None,
                &["metadatas"],
                None,
                None,
            )
            .await
        {
            Ok(found) => {
                let metadatas = found.metadatas.unwrap_or_default();
                found
                    .ids
                    .into_iter()
                    .enumerate()
                    .map(|(i, id)| {
                        let n = metadatas
                            .get(i)
                            .and_then(Option::as_ref)
                            .and_then(|m| m.get(stale::DOCUMENT_CHUNKS))
                            .and_then(Value::as_i64);
                        (id, n)
                    })
                    .collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask Chroma which chunks it holds; embedding them all");
                Default::default()
            }
        };
        let mut resized = Vec::new();
        for chunk in chunks {
            if let Some(stored_n) = stored.get(&chunk.id) {
                telemetry::chroma_skipped(&chunk.source);
                let n = stale::document_chunks(&chunk);
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

    /// Stored chunks of documents that changed length: new count in their metadata, positions
    /// past the new end deleted.
    async fn record_new_lengths(&self, chunks: &[Chunk]) {
        let ids: Vec<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
        let metadatas: Vec<Map<String, Value>> = chunks
            .iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert(
                    stale::DOCUMENT_CHUNKS.into(),
                    stale::document_chunks(c).into(),
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
        stale::delete(&self.target, stale::past_end(chunks)).await;
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
        _ctx: StageContext,
    ) -> Result<(), FatalError> {
        while let Some(batch) = input.recv_batch(self.target.max_batch, self.max_wait).await {
            self.pass_new(batch, &out).await?;
        }
        Ok(())
    }
}
