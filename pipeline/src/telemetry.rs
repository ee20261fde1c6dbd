//! Every metric kass emits, defined once so names stay consistent and easy to find.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds` histograms, base units).
//! Call sites use these functions instead of the `metrics` macros directly; what also writes a
//! log line is an [`internal_event`](crate::internal_event) (re-exported here), emitted with one
//! call.

use crate::tally;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

pub use crate::internal_event::{
    BatchWritten, ChromaOutageHeld, ChromaRetryScheduled, DeadLettersRetired, DocumentsRemoved,
    EmbedFallbackUsed, EmbedRetryScheduled, EventRecordSkipped, ItemDeadLettered,
    SourceRetryScheduled, SqsMessageDeleted, StaleChunksDeleted,
};

pub const STAGE_RECEIVED: &str = "kass_stage_received_items_total";
pub const STAGE_SENT: &str = "kass_stage_sent_items_total";
pub const STAGE_ERRORS: &str = "kass_stage_errors_total";
pub const STAGE_PROCESSING: &str = "kass_stage_processing_seconds";
pub const CHANNEL_DEPTH: &str = "kass_channel_depth_items";
pub const CHANNEL_CAPACITY: &str = "kass_channel_capacity_items";
pub const DEAD_LETTERS: &str = "kass_dead_letters_total";
pub const BATCHES_WRITTEN: &str = "kass_batches_written_total";
pub const BATCH_BYTES: &str = "kass_batch_written_bytes_total";
pub const RECORDS_DROPPED: &str = "kass_records_dropped_total";
pub const SOURCE_BYTES: &str = "kass_source_read_bytes_total";
pub const SOURCE_WARNINGS: &str = "kass_source_warnings_total";
pub const EMBED_REQUESTS: &str = "kass_embed_requests_total";
pub const EMBED_REQUEST_TIME: &str = "kass_embed_request_seconds";
pub const EMBED_TOKENS: &str = "kass_embed_tokens_total";
pub const EMBED_RATE_LIMIT_WAIT: &str = "kass_embed_rate_limit_wait_seconds";
pub const EMBED_RETRIES: &str = "kass_embed_retries_total";
pub const EMBED_BATCH_SIZE: &str = "kass_embed_batch_inputs";
pub const EMBED_EMBEDDINGS: &str = "kass_embed_embeddings_total";
pub const EMBED_IN_FLIGHT: &str = "kass_embed_requests_in_flight";
pub const EMBED_FALLBACKS: &str = "kass_embed_fallbacks_total";
pub const CHROMA_UPSERTED: &str = "kass_chroma_upserted_total";
pub const CHROMA_SKIPPED: &str = "kass_chroma_skipped_total";
pub const CHROMA_SUPERSEDED: &str = "kass_chroma_superseded_total";
pub const CHROMA_METADATA_UPDATED: &str = "kass_chroma_metadata_updated_total";
pub const CHROMA_STALE_DELETED: &str = "kass_chroma_stale_deleted_total";
pub const CHROMA_TOMBSTONED: &str = "kass_chroma_tombstoned_deleted_total";
pub const CHROMA_OUTAGE_WAIT: &str = "kass_chroma_outage_wait_seconds_total";
pub const DEAD_LETTERS_RETIRED: &str = "kass_dead_letters_retired_total";
pub const EVENTS_BATCHES: &str = "kass_events_batches_total";
pub const EVENTS_SKIPPED: &str = "kass_events_skipped_total";
pub const EVENTS_DUPLICATES: &str = "kass_events_duplicate_batches_total";
pub const SQS_RECEIVED: &str = "kass_sqs_messages_received_total";
pub const SQS_DELETED: &str = "kass_sqs_messages_deleted_total";
pub const SQS_VISIBILITY_EXTENDED: &str = "kass_sqs_visibility_extended_total";
pub const HTTP_REQUESTS: &str = "kass_http_requests_total";
pub const HTTP_REQUEST_TIME: &str = "kass_http_request_seconds";
pub const SOURCE_REQUESTS: &str = "kass_source_requests_total";
pub const SOURCE_RATE_LIMIT_WAIT: &str = "kass_source_rate_limit_wait_seconds_total";
pub const SOURCE_DOCUMENTS: &str = "kass_source_documents_total";
pub const SOURCE_TOMBSTONES: &str = "kass_source_tombstones_total";
pub const SOURCE_SCOPES_SKIPPED: &str = "kass_source_scopes_skipped_total";
pub const SOURCE_DELETIONS_WITHHELD: &str = "kass_source_deletions_withheld_total";
pub const SOURCE_LAST_SUCCESS: &str = "kass_source_last_success_timestamp_seconds";
pub const SOURCE_BACKLOG_SCOPES: &str = "kass_source_backlog_scopes";
pub const SOURCE_RUNS_COMPLETED: &str = "kass_source_runs_completed_total";
pub const SOURCE_NEWEST_ITEM: &str = "kass_source_newest_item_timestamp_seconds";
pub const LATENCY_TO_SEARCHABLE: &str = "kass_latency_to_searchable_seconds";
pub const SQS_QUEUE_MESSAGES: &str = "kass_sqs_queue_messages";
pub const EMBED_BUDGET_REQUESTS: &str = "kass_embed_budget_requests_per_minute";
pub const EMBED_BUDGET_TOKENS: &str = "kass_embed_budget_tokens_per_minute";
pub const EMBED_BUDGET_WORKERS: &str = "kass_embed_budget_workers";
pub const EMBED_BUDGET_USED_REQUESTS: &str = "kass_embed_budget_used_requests_per_minute";
pub const EMBED_BUDGET_USED_TOKENS: &str = "kass_embed_budget_used_tokens_per_minute";
pub const EMBED_BUDGET_ADAPTIVE_REQUESTS: &str = "kass_embed_budget_adaptive_requests_per_minute";

