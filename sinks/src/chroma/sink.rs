//! The Chroma sink: the embed half's last stage. Upserts vectors in batches no larger than the
//! server allows, with the deterministic chunk ids (so re-processing a batch changes nothing),
//! and deletes the chunks an edit replaced or a shorter document left past its end.
//!
//! The documents written are then settled ([`super::stale`]): grouped, at most every 30
//! seconds or one server batch of chunks, and always before a chunk is reported stored (so before its batch is acknowledged).
//!
//! Chroma down: the sink holds the vectors and tries again ([`super::outage`]); past the hold,
//! the batch's vectors are dead-lettered (vectors included, so a
//! re-run need not embed them again) and the run goes on. A record Chroma refuses is isolated by
//! writing the batch's records one by one: only the refused one is dead-lettered.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use kass_pipeline::{
    telemetry, EmbeddedChunk, FailureKind, FatalError, Inlet, ItemError, Outlet, PipelineItem,
    StageContext, StreamStage,
};

use super::metadata::{refused_key, to_chroma};
use super::outage;
use super::stale;
use super::target::ChromaTarget;
use super::ChromaError;

/// A chunk durably in Chroma.
#[derive(Debug, Clone, Serialize)]
pub struct StoredChunk {
    pub id: String,
    pub source: String,
}

impl PipelineItem for StoredChunk {
    fn source(&self) -> &str {
        &self.source
    }
    fn item_id(&self) -> String {
        self.id.clone()
    }
}

/// Longest the documents of written chunks wait to be settled (stale, superseded and deleted
/// chunks removed) and acknowledged. The chunks are searchable from their upsert on; what
/// waits is the removal of what they replaced, and the acknowledgement of their batch (the
/// listener keeps its messages invisible meanwhile). Settling a group costs two reads of the
/// store whatever its size, so a slow embedder (one write every few seconds) still settles
/// many writes at once.
const SETTLE_EVERY: Duration = Duration::from_secs(30);

pub struct ChromaSink {
    target: Arc<ChromaTarget>,
    max_wait: Duration,
}

impl ChromaSink {
    pub fn new(target: Arc<ChromaTarget>, max_wait: Duration) -> Self {
        Self { target, max_wait }
    }

    async fn upsert(&self, batch: &[EmbeddedChunk]) -> Result<(), ChromaError> {
        let ids: Vec<&str> = batch.iter().map(|e| e.chunk.id.as_str()).collect();
        let embeddings: Vec<&[f32]> = batch.iter().map(|e| e.embedding.as_slice()).collect();
        let documents: Vec<&str> = batch.iter().map(|e| e.chunk.text.as_str()).collect();
        let metadatas: Vec<_> = batch.iter().map(|e| to_chroma(&e.chunk)).collect();
        self.target
            .client
            .upsert(
                &self.target.collection.id,
                &ids,
                &embeddings,
                &documents,
                &metadatas,
            )
            .await
    }

    /// Writes one batch: returns the chunks stored (each counted, its latency to searchable
    /// measured), dead-letters the rest.
    async fn write(
        &self,
        batch: Vec<EmbeddedChunk>,
        ctx: &StageContext,
    ) -> Result<Vec<EmbeddedChunk>, FatalError> {
        let mut stored = Vec::new();
        // An outage is waited out with the vectors in hand: they cost an embedding each.
        match outage::hold(&self.target, ctx, || self.upsert(&batch)).await {
            Ok(()) => stored = batch,
            Err(ChromaError::Rejected { .. }) if batch.len() > 1 => {
                for one in batch {
                    match self.upsert(std::slice::from_ref(&one)).await {
                        Ok(()) => stored.push(one),
                        Err(e) => dead_letter(ctx, &one, &explain(&one, e)).await?,
                    }
                }
            }
            Err(e) => {
                let e = match batch.as_slice() {
                    [one] => explain(one, e),
                    _ => e,
                };
                for one in &batch {
                    dead_letter(ctx, one, &e).await?;
                }
            }
        }
        let now = chrono::Utc::now();
        for e in &stored {
            telemetry::chroma_upserted(&e.chunk.source);
            if let Some(written) = e.chunk.written_at.0 {
                let seconds = (now - written).num_milliseconds() as f64 / 1000.0;
                telemetry::latency_to_searchable(&e.chunk.source, seconds);
            }
        }
        Ok(stored)
    }

    /// Settles the documents of the chunks written since the last settle ([`stale::settle`]),
    /// then reports them stored: a chunk is acknowledged (its batch's message deleted, when
    /// split) only once its document is settled.
    async fn settle(
        &self,
        written: &mut Vec<EmbeddedChunk>,
        out: &Outlet<StoredChunk>,
    ) -> Result<(), FatalError> {
        if written.is_empty() {
            return Ok(());
        }
        stale::settle(&self.target, written.iter().map(|e| &e.chunk)).await;
        for e in written.drain(..) {
            out.send(StoredChunk {
                id: e.chunk.id,
                source: e.chunk.source,
            })
            .await
            .map_err(|e| FatalError::Stage {
                stage: "chroma_sink".into(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// Names the metadata key a single record was refused for, when it can be found.
fn explain(item: &EmbeddedChunk, error: ChromaError) -> ChromaError {
    match error {
        ChromaError::Rejected {
            what,
            status,
            message,
        } => match refused_key(&message, &to_chroma(&item.chunk)) {
            Some(key) => ChromaError::Rejected {
                what: format!("{what} of chunk {}: metadata key `{key}`", item.chunk.id),
                status,
                message,
            },
            None => ChromaError::Rejected {
                what,
                status,
                message,
            },
        },
        other => other,
    }
}

async fn dead_letter(
    ctx: &StageContext,
    item: &EmbeddedChunk,
    error: &ChromaError,
) -> Result<(), FatalError> {
    let error_type = match error {
        ChromaError::Unavailable { .. } => FailureKind::ChromaUnavailable,
        ChromaError::Rejected { .. } => FailureKind::ChromaRejected,
        ChromaError::Protocol { .. } => FailureKind::ChromaBadResponse,
    };
    ctx.dead_letter_item(item, &ItemError::new(error_type, error.to_string()))
        .await
}

#[async_trait]
impl StreamStage for ChromaSink {
    type Input = EmbeddedChunk;
    type Output = StoredChunk;

    fn name(&self) -> &'static str {
        "chroma_sink"
    }

    async fn run(
        self: Box<Self>,
        input: Inlet<EmbeddedChunk>,
        out: Outlet<StoredChunk>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        // Chunks are upserted as they come (searchable at once); the documents they belong
        // to are settled together, at most every SETTLE_EVERY or max_batch chunks, and before
        // the input waits: one read-back per group instead of one per write.
        let mut written: Vec<EmbeddedChunk> = Vec::new();
        let mut last_settle = tokio::time::Instant::now();
        loop {
            let first = if written.is_empty() {
                input.recv().await
            } else {
                let due = last_settle + SETTLE_EVERY;
                match tokio::time::timeout_at(due, input.recv()).await {
                    Ok(first) => first,
                    Err(_) => {
                        self.settle(&mut written, &out).await?;
                        last_settle = tokio::time::Instant::now();
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            let batch = input
                .fill_batch(first, self.target.max_batch, self.max_wait)
                .await;
            written.extend(self.write(batch, &ctx).await?);
            if written.len() >= self.target.max_batch || last_settle.elapsed() >= SETTLE_EVERY {
                self.settle(&mut written, &out).await?;
                last_settle = tokio::time::Instant::now();
            }
        }
        self.settle(&mut written, &out).await
    }
}
