use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ItemKind, MetaValue, Metadata, PipelineItem};

/// The metadata keys that carry a chunk's identity, written into every chunk by
/// [`Chunk::new`] and [`Chunk::from_batch`]. The embed half finds stale chunks by them, so a
/// chunk that lacks one must never be matched by a cleanup (see `sinks/src/chroma/stale.rs`).
pub mod chunk_keys {
    /// The source the chunk came from (also the batch's `source`).
    pub const SOURCE: &str = "source";
    /// The document the chunk is part of, unique within its source.
    pub const DOCUMENT_ID: &str = "document_id";
    /// Position of the chunk in its document, from 0.
    pub const CHUNK_INDEX: &str = "chunk_index";
    /// [`super::content_hash`] of the chunk's text.
    pub const CONTENT_HASH: &str = "content_hash";
    /// How many chunks the document had when this one was made; present only where the producer
    /// knows the whole document (kass's chunker), which is what makes trailing chunks of a
    /// shrunken document safe to delete.
    pub const DOCUMENT_CHUNKS: &str = "document_chunks";
    /// The version of the document state the chunk belongs to (see [`super::document_version`]):
    /// set by the fetch half, monotonic per document. The embed half applies a document's
    /// chunks only if their version is not older than what it holds for that document.
    pub const DOCUMENT_VERSION: &str = "document_version";
}

/// Prefix of the document ids given to chunks that arrive without one (seed-format batches):
/// such a chunk is its own document, named by what it holds.
pub const DERIVED_DOCUMENT_PREFIX: &str = "derived:";

/// A piece of a document small enough to embed. Its `id` is deterministic, so processing the same
/// document twice upserts the same vectors instead of adding new ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub id: String,
    pub source: String,
    pub document_id: String,
    pub ordinal: usize,
    pub text: String,
    pub metadata: Metadata,
    /// When the batch file this chunk was read from was written (`None` before the batch
    /// writer): the sink measures the latency to searchable from it.
    #[serde(skip)]
    pub written_at: WrittenAt,
}

/// When a chunk's batch file was written. Not part of what the chunk is: two chunks compare
/// equal whatever their batch times, as the same chunk read from two batches is one chunk.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrittenAt(pub Option<chrono::DateTime<chrono::Utc>>);

impl PartialEq for WrittenAt {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Hex SHA-256 of the text, truncated to 16 hex digits: enough to notice an edit, short enough to
/// store in every chunk's metadata.
pub fn content_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

impl Chunk {
    /// Builds a chunk, deriving its id from (source, document id, ordinal, content hash) and
    /// recording those in the metadata so that the embed half can find stale chunks later.
    pub fn new(
        source: &str,
        document_id: &str,
        ordinal: usize,
        text: String,
        mut metadata: Metadata,
    ) -> Self {
        let hash = content_hash(&text);
        let id = Self::derive_id(source, document_id, ordinal, &hash);
        metadata.insert(chunk_keys::SOURCE.into(), source.into());
        metadata.insert(chunk_keys::DOCUMENT_ID.into(), document_id.into());
        metadata.insert(chunk_keys::CHUNK_INDEX.into(), ordinal.into());
        metadata.insert(chunk_keys::CONTENT_HASH.into(), hash.into());
        Self {
            id,
            source: source.to_string(),
            document_id: document_id.to_string(),
            ordinal,
            text,
            metadata,
            written_at: WrittenAt::default(),
        }
    }

    /// A chunk as read from a batch file, whoever wrote it. This is the one place where a
    /// chunk's identity is settled for the embed half, so that every chunk reaching Chroma
    /// carries a non-empty document id, its position and the hash of its text:
    ///
    /// - `document_id` (a non-empty string) and `chunk_index` in the metadata are kept: the
    ///   producer knows its documents. A missing `id` (seed format, version 0) is the one the
    ///   batch writer would have given.
    /// - Without a document id, the chunk is its own document: one named by the `id` when the
    ///   producer gave one, else by a hash of its text and metadata (so a seed-format chunk
    ///   written again, in whatever batch, gets the same id and no duplicate vector).
    ///
    /// The content hash is always recomputed from the text: a producer's claim is not trusted.
    pub fn from_batch(source: &str, id: String, text: String, mut metadata: Metadata) -> Self {
        let hash = content_hash(&text);
        let named = metadata
            .get(chunk_keys::DOCUMENT_ID)
            .and_then(MetaValue::as_str)
            .filter(|d| !d.trim().is_empty())
            .map(str::to_string);
        let (document_id, ordinal) = match named {
            Some(document_id) => {
                let ordinal = metadata
                    .get(chunk_keys::CHUNK_INDEX)
                    .and_then(MetaValue::as_i64)
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(0);
                (document_id, ordinal)
            }
            None if !id.is_empty() => (format!("{DERIVED_DOCUMENT_PREFIX}{id}"), 0),
            None => (
                format!(
                    "{DERIVED_DOCUMENT_PREFIX}{}",
                    derived_name(&text, &metadata)
                ),
                0,
            ),
        };
        let id = if id.is_empty() {
            Self::derive_id(source, &document_id, ordinal, &hash)
        } else {
            id
        };
        metadata.insert(chunk_keys::SOURCE.into(), source.into());
        metadata.insert(chunk_keys::DOCUMENT_ID.into(), document_id.as_str().into());
        metadata.insert(chunk_keys::CHUNK_INDEX.into(), ordinal.into());
        metadata.insert(chunk_keys::CONTENT_HASH.into(), hash.into());
        Self {
            id,
            source: source.to_string(),
            document_id,
            ordinal,
            text,
            metadata,
            written_at: WrittenAt::default(),
        }
    }

