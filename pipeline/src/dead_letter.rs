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

use crate::internal_event::DeadLettersRetired;
use crate::store::{ObjectStore, StoreError};
use crate::{telemetry, FailureKind, FatalError, ItemError, ItemKind};

pub const DEAD_LETTER_PREFIX: &str = "_dead_letter/";

/// One failed item and why it failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "StoredLetter")]
pub struct DeadLetter {
    pub stage: String,
    pub source: String,
    pub item_id: String,
    /// The [`FailureKind::label`].
    pub error_type: String,
    pub reason: String,
    pub failed_at: DateTime<Utc>,
    /// What the item is: how `kass dead-letters reprocess` re-runs it.
    pub item_kind: ItemKind,
    /// The item as it entered the failing stage.
    pub item: serde_json::Value,
}

/// A letter as stored. Letters written before item kinds were recorded have no `item_kind`:
/// it is told from the stage that wrote them, as kass did then.
#[derive(Deserialize)]
struct StoredLetter {
    stage: String,
    source: String,
    item_id: String,
    error_type: String,
    reason: String,
    failed_at: DateTime<Utc>,
    #[serde(default)]
    item_kind: Option<ItemKind>,
    item: serde_json::Value,
}

impl From<StoredLetter> for DeadLetter {
    fn from(stored: StoredLetter) -> Self {
        let item_kind = stored
            .item_kind
            .unwrap_or_else(|| kind_by_stage(&stored.stage, &stored.error_type));
        Self {
            stage: stored.stage,
            source: stored.source,
            item_id: stored.item_id,
            error_type: stored.error_type,
            reason: stored.reason,
            failed_at: stored.failed_at,
            item_kind,
            item: stored.item,
        }
    }
}

/// The item kind of a letter that does not record it, by the stage that wrote it (the stages
/// of kass before item kinds; any other stage was a source's, named by the source).
fn kind_by_stage(stage: &str, error_type: &str) -> ItemKind {
    match stage {
        "chroma_sink" => ItemKind::Vectors,
        "embed" | "skip_stored" | "batch_writer" => ItemKind::Chunk,
        "batch_loader" if error_type == FailureKind::MalformedChunk.label() => ItemKind::BatchChunk,
        "batch_loader" => ItemKind::Batch,
        "s3_events" => ItemKind::Event,
        "chunk_router" => ItemKind::Document,
        _ => ItemKind::Input,
    }
}

impl DeadLetter {
    pub fn new<T: Serialize + ?Sized>(
        stage: &str,
        source: &str,
        item_id: &str,
        item_kind: ItemKind,
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
            error_type: error.error_type.label().to_string(),
            reason: crate::redact::redact(&error.reason).into_owned(),
            failed_at: Utc::now(),
            item_kind,
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

    /// The kind its `error_type` names; `None` for a label of a stage outside kass.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        FailureKind::from_label(&self.error_type)
    }

