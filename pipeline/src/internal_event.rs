//! Internal events: what happened inside kass that an operator may want to see, each written as
//! one log line and one metric by a single call, so the two never drift apart.
//!
//! ```
//! use kass_pipeline::internal_event::SqsMessageDeleted;
//! SqsMessageDeleted { message_id: "m-1" }.emit();
//! ```
//!
//! Every event is a small struct of borrowed fields; [`emit`](ItemDeadLettered::emit) consumes
//! it. The metric names are the constants of [`crate::telemetry`].

use std::fmt::Display;
use std::time::Duration;

use metrics::counter;

use crate::telemetry::{
    BATCHES_WRITTEN, BATCH_BYTES, CHROMA_OUTAGE_WAIT, CHROMA_STALE_DELETED, DEAD_LETTERS_RETIRED,
    EMBED_FALLBACKS, EMBED_RETRIES, EVENTS_SKIPPED, SQS_DELETED, STAGE_ERRORS,
};
use crate::FailureKind;

/// An item failed in `stage` and goes to the dead letters:
/// `kass_stage_errors_total{stage, source, error_type}` and a warning.
#[derive(Debug, Clone, Copy)]
pub struct ItemDeadLettered<'a> {
    pub stage: &'a str,
    pub source: &'a str,
    pub item_id: &'a str,
    pub kind: FailureKind,
    pub reason: &'a str,
}

impl ItemDeadLettered<'_> {
    pub fn emit(self) {
        let error_type = self.kind.label();
        counter!(STAGE_ERRORS, "stage" => self.stage.to_string(), "source" => self.source.to_string(), "error_type" => error_type)
            .increment(1);
        tracing::warn!(
            stage = self.stage,
            source = self.source,
            item_id = self.item_id,
            error_type,
            reason = self.reason,
            "item dead-lettered"
        );
    }
}

/// An embedding request failed and will be tried again after `delay`:
/// `kass_embed_retries_total{provider, reason}` and a warning.
#[derive(Clone, Copy)]
pub struct EmbedRetryScheduled<'a> {
    pub endpoint: &'a str,
    /// The failure class (`rate_limited`, `server_error`, `network`).
    pub reason: &'static str,
    /// Attempts made so far.
    pub attempt: u32,
    pub delay: Duration,
    pub error: &'a dyn Display,
}

impl EmbedRetryScheduled<'_> {
    pub fn emit(self) {
        counter!(EMBED_RETRIES, "provider" => self.endpoint.to_string(), "reason" => self.reason)
            .increment(1);
        tracing::warn!(
            endpoint = %self.endpoint,
            attempt = self.attempt,
            delay_ms = self.delay.as_millis() as u64,
            error = %self.error,
            "embedding request failed; retrying"
        );
    }
}

/// A Chroma call failed and will be tried again after `delay`: a warning. (Every try is counted
/// in `kass_http_requests_total{client="chroma"}` by the HTTP client already.)
#[derive(Clone, Copy)]
pub struct ChromaRetryScheduled<'a> {
    /// The call, as its error messages name it (`upsert into collection ...`).
    pub what: &'a str,
    pub attempt: u32,
    pub delay: Duration,
    pub error: &'a dyn Display,
}

impl ChromaRetryScheduled<'_> {
    pub fn emit(self) {
        tracing::warn!(
            what = self.what,
            attempt = self.attempt,
            delay_ms = self.delay.as_millis() as u64,
            error = %self.error,
            "Chroma call failed; retrying"
        );
    }
}

/// An embedding endpoint kept failing and the request moves to the next one of the chain:
/// `kass_embed_fallbacks_total{from, to}` and a warning.
#[derive(Clone, Copy)]
pub struct EmbedFallbackUsed<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub error: &'a dyn Display,
}

impl EmbedFallbackUsed<'_> {
    pub fn emit(self) {
        counter!(EMBED_FALLBACKS, "from" => self.from.to_string(), "to" => self.to.to_string())
            .increment(1);
        tracing::warn!(from = %self.from, to = %self.to, error = %self.error, "embedding endpoint keeps failing; using the fallback");
    }
}

