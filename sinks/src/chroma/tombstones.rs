//! Deleting documents a source no longer holds (a batch's tombstones): every stored chunk of
//! the named documents of one source ([`super::documents`]).

use async_trait::async_trait;

use kass_pipeline::batch::{DocumentRemover, RemoveError};

use super::documents;
use super::target::ChromaTarget;
use super::ChromaError;

#[async_trait]
impl DocumentRemover for ChromaTarget {
    async fn remove_documents(
        &self,
        source: &str,
        document_ids: &[String],
    ) -> Result<u64, RemoveError> {
        let fail = |e: ChromaError| RemoveError {
            source_name: source.to_string(),
            documents: document_ids.len(),
            retryable: matches!(e, ChromaError::Unavailable { .. }),
            reason: e.to_string(),
        };
        let names: Vec<&str> = document_ids.iter().map(String::as_str).collect();
        let stored = documents::stored_chunks(self, source, &names)
            .await
            .map_err(fail)?;
        let ids: Vec<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
        documents::delete_ids(self, &ids).await.map_err(fail)
    }
}
