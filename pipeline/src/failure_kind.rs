//! Why an item failed, as a closed set: what the core decides by (is it worth delivering
//! again?) is asked of the kind, never read off a name.
//!
//! Each kind's [`FailureKind::label`] is the `error_type` written in dead letters and the
//! `error_type` label of `kass_component_errors_total`: the labels are part of the on-disk
//! format and of the metrics, so they never change once released.

use std::fmt;

/// Why one item was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    // What a source read.
    /// A file or day file that could not be read.
    Unreadable,
    /// A file over the source's size limit.
    TooLarge,
    /// A JSONL line over the line limit.
    LineTooLong,
    /// Text that is not UTF-8.
    InvalidUtf8,
    /// Text that is not JSON.
    MalformedJson,
    /// JSON that is neither a document nor a record the source knows.
    MalformedRecord,
    /// A record shaped like a document with a field of the wrong type.
    MalformedDocument,
    /// One message of a chat export that does not parse.
    MalformedMessage,
    // Transform and chunking.
    /// A message timestamp that is not `seconds.fraction`.
    InvalidTimestamp,
    /// A chunking budget that leaves no room for text.
    ChunkBudget,
    // The batch loader.
    /// The announced batch object is not in the store.
    MissingBatch,
    /// The announced key is not a key the store accepts.
    InvalidBatchKey,
    /// The store refuses the batch object (a 4xx: permissions, KMS).
    BatchRefused,
    /// The store could not be reached for the batch object.
    StoreUnavailable,
    /// The batch file does not parse.
    MalformedBatch,
    /// One chunk of a batch file breaks the contract (blank text, no id).
    MalformedChunk,
    // Embedding.
    /// The provider refused this one input (too long, empty).
    EmbedInputRefused,
    /// The provider answered something that is not vectors.
    EmbedBadResponse,
    /// Every endpoint kept failing past its retries.
    EmbedUnavailable,
    // Chroma.
    /// Chroma could not be reached, or kept failing.
    ChromaUnavailable,
    /// Chroma refused the record (a 4xx).
    ChromaRejected,
    /// Chroma answered something kass cannot read.
    ChromaBadResponse,
    // The S3 event source.
    /// A notification that is no S3 event kass reads.
    UnknownEvent,
    /// A failure of a stage defined outside kass (an extension's, a test's), by its own label:
    /// never retryable.
    Other(&'static str),
}

impl FailureKind {
    /// Every kind of kass's own stages (not [`FailureKind::Other`]).
    pub const ALL: &'static [FailureKind] = &[
        Self::Unreadable,
        Self::TooLarge,
        Self::LineTooLong,
        Self::InvalidUtf8,
        Self::MalformedJson,
        Self::MalformedRecord,
        Self::MalformedDocument,
        Self::MalformedMessage,
        Self::InvalidTimestamp,
        Self::ChunkBudget,
        Self::MissingBatch,
        Self::InvalidBatchKey,
        Self::BatchRefused,
        Self::StoreUnavailable,
        Self::MalformedBatch,
        Self::MalformedChunk,
        Self::EmbedInputRefused,
        Self::EmbedBadResponse,
        Self::EmbedUnavailable,
        Self::ChromaUnavailable,
        Self::ChromaRejected,
        Self::ChromaBadResponse,
        Self::UnknownEvent,
    ];

    /// The snake_case name in letters (`error_type`) and metric labels.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Unreadable => "unreadable",
            Self::TooLarge => "too_large",
            Self::LineTooLong => "line_too_long",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::MalformedJson => "malformed_json",
            Self::MalformedRecord => "malformed_record",
            Self::MalformedDocument => "malformed_document",
            Self::MalformedMessage => "malformed_message",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::ChunkBudget => "chunk_budget",
            Self::MissingBatch => "missing_batch",
            Self::InvalidBatchKey => "invalid_batch_key",
            Self::BatchRefused => "batch_refused",
            Self::StoreUnavailable => "store_unavailable",
            Self::MalformedBatch => "malformed_batch",
            Self::MalformedChunk => "malformed_chunk",
            Self::EmbedInputRefused => "embed_input_refused",
            Self::EmbedBadResponse => "embed_bad_response",
            Self::EmbedUnavailable => "embed_unavailable",
            Self::ChromaUnavailable => "chroma_unavailable",
            Self::ChromaRejected => "chroma_rejected",
            Self::ChromaBadResponse => "chroma_bad_response",
            Self::UnknownEvent => "unknown_event",
            Self::Other(label) => label,
        }
    }

    /// The kind a letter's `error_type` names; `None` for a label kass does not know (an
    /// extension's).
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.label() == label)
    }

    /// The failure says nothing about the item: the service it needed was down. Work that ended
    /// with one is worth delivering again (an SQS message is not deleted, a Lambda invocation
    /// fails so its retries apply); the others would fail the same way again.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::EmbedUnavailable | Self::ChromaUnavailable | Self::StoreUnavailable
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A kind equals its label, so a test can say `assert_eq!(error.error_type, "malformed_json")`.
impl PartialEq<&str> for FailureKind {
    fn eq(&self, label: &&str) -> bool {
        self.label() == *label
    }
}

#[cfg(test)]
mod tests {
    use super::FailureKind::{self, *};

    /// The labels are the on-disk `error_type` and a metric label: changing one orphans letters
    /// and breaks dashboards. This table is the contract.
    #[test]
    fn labels_are_stable() {
        let expected = [
            (Unreadable, "unreadable"),
            (TooLarge, "too_large"),
            (LineTooLong, "line_too_long"),
            (InvalidUtf8, "invalid_utf8"),
            (MalformedJson, "malformed_json"),
            (MalformedRecord, "malformed_record"),
            (MalformedDocument, "malformed_document"),
            (MalformedMessage, "malformed_message"),
            (InvalidTimestamp, "invalid_timestamp"),
            (ChunkBudget, "chunk_budget"),
            (MissingBatch, "missing_batch"),
            (InvalidBatchKey, "invalid_batch_key"),
            (BatchRefused, "batch_refused"),
            (StoreUnavailable, "store_unavailable"),
            (MalformedBatch, "malformed_batch"),
            (MalformedChunk, "malformed_chunk"),
            (EmbedInputRefused, "embed_input_refused"),
            (EmbedBadResponse, "embed_bad_response"),
            (EmbedUnavailable, "embed_unavailable"),
            (ChromaUnavailable, "chroma_unavailable"),
            (ChromaRejected, "chroma_rejected"),
            (ChromaBadResponse, "chroma_bad_response"),
            (UnknownEvent, "unknown_event"),
        ];
        assert_eq!(FailureKind::ALL.len(), expected.len());
        for (kind, label) in expected {
            assert_eq!(kind.label(), label);
            assert_eq!(kind.to_string(), label);
            assert_eq!(FailureKind::from_label(label), Some(kind), "{label}");
        }
        assert_eq!(Other("test_failure").label(), "test_failure");
        assert_eq!(FailureKind::from_label("test_failure"), None);
    }

    #[test]
    fn only_service_outages_are_retryable() {
        let retryable: Vec<&str> = FailureKind::ALL
            .iter()
            .filter(|kind| kind.is_retryable())
            .map(|kind| kind.label())
            .collect();
        assert_eq!(
            retryable,
            [
                "store_unavailable",
                "embed_unavailable",
                "chroma_unavailable"
            ]
        );
        assert!(!Other("embed_unavailable").is_retryable());
    }
}
