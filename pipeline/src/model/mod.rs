//! The items that flow through a pipeline, in the order they appear:
//! [`RawRecord`] (what a source read) -> [`Document`] (one normalised format) -> [`Chunk`]
//! (what gets embedded) -> [`EmbeddedChunk`] (what the vector store receives).

mod chunk;
mod document;
pub mod document_version;
mod embedded;
mod item;
mod metadata;
mod raw_record;

pub use chunk::{chunk_keys, content_hash, Chunk, WrittenAt, DERIVED_DOCUMENT_PREFIX};
pub use document::{Document, DocumentKind, Message};
pub use document_version::{DocumentVersion, RunVersions};
pub use embedded::{EmbeddedChunk, EmbeddingModel};
pub use item::{ItemKind, PipelineItem};
pub use metadata::{flatten_json, MetaValue, Metadata};
pub use raw_record::{ChatDirectory, RawChat, RawMessage, RawRecord};
