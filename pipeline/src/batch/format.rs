use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::model::{
    chunk_keys, document_version, Chunk, DocumentVersion, MetaValue, Metadata, WrittenAt,
};

/// The version of a batch of chunks. Version 1 added `schema_version` and per-chunk `id` to the
/// original (version 0) format. A writer uses the oldest version that holds what it writes, so
/// a reader of an earlier kass keeps reading every batch that has no deletions in it.
pub const SCHEMA_VERSION: u32 = 1;

/// The version of a batch carrying tombstones (version 2 added `tombstones`).
pub const TOMBSTONES_SCHEMA_VERSION: u32 = 2;

/// The version of a batch whose tombstones carry the document version they delete (version 3
/// added `tombstones[].version`). Chunks carry theirs in the `document_version` metadata key,
/// which every version may hold.
pub const VERSIONED_TOMBSTONES_SCHEMA_VERSION: u32 = 3;

/// The newest version this kass reads.
pub const NEWEST_SCHEMA_VERSION: u32 = VERSIONED_TOMBSTONES_SCHEMA_VERSION;

/// One batch file. The field order is the seed format's, with `schema_version` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Absent in version-0 files, which read as version 0.
    #[serde(default)]
    pub schema_version: u32,
    /// `YYYYMMDD_HHMMSS_xxxx`: write time (UTC) and 4 hex digits; treat as opaque.
    pub batch_id: String,
    /// Write time, RFC 3339 in UTC.
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    pub source: String,
    pub chunk_count: usize,
    pub chunks: Vec<BatchChunk>,
    /// Documents of this source that no longer exist (version 2): the embed half deletes every
    /// chunk of each from the vector store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<Tombstone>,
}

/// A document that its source no longer holds (every message of a day deleted, a thread or a
/// channel gone). It names the document as the chunks did (`document_id`), within the batch's
/// source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub document_id: String,
    /// Why, for people reading the file (`deleted`, `channel_archived`, `excluded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The version of the source's view in which the document is gone (version 3; see
    /// [`crate::model::document_version`]). The batch writer sets it; a tombstone without one
    /// takes its batch's write time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<DocumentVersion>,
}

/// One chunk in a batch file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchChunk {
    /// Deterministic chunk id; absent in version-0 files (the reader derives one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub metadata: Metadata,
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Whether batch files are gzip-compressed (`.json.gz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

impl Compression {
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => ".json",
            Compression::Gzip => ".json.gz",
        }
    }
}

impl Batch {
    pub fn new(
        batch_id: String,
        timestamp: DateTime<Utc>,
        source: &str,
        chunks: Vec<Chunk>,
    ) -> Self {
        let chunks: Vec<BatchChunk> = chunks
            .into_iter()
            .map(|c| BatchChunk {
                id: c.id,
                text: c.text,
                metadata: c.metadata,
            })
            .collect();
        Self {
            schema_version: SCHEMA_VERSION,
            batch_id,
            timestamp,
            source: source.to_string(),
            chunk_count: chunks.len(),
            chunks,
            tombstones: Vec::new(),
        }
    }

    /// This batch carrying `tombstones` too (version 2 when there are any, 3 when they carry
    /// versions).
    pub fn with_tombstones(mut self, tombstones: Vec<Tombstone>) -> Self {
        if tombstones.iter().any(|t| t.version.is_some()) {
            self.schema_version = VERSIONED_TOMBSTONES_SCHEMA_VERSION;
        } else if !tombstones.is_empty() {
            self.schema_version = TOMBSTONES_SCHEMA_VERSION;
        }
        self.tombstones = tombstones;
        self
    }

    /// The bytes written to the store.
    pub fn encode(&self, compression: Compression) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("batches hold only JSON-safe values");
        match compression {
            Compression::None => json,
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&json).expect("writing to a Vec cannot fail");
                enc.finish().expect("writing to a Vec cannot fail")
            }
        }
    }

    /// The version a chunk or tombstone of this batch has when it names none: the batch's
    /// write time.
    pub fn default_version(&self) -> DocumentVersion {
        document_version::of_instant(self.timestamp)
    }

    /// The documents this batch says are gone, each with its version.
    pub fn versioned_tombstones(&self) -> Vec<super::VersionedTombstone> {
        let default = self.default_version();
        self.tombstones
            .iter()
            .map(|t| super::VersionedTombstone {
                document_id: t.document_id.clone(),
                version: t.version.unwrap_or(default),
                reason: t.reason.clone(),
            })
            .collect()
    }

    /// Chunks as pipeline items again (the embed half's input), their identity settled by
    /// [`Chunk::from_batch`] as the reader settled it, each with its document's version (the
    /// batch's write time where the producer named none).
    pub fn into_chunks(self) -> Vec<Chunk> {
        let default = MetaValue::Int(self.default_version() as i64);
        let source = self.source;
        self.chunks
            .into_iter()
            .map(|c| {
                let mut chunk = Chunk::from_batch(&source, c.id, c.text, c.metadata);
                chunk
                    .metadata
                    .entry(chunk_keys::DOCUMENT_VERSION.into())
                    .or_insert_with(|| default.clone());
                chunk.written_at = WrittenAt(Some(self.timestamp));
                chunk
            })
            .collect()
    }
}
