//! The embed half on its own, fed by announcements of batch files instead of the batch writer:
//! S3 events from an SQS queue (`kass embed --listen`), a Lambda invocation (`kass-embedder`),
//! or listed keys (`kass embed --keys`, `kass replay`).
//!
//! Each unit of delivery (one poll of the queue, one invocation, one replay) runs the embed
//! half to completion over its batches, and only then is acknowledged. When a batch's chunks
//! ended in a dead letter only because a service was down, the delivery is not acknowledged,
//! so SQS or Lambda deliver it again; ids are deterministic and stored chunks are skipped
//! before embedding, so a second delivery duplicates nothing and costs little.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use futures::stream;
use serde_json::Value;

use kass_pipeline::batch::BatchRef;
use kass_pipeline::dead_letter::DeadLetter;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::ObjectStore;
use kass_pipeline::topology::RunReport;
use kass_pipeline::{telemetry, Chunk, EmbeddedChunk, ItemError, Topology};
use kass_sinks::chroma::{ChromaSink, ChromaTarget};
use kass_sources::s3_events::sqs::SqsQueue;
use kass_sources::s3_events::{self, UnknownEvent};
use kass_stages::embed::Embedder;

use crate::config::KassConfig;
use crate::topology::{build_embedder, connect_chroma, embed_chunks, embed_half};

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

    /// Embeds and stores the chunks of `batches` (one pipeline, run to its end).
    pub async fn embed(&self, batches: Vec<BatchRef>) -> Result<RunReport> {
        if batches.is_empty() {
            return Ok(RunReport::default());
        }
        let flow = Topology::new(
            self.config.pipeline.clone(),
            self.store.clone(),
            self.shutdown.clone(),
        )
        .from_stream("batch_announcements", stream::iter(batches));
        let report = embed_half(
            &self.config,
            flow,
            self.store.clone(),
            self.embedder.clone(),
            self.target.clone(),
        )
        .run(|_| {})
        .await?;
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
        Ok(embed_chunks(
            &self.config,
            flow,
            self.embedder.clone(),
            self.target.clone(),
        )
        .run(|_| {})
        .await?)
    }

    /// Stores vectors already computed (with this collection's model), without embedding.
    pub async fn store_vectors(&self, vectors: Vec<EmbeddedChunk>) -> Result<RunReport> {
        if vectors.is_empty() {
            return Ok(RunReport::default());
        }
        let wait = std::time::Duration::from_millis(self.config.chroma.max_wait_ms);
        Ok(self
            .topology()
            .from_stream("dead_letters", stream::iter(vectors))
            .then_stream(ChromaSink::new(self.target.clone(), wait))
            .run(|_| {})
            .await?)
    }
}

/// Batches named by a set of notifications, each once.
#[derive(Debug, Default)]
pub struct Announced {
    pub batches: Vec<BatchRef>,
    keys: HashSet<String>,
    /// Records skipped, by reason label.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Batches announced again within this set.
    pub duplicates: u64,
}

impl Announced {
    /// Adds what one notification names; an unparseable one is returned for the caller to
    /// dead-letter.
    pub fn add(&mut self, notification: Value) -> Result<(), UnknownEvent> {
        self.record(s3_events::announcement::parse_value(notification))
    }

    /// [`Announced::add`] for a message body (JSON text).
    pub fn add_body(&mut self, body: &str) -> Result<(), UnknownEvent> {
        self.record(s3_events::parse_notification(body))
    }

    fn record(
        &mut self,
        parsed: Result<s3_events::Parsed, UnknownEvent>,
    ) -> Result<(), UnknownEvent> {
        let parsed = parsed.inspect_err(|_| {
            telemetry::events_skipped("unknown_event");
            *self.skipped.entry("unknown_event").or_default() += 1;
        })?;
        for skip in &parsed.skipped {
            telemetry::events_skipped(skip.label());
            *self.skipped.entry(skip.label()).or_default() += 1;
            tracing::debug!(reason = %skip, "event record skipped");
        }
        for batch in parsed.batches {
            telemetry::events_batch(&batch.source);
            // A multipart upload announces twice; S3 delivers at least once.
            if self.keys.insert(batch.key.clone()) {
                self.batches.push(batch.batch_ref());
            } else {
                telemetry::events_duplicate();
                self.duplicates += 1;
            }
        }
        Ok(())
    }
}

