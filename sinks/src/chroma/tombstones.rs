//! Deleting documents a source no longer holds (a batch's tombstones). Each tombstone is first
//! remembered in the [`super::tombstone_ledger`], then the document's stored chunks of that
//! version or older are deleted ([`super::documents`]); chunks of a newer state (the document
//! came back after it was deleted) stay. Recording first means a chunk of an older state that
//! another worker stores meanwhile is caught by that worker's own check of the ledger
//! ([`super::stale::settle`]).

use std::collections::HashMap;

use async_trait::async_trait;

use kass_pipeline::batch::{DocumentRemover, RemoveError, VersionedTombstone};
use kass_pipeline::model::DocumentVersion;

use super::documents;
use super::stale::stored_version;
use super::target::ChromaTarget;
use super::tombstone_ledger::AppliedTombstone;
use super::ChromaError;

#[async_trait]
impl DocumentRemover for ChromaTarget {
    async fn remove_documents(
        &self,
        source: &str,
        tombstones: &[VersionedTombstone],
    ) -> Result<u64, RemoveError> {
        let fail = |e: ChromaError| RemoveError {
            source_name: source.to_string(),
            documents: tombstones.len(),
            retryable: matches!(e, ChromaError::Unavailable { .. }),
            reason: e.to_string(),
        };
        let Some(ledger) = &self.ledger else {
            return Err(fail(ChromaError::Protocol {
                what: "applying tombstones".into(),
                message: "the collection was opened read-only (no tombstone ledger)".into(),
            }));
        };
        let applied: Vec<AppliedTombstone> = tombstones
            .iter()
            .map(|t| AppliedTombstone {
                document_id: &t.document_id,
                version: t.version,
                reason: t.reason.as_deref(),
            })
            .collect();
        ledger
            .record(&self.client, source, &applied, self.max_batch)
            .await
            .map_err(fail)?;
        let mut gone_at: HashMap<&str, DocumentVersion> = HashMap::new();
        for t in tombstones {
            let v = gone_at.entry(t.document_id.as_str()).or_insert(t.version);
            *v = (*v).max(t.version);
        }
        let names: Vec<&str> = gone_at.keys().copied().collect();
        let stored = documents::stored_chunks(self, source, &names)
            .await
            .map_err(fail)?;
        let ids: Vec<&str> = stored
            .iter()
            .filter(|(_, metadata)| {
                let document = metadata
                    .get(kass_pipeline::model::chunk_keys::DOCUMENT_ID)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                gone_at
                    .get(document)
                    .is_some_and(|gone| stored_version(metadata) <= *gone)
            })
            .map(|(id, _)| id.as_str())
            .collect();
        documents::delete_ids(self, &ids).await.map_err(fail)
    }
}
