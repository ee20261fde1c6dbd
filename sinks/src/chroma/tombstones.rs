//! Deleting documents a source no longer holds (a batch's tombstones): every stored chunk of
//! the named documents of one source, found by `source` and `document_id` and deleted by id, so
//! that no filter Chroma evaluates can match a record lacking either key.

use async_trait::async_trait;
use serde_json::{json, Value};

use kass_pipeline::batch::{DocumentRemover, RemoveError};
use kass_pipeline::model::chunk_keys;

use super::target::ChromaTarget;
use super::ChromaError;

#[async_trait]
impl DocumentRemover for ChromaTarget {
    async fn remove_documents(
        &self,
        source: &str,
        document_ids: &[String],
    ) -> Result<u64, RemoveError> {
        let fail = |e: ChromaError| RemoveError {
            source_name: source.to_string(),
            documents: document_ids.len(),
            retryable: matches!(e, ChromaError::Unavailable { .. }),
            reason: e.to_string(),
        };
        let filter = json!({"$and": [
            {chunk_keys::SOURCE: source},
            {chunk_keys::DOCUMENT_ID: {"$in": document_ids}},
        ]});
        let stored = self
            .client
            .get(
                &self.collection.id,
                None,
                Some(&filter),
                &["metadatas"],
                None,
                None,
            )
            .await
            .map_err(fail)?;
        let metadatas = stored.metadatas.unwrap_or_default();
        let ids: Vec<&str> = stored
            .ids
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let m = metadatas.get(*i).and_then(Option::as_ref);
                let has = |key: &str, wanted: &dyn Fn(&str) -> bool| {
                    m.and_then(|m| m.get(key))
                        .and_then(Value::as_str)
                        .is_some_and(wanted)
                };
                has(chunk_keys::SOURCE, &|s| s == source)
                    && has(chunk_keys::DOCUMENT_ID, &|d| {
                        document_ids.iter().any(|x| x == d)
                    })
            })
            .map(|(_, id)| id.as_str())
            .collect();
        let mut deleted = 0;
        for batch in ids.chunks(self.max_batch.max(1)) {
            deleted += self
                .client
                .delete(&self.collection.id, Some(batch), None)
                .await
                .map_err(fail)?;
        }
        Ok(deleted)
    }
}
