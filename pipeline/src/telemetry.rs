//! Every metric kass emits, defined once so names stay consistent and easy to find.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds` histograms, base units).
//! Call sites use these functions instead of the `metrics` macros directly.

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
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

/// Registers help texts; call once after installing a recorder.
pub fn describe() {
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
}

pub fn items_received(stage: &str, source: &str) {
    counter!(STAGE_RECEIVED, "stage" => stage.to_string(), "source" => source.to_string())
        .increment(1);
}

pub fn items_sent(stage: &str, source: &str) {
    counter!(STAGE_SENT, "stage" => stage.to_string(), "source" => source.to_string()).increment(1);
}

pub fn stage_error(stage: &str, source: &str, error_type: &'static str) {
    counter!(STAGE_ERRORS, "stage" => stage.to_string(), "source" => source.to_string(), "error_type" => error_type)
        .increment(1);
}

pub fn processing_time(stage: &str, seconds: f64) {
    histogram!(STAGE_PROCESSING, "stage" => stage.to_string()).record(seconds);
}

pub fn channel_depth(channel: &str, depth: usize) {
    gauge!(CHANNEL_DEPTH, "channel" => channel.to_string()).set(depth as f64);
}

pub fn channel_capacity(channel: &str, capacity: usize) {
    gauge!(CHANNEL_CAPACITY, "channel" => channel.to_string()).set(capacity as f64);
}

pub fn dead_letter_written(stage: &str) {
    counter!(DEAD_LETTERS, "stage" => stage.to_string()).increment(1);
}

pub fn batch_written(source: &str, bytes: usize) {
    counter!(BATCHES_WRITTEN, "source" => source.to_string()).increment(1);
    counter!(BATCH_BYTES, "source" => source.to_string()).increment(bytes as u64);
}

pub fn record_dropped(source: &str, reason: &str) {
    counter!(RECORDS_DROPPED, "source" => source.to_string(), "reason" => reason.to_string())
        .increment(1);
}

pub fn source_bytes(source: &str, bytes: usize) {
    counter!(SOURCE_BYTES, "source" => source.to_string()).increment(bytes as u64);
}
