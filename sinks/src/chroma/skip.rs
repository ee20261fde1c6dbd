//! Skips chunks already in the collection before they cost an embedding call. A chunk's id
//! covers its content hash, so an id Chroma already holds means the same text: a re-run over
//! unchanged data makes no embedding requests at all.
//!
//! If Chroma cannot be asked (down past the retries), the chunks pass through: embedding them
//! again is only a cost, and the upsert is idempotent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use kass_pipeline::{telemetry, Chunk, FatalError, Inlet, Outlet, StageContext, StreamStage};

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
        let stored = match self
            .target
            .client
            .get(
                &self.target.collection.id,
                Some(&ids),
                None,
                &[],
                None,
                None,
            )
            .await
        {
            Ok(found) => found
                .ids
                .into_iter()
                .collect::<std::collections::HashSet<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask Chroma which chunks it holds; embedding them all");
                Default::default()
            }
        };
        for chunk in chunks {
            if stored.contains(&chunk.id) {
                telemetry::chroma_skipped(&chunk.source);
                continue;
            }
            out.send(chunk).await.map_err(|e| FatalError::Stage {
                stage: "skip_stored".into(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
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
