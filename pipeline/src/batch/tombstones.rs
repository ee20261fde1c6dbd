//! Applying a batch's tombstones: what the embed half needs of the vector store to delete the
//! documents a source says are gone. A trait, so the batch loader (which reads the contract)
//! does not depend on Chroma, and the sink crate does not depend on the loader.

use async_trait::async_trait;

/// Removes every stored chunk of the named documents of one source.
#[async_trait]
pub trait DocumentRemover: Send + Sync {
    /// Returns how many chunks went.
    async fn remove_documents(
        &self,
        source: &str,
        document_ids: &[String],
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