/// Records a notification nobody can read, so that it is seen and not retried forever.
pub async fn dead_letter_event(
    store: &dyn ObjectStore,
    origin: &str,
    id: &str,
    body: &str,
    error: &UnknownEvent,
) -> Result<()> {
    let letter = DeadLetter::new(
        "s3_events",
        origin,
        id,
        &Value::String(body.to_string()),
        &ItemError::new("unknown_event", error.to_string()),
    );
    store
        .put(&letter.key(), serde_json::to_vec_pretty(&letter)?)
        .await?;
    tracing::warn!(origin, id, error = %error, "unreadable event dead-lettered");
    Ok(())
}

/// Wait after a failed poll or embedding before trying again.
const OUTAGE_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Makes messages visible again at once (best effort: otherwise the timeout does it).
async fn release(queue: &SqsQueue, messages: &[kass_sources::s3_events::sqs::QueueMessage]) {
    for message in messages {
        if let Err(e) = queue.release(message).await {
            tracing::warn!(error = %e, "cannot hand a message back");
        }
    }
}

/// What a listener did before it stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListenReport {
    pub messages_deleted: u64,
    pub messages_left_for_retry: u64,
    pub chunks_stored: u64,
    pub dead_letters: u64,
    pub batches: u64,
    pub duplicates: u64,
    /// Event records not embedded, by reason label.
    pub skipped: BTreeMap<&'static str, u64>,
}

/// Polls `queue` and embeds what its messages announce until shut down (or, with
/// `until_idle`, until a poll comes back empty).
pub async fn listen(half: &EmbedHalf, queue: &SqsQueue, until_idle: bool) -> Result<ListenReport> {
    let mut report = ListenReport::default();
    while !half.shutdown.is_triggered() {
        let received = tokio::select! {
            received = queue.receive() => received,
            _ = half.shutdown.requested() => break,
        };
        // A long-running consumer outlives outages: log, wait, poll again.
        let messages = match received {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "cannot receive from the queue; retrying in 5 s");
                tokio::time::sleep(OUTAGE_PAUSE).await;
                continue;
            }
        };
        if messages.is_empty() {
            if until_idle {
                break;
            }
            continue;
        }
        let invisible: Vec<_> = messages.iter().map(|m| queue.keep_invisible(m)).collect();
        let mut announced = Announced::default();
        for message in &messages {
            if let Err(error) = announced.add_body(&message.body) {
                report.dead_letters += 1;
                dead_letter_event(
                    half.store.as_ref(),
                    queue.url(),
                    &message.id,
                    &message.body,
                    &error,
                )
                .await?;
            }
        }
        let batches = announced.batches.len();
        report.batches += batches as u64;
        report.duplicates += announced.duplicates;
        for (reason, n) in &announced.skipped {
            *report.skipped.entry(reason).or_default() += n;
        }
        let run = match half.embed(announced.batches).await {
            Ok(run) => run,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "embedding failed; the messages go back to the queue");
                drop(invisible);
                release(queue, &messages).await;
                report.messages_left_for_retry += messages.len() as u64;
                tokio::time::sleep(OUTAGE_PAUSE).await;
                continue;
            }
        };
        drop(invisible);
        report.chunks_stored += run.outputs;
        report.dead_letters += run.dead_letters;
        if half.shutdown.is_triggered() {
            // Interrupted: some batches may not have been read. Hand the messages back now.
            release(queue, &messages).await;
            report.messages_left_for_retry += messages.len() as u64;
            break;
        }
        if run.retryable_dead_letters > 0 {
            // Leave the messages: they reappear after the visibility timeout (a pause that
            // lets the service come back), or go to the queue's redrive DLQ after
            // maxReceiveCount.
            tracing::warn!(
                messages = messages.len(),
                retryable = run.retryable_dead_letters,
                "a service was down for some chunks; leaving the messages for redelivery"
            );
            report.messages_left_for_retry += messages.len() as u64;
            continue;
        }
        for message in &messages {
            match queue.delete(message).await {
                Ok(()) => report.messages_deleted += 1,
                // Redelivered later; stored chunks are skipped then, so it costs little.
                Err(e) => tracing::warn!(error = %e, "cannot delete a done message"),
            }
        }
        tracing::info!(
            messages = messages.len(),
            batches,
            stored = run.outputs,
            "poll done"
        );
    }
    Ok(report)
}
