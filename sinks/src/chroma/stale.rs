//! Settling documents after a write: the stored chunks that the newest state of each written
//! document no longer has are deleted, whatever order the states arrived in.
//!
//! - **Stale**: an edit changes a chunk's text (same document and position, another id); a
//!   document that shrinks leaves positions past its new end.
//! - **Superseded**: delivery is unordered, so an older state of a document may be stored after
//!   a newer one (two workers, a late redelivery). Every chunk carries its document's version
//!   (`document_version`); the newest version stored decides, and an older state's chunks at
//!   its positions or past its end go.
//! - **Deleted**: a tombstone not older than every stored state means the document is gone; its
//!   chunks of that version or older go, so a chunk stored after its tombstone (a replay, a
//!   worker racing the tombstone's) does not survive. The tombstones are read from the
//!   [`super::tombstone_ledger`].
//!
//! Only documents whose producer knows them whole take part in the first two: chunks carrying
//! `document_chunks` (kass's chunker writes it) and a document id the producer named. A chunk
//! that is its own document (seed-format batches, foreign producers without document ids)
//! can have no stale sibling, and guessing one would delete data.
//!
//! The stored chunks of those documents are read back by document id, the doomed ones are
//! picked here, and only they are deleted, by id. A record lacking any identity key never
//! matches: Chroma's `$ne` also matches records that lack the key, so no delete is ever sent
//! as a filter.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use kass_pipeline::model::{chunk_keys, DocumentVersion, DERIVED_DOCUMENT_PREFIX};
use kass_pipeline::telemetry::StaleChunksDeleted;
use kass_pipeline::Chunk;

use super::documents;
use super::target::ChromaTarget;

/// A stored record's document version; 0 for one written before versions existed (older than
/// any versioned state).
pub fn stored_version(metadata: &Map<String, Value>) -> DocumentVersion {
    metadata
        .get(chunk_keys::DOCUMENT_VERSION)
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// What the written chunks say about one document.
#[derive(Debug, Default)]
struct Written<'a> {
    /// The version of the state written.
    version: DocumentVersion,
    /// Chunk count of that state, where the producer knows the document whole.
    length: Option<i64>,
    /// The id written at each position.
    ids_at: HashMap<usize, &'a str>,
}

/// A stored record: its id and metadata.
type StoredRecord<'s> = (&'s str, &'s Map<String, Value>);

/// Written chunks grouped by source, then document (chunks that are their own document left
/// out).
type Documents<'a> = BTreeMap<&'a str, BTreeMap<&'a str, Written<'a>>>;

fn written<'a>(chunks: impl IntoIterator<Item = &'a Chunk>) -> Documents<'a> {
    let mut out: Documents = BTreeMap::new();
    for chunk in chunks {
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
        // Several states of one document written together (a replay of old and new batches):
        // the newest one's chunks describe it.
        let version = chunk.document_version().unwrap_or(0);
        if version < state.version {
            continue;
        }
        if version > state.version || state.ids_at.is_empty() {
            *state = Written {
                version,
                ..Written::default()
            };
        }
        if let Some(length) = chunk.document_chunks() {
            state.length = Some(length);
        }
        state.ids_at.insert(chunk.ordinal, chunk.id.as_str());
    }
    out
}

fn index_of(metadata: &Map<String, Value>) -> Option<i64> {
    metadata
        .get(chunk_keys::CHUNK_INDEX)
        .and_then(Value::as_i64)
}