/// Buckets of [`LATENCY_TO_SEARCHABLE`], in seconds: from a batch embedded at once (one
/// process) to one waiting a day for its embedder.
pub const LATENCY_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0,
    86400.0,
];

/// Registers help texts; call once after installing a recorder.
pub fn describe() {
    describe_counter!(
        EVENTS_BATCHES,
        "Batch files announced by S3 events (by source), before de-duplication."
    );
    describe_counter!(
        EVENTS_SKIPPED,
        "S3 event records not embedded, by reason: test_event, not_object_created, not_a_batch, no_key, unknown_event."
    );
    describe_counter!(
        EVENTS_DUPLICATES,
        "Batch files announced again while already being embedded (multipart uploads, redelivery)."
    );
    describe_counter!(SQS_RECEIVED, "Messages received from the event queue.");
    describe_counter!(
        SQS_DELETED,
        "Messages deleted from the event queue once every batch they name was done."
    );
    describe_counter!(
        SQS_VISIBILITY_EXTENDED,
        "Visibility extensions of messages still being worked on."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP tries of every remote API (Chroma, embedding providers), by client and outcome (HTTP status, `timeout`, `network`)."
    );
    describe_histogram!(
        HTTP_REQUEST_TIME,
        Unit::Seconds,
        "Time of one HTTP try, answer read whole, by client."
    );
    describe_counter!(
        SOURCE_REQUESTS,
        "Requests of API sources, by source, API method and outcome (HTTP status, `timeout`, `network`, or the error code of a 2xx the API refused, such as Slack's `ratelimited`)."
    );
    describe_gauge!(
        SOURCE_RATE_LIMIT_WAIT,
        Unit::Seconds,
        "Only grows (a gauge because metrics counters hold whole numbers). Time API source requests waited for their method's request budget or a Retry-After, by source and API method."
    );
    describe_counter!(
        SOURCE_DOCUMENTS,
        "Documents an incremental source emitted (new or changed, re-emitted whole), by source."
    );
    describe_counter!(
        SOURCE_TOMBSTONES,
        "Documents an incremental source found gone and sent as tombstones, by source and reason (deleted, channel_gone, excluded)."
    );
    describe_counter!(
        SOURCE_SCOPES_SKIPPED,
        "Scopes (channels) a source could not read this run, by source and reason (not_in_channel, channel_not_found, ...); nothing of them is deleted."
    );
    describe_counter!(
        SOURCE_DELETIONS_WITHHELD,
        "Tombstones a run held back because they exceeded the source's deletion share (see --allow-deletions)."
    );
    describe_gauge!(
        SOURCE_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the source's last run that read every scope it selected."
    );
    describe_gauge!(
        SOURCE_BACKLOG_SCOPES,
        "Scopes (channels) of the source whose backfill is not complete yet."
    );
    describe_counter!(
        SOURCE_RUNS_COMPLETED,
        "Fetches of a source that read everything it selected (not interrupted, no scope failed)."
    );
    describe_gauge!(
        SOURCE_NEWEST_ITEM,
        Unit::Seconds,
        "Unix time of the newest item (message, document) a source fetched: time() minus it is the age of the freshest data."
    );
    describe_histogram!(
        LATENCY_TO_SEARCHABLE,
        Unit::Seconds,
        "Time from a batch file being written (its `timestamp`) to each of its chunks being stored in Chroma, by source: the end-to-end latency in every mode."
    );
    describe_gauge!(
        SQS_QUEUE_MESSAGES,
        "Messages in the event queue the listener reads, sampled periodically, by state: visible (waiting) and in_flight (being worked on)."
    );
    describe_gauge!(
        EMBED_BUDGET_REQUESTS,
        "Requests per minute this worker may send to an embedding endpoint at most: the configured limit divided by [embed.provider] workers (0: no limit); compare with rate(kass_embed_requests_total[1m]) * 60."
    );
    describe_gauge!(
        EMBED_BUDGET_WORKERS,
        "Workers sharing an embedding endpoint's limits ([embed.provider] workers): each keeps to its share."
    );
    describe_gauge!(
        EMBED_BUDGET_USED_REQUESTS,
        "Requests this worker sent to an embedding endpoint in the last rate window, per minute."
    );
    describe_gauge!(
        EMBED_BUDGET_USED_TOKENS,
        "Tokens this worker sent to an embedding endpoint in the last rate window, per minute."
    );
    describe_gauge!(
        EMBED_BUDGET_ADAPTIVE_REQUESTS,
        "Requests per minute this worker's adaptive pacing allows now: its share, lowered x0.9 on a 429, a 503 or a slow answer and raised again while answers are fast and 2xx (0: no limit)."
    );
    describe_gauge!(
        EMBED_BUDGET_TOKENS,
        "Tokens per minute an embedding endpoint is configured to send at most (0: no limit); compare with rate(kass_embed_tokens_total{kind=\"estimated\"}[1m]) * 60."
    );
    describe_counter!(STAGE_RECEIVED, "Items a stage took from its input channel.");
    describe_counter!(STAGE_SENT, "Items a stage (or source) sent downstream.");
    describe_counter!(
        STAGE_ERRORS,
        "Per-item failures, by stage and error type; each item went to the dead letters."
    );
    describe_histogram!(
        STAGE_PROCESSING,
        Unit::Seconds,
        "Time a stage spent on one item."
    );
    describe_gauge!(
        CHANNEL_DEPTH,
        "Items waiting in a stage's output channel (backpressure shows here)."
    );
    describe_gauge!(CHANNEL_CAPACITY, "Capacity of a stage's output channel.");
    describe_counter!(DEAD_LETTERS, "Dead-letter records written to the store.");
    describe_counter!(BATCHES_WRITTEN, "Batch files written.");
    describe_counter!(BATCH_BYTES, Unit::Bytes, "Bytes of batch files written.");
    describe_counter!(
        RECORDS_DROPPED,
        "Source records dropped on purpose (joins, empty bot messages, ...), by reason."
    );
    describe_counter!(SOURCE_BYTES, Unit::Bytes, "Bytes read by sources.");
    describe_counter!(
        SOURCE_WARNINGS,
        "Places where a source read nothing although its listing promised data (a listed channel without a folder, an empty folder, a link it cannot follow), by reason."
    );
    describe_counter!(
        EMBED_REQUESTS,
        "Embedding requests by endpoint and outcome (HTTP status, `ok`, `network`)."
    );
    describe_histogram!(
        EMBED_REQUEST_TIME,
        Unit::Seconds,
        "Time of one embedding request, by endpoint."
    );
    describe_counter!(
        EMBED_TOKENS,
        "Tokens sent for embedding: `estimated` (counted before sending, what the limiter uses) and `billed` (what the provider reported)."
    );
    describe_histogram!(
        EMBED_RATE_LIMIT_WAIT,
        Unit::Seconds,
        "Time a request waited for the requests- and tokens-per-minute budget or a Retry-After."
    );
    describe_counter!(
        EMBED_RETRIES,
        "Embedding requests retried, by endpoint and reason."
    );
    describe_histogram!(EMBED_BATCH_SIZE, "Inputs per embedding request.");
    describe_counter!(
        EMBED_EMBEDDINGS,
        "Vectors received; rate() of it is embeddings per second."
    );
    describe_gauge!(
        EMBED_IN_FLIGHT,
        "Embedding requests in flight, by endpoint."
    );
    describe_counter!(
        EMBED_FALLBACKS,
        "Batches handed to the next endpoint of the fallback chain after the previous one kept failing."
    );
    describe_counter!(CHROMA_UPSERTED, "Vectors upserted into Chroma.");
    describe_counter!(
        CHROMA_SKIPPED,
        "Chunks not embedded because Chroma already holds them (same id, so same content)."
    );
    describe_counter!(
        CHROMA_SUPERSEDED,
        "Chunks not stored because Chroma holds a newer version of their document (a replay or a late redelivery)."
    );
    describe_counter!(
        CHROMA_METADATA_UPDATED,
        "Stored chunks whose metadata was updated in place, without embedding (a rename, a newer version of the same text)."
    );
    describe_counter!(
        CHROMA_STALE_DELETED,
        "Chunks deleted from Chroma because a newer state of their document replaced them, or its tombstone arrived first."
    );
    describe_counter!(
        CHROMA_TOMBSTONED,
        "Chunks deleted from Chroma because their document no longer exists (a tombstone)."
    );
    describe_counter!(
        CHROMA_OUTAGE_WAIT,
        Unit::Seconds,
        "Time embedding was held because Chroma was unreachable."
    );
    describe_counter!(
        DEAD_LETTERS_RETIRED,
        "Dead letters deleted because their chunk was stored on a later try."
    );
}

