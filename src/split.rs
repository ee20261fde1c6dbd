//! The embed half on its own, fed by announcements of batch files instead of the batch writer:
//! S3 events from an SQS queue (`kass embed --listen`), a Lambda invocation (`kass-embedder`:
//! an S3 event, or an SQS event of S3 notifications from an event source mapping), or listed
//! keys (`kass embed --keys`, `kass replay`).
//!
//! Each unit of delivery (one poll of the queue, one invocation, one replay) runs the embed
//! half to completion over its batches, and only then is acknowledged. When a batch's chunks
//! ended in a dead letter only because a service was down, the delivery is not acknowledged,
//! so SQS or Lambda deliver it again; ids are deterministic and stored chunks are skipped
//! before embedding, so a second delivery duplicates nothing and costs little.

use std::sync::Arc;

use anyhow::Result;
use futures::stream;

use kass_pipeline::batch::BatchRef;
use kass_pipeline::dead_letter::Recovered;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{ObjectStore, StoreConfig};
use kass_pipeline::topology::RunReport;
use kass_pipeline::{Chunk, EmbeddedChunk, Flow, Topology};
use kass_sinks::chroma::{ChromaTarget, StoredChunk};
use kass_sources::s3_events::listener::{listen, ListenReport, Listener};
use kass_sources::s3_events::sqs::SqsQueue;
use kass_sources::s3_events::sqs_event::{Delivery, Message, SqsBatchResponse};
use kass_sources::s3_events::Announced;
use kass_stages::embed::Embedder;

use crate::assembly::{build_embedder, connect_chroma, embed_chunks, embed_half};
use crate::config::KassConfig;

/// The embed half's long-lived parts, resolved once: a Lambda keeps them across invocations,
/// a listener across polls.
pub struct EmbedHalf {
    pub config: KassConfig,
    pub store: Arc<dyn ObjectStore>,
    embedder: Arc<Embedder>,
    target: Arc<ChromaTarget>,
    shutdown: Shutdown,
}

impl EmbedHalf {
    pub async fn connect(
        config: KassConfig,
        store: Arc<dyn ObjectStore>,
        shutdown: Shutdown,
    ) -> Result<Self> {
        let embedder = build_embedder(&config)?;
        let target = connect_chroma(&config, &embedder).await?;
        Ok(Self {
            config,
            store,
            embedder,
            target,
            shutdown,
        })
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// An empty set of announcements, refusing objects outside the store's bucket.
    pub fn announced(&self) -> Announced {
        Announced::for_bucket(self.bucket())
    }

    /// The store's bucket, if it is one.
    fn bucket(&self) -> Option<String> {
        match &self.config.store {
            StoreConfig::S3(s3) => Some(s3.bucket.clone()),
            StoreConfig::Local { .. } => None,
        }
    }

    /// Embeds and stores the chunks of `batches` (one pipeline, run to its end).
    pub async fn embed(&self, batches: Vec<BatchRef>) -> Result<RunReport> {
        if batches.is_empty() {
            return Ok(RunReport::default());
        }
        let keys: Vec<String> = batches.iter().map(|b| b.key.clone()).collect();
        let flow = Topology::new(
            self.config.pipeline.clone(),
            self.store.clone(),
            self.shutdown.clone(),
        )
        .from_stream("batch_announcements", stream::iter(batches));
        let flow = embed_half(
            &self.config,
            flow,
            self.store.clone(),
            self.embedder.clone(),
            self.target.clone(),
        );
        self.run_and_retire(flow, keys).await
    }

    /// Runs a flow to its end, then retires the dead letters of what went through (chunks
    /// stored; of `batches`, those read): they failed on an earlier try and are not lost.
    async fn run_and_retire(
        &self,
        flow: Flow<StoredChunk>,
        batches: Vec<String>,
    ) -> Result<RunReport> {
        let mut recovered = Recovered::default();
        let report = flow
            .run(|chunk| {
                recovered.chunks.insert(chunk.id);
            })
            .await?;
        // Interrupted, some batches were never read: only a finished run says which were.
        if !self.shutdown.is_triggered() {
            recovered.batches = batches
                .into_iter()
                .filter(|k| !report.failed_batch_keys.contains(k))
                .collect();
        }
        retire_letters(self.store.as_ref(), &recovered).await;
        Ok(report)
    }
}

impl EmbedHalf {
    fn topology(&self) -> Topology {
        Topology::new(
            self.config.pipeline.clone(),
            self.store.clone(),
            self.shutdown.clone(),
        )
    }

