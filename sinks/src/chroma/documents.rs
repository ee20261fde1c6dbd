//! The stored chunks of given documents, read back and deleted by id. Both stale-chunk cleanup
//! and tombstones need exactly this; a record is returned only when its own metadata names the
//! source and one of the documents, so nothing lacking those keys is ever touched, and no
//! delete is sent as a filter Chroma would evaluate against records that lack a key.

use serde_json::{json, Map, Value};

use kass_pipeline::model::chunk_keys;

use super::target::ChromaTarget;
use super::ChromaError;

/// Ids and metadata of every stored chunk of `documents` in `source`.
pub async fn stored_chunks(
    target: &ChromaTarget,
    source: &str,
    documents: &[&str],
) -> Result<Vec<(String, Map<String, Value>)>, ChromaError> {
    let filter = json!({"$and": [
        {chunk_keys::SOURCE: source},
        {chunk_keys::DOCUMENT_ID: {"$in": documents}},
    ]});
    let stored = target
        .client
        .get(
            &target.collection.id,
            None,
            Some(&filter),
            &["metadatas"],
            None,
            None,
        )
        .await?;
    let metadatas = stored.metadatas.unwrap_or_default();
    let names = |m: &Map<String, Value>, key: &str, wanted: &dyn Fn(&str) -> bool| {
        m.get(key).and_then(Value::as_str).is_some_and(wanted)
    };
    Ok(stored
        .ids
        .into_iter()
        .zip(metadatas.into_iter().chain(std::iter::repeat(None)))
        .filter_map(|(id, m)| Some((id, m?)))
        .filter(|(_, m)| {
            names(m, chunk_keys::SOURCE, &|s| s == source)
                && names(m, chunk_keys::DOCUMENT_ID, &|d| documents.contains(&d))
        })
        .collect())
}

/// Deletes records by id, at most one server batch per request; returns how many went.
pub async fn delete_ids(target: &ChromaTarget, ids: &[&str]) -> Result<u64, ChromaError> {
    let mut deleted = 0;
    for batch in ids.chunks(target.max_batch.max(1)) {
        deleted += target
            .client
            .delete(&target.collection.id, Some(batch), None)
            .await?;
    }
    Ok(deleted)
}