pub fn items_received(stage: &str, source: &str) {
    counter!(STAGE_RECEIVED, "stage" => stage.to_string(), "source" => source.to_string())
        .increment(1);
}

pub fn items_sent(stage: &str, source: &str) {
    counter!(STAGE_SENT, "stage" => stage.to_string(), "source" => source.to_string()).increment(1);
    tally::add_in("sent", stage, 1);
}

pub fn processing_time(stage: &str, seconds: f64) {
    histogram!(STAGE_PROCESSING, "stage" => stage.to_string()).record(seconds);
    tally::busy(stage, std::time::Duration::from_secs_f64(seconds.max(0.0)));
}

pub fn channel_depth(channel: &str, depth: usize) {
    gauge!(CHANNEL_DEPTH, "channel" => channel.to_string()).set(depth as f64);
}

pub fn channel_capacity(channel: &str, capacity: usize) {
    gauge!(CHANNEL_CAPACITY, "channel" => channel.to_string()).set(capacity as f64);
}

pub fn dead_letter_written(stage: &str, error_type: &str) {
    counter!(DEAD_LETTERS, "stage" => stage.to_string(), "error_type" => error_type.to_string())
        .increment(1);
    tally::add_in("dead_letters", stage, 1);
}

pub fn record_dropped(source: &str, reason: &str) {
    counter!(RECORDS_DROPPED, "source" => source.to_string(), "reason" => reason.to_string())
        .increment(1);
    tally::add_in("dropped", reason, 1);
}

