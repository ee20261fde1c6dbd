use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Metadata, PipelineItem};

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
        metadata.insert("source".into(), source.into());
        metadata.insert("document_id".into(), document_id.into());
        metadata.insert("chunk_index".into(), ordinal.into());
        metadata.insert("content_hash".into(), hash.into());
        Self {
            id,
            source: source.to_string(),
            document_id: document_id.to_string(),
            ordinal,
            text,
            metadata,
        }
    }

    /// The hash of the text recorded by [`Chunk::new`] (absent only in hand-built chunks).
    pub fn content_hash(&self) -> Option<&str> {
        match self.metadata.get("content_hash") {
            Some(super::MetaValue::Str(hash)) => Some(hash),
            _ => None,
        }
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

impl PipelineItem for Chunk {
    fn source(&self) -> &str {
        &self.source
    }
    fn item_id(&self) -> String {
        self.id.clone()
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
    fn identity_fields_cannot_bleed_into_each_other() {
        let a = Chunk::derive_id("ab", "c", 0, "x");
        let b = Chunk::derive_id("a", "bc", 0, "x");
        assert_ne!(a, b);
    }
}