    /// The hash of the text recorded by [`Chunk::new`] (absent only in hand-built chunks).
    pub fn content_hash(&self) -> Option<&str> {
        match self.metadata.get(chunk_keys::CONTENT_HASH) {
            Some(MetaValue::Str(hash)) => Some(hash),
            _ => None,
        }
    }

    /// The document's chunk count recorded by the chunker, if any.
    pub fn document_chunks(&self) -> Option<i64> {
        self.metadata
            .get(chunk_keys::DOCUMENT_CHUNKS)
            .and_then(MetaValue::as_i64)
    }

    /// The version of the document state this chunk belongs to, if it carries one (every
    /// chunk read from a batch does: [`crate::batch::Batch::into_chunks`] settles it).
    pub fn document_version(&self) -> Option<u64> {
        self.metadata
            .get(chunk_keys::DOCUMENT_VERSION)
            .and_then(MetaValue::as_i64)
            .and_then(|v| u64::try_from(v).ok())
    }

    /// 32 hex digits (128 bits) of SHA-256 over the NUL-separated identity fields.
    pub fn derive_id(
        source: &str,
        document_id: &str,
        ordinal: usize,
        content_hash: &str,
    ) -> String {
        let mut h = Sha256::new();
        for part in [source, document_id, &ordinal.to_string(), content_hash] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// 32 hex digits over the text and the metadata (in key order, as JSON), for a chunk that names
/// no document: two chunks differ in name when they differ in anything a reader can see.
fn derived_name(text: &str, metadata: &Metadata) -> String {
    let mut h = Sha256::new();
    h.update(text.as_bytes());
    h.update([0u8]);
    h.update(serde_json::to_vec(metadata).expect("metadata is plain JSON"));
    hex::encode(&h.finalize()[..16])
}

impl PipelineItem for Chunk {
    fn source(&self) -> &str {
        &self.source
    }
    fn item_id(&self) -> String {
        self.id.clone()
    }
    fn item_kind(&self) -> ItemKind {
        ItemKind::Chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_identity_gives_same_id_and_any_change_a_new_one() {
        let a = Chunk::new("slack", "C1/2024-01-01", 0, "hello".into(), Metadata::new());
        let b = Chunk::new("slack", "C1/2024-01-01", 0, "hello".into(), Metadata::new());
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
        for other in [
            Chunk::new(
                "discord",
                "C1/2024-01-01",
                0,
                "hello".into(),
                Metadata::new(),
            ),
            Chunk::new("slack", "C1/2024-01-02", 0, "hello".into(), Metadata::new()),
            Chunk::new("slack", "C1/2024-01-01", 1, "hello".into(), Metadata::new()),
            Chunk::new(
                "slack",
                "C1/2024-01-01",
                0,
                "hello!".into(),
                Metadata::new(),
            ),
        ] {
            assert_ne!(a.id, other.id);
        }
    }

    #[test]
    fn a_chunk_without_document_is_its_own_document_named_by_its_content() {
        let mut meta = Metadata::new();
        meta.insert("channel".into(), "general".into());
        let a = Chunk::from_batch("slack", String::new(), "hi".into(), meta.clone());
        let again = Chunk::from_batch("slack", String::new(), "hi".into(), meta.clone());
        assert_eq!(a.id, again.id, "same content, same id in any batch");
        assert!(a.document_id.starts_with(DERIVED_DOCUMENT_PREFIX));
        assert_eq!(
            a.metadata[chunk_keys::DOCUMENT_ID].as_str(),
            Some(a.document_id.as_str())
        );
        assert_eq!(a.content_hash(), Some(content_hash("hi").as_str()));
        meta.insert("channel".into(), "random".into());
        let other = Chunk::from_batch("slack", String::new(), "hi".into(), meta);
        assert_ne!(a.document_id, other.document_id);
        assert_ne!(a.id, other.id);
    }

    #[test]
    fn a_named_document_keeps_its_identity_and_the_writers_id() {
        let written = Chunk::new("slack", "C1/2024-01-01", 2, "hello".into(), Metadata::new());
        let read = Chunk::from_batch(
            "slack",
            String::new(),
            "hello".into(),
            written.metadata.clone(),
        );
        assert_eq!(read.id, written.id);
        assert_eq!(read.ordinal, 2);
        let mut lying = written.metadata.clone();
        lying.insert(chunk_keys::CONTENT_HASH.into(), "0000".into());
        let read = Chunk::from_batch("slack", written.id.clone(), "hello".into(), lying);
        assert_eq!(read.content_hash(), written.content_hash());
    }

    #[test]
    fn a_foreign_chunk_with_an_id_and_no_metadata_gets_a_document() {
        let c = Chunk::from_batch("wiki", "abc".into(), "text".into(), Metadata::new());
        assert_eq!(c.id, "abc");
        assert_eq!(c.document_id, "derived:abc");
        assert!(c.content_hash().is_some());
    }

    #[test]
    fn identity_fields_cannot_bleed_into_each_other() {
        let a = Chunk::derive_id("ab", "c", 0, "x");
        let b = Chunk::derive_id("a", "bc", 0, "x");
        assert_ne!(a, b);
    }
}
