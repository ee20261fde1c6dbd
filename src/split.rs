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
use kass_pipeline::dead_letter::{DeadLetter, Recovered};
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{ObjectStore, StoreConfig};
use kass_pipeline::topology::RunReport;
use kass_pipeline::{
    telemetry, Chunk, EmbeddedChunk, FailureKind, Flow, ItemError, ItemKind, Topology,
};
use kass_sinks::chroma::{ChromaSink, ChromaTarget, StoredChunk};
use kass_sources::s3_events::sqs::{QueueMessage, SqsQueue};
use kass_sources::s3_events::{self, UnknownEvent};
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
        Announced::for_bucket(match &self.config.store {
            StoreConfig::S3(s3) => Some(s3.bucket.clone()),
            StoreConfig::Local { .. } => None,
        })
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
        let wait = std::time::Duration::from_millis(self.config.chroma.max_wait_ms);
        let flow = self
            .topology()
            .from_stream("dead_letters", stream::iter(vectors))
            .then_stream(ChromaSink::new(self.target.clone(), wait));
        self.run_and_retire(flow, Vec::new()).await
    }
}

/// Retires the dead letters of what went through now; a failure only leaves them listed.
pub async fn retire_letters(store: &dyn ObjectStore, recovered: &Recovered) {
    if let Err(e) = kass_pipeline::dead_letter::retire(store, recovered).await {
        tracing::warn!(error = %e, "cannot retire the dead letters of recovered items");
    }
}

/// Batches named by a set of notifications, each once.
#[derive(Debug, Default)]
pub struct Announced {
    /// The store's bucket: announcements of objects elsewhere are refused.
    bucket: Option<String>,
    pub batches: Vec<BatchRef>,
    keys: HashSet<String>,
    /// Records skipped, by reason label.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Batches announced again within this set.
    pub duplicates: u64,
}

impl Announced {
    /// Announcements for the store's bucket only (`None`: a local store, any bucket).
    pub fn for_bucket(bucket: Option<String>) -> Self {
        Self {
            bucket,
            ..Self::default()
        }
    }

    /// Adds what one notification names; an unparseable one is returned for the caller to
    /// dead-letter. Returns the batch keys it named (repeats included).
    pub fn add(&mut self, notification: Value) -> Result<Vec<String>, UnknownEvent> {
        self.record(s3_events::announcement::parse_value(notification))
    }

    /// [`Announced::add`] for a message body (JSON text).
    pub fn add_body(&mut self, body: &str) -> Result<Vec<String>, UnknownEvent> {
        self.record(s3_events::parse_notification(body))
    }