/// Chroma is unreachable and `stage` holds its work for `pause` before trying again:
/// `kass_chroma_outage_wait_seconds_total` and a warning.
#[derive(Clone, Copy)]
pub struct ChromaOutageHeld<'a> {
    pub stage: &'a str,
    /// How long the outage has lasted so far.
    pub held: Duration,
    pub pause: Duration,
    pub error: &'a dyn Display,
}

impl ChromaOutageHeld<'_> {
    pub fn emit(self) {
        tracing::warn!(stage = %self.stage, error = %self.error, held_s = self.held.as_secs(), "Chroma unreachable: holding until it is back");
        counter!(CHROMA_OUTAGE_WAIT).increment(self.pause.as_secs_f64().ceil() as u64);
    }
}

/// Chunks an edit replaced were deleted from Chroma: `kass_chroma_stale_deleted_total` and a
/// debug line.
#[derive(Debug, Clone, Copy)]
pub struct StaleChunksDeleted<'a> {
    pub source: &'a str,
    pub count: u64,
}

impl StaleChunksDeleted<'_> {
    pub fn emit(self) {
        counter!(CHROMA_STALE_DELETED).increment(self.count);
        crate::tally::add("deleted", self.count);
        tracing::debug!(
            source = self.source,
            deleted = self.count,
            "stale chunks deleted"
        );
    }
}

/// The documents a batch's tombstones name were removed from Chroma:
/// `kass_chroma_tombstoned_deleted_total{source}` and an info line.
#[derive(Debug, Clone, Copy)]
pub struct DocumentsRemoved<'a> {
    pub source: &'a str,
    pub documents: usize,
    pub chunks: u64,
}

impl DocumentsRemoved<'_> {
    pub fn emit(self) {
        counter!(crate::telemetry::CHROMA_TOMBSTONED, "source" => self.source.to_string())
            .increment(self.chunks);
        crate::tally::add("deleted", self.chunks);
        tracing::info!(
            source = self.source,
            documents = self.documents,
            chunks = self.chunks,
            "deleted documents removed from Chroma"
        );
    }
}

/// A batch file was written: `kass_batches_written_total{source}`,
/// `kass_batch_written_bytes_total{source}` and a debug line.
#[derive(Debug, Clone, Copy)]
pub struct BatchWritten<'a> {
    pub source: &'a str,
    pub key: &'a str,
    pub chunk_count: usize,
    pub bytes: usize,
}

impl BatchWritten<'_> {
    pub fn emit(self) {
        counter!(BATCHES_WRITTEN, "source" => self.source.to_string()).increment(1);
        crate::tally::add("batches", 1);
        crate::tally::add("batch_chunks", self.chunk_count as u64);
        counter!(BATCH_BYTES, "source" => self.source.to_string()).increment(self.bytes as u64);
        tracing::debug!(
            key = self.key,
            chunk_count = self.chunk_count,
            bytes = self.bytes,
            "batch written"
        );
    }
}

/// Dead letters whose items went through on a later try were deleted:
/// `kass_dead_letters_retired_total` and an info line.
#[derive(Debug, Clone, Copy)]
pub struct DeadLettersRetired {
    pub count: u64,
}

impl DeadLettersRetired {
    pub fn emit(self) {
        counter!(DEAD_LETTERS_RETIRED).increment(self.count);
        tracing::info!(
            retired = self.count,
            "dead letters retired: their items went through on a later try"
        );
    }
}

/// An S3 event record names nothing to embed: `kass_events_skipped_total{reason}` and a line,
/// a warning when the record was `refused` (another bucket, an unsupported event version: a
/// misconfiguration), else a debug line (test events, other event types, non-batch keys).
#[derive(Clone, Copy)]
pub struct EventRecordSkipped<'a> {
    /// The metric label (`test_event`, `not_a_batch`, `other_bucket`, `unknown_event`, ...).
    pub reason: &'static str,
    /// What the log line says about the record.
    pub detail: &'a dyn Display,
    pub refused: bool,
}

