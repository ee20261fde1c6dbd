//! The batch file: the contract between the fetch half and the embed half.
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "batch_id": "20251024_120000_a1b2",
//!   "timestamp": "2025-10-24T12:00:00Z",
//!   "source": "slack",
//!   "chunk_count": 1,
//!   "chunks": [{"id": "…32 hex…", "text": "Ana: hi", "metadata": {"channel": "general", …}}]
//! }
//! ```
//!
//! stored at `{source}/chunked/year=YYYY/month=MM/day=DD/batch_{batch_id}.json` (or `.json.gz`).
//! The README documents every field; change it only by bumping [`SCHEMA_VERSION`] and keeping the
//! reader able to read every earlier version.

mod batch_ref;
mod format;
mod key;
mod lenient_json;
mod reader;
mod tombstone_outbox;
mod tombstones;

pub use batch_ref::BatchRef;
pub use format::{
    Batch, BatchChunk, Compression, Tombstone, NEWEST_SCHEMA_VERSION, SCHEMA_VERSION,
    TOMBSTONES_SCHEMA_VERSION, VERSIONED_TOMBSTONES_SCHEMA_VERSION,
};
pub use key::{
    batch_id, batch_key, batch_source, day_prefix, parse_batch_key, source_prefix, BatchKeyParts,
    BATCH_SUFFIXES,
};
pub use reader::{
    load_batch, read_batch, BatchFormatError, LoadedBatch, RejectedChunk, MAX_BATCH_BYTES,
};
pub use tombstone_outbox::TombstoneOutbox;
pub use tombstones::{DocumentRemover, RemoveError, VersionedTombstone};