pub fn source_bytes(source: &str, bytes: usize) {
    counter!(SOURCE_BYTES, "source" => source.to_string()).increment(bytes as u64);
}

/// `count` places where `source` found nothing its listing promised, for one `reason`.
pub fn source_warnings(source: &str, reason: &'static str, count: usize) {
    counter!(SOURCE_WARNINGS, "source" => source.to_string(), "reason" => reason)
        .increment(count as u64);
}

/// One HTTP try of `client` ([`crate::http::HttpClient`]): its outcome and how long it took.
pub fn http_request(client: &str, status: &str, seconds: f64) {
    counter!(HTTP_REQUESTS, "client" => client.to_string(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_REQUEST_TIME, "client" => client.to_string()).record(seconds);
}

pub fn embed_request(endpoint: &str, status: &str, seconds: f64) {
    counter!(EMBED_REQUESTS, "provider" => endpoint.to_string(), "status" => status.to_string())
        .increment(1);
    histogram!(EMBED_REQUEST_TIME, "provider" => endpoint.to_string()).record(seconds);
}

pub fn embed_tokens(endpoint: &str, kind: &'static str, tokens: usize) {
    counter!(EMBED_TOKENS, "provider" => endpoint.to_string(), "kind" => kind)
        .increment(tokens as u64);
}

pub fn embed_rate_limit_wait(endpoint: &str, seconds: f64) {
    histogram!(EMBED_RATE_LIMIT_WAIT, "provider" => endpoint.to_string()).record(seconds);
}

pub fn embed_batch(endpoint: &str, inputs: usize) {
    histogram!(EMBED_BATCH_SIZE, "provider" => endpoint.to_string()).record(inputs as f64);
}

pub fn embeddings_received(endpoint: &str, count: usize) {
    counter!(EMBED_EMBEDDINGS, "provider" => endpoint.to_string()).increment(count as u64);
}

pub fn embed_in_flight(endpoint: &str, delta: f64) {
    gauge!(EMBED_IN_FLIGHT, "provider" => endpoint.to_string()).increment(delta);
}

pub fn chroma_upserted(source: &str) {
    counter!(CHROMA_UPSERTED, "source" => source.to_string()).increment(1);
    tally::add("stored", 1);
}

pub fn chroma_skipped(source: &str) {
    counter!(CHROMA_SKIPPED, "source" => source.to_string()).increment(1);
    tally::add("skipped", 1);
}

pub fn chunk_superseded(source: &str) {
    counter!(CHROMA_SUPERSEDED, "source" => source.to_string()).increment(1);
    tally::add("superseded", 1);
}

pub fn chroma_metadata_updated(source: &str) {
    counter!(CHROMA_METADATA_UPDATED, "source" => source.to_string()).increment(1);
}

pub fn events_batch(source: &str) {
    counter!(EVENTS_BATCHES, "source" => source.to_string()).increment(1);
}

/// The metric alone; [`EventRecordSkipped`] writes its log line too.
pub fn events_duplicate() {
    counter!(EVENTS_DUPLICATES).increment(1);
}

pub fn sqs_received(count: usize) {
    counter!(SQS_RECEIVED).increment(count as u64);
}

pub fn sqs_visibility_extended() {
    counter!(SQS_VISIBILITY_EXTENDED).increment(1);
}

/// One try of an API source's request: `kass_source_requests_total{source, method, status}`.
pub fn source_request(source: &str, method: &str, status: &str) {
    counter!(SOURCE_REQUESTS, "source" => source.to_string(), "method" => method.to_string(), "status" => status.to_string())
        .increment(1);
}

/// Time an API source's request waited for its method's budget or a Retry-After:
/// `kass_source_rate_limit_wait_seconds_total{source, method}`, a gauge that only grows: the
/// `metrics` crate's counters hold whole numbers, and the waits are fractions of a second.
pub fn source_rate_limit_wait(source: &str, method: &str, seconds: f64) {
    gauge!(SOURCE_RATE_LIMIT_WAIT, "source" => source.to_string(), "method" => method.to_string())
        .increment(seconds);
}

/// Documents an incremental source emitted: `kass_source_documents_total{source}`.
pub fn source_documents(source: &str, count: usize) {
    counter!(SOURCE_DOCUMENTS, "source" => source.to_string()).increment(count as u64);
}

/// Tombstones a source sent: `kass_source_tombstones_total{source, reason}`.
pub fn source_tombstones(source: &str, reason: &str, count: usize) {
    counter!(SOURCE_TOMBSTONES, "source" => source.to_string(), "reason" => reason.to_string())
        .increment(count as u64);
}

/// A scope a source skipped this run: `kass_source_scopes_skipped_total{source, reason}`.
pub fn source_scope_skipped(source: &str, reason: &str) {
    counter!(SOURCE_SCOPES_SKIPPED, "source" => source.to_string(), "reason" => reason.to_string())
        .increment(1);
}

/// Tombstones withheld by the deletion guard: `kass_source_deletions_withheld_total{source}`.
pub fn source_deletions_withheld(source: &str, count: usize) {
    counter!(SOURCE_DELETIONS_WITHHELD, "source" => source.to_string()).increment(count as u64);
}

/// A fetch of `source` read everything it selected: its freshness, and one more completed run.
pub fn source_succeeded(source: &str, unix_seconds: f64) {
    gauge!(SOURCE_LAST_SUCCESS, "source" => source.to_string()).set(unix_seconds);
    counter!(SOURCE_RUNS_COMPLETED, "source" => source.to_string()).increment(1);
}

/// An item of `source` dated `unix_seconds` was fetched: keeps the newest such time.
pub fn source_item_time(source: &str, unix_seconds: f64) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    // The newest per source, so the gauge never moves back when older items follow.
    static NEWEST: Mutex<Option<HashMap<String, f64>>> = Mutex::new(None);
    let mut newest = NEWEST.lock().expect("newest lock");
    let newest = newest.get_or_insert_with(HashMap::new);
    let before = newest.get(source).copied().unwrap_or(f64::MIN);
    if unix_seconds > before {
        newest.insert(source.to_string(), unix_seconds);
        gauge!(SOURCE_NEWEST_ITEM, "source" => source.to_string()).set(unix_seconds);
    }
}