/// The ids among one document's `stored` records that must go, given what was just written of
/// it and the newest tombstone the ledger holds for it.
fn doomed<'s>(
    written: &Written,
    stored: &[(&'s str, &Map<String, Value>)],
    tombstone: Option<DocumentVersion>,
) -> Vec<&'s str> {
    let newest = stored
        .iter()
        .map(|(_, m)| stored_version(m))
        .max()
        .unwrap_or(0)
        .max(written.version);
    if let Some(gone) = tombstone.filter(|gone| *gone >= newest) {
        return stored
            .iter()
            .filter(|(_, m)| stored_version(m) <= gone)
            .map(|(id, _)| *id)
            .collect();
    }
    // The newest state's length and the id at each of its positions: what was written, or
    // what another writer stored of a newer state.
    let (length, ids_at): (Option<i64>, HashMap<i64, &str>) = if written.version == newest {
        let ids = written
            .ids_at
            .iter()
            .map(|(i, id)| (*i as i64, *id))
            .collect();
        (written.length, ids)
    } else {
        let winners: Vec<&(&str, &Map<String, Value>)> = stored
            .iter()
            .filter(|(_, m)| stored_version(m) == newest)
            .collect();
        let length = winners
            .iter()
            .find_map(|(_, m)| m.get(chunk_keys::DOCUMENT_CHUNKS).and_then(Value::as_i64));
        let mut ids = HashMap::new();
        for (id, m) in winners {
            if let Some(i) = index_of(m) {
                ids.entry(i).or_insert(*id);
            }
        }
        (length, ids)
    };
    // A producer that does not know its documents whole never has chunks deleted for them.
    let Some(length) = length else {
        return Vec::new();
    };
    let current: std::collections::HashSet<&str> = ids_at.values().copied().collect();
    stored
        .iter()
        .filter(|(id, m)| {
            if current.contains(id) || stored_version(m) > newest {
                return false;
            }
            let Some(index) = index_of(m) else {
                return false;
            };
            index >= length || ids_at.get(&index).is_some_and(|now| now != id)
        })
        .map(|(id, _)| *id)
        .collect()
}

/// Deletes the stored chunks that the documents of `written` no longer have in their newest
/// state, or at all when a tombstone is newer. A failure only leaves old vectors until the
/// next write of their document, so it is logged, not raised.
pub async fn settle<'a>(target: &ChromaTarget, chunks: impl IntoIterator<Item = &'a Chunk>) {
    for (source, docs) in written(chunks) {
        if let Err(e) = settle_source(target, source, &docs).await {
            tracing::warn!(source, error = %e, "cannot settle written documents (stale chunks stay until their next write)");
        }
    }
}