    /// Failed only because a service was down ([`FailureKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.failure_kind().is_some_and(FailureKind::is_retryable)
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

/// The stages whose letters a later try can retire, and what their items are. A letter's key
/// names its stage and item but not the item's kind, so retiring lists by stage; no letter is
/// read.
const RETIRABLE_STAGES: &[(&str, ItemKind)] = &[
    ("skip_stored", ItemKind::Chunk),
    ("embed", ItemKind::Chunk),
    ("chroma_sink", ItemKind::Vectors),
    ("batch_loader", ItemKind::Batch),
];

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
    for &(stage, kind) in RETIRABLE_STAGES {
        let items = match kind {
            ItemKind::Batch => &batches,
            _ => &recovered.chunks,
        };
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
        DeadLettersRetired { count: retired }.emit();
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

/// Letters one writer wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LetterCounts {
    pub written: u64,
    /// Of which [`DeadLetter::is_retryable`].
    pub retryable: u64,
    /// Of which whole batch files ([`ItemKind::Batch`]: unreadable or missing).
    pub batches: u64,
    /// Keys of the batch files among them that may be read on another try: the deliveries
    /// that announced them are left for redelivery, the others acknowledged.
    pub retryable_batch_keys: std::collections::BTreeSet<String>,
    /// Keys of every batch file among them.
    pub failed_batch_keys: std::collections::BTreeSet<String>,
}

/// Writes one letter to the store and counts it (`kass_dead_letters_total`). The one place a
/// letter is written: the pipeline's writer task uses it, and so does anything that
/// dead-letters outside a pipeline run (an event notification no one can read) and must know
/// the letter is stored before it acknowledges its input.
pub async fn write(store: &dyn ObjectStore, letter: &DeadLetter) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(letter).expect("dead letters are plain JSON values");
    store.put(&letter.key(), body).await?;
    telemetry::dead_letter_written(&letter.stage, &letter.error_type);
    Ok(())
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
            write(store.as_ref(), &letter).await?;
            counts.written += 1;
            let retryable = letter.is_retryable();
            if retryable {
                counts.retryable += 1;
            }
            if letter.item_kind == ItemKind::Batch {
                counts.batches += 1;
                counts.failed_batch_keys.insert(letter.item_id.clone());
                if retryable {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn old_letter(stage: &str, error_type: &str) -> DeadLetter {
        serde_json::from_value(serde_json::json!({
            "stage": stage, "source": "slack", "item_id": "c1", "error_type": error_type,
            "reason": "r", "failed_at": "2025-10-06T16:00:00Z", "item": {"id": "c1"}
        }))
        .expect("a letter without item_kind loads")
    }

    #[test]
    fn letters_without_item_kind_are_told_by_their_stage() {
        for (stage, error_type, kind) in [
            ("chroma_sink", "chroma_unavailable", ItemKind::Vectors),
            ("embed", "embed_unavailable", ItemKind::Chunk),
            ("skip_stored", "chroma_unavailable", ItemKind::Chunk),
            ("batch_writer", "store_unavailable", ItemKind::Chunk),
            ("batch_loader", "missing_batch", ItemKind::Batch),
            ("batch_loader", "malformed_chunk", ItemKind::BatchChunk),
            ("s3_events", "unknown_event", ItemKind::Event),
            ("chunk_router", "chunk_budget", ItemKind::Document),
            ("transform", "invalid_timestamp", ItemKind::Input),
            ("slack", "malformed_json", ItemKind::Input),
        ] {
            assert_eq!(old_letter(stage, error_type).item_kind, kind, "{stage}");
        }
    }

    #[test]
    fn letters_record_their_item_kind() {
        let error = ItemError::new(FailureKind::StoreUnavailable, "s3 down");
        let letter = DeadLetter::new(
            "batch_loader",
            "slack",
            "slack/chunked/b.json",
            ItemKind::Batch,
            &serde_json::json!({"key": "slack/chunked/b.json"}),
            &error,
        );
        let json = serde_json::to_value(&letter).unwrap();
        assert_eq!(json["item_kind"], "batch");
        assert_eq!(json["error_type"], "store_unavailable");
        let back: DeadLetter = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.item_kind, ItemKind::Batch);
        assert!(back.is_retryable());
        // The kind recorded wins over what the stage meant before kinds were recorded.
        let mut json = json;
        json["item_kind"] = "chunk".into();
        let back: DeadLetter = serde_json::from_value(json).unwrap();
        assert_eq!(back.item_kind, ItemKind::Chunk);
    }

    #[tokio::test]
    async fn the_writer_counts_batches_by_item_kind_and_retries_by_failure_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(crate::store::LocalStore::new(dir.path()).unwrap());
        let (queue, writer) = spawn_writer(store);
        let letter = |id: &str, kind, failure| {
            DeadLetter::new(
                "batch_loader",
                "slack",
                id,
                kind,
                &serde_json::json!({}),
                &ItemError::new(failure, "r"),
            )
        };
        for (id, kind, failure) in [
            ("a.json", ItemKind::Batch, FailureKind::StoreUnavailable),
            ("b.json", ItemKind::Batch, FailureKind::MalformedBatch),
            (
                "b.json#chunks[0]",
                ItemKind::BatchChunk,
                FailureKind::MalformedChunk,
            ),
            ("c1", ItemKind::Chunk, FailureKind::EmbedUnavailable),
        ] {
            queue.send(letter(id, kind, failure)).await.unwrap();
        }
        drop(queue);
        let counts = writer.await.unwrap().unwrap();
        assert_eq!(counts.written, 4);
        assert_eq!(counts.retryable, 2);
        assert_eq!(counts.batches, 2);
        assert_eq!(
            counts.retryable_batch_keys.into_iter().collect::<Vec<_>>(),
            ["a.json"]
        );
        assert_eq!(counts.failed_batch_keys.len(), 2);
    }
}
