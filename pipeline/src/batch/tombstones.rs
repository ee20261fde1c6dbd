//! Applying a batch's tombstones: what the embed half needs of the vector store to delete the
//! documents a source says are gone. A trait, so the batch loader (which reads the contract)
//! does not depend on Chroma, and the sink crate does not depend on the loader.

use async_trait::async_trait;

use crate::model::DocumentVersion;

/// A document a batch says is gone, with the version in which it is gone and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedTombstone {
    pub document_id: String,
    pub version: DocumentVersion,
    pub reason: Option<String>,
}

/// Removes the stored chunks of documents of one source, as of a version.
#[async_trait]
pub trait DocumentRemover: Send + Sync {
    /// Remembers each tombstone durably (so no older state of its document is stored again),
    /// then deletes the document's stored chunks of that version or older; chunks of a newer
    /// state (the document came back later) stay. Returns how many chunks went.
    async fn remove_documents(
        &self,
        source: &str,
        tombstones: &[VersionedTombstone],
    ) -> Result<u64, RemoveError>;
}

/// Why documents could not be removed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot remove {documents} deleted document(s) of `{source_name}`: {reason}")]
pub struct RemoveError {
    pub source_name: String,
    pub documents: usize,
    pub reason: String,
    /// The store was unreachable: the same batch may succeed on another delivery.
    pub retryable: bool,
}
