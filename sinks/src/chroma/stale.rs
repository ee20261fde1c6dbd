//! Stale chunks: vectors of a document that its latest chunking no longer produces. An edit
//! changes a chunk's text (same document and position, another content hash); a document that
//! shrinks leaves positions past its new end. Both are found by metadata alone, so cleanup
//! never needs to list the collection (LangChain's "incremental" cleanup, scoped to the
//! documents being written).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use kass_pipeline::model::content_hash;
use kass_pipeline::{telemetry, Chunk, MetaValue};

use super::target::{all_of, any_of, ChromaTarget};

/// Chunk metadata key: how many chunks the document had when this chunk was made.
pub const DOCUMENT_CHUNKS: &str = "document_chunks";

/// The chunk count recorded by the chunker, if any.
pub fn document_chunks(chunk: &Chunk) -> Option<i64> {
    chunk
        .metadata
        .get(DOCUMENT_CHUNKS)
        .and_then(MetaValue::as_i64)
}

/// Another version of this chunk: same document and position, different content.
pub fn replaced(chunk: &Chunk) -> Value {
    let hash = chunk
        .content_hash()
        .map_or_else(|| content_hash(&chunk.text), str::to_string);
    all_of(vec![
        json!({"document_id": chunk.document_id}),
        json!({"chunk_index": chunk.ordinal}),
        json!({"content_hash": {"$ne": hash}}),
    ])
}

/// Positions past the end of each document these chunks come from.
pub fn past_end<'a>(chunks: impl IntoIterator<Item = &'a Chunk>) -> Vec<Value> {
    let mut ends = BTreeMap::new();
    for chunk in chunks {
        if let Some(n) = document_chunks(chunk) {
            ends.insert(chunk.document_id.as_str(), n);
        }
    }
    ends.into_iter()
        .map(|(document_id, n)| {
            all_of(vec![
                json!({"document_id": document_id}),
                json!({"chunk_index": {"$gte": n}}),
            ])
        })
        .collect()
}

/// Deletes what the conditions match. A failure only leaves old vectors until the next write
/// of their document, so it is logged, not raised.
pub async fn delete(target: &ChromaTarget, conditions: Vec<Value>) {
    if conditions.is_empty() {
        return;
    }
    match target
        .client
        .delete(&target.collection.id, None, Some(&any_of(conditions)))
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            telemetry::chroma_stale_deleted(n);
            tracing::debug!(deleted = n, "stale chunks deleted");
        }
        Err(e) => tracing::warn!(error = %e, "cannot delete stale chunks"),
    }
}