    fn record(
        &mut self,
        parsed: Result<s3_events::Parsed, UnknownEvent>,
    ) -> Result<Vec<String>, UnknownEvent> {
        let mut parsed = parsed.inspect_err(|_| {
            telemetry::events_skipped("unknown_event");
            *self.skipped.entry("unknown_event").or_default() += 1;
        })?;
        if let Some(bucket) = &self.bucket {
            parsed.keep_bucket(bucket);
        }
        for skip in &parsed.skipped {
            telemetry::events_skipped(skip.label());
            *self.skipped.entry(skip.label()).or_default() += 1;
            match skip {
                s3_events::Skip::OtherBucket { .. } | s3_events::Skip::UnsupportedVersion(_) => {
                    tracing::warn!(reason = %skip, "event record refused")
                }
                _ => tracing::debug!(reason = %skip, "event record skipped"),
            }
        }
        let mut named = Vec::with_capacity(parsed.batches.len());
        for batch in parsed.batches {
            telemetry::events_batch(&batch.source);
            named.push(batch.key.clone());
            // A multipart upload announces twice; S3 delivers at least once.
            if self.keys.insert(batch.key.clone()) {
                self.batches.push(batch.batch_ref());
            } else {
                telemetry::events_duplicate();
                self.duplicates += 1;
            }
        }
        Ok(named)
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
        ItemKind::Event,
        &Value::String(body.to_string()),
        &ItemError::new(FailureKind::UnknownEvent, error.to_string()),
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
async fn release(queue: &SqsQueue, messages: &[QueueMessage]) {
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
    /// Polls whose work failed as a whole (their messages were handed back).
    pub failed_polls: u64,
    /// Stopped by Ctrl-C (or SIGTERM) rather than by an idle queue.
    pub interrupted: bool,
}

/// What one poll's messages named, message by message.
struct Poll {
    announced: Announced,
    /// Per message: the batch keys it named, or `None` when it could not be recorded (left
    /// for redelivery).
    named: Vec<Option<Vec<String>>>,
}

/// Polls `queue` and embeds what its messages announce until shut down (or, with
/// `until_idle`, until a poll comes back empty). Nothing one poll holds stops the listener:
/// an unreadable event is dead-lettered, a batch that cannot be read is dead-lettered alone,
/// and a poll whose work fails as a whole hands its messages back and is tried again later.
pub async fn listen(half: &EmbedHalf, queue: &SqsQueue, until_idle: bool) -> ListenReport {
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
                pause(half).await;
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
        let poll = read_poll(half, queue, &messages, &mut report).await;
        let run = match half.embed(poll.announced.batches).await {
            Ok(run) => run,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "this poll's work failed; its messages go back to the queue");
                drop(invisible);
                release(queue, &messages).await;
                report.failed_polls += 1;
                report.messages_left_for_retry += messages.len() as u64;
                pause(half).await;
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
        acknowledge(queue, &messages, &poll.named, &run, &mut report).await;
    }
    report.interrupted = half.shutdown.is_triggered();
    report
}

/// Records every message of a poll; unreadable events are dead-lettered.
async fn read_poll(
    half: &EmbedHalf,
    queue: &SqsQueue,
    messages: &[QueueMessage],
    report: &mut ListenReport,
) -> Poll {
    let mut announced = half.announced();
    let mut named = Vec::with_capacity(messages.len());
    for message in messages {
        match announced.add_body(&message.body) {
            Ok(keys) => named.push(Some(keys)),
            Err(error) => {
                let letter = dead_letter_event(
                    half.store.as_ref(),
                    queue.url(),
                    &message.id,
                    &message.body,
                    &error,
                )
                .await;
                match letter {
                    Ok(()) => {
                        report.dead_letters += 1;
                        named.push(Some(Vec::new()));
                    }
                    Err(e) => {
                        // Not recorded anywhere: the message itself must stay.
                        tracing::error!(error = %format!("{e:#}"), id = %message.id, "cannot dead-letter an unreadable event; leaving it in the queue");
                        named.push(None);
                    }
                }
            }
        }
    }
    report.batches += announced.batches.len() as u64;
    report.duplicates += announced.duplicates;
    for (reason, n) in &announced.skipped {
        *report.skipped.entry(reason).or_default() += n;
    }
    Poll { announced, named }
}

/// Deletes the messages whose work is done; leaves the others for redelivery (after the
/// visibility timeout, or to the queue's redrive DLQ after `maxReceiveCount`).
async fn acknowledge(
    queue: &SqsQueue,
    messages: &[QueueMessage],
    named: &[Option<Vec<String>>],
    run: &RunReport,
    report: &mut ListenReport,
) {
    let outage = run.service_outages() > 0;
    if outage {
        tracing::warn!(
            messages = messages.len(),
            retryable = run.retryable_dead_letters,
            "a service was down for some chunks; leaving the messages for redelivery"
        );
    }
    for (message, keys) in messages.iter().zip(named) {
        let done = !outage
            && keys
                .as_ref()
                .is_some_and(|keys| keys.iter().all(|k| !run.retryable_batch_keys.contains(k)));
        if !done {
            report.messages_left_for_retry += 1;
            continue;
        }
        match queue.delete(message).await {
            Ok(()) => report.messages_deleted += 1,
            // Redelivered later; stored chunks are skipped then, so it costs little.
            Err(e) => tracing::warn!(error = %e, "cannot delete a done message"),
        }
    }
    tracing::info!(
        messages = messages.len(),
        stored = run.outputs,
        dead_letters = run.dead_letters,
        "poll done"
    );
}

/// Waits out an outage, unless asked to stop.
async fn pause(half: &EmbedHalf) {
    tokio::select! {
        _ = tokio::time::sleep(OUTAGE_PAUSE) => {}
        _ = half.shutdown.requested() => {}
    }
}
