//! Stale chunks: vectors of a document that its latest chunking no longer produces. An edit
//! changes a chunk's text (same document and position, another id); a document that shrinks
//! leaves positions past its new end.
//!
//! Only documents whose producer knows them whole take part: chunks carrying
//! `document_chunks` (kass's chunker writes it) and a document id the producer named. A chunk
//! that is its own document (seed-format batches, foreign producers without document ids)
//! can have no stale sibling, and guessing one would delete data.
//!
//! The stored chunks of those documents are read back by document id, the stale ones are
//! picked here, and only they are deleted, by id. A record lacking any identity key never
//! matches: Chroma's `$ne` also matches records that lack the key, so no delete is ever sent
//! as a filter.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use kass_pipeline::model::{chunk_keys, DERIVED_DOCUMENT_PREFIX};
use kass_pipeline::telemetry::StaleChunksDeleted;
use kass_pipeline::Chunk;

use super::documents;
use super::target::ChromaTarget;

/// What the written chunks say about one document.
#[derive(Debug, Default)]
struct DocumentState<'a> {
    /// Chunk count of its latest chunking.
    length: i64,
    /// The id written at each position.
    ids_at: HashMap<usize, &'a str>,
}

/// Written chunks grouped by source, then document, for the documents that take part.
type Documents<'a> = BTreeMap<&'a str, BTreeMap<&'a str, DocumentState<'a>>>;

fn documents<'a>(written: impl IntoIterator<Item = &'a Chunk>) -> Documents<'a> {
    let mut out: Documents = BTreeMap::new();
    for chunk in written {
        let Some(length) = chunk.document_chunks() else {
            continue;
        };
        if chunk.document_id.trim().is_empty()
            || chunk.document_id.starts_with(DERIVED_DOCUMENT_PREFIX)
        {
            continue;
        }
        let state = out
            .entry(chunk.source.as_str())
            .or_default()
            .entry(chunk.document_id.as_str())
            .or_default();
        state.length = length;
        state.ids_at.insert(chunk.ordinal, chunk.id.as_str());
    }
    out
}

/// Whether a stored record is a stale chunk of one of `documents` (of one source).
fn is_stale(
    id: &str,
    metadata: Option<&Map<String, Value>>,
    source: &str,
    documents: &BTreeMap<&str, DocumentState>,
    kept: &BTreeSet<&str>,
) -> bool {
    if kept.contains(id) {
        return false;
    }
    let Some(metadata) = metadata else {
        return false;
    };
    if metadata.get(chunk_keys::SOURCE).and_then(Value::as_str) != Some(source) {
        return false;
    }
    let Some(state) = metadata
        .get(chunk_keys::DOCUMENT_ID)
        .and_then(Value::as_str)
        .and_then(|d| documents.get(d))
    else {
        return false;
    };
    let Some(index) = metadata
        .get(chunk_keys::CHUNK_INDEX)
        .and_then(Value::as_i64)
    else {
        return false;
    };
    let past_end = index >= state.length;
    let replaced = usize::try_from(index)
        .ok()
        .and_then(|i| state.ids_at.get(&i))
        .is_some_and(|written| *written != id);
    past_end || replaced
}

/// Deletes the stored chunks that the documents of `written` no longer produce. A failure
/// only leaves old vectors until the next write of their document, so it is logged, not
/// raised.
pub async fn delete_stale<'a>(target: &ChromaTarget, written: impl IntoIterator<Item = &'a Chunk>) {
    for (source, docs) in documents(written) {
        if let Err(e) = delete_stale_of_source(target, source, &docs).await {
            tracing::warn!(source, error = %e, "cannot delete stale chunks");
        }
    }
}

async fn delete_stale_of_source(
    target: &ChromaTarget,
    source: &str,
    docs: &BTreeMap<&str, DocumentState<'_>>,
) -> Result<(), super::ChromaError> {
    let names: Vec<&str> = docs.keys().copied().collect();
    let stored = documents::stored_chunks(target, source, &names).await?;
    let kept: BTreeSet<&str> = docs
        .values()
        .flat_map(|d| d.ids_at.values().copied())
        .collect();
    let stale: Vec<&str> = stored
        .iter()
        .filter(|(id, metadata)| is_stale(id, Some(metadata), source, docs, &kept))
        .map(|(id, _)| id.as_str())
        .collect();
    let count = documents::delete_ids(target, &stale).await?;
    if count > 0 {
        StaleChunksDeleted { source, count }.emit();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kass_pipeline::{MetaValue, Metadata};
    use serde_json::json;

    fn chunk(document: &str, ordinal: usize, text: &str, length: Option<i64>) -> Chunk {
        let mut meta = Metadata::new();
        if let Some(n) = length {
            meta.insert(chunk_keys::DOCUMENT_CHUNKS.into(), MetaValue::Int(n));
        }
        Chunk::new("slack", document, ordinal, text.into(), meta)
    }

    fn record(document: Option<&str>, index: Option<i64>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("source".into(), json!("slack"));
        if let Some(d) = document {
            m.insert("document_id".into(), json!(d));
        }
        if let Some(i) = index {
            m.insert("chunk_index".into(), json!(i));
        }
        m
    }

    #[test]
    fn replaced_and_past_end_are_stale_and_records_lacking_keys_never_are() {
        let written = [chunk("D", 0, "new", Some(2)), chunk("D", 1, "b", Some(2))];
        let docs = documents(&written);
        let docs = &docs["slack"];
        let kept: BTreeSet<&str> = written.iter().map(|c| c.id.as_str()).collect();
        let check = |id: &str, m: Map<String, Value>| is_stale(id, Some(&m), "slack", docs, &kept);
        assert!(check("old0", record(Some("D"), Some(0))), "edited position");
        assert!(check("old2", record(Some("D"), Some(2))), "past the end");
        assert!(
            !check(&written[1].id, record(Some("D"), Some(1))),
            "just written"
        );
        assert!(!check("x", record(Some("E"), Some(0))), "another document");
        assert!(!check("x", record(None, Some(0))), "no document id");
        assert!(!check("x", record(Some("D"), None)), "no chunk index");
        let mut other_source = record(Some("D"), Some(0));
        other_source.insert("source".into(), json!("wiki"));
        assert!(
            !check("x", other_source),
            "same document id in another source"
        );
        assert!(!is_stale("x", None, "slack", docs, &kept), "no metadata");
    }

    #[test]
    fn chunks_that_do_not_know_their_document_take_no_part() {
        let foreign = Chunk::from_batch("slack", String::new(), "hi".into(), Metadata::new());
        let no_length = chunk("D", 0, "x", None);
        assert!(documents([&foreign, &no_length]).is_empty());
    }
}