async fn settle_source(
    target: &ChromaTarget,
    source: &str,
    docs: &BTreeMap<&str, Written<'_>>,
) -> Result<(), super::ChromaError> {
    let names: Vec<&str> = docs.keys().copied().collect();
    let stored = documents::stored_chunks(target, source, &names).await?;
    let tombstones = target.tombstone_versions(source, &names).await?;
    let mut by_document: HashMap<&str, Vec<StoredRecord>> = HashMap::new();
    for (id, metadata) in &stored {
        if let Some(document) = metadata
            .get(chunk_keys::DOCUMENT_ID)
            .and_then(Value::as_str)
        {
            by_document
                .entry(document)
                .or_default()
                .push((id.as_str(), metadata));
        }
    }
    let mut gone = Vec::new();
    for (document, written) in docs {
        let stored = by_document.remove(document).unwrap_or_default();
        let tombstone = tombstones.get(*document).copied();
        let doomed = doomed(written, &stored, tombstone);
        if tombstone.is_some() && !doomed.is_empty() {
            tracing::info!(
                source,
                document,
                chunks = doomed.len(),
                "chunks of a deleted document arrived after its tombstone; removed again"
            );
        }
        gone.extend(doomed);
    }
    let count = documents::delete_ids(target, &gone).await?;
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

    fn chunk(document: &str, ordinal: usize, text: &str, length: Option<i64>, v: i64) -> Chunk {
        let mut meta = Metadata::new();
        if let Some(n) = length {
            meta.insert(chunk_keys::DOCUMENT_CHUNKS.into(), MetaValue::Int(n));
        }
        meta.insert(chunk_keys::DOCUMENT_VERSION.into(), MetaValue::Int(v));
        Chunk::new("slack", document, ordinal, text.into(), meta)
    }

    fn record(index: Option<i64>, version: Option<u64>, length: Option<i64>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("source".into(), json!("slack"));
        m.insert("document_id".into(), json!("D"));
        if let Some(i) = index {
            m.insert("chunk_index".into(), json!(i));
        }
        if let Some(v) = version {
            m.insert("document_version".into(), json!(v));
        }
        if let Some(n) = length {
            m.insert("document_chunks".into(), json!(n));
        }
        m
    }

    fn doomed_of(
        written: &[Chunk],
        stored: &[(&str, Map<String, Value>)],
        tombstone: Option<u64>,
    ) -> Vec<String> {
        let docs = super::written(written);
        let state = &docs["slack"]["D"];
        let stored: Vec<(&str, &Map<String, Value>)> =
            stored.iter().map(|(id, m)| (*id, m)).collect();
        let mut out: Vec<String> = doomed(state, &stored, tombstone)
            .into_iter()
            .map(str::to_string)
            .collect();
        out.sort();
        out
    }

    #[test]
    fn replaced_and_past_end_are_stale_and_records_lacking_keys_never_are() {
        let written = [
            chunk("D", 0, "new", Some(2), 5),
            chunk("D", 1, "b", Some(2), 5),
        ];
        let stored = [
            ("old0", record(Some(0), Some(4), Some(3))),
            ("old2", record(Some(2), Some(4), Some(3))),
            (written[0].id.as_str(), record(Some(0), Some(5), Some(2))),
            (written[1].id.as_str(), record(Some(1), Some(5), Some(2))),
            ("noindex", record(None, Some(4), Some(3))),
            ("legacy", record(Some(3), None, None)),
        ];
        assert_eq!(
            doomed_of(&written, &stored, None),
            ["legacy", "old0", "old2"],
            "edited position, past the end, a chunk from before versions past the end"
        );
    }

    #[test]
    fn an_older_state_stored_after_a_newer_one_goes_and_the_newer_stays() {
        // Version 9 (two chunks) is stored; a late write of version 5 (three chunks) lands.
        let late = [
            chunk("D", 0, "old a", Some(3), 5),
            chunk("D", 1, "old b", Some(3), 5),
            chunk("D", 2, "old c", Some(3), 5),
        ];
        let stored = [
            ("new0", record(Some(0), Some(9), Some(2))),
            ("new1", record(Some(1), Some(9), Some(2))),
            (late[0].id.as_str(), record(Some(0), Some(5), Some(3))),
            (late[1].id.as_str(), record(Some(1), Some(5), Some(3))),
            (late[2].id.as_str(), record(Some(2), Some(5), Some(3))),
        ];
        let mut expected = vec![late[0].id.clone(), late[1].id.clone(), late[2].id.clone()];
        expected.sort();
        assert_eq!(doomed_of(&late, &stored, None), expected);
    }

    #[test]
    fn a_tombstone_not_older_than_every_state_removes_them_and_a_newer_state_survives_it() {
        let written = [chunk("D", 0, "a", Some(1), 5)];
        let stored = [(written[0].id.as_str(), record(Some(0), Some(5), Some(1)))];
        assert_eq!(
            doomed_of(&written, &stored, Some(7)),
            [written[0].id.clone()],
            "written after its tombstone (version 7): removed again"
        );
        assert_eq!(
            doomed_of(&written, &stored, Some(5)),
            [written[0].id.clone()],
            "a tombstone of the same version wins"
        );
        assert!(
            doomed_of(&written, &stored, Some(3)).is_empty(),
            "the document came back after its tombstone"
        );
    }

    #[test]
    fn of_several_states_written_together_the_newest_describes_the_document() {
        let chunks = [
            chunk("D", 0, "new", Some(1), 9),
            chunk("D", 0, "old a", Some(2), 5),
            chunk("D", 1, "old b", Some(2), 5),
        ];
        let docs = written(&chunks);
        let state = &docs["slack"]["D"];
        assert_eq!(state.version, 9);
        assert_eq!(state.length, Some(1));
        assert_eq!(state.ids_at.len(), 1);
        assert_eq!(state.ids_at[&0], chunks[0].id.as_str());
    }

    #[test]
    fn chunks_that_do_not_know_their_document_take_no_part() {
        let foreign = Chunk::from_batch("slack", String::new(), "hi".into(), Metadata::new());
        assert!(written([&foreign]).is_empty());
        let no_length = [chunk("D", 0, "x", None, 5)];
        let stored = [("other", record(Some(0), Some(4), None))];
        assert!(doomed_of(&no_length, &stored, None).is_empty());
    }
}
