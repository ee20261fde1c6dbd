//! Dead letters: items a stage could not process, kept in the store with the reason so that
//! nothing is lost and an operator can see, fix and re-run them.
//!
//! Layout: `_dead_letter/{stage}/{YYYY-MM-DD}/{HHMMSS}_{hash}.json`, one JSON object per item.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::store::ObjectStore;
use crate::{telemetry, FatalError, ItemError};

pub const DEAD_LETTER_PREFIX: &str = "_dead_letter/";

/// One failed item and why it failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub stage: String,
    pub source: String,
    pub item_id: String,
    pub error_type: String,
    pub reason: String,
    pub failed_at: DateTime<Utc>,
    /// The item as it entered the failing stage.
    pub item: serde_json::Value,
}

impl DeadLetter {
    pub fn new<T: Serialize + ?Sized>(
        stage: &str,
        source: &str,
        item_id: &str,
        item: &T,
        error: &ItemError,
    ) -> Self {
        let mut item = serde_json::to_value(item).unwrap_or_else(|e| {
            serde_json::Value::String(format!("<item could not be serialised: {e}>"))
        });
        // Letters are kept in the store: no secret or URL user info a service echoed goes in.
        crate::redact::redact_json(&mut item);
        Self {
            stage: stage.to_string(),
            source: source.to_string(),
            item_id: item_id.to_string(),
            error_type: error.error_type.to_string(),
            reason: crate::redact::redact(&error.reason).into_owned(),
            failed_at: Utc::now(),
            item,
        }
    }

    /// The store key: stage, day and time of the failure, and a hash of (source, item, reason),
    /// so letters sort by time and the same failure within one second is written once.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.source, &self.item_id, &self.reason] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let stage: String = self
            .stage
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!(
            "{DEAD_LETTER_PREFIX}{stage}/{}/{}_{}.json",
            self.failed_at.format("%Y-%m-%d"),
            self.failed_at.format("%H%M%S"),
            &hex::encode(h.finalize())[..12]
        )
    }
}

/// The sending side stages use (through `StageContext::dead_letter`).
#[derive(Clone, Debug)]
pub struct DeadLetterQueue {
    tx: async_channel::Sender<DeadLetter>,
}

impl DeadLetterQueue {
    pub async fn send(&self, letter: DeadLetter) -> Result<(), FatalError> {
        self.tx.send(letter).await.map_err(|_| FatalError::Stage {
            stage: "dead_letter_writer".into(),
            reason: "the dead-letter writer stopped; refusing to lose the item".into(),
        })
    }
}

/// Failures that say nothing about the item: the service it needed was down. Work that ended
/// with one of these is worth delivering again (an SQS message is not deleted, a Lambda
/// invocation fails so its retries apply); the others would fail the same way again.
pub const RETRYABLE_ERROR_TYPES: &[&str] = &["embed_unavailable", "chroma_unavailable"];

pub fn is_retryable(error_type: &str) -> bool {
    RETRYABLE_ERROR_TYPES.contains(&error_type)
}

/// Letters one writer wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LetterCounts {
    pub written: u64,
    /// Of which [`is_retryable`].
    pub retryable: u64,
    /// Of which whole batch files (the batch loader's letters: unreadable or missing).
    pub batches: u64,
}

/// Starts the writer task. It ends once every queue clone is dropped, returning how many letters
/// it wrote; a store failure is fatal, since the letter would otherwise be lost.
pub fn spawn_writer(
    store: Arc<dyn ObjectStore>,
) -> (
    DeadLetterQueue,
    JoinHandle<Result<LetterCounts, FatalError>>,
) {
    let (tx, rx) = async_channel::bounded::<DeadLetter>(64);
    let handle = tokio::spawn(async move {
        let mut counts = LetterCounts::default();
        while let Ok(letter) = rx.recv().await {
            let body =
                serde_json::to_vec_pretty(&letter).expect("dead letters are plain JSON values");
            store.put(&letter.key(), body).await?;
            telemetry::dead_letter_written(&letter.stage);
            counts.written += 1;
            if is_retryable(&letter.error_type) {
                counts.retryable += 1;
            }
            if letter.stage == "batch_loader" {
                counts.batches += 1;
            }
        }
        Ok(counts)
    });
    (DeadLetterQueue { tx }, handle)
}

/// Reads every dead letter under the prefix, oldest key first.
pub async fn list(store: &dyn ObjectStore) -> Result<Vec<(String, DeadLetter)>, FatalError> {
    let mut out = Vec::new();
    for key in store.list(DEAD_LETTER_PREFIX).await? {
        let body = store.get(&key).await?;
        match serde_json::from_slice::<DeadLetter>(&body) {
            Ok(letter) => out.push((key, letter)),
            Err(e) => tracing::warn!(key, error = %e, "unreadable dead letter"),
        }
    }
    Ok(out)
}