/// A chunk of `source` became searchable `seconds` after its batch file was written.
pub fn latency_to_searchable(source: &str, seconds: f64) {
    histogram!(LATENCY_TO_SEARCHABLE, "source" => source.to_string()).record(seconds.max(0.0));
}

/// The event queue's depth: `kass_sqs_queue_messages{queue, state}`.
pub fn sqs_queue_messages(queue: &str, visible: u64, in_flight: u64) {
    for (state, count) in [("visible", visible), ("in_flight", in_flight)] {
        gauge!(SQS_QUEUE_MESSAGES, "queue" => queue.to_string(), "state" => state)
            .set(count as f64);
    }
}

/// An embedding endpoint's configured budget (0: unlimited).
pub fn embed_budget(endpoint: &str, requests_per_minute: f64, tokens_per_minute: f64) {
    gauge!(EMBED_BUDGET_REQUESTS, "provider" => endpoint.to_string()).set(requests_per_minute);
    gauge!(EMBED_BUDGET_TOKENS, "provider" => endpoint.to_string()).set(tokens_per_minute);
}

/// Workers sharing an endpoint's budget (`[embed.provider] workers`).
pub fn embed_budget_workers(endpoint: &str, workers: u32) {
    gauge!(EMBED_BUDGET_WORKERS, "provider" => endpoint.to_string()).set(f64::from(workers));
}

/// This worker's use of its budget over the last window, and the request rate its adaptive
/// pacing allows now (all per minute; 0: unlimited).
pub fn embed_budget_used(endpoint: &str, requests: f64, tokens: f64, adaptive_requests: f64) {
    gauge!(EMBED_BUDGET_USED_REQUESTS, "provider" => endpoint.to_string()).set(requests);
    gauge!(EMBED_BUDGET_USED_TOKENS, "provider" => endpoint.to_string()).set(tokens);
    gauge!(EMBED_BUDGET_ADAPTIVE_REQUESTS, "provider" => endpoint.to_string())
        .set(adaptive_requests);
}

/// Scopes still in backfill: `kass_source_backlog_scopes{source}`.
pub fn source_backlog_scopes(source: &str, scopes: usize) {
    gauge!(SOURCE_BACKLOG_SCOPES, "source" => source.to_string()).set(scopes as f64);
}
