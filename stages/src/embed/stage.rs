//! The embed stage: chunks in, vectors out, as fast as the provider allows.
//!
//! Requests are filled by the [`Batcher`], sent by up to `max_in_flight` tasks, and each
//! goes through the [`Embedder`] (rate limits, retries, fallback, poison isolation). While all
//! request slots are busy the stage stops reading its input, so a slow or rate-limited
//! provider slows the stages before it instead of filling memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinSet;

use kass_pipeline::{Chunk, EmbeddedChunk, FatalError, Inlet, Outlet, StageContext, StreamStage};

use super::batcher::Batcher;
use super::embedder::{ChunkOutcome, Embedder};
use super::RequestLimits;

pub struct EmbedStage {
    embedder: Arc<Embedder>,
    limits: RequestLimits,
    max_wait: Duration,
    max_in_flight: usize,
}

impl EmbedStage {
    pub fn new(
        embedder: Arc<Embedder>,
        limits: RequestLimits,
        max_wait: Duration,
        max_in_flight: usize,
    ) -> Self {
        Self {
            embedder,
            limits,
            max_wait,
            max_in_flight: max_in_flight.max(1),
        }
    }
}

async fn deliver(
    outcome: ChunkOutcome,
    out: &Outlet<EmbeddedChunk>,
    ctx: &StageContext,
) -> Result<(), FatalError> {
    for (chunk, error) in outcome.failed {
        ctx.dead_letter_item(&chunk, &error).await?;
    }
    for embedded in outcome.embedded {
        out.send(embedded).await.map_err(|e| FatalError::Stage {
            stage: "embed".into(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

#[async_trait]
impl StreamStage for EmbedStage {
    type Input = Chunk;
    type Output = EmbeddedChunk;

    fn name(&self) -> &'static str {
        "embed"
    }

    async fn run(
        self: Box<Self>,
        input: Inlet<Chunk>,
        out: Outlet<EmbeddedChunk>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        let mut batcher = Batcher::new(self.limits, self.max_wait);
        let mut ready: VecDeque<Vec<Chunk>> = VecDeque::new();
        // Spawned, not just polled here: a request must progress (and its timeout run) while
        // this loop waits on a slow downstream.
        let mut in_flight: JoinSet<Result<ChunkOutcome, FatalError>> = JoinSet::new();
        let mut input_open = true;
        loop {
            while in_flight.len() < self.max_in_flight {
                let Some(group) = ready.pop_front() else {
                    break;
                };
                let embedder = self.embedder.clone();
                in_flight.spawn(async move { embedder.embed_chunks(group).await });
            }
            if !input_open && ready.is_empty() && in_flight.is_empty() {
                break;
            }
            let deadline = batcher.deadline();
            tokio::select! {
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    let outcome = done.map_err(|e| FatalError::Panicked(format!("embed: {e}")))??;
                    deliver(outcome, &out, &ctx).await?;
                }
                item = input.recv(), if input_open && ready.is_empty() => match item {
                    Some(chunk) => {
                        let tokens = self.embedder.count_tokens(&chunk.text);
                        ready.extend(batcher.push(chunk, tokens));
                    }
                    None => {
                        input_open = false;
                        ready.extend(batcher.take());
                    }
                },
                _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await },
                    if deadline.is_some() && ready.is_empty() => {
                    ready.extend(batcher.take());
                }
            }
        }
        Ok(())
    }
}
