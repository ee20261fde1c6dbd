//! Dead letters: items a stage could not process, kept in the store with the reason so that
//! nothing is lost and an operator can see, fix and re-run them.
//!
//! Layout: `_dead_letter/{stage}/{YYYY-MM-DD}/{HHMMSS}_{hash}_{item}.json`, one JSON object per
//! item. `{item}` is [`item_token`] of the item id: a letter can be found by its item from a
//! listing alone, and retired when that item goes through later.

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
        crate::redact::mask_secrets_json(&mut item);
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
        let item = format!("_{}", item_token(&self.item_id));
        format!(
            "{DEAD_LETTER_PREFIX}{stage}/{}/{}_{}{item}.json",
            self.failed_at.format("%Y-%m-%d"),
            self.failed_at.format("%H%M%S"),
            &hex::encode(h.finalize())[..12]
        )
    }
}

/// The item id as it stands in a letter's key: itself when it is a plain token (chunk ids),
/// else `h` and 16 hex digits of its SHA-256 (batch keys, paths), so that a letter can be found
/// by its item from a listing alone.
pub fn item_token(id: &str) -> String {
    let plain = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        id.to_string()
    } else {
        format!("h{}", &hex::encode(Sha256::digest(id.as_bytes()))[..16])
    }
}

/// Stages whose letters hold one chunk (or its vectors), named by the chunk id.
pub const CHUNK_STAGES: &[&str] = &["skip_stored", "embed", "chroma_sink"];

/// What a later try got through: chunks now stored, batch files now read.
#[derive(Debug, Default)]
pub struct Recovered {
    pub chunks: std::collections::HashSet<String>,
    pub batches: std::collections::HashSet<String>,
}

/// Deletes the letters of items that went through on a later try (a chunk stored, a batch file
/// read), so that the letters left report only what is still missing. Returns how many went.
/// Costs one listing per stage concerned; no letter is read.
pub async fn retire(
    store: &dyn ObjectStore,
    recovered: &Recovered,
) -> Result<u64, crate::store::StoreError> {
    let mut retired = 0;
    let batches: std::collections::HashSet<String> =
        recovered.batches.iter().map(|k| item_token(k)).collect();
    let stages = CHUNK_STAGES
        .iter()
        .map(|stage| (*stage, &recovered.chunks))
        .chain(std::iter::once(("batch_loader", &batches)));
    for (stage, items) in stages {
        if items.is_empty() {
            continue;
        }
        for key in store.list(&format!("{DEAD_LETTER_PREFIX}{stage}/")).await? {
            let item = key
                .strip_suffix(".json")
                .and_then(|k| k.rsplit('/').next())
                .and_then(|name| name.splitn(3, '_').nth(2));
            if item.is_some_and(|id| items.contains(id)) {
                store.delete(&key).await?;
                retired += 1;
            }
        }
    }
    if retired > 0 {
        telemetry::dead_letters_retired(retired);
        tracing::info!(
            retired,
            "dead letters retired: their items went through on a later try"
        );
    }
    Ok(retired)
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
pub const RETRYABLE_ERROR_TYPES: &[&str] = &[
    "embed_unavailable",
    "chroma_unavailable",
    "store_unavailable",
];

/// Failures of a whole batch file (the batch loader's letters whose item is the batch
/// reference, its key as the item id), as opposed to one chunk of it.
pub const BATCH_ERROR_TYPES: &[&str] = &[
    "missing_batch",
    "malformed_batch",
    "invalid_batch_key",
    "batch_refused",
    "store_unavailable",
];

pub fn is_retryable(error_type: &str) -> bool {
    RETRYABLE_ERROR_TYPES.contains(&error_type)
}

/// Letters one writer wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LetterCounts {
    pub written: u64,
    /// Of which [`is_retryable`].
    pub retryable: u64,
    /// Of which whole batch files (the batch loader's letters: unreadable or missing).
    pub batches: u64,
    /// Keys of the batch files among them that may be read on another try: the deliveries
    /// that announced them are left for redelivery, the others acknowledged.
    pub retryable_batch_keys: std::collections::BTreeSet<String>,
    /// Keys of every batch file among them.
    pub failed_batch_keys: std::collections::BTreeSet<String>,
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
            if BATCH_ERROR_TYPES.contains(&letter.error_type.as_str()) {
                counts.batches += 1;
                counts.failed_batch_keys.insert(letter.item_id.clone());
                if is_retryable(&letter.error_type) {
                    counts.retryable_batch_keys.insert(letter.item_id.clone());
                }
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