impl EventRecordSkipped<'_> {
    pub fn emit(self) {
        counter!(EVENTS_SKIPPED, "reason" => self.reason).increment(1);
        if self.refused {
            tracing::warn!(reason = %self.detail, "event record refused");
        } else {
            tracing::debug!(reason = %self.detail, "event record skipped");
        }
    }
}

/// A message was deleted from the event queue, every batch it named done:
/// `kass_sqs_messages_deleted_total` and a debug line.
#[derive(Debug, Clone, Copy)]
pub struct SqsMessageDeleted<'a> {
    pub message_id: &'a str,
}

impl SqsMessageDeleted<'_> {
    pub fn emit(self) {
        counter!(SQS_DELETED).increment(1);
        tracing::debug!(message_id = self.message_id, "queue message deleted");
    }
}

/// A request of an API source failed and will be tried again after `delay`: a warning. (Every
/// try is counted in `kass_source_requests_total{source, method, status}` by the API client,
/// and a rate-limit pause in `kass_source_rate_limit_wait_seconds_total`.)
#[derive(Clone, Copy)]
pub struct SourceRetryScheduled<'a> {
    pub source: &'a str,
    /// The API method (`conversations.history`).
    pub method: &'a str,
    /// Attempts made so far.
    pub attempt: u32,
    pub delay: Duration,
    pub error: &'a dyn Display,
}

impl SourceRetryScheduled<'_> {
    pub fn emit(self) {
        tracing::warn!(
            source = self.source,
            method = self.method,
            attempt = self.attempt,
            delay_ms = self.delay.as_millis() as u64,
            error = %self.error,
            "API request failed; retrying"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;

    /// One counter increment: `(name, labels, by)`.
    type Increment = (String, Vec<(String, String)>, u64);
    type Seen = Arc<Mutex<Vec<Increment>>>;

    struct Counting(Seen);

    struct One(Seen, String, Vec<(String, String)>);

    impl CounterFn for One {
        fn increment(&self, by: u64) {
            self.0
                .lock()
                .unwrap()
                .push((self.1.clone(), self.2.clone(), by));
        }
        fn absolute(&self, _: u64) {}
    }

    impl Recorder for Counting {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            Counter::from_arc(Arc::new(One(
                self.0.clone(),
                key.name().to_string(),
                labels,
            )))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    fn counted(run: impl FnOnce()) -> Vec<Increment> {
        let seen = Seen::default();
        metrics::with_local_recorder(&Counting(seen.clone()), run);
        let seen = seen.lock().unwrap().clone();
        seen
    }

    #[test]
    fn each_event_increments_its_one_metric() {
        let error = "503 Service Unavailable";
        let seen = counted(|| {
            ItemDeadLettered {
                stage: "transform",
                source: "slack",
                item_id: "C1/2024-01-02",
                kind: FailureKind::MalformedMessage,
                reason: "bad",
            }
            .emit();
            EmbedRetryScheduled {
                endpoint: "voyage",
                reason: "server_error",
                attempt: 1,
                delay: Duration::from_millis(500),
                error: &error,
            }
            .emit();
            EventRecordSkipped {
                reason: "test_event",
                detail: &"s3:TestEvent",
                refused: false,
            }
            .emit();
            SqsMessageDeleted { message_id: "m-1" }.emit();
        });
        let names: Vec<&str> = seen.iter().map(|(name, ..)| name.as_str()).collect();
        assert_eq!(
            names,
            [STAGE_ERRORS, EMBED_RETRIES, EVENTS_SKIPPED, SQS_DELETED],
            "one metric per event, no more"
        );
        let (_, labels, by) = &seen[0];
        assert_eq!(*by, 1);
        assert!(labels.contains(&(
            "error_type".into(),
            FailureKind::MalformedMessage.label().into()
        )));
        assert!(seen[1]
            .1
            .contains(&("reason".into(), "server_error".into())));
    }
}
