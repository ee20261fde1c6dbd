//! The tombstones the embed half applied, remembered in the vector store itself, so that what
//! a tombstone removed cannot come back from an older batch file: not from a replay, an S3 or
//! SQS redelivery, a dead letter retried, nor another worker applying batches in another order.
//!
//! Process memory or a local file would not do: the Lambda forgets both, and several workers
//! must see the same tombstones. So they live beside the collection, in a collection of their
//! own (`{collection}-tombstones`): one record per (source, document, version) applied, with a
//! one-number vector (Chroma stores nothing without one). Records are only ever added, never
//! overwritten, so two workers recording two tombstones of one document at once cannot lose
//! the newer one; a document's tombstone version is the highest of its records.
//!
//! Cost: one record of about 300 bytes per deleted document (and per later deletion of the same
//! document). They are kept for as long as the collection: a retention limit would let a
//! replay of older batches resurrect documents, which the store must never do.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use kass_pipeline::model::{chunk_keys, DocumentVersion};

use super::client::{ChromaClient, Collection};
use super::ChromaError;

/// The name of the collection that remembers `collection`'s tombstones.
pub fn ledger_name(collection: &str) -> String {
    format!("{collection}-tombstones")
}

/// Metadata key naming why the document went (`deleted`, `excluded`, ...).
const REASON: &str = "reason";
/// Metadata key: when the tombstone was applied (RFC 3339).
const APPLIED_AT: &str = "applied_at";

/// The applied tombstones of one collection.
#[derive(Debug, Clone)]
pub struct TombstoneLedger {
    pub collection: Collection,
}

/// One tombstone as applied.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedTombstone<'a> {
    pub document_id: &'a str,
    pub version: DocumentVersion,
    pub reason: Option<&'a str>,
}

impl TombstoneLedger {
    /// The ledger of `collection`, created if absent.
    pub async fn open(client: &ChromaClient, collection: &str) -> Result<Self, ChromaError> {
        let mut metadata = Map::new();
        metadata.insert("kass:tombstones_of".into(), json!(collection));
        let collection = client
            .get_or_create_collection(&ledger_name(collection), metadata, None)
            .await?;
        Ok(Self { collection })
    }

    /// Remembers that `tombstones` of `source` were applied. Idempotent: the same tombstone
    /// recorded twice is one record.
    pub async fn record(
        &self,
        client: &ChromaClient,
        source: &str,
        tombstones: &[AppliedTombstone<'_>],
        max_batch: usize,
    ) -> Result<(), ChromaError> {
        let applied_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for part in tombstones.chunks(max_batch.max(1)) {
            let ids: Vec<String> = part
                .iter()
                .map(|t| record_id(source, t.document_id, t.version))
                .collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let unit = [1.0f32];
            let embeddings: Vec<&[f32]> = part.iter().map(|_| &unit[..]).collect();
            let documents: Vec<&str> = part.iter().map(|t| t.document_id).collect();
            let metadatas: Vec<Map<String, Value>> = part
                .iter()
                .map(|t| {
                    let mut m = Map::new();
                    m.insert(chunk_keys::SOURCE.into(), json!(source));
                    m.insert(chunk_keys::DOCUMENT_ID.into(), json!(t.document_id));
                    m.insert(chunk_keys::DOCUMENT_VERSION.into(), json!(t.version));
                    if let Some(reason) = t.reason {
                        m.insert(REASON.into(), json!(reason));
                    }
                    m.insert(APPLIED_AT.into(), json!(applied_at));
                    m
                })
                .collect();
            client
                .upsert(
                    &self.collection.id,
                    &ids,
                    &embeddings,
                    &documents,
                    &metadatas,
                )
                .await?;
        }
        Ok(())
    }

    /// The newest tombstone version of each of `documents` of `source` that has one.
    pub async fn versions(
        &self,
        client: &ChromaClient,
        source: &str,
        documents: &[&str],
    ) -> Result<HashMap<String, DocumentVersion>, ChromaError> {
        if documents.is_empty() {
            return Ok(HashMap::new());
        }
        let filter = json!({"$and": [
            {chunk_keys::SOURCE: source},
            {chunk_keys::DOCUMENT_ID: {"$in": documents}},
        ]});
        let found = client
            .get(
                &self.collection.id,
                None,
                Some(&filter),
                &["metadatas"],
                None,
                None,
            )
            .await?;
        let mut versions: HashMap<String, DocumentVersion> = HashMap::new();
        for metadata in found.metadatas.unwrap_or_default().into_iter().flatten() {
            let (Some(document), Some(version)) = (
                metadata
                    .get(chunk_keys::DOCUMENT_ID)
                    .and_then(Value::as_str),
                metadata
                    .get(chunk_keys::DOCUMENT_VERSION)
                    .and_then(Value::as_u64),
            ) else {
                continue;
            };
            if metadata.get(chunk_keys::SOURCE).and_then(Value::as_str) != Some(source) {
                continue;
            }
            let newest = versions.entry(document.to_string()).or_insert(version);
            *newest = (*newest).max(version);
        }
        Ok(versions)
    }
}

/// One record per (source, document, version): 32 hex digits of SHA-256.
fn record_id(source: &str, document_id: &str, version: DocumentVersion) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [source, document_id, &version.to_string()] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_of_a_tombstone_is_its_own_record() {
        assert_eq!(record_id("s", "d", 1), record_id("s", "d", 1));
        assert_ne!(record_id("s", "d", 1), record_id("s", "d", 2));
        assert_ne!(record_id("s", "d", 1), record_id("t", "d", 1));
        assert_eq!(ledger_name("kass"), "kass-tombstones");
    }
}
