//! The two kinds of failure a stage can have, and why they differ.
//!
//! An [`ItemError`] is about one item (a malformed record, a chunk that cannot be processed): the
//! runner sends that item to the dead letters and carries on. A [`FatalError`] means the run cannot
//! go on (bad configuration, the store unreachable after retries): the topology stops every stage
//! and reports it.

use crate::store::StoreError;
use crate::FailureKind;

/// One item could not be processed; it goes to the dead letters with this reason.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ItemError {
    /// Why, as a kind: its label (`malformed_json`) is the letter's `error_type` and a metric
    /// label.
    pub error_type: FailureKind,
    /// What went wrong, naming the file, key or field.
    pub reason: String,
}

impl ItemError {
    pub fn new(error_type: FailureKind, reason: impl Into<String>) -> Self {
        Self {
            error_type,
            reason: reason.into(),
        }
    }
}

/// What an [`crate::ItemStage`] returns on failure: this item is bad (dead-letter it, go on),
/// or the run cannot go on (the store is unreachable after retries).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Item(#[from] ItemError),
    #[error(transparent)]
    Fatal(#[from] FatalError),
}

/// The run cannot continue.
#[derive(Debug, thiserror::Error)]
pub enum FatalError {
    #[error("configuration error: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stage `{stage}` failed: {reason}")]
    Stage { stage: String, reason: String },
    #[error("stage `{0}` panicked")]
    Panicked(String),
}

/// An error and its causes, `outer: inner: innermost`: HTTP clients put the useful part
/// ("connection refused", "dns error") in the innermost cause.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// `text` trimmed and cut to `max_chars` characters (an ellipsis marks the cut), so that a
/// server's long error page cannot flood a log line or a dead letter. Redacted before the cut:
/// a secret the server quoted would no longer match once cut in half.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let text = crate::redact::redact(text);
    let text = text.trim();
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