    /// Embeds and stores chunks (dead-lettered ones being re-run).
    pub async fn embed_chunks(&self, chunks: Vec<Chunk>) -> Result<RunReport> {
        if chunks.is_empty() {
            return Ok(RunReport::default());
        }
        let flow = self
            .topology()
            .from_stream("dead_letters", stream::iter(chunks));
        let flow = embed_chunks(
            &self.config,
            flow,
            self.embedder.clone(),
            self.target.clone(),
        );
        self.run_and_retire(flow, Vec::new()).await
    }

    /// Stores vectors already computed (with this collection's model), without embedding.
    pub async fn store_vectors(&self, vectors: Vec<EmbeddedChunk>) -> Result<RunReport> {
        if vectors.is_empty() {
            return Ok(RunReport::default());
        }
        let flow = self
            .topology()
            .from_stream("dead_letters", stream::iter(vectors))
            .then_stream(self.config.chroma.build_sink(self.target.clone()));
        self.run_and_retire(flow, Vec::new()).await
    }
}

/// Retires the dead letters of what went through now; a failure only leaves them listed.
pub async fn retire_letters(store: &dyn ObjectStore, recovered: &Recovered) {
    if let Err(e) = kass_pipeline::dead_letter::retire(store, recovered).await {
        tracing::warn!(error = %e, "cannot retire the dead letters of recovered items");
    }
}

/// The embed half fed by an SQS event (the embedder Lambda behind an event source mapping).
impl EmbedHalf {
    /// Embeds what the messages announce, as one run, and answers the messages to deliver
    /// again: those whose batch files could not be read, every one that named batches when a
    /// service was down or the run failed as a whole, and an unreadable event whose dead
    /// letter could not be written. Never an error for one message's failure: an error would
    /// make SQS deliver the whole batch again.
    pub async fn embed_sqs(&self, messages: Vec<Message>) -> (SqsBatchResponse, serde_json::Value) {
        let mut delivery =
            Delivery::read(self.store.as_ref(), "lambda-sqs", self.bucket(), &messages).await;
        let keys: Vec<String> = delivery
            .announced
            .batches
            .iter()
            .map(|b| b.key.clone())
            .collect();
        let run = self
            .embed(std::mem::take(&mut delivery.announced.batches))
            .await
            .inspect_err(|e| tracing::error!(error = %format!("{e:#}"), "the event's run failed; every message that named batches is answered as failed"))
            .ok();
        let answer = delivery.batch_item_failures(run.as_ref());
        let summary = serde_json::json!({
            "messages": messages.len(),
            "batches": keys,
            "stored": run.as_ref().map(|r| r.outputs),
            "dead_letters": run.as_ref().map_or(0, |r| r.dead_letters) + delivery.dead_letters,
            "failed_batches": run.as_ref().map(|r| &r.failed_batch_keys),
            "skipped": delivery.announced.skipped,
            "messages_failed": answer.batch_item_failures.len(),
        });
        (answer, summary)
    }
}

/// The embed half as the S3-event listener's callback.
impl EmbedHalf {
    /// Consumes the queue (see [`kass_sources::s3_events::listener::listen`]).
    pub async fn listen(&self, queue: &SqsQueue, until_idle: bool) -> ListenReport {
        let listener = Listener {
            queue,
            store: self.store.clone(),
            bucket: self.bucket(),
            shutdown: self.shutdown.clone(),
            until_idle,
        };
        listen(&listener, |batches| async move {
            self.embed(batches).await.map_err(|e| format!("{e:#}"))
        })
        .await
    }
}
