//! ChromaDB: the vector store the embed half ends in.
//!
//! - [`client`]: a small typed client for the HTTP API v2.
//! - [`target`]: the collection of a run, checked to hold this run's model.
//! - [`skip_stored`]: drops chunks already stored before they are embedded.
//! - [`sink`]: upserts vectors, deletes the chunks an edit replaced.
//! - [`documents`]: the stored chunks of given documents, read back and deleted by id.
//! - [`stale`]: which stored chunks an edit or a shorter document left behind.
//! - [`metadata`]: chunk metadata as Chroma stores it.
//! - [`tombstones`]: deleting the documents a batch says are gone.
//! - [`tombstone_ledger`]: the tombstones applied, remembered so nothing deleted comes back.
//! - [`outage`]: holding work while Chroma is unreachable.

pub mod client;
pub mod config;
pub mod documents;
pub mod error;
pub mod metadata;
pub mod outage;
pub mod sink;
pub mod skip_stored;
pub mod stale;
pub mod target;
pub mod tombstone_ledger;
pub mod tombstones;

pub use client::ChromaClient;
pub use config::ChromaConfig;
pub use error::ChromaError;
pub use sink::{ChromaSink, StoredChunk};
pub use skip_stored::SkipStored;
pub use target::ChromaTarget;
