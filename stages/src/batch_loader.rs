//! The batch loader: the embed half's first stage. Reads each announced batch file back from
//! the store, validates it against the batch contract, and emits its chunks.
//!
//! A batch's tombstones (schema version 2) are applied first, through the vector store's
//! [`DocumentRemover`]: the documents they name are deleted before any chunk goes on.
//!
//! A malformed or missing batch is dead-lettered (with the key and offending field) and the
//! other batches go on; a chunk the batch cannot use (blank text, no id) is dead-lettered alone
//! and the rest of its batch goes on.

use std::sync::Arc;

use async_trait::async_trait;

use kass_pipeline::batch::{load_batch, Batch, BatchRef, DocumentRemover};
use kass_pipeline::store::{ObjectStore, StoreError};
use kass_pipeline::telemetry::DocumentsRemoved;
use kass_pipeline::{
    Chunk, FailureKind, FatalError, ItemError, ItemKind, ItemStage, StageContext, StageError,
};

pub struct BatchLoader {
    store: Arc<dyn ObjectStore>,
    remover: Option<Arc<dyn DocumentRemover>>,
}

impl BatchLoader {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            remover: None,
        }
    }

    /// Applies each batch's tombstones through `remover` before its chunks go on. Without
    /// one, a batch with tombstones is dead-lettered rather than half applied.
    pub fn removing_with(mut self, remover: Arc<dyn DocumentRemover>) -> Self {
        self.remover = Some(remover);
        self
    }

    /// Deletes the documents the batch says are gone; a failure is the batch's.
    async fn apply_tombstones(&self, batch: &Batch) -> Result<(), ItemError> {
        if batch.tombstones.is_empty() {
            return Ok(());
        }
        let tombstones = batch.versioned_tombstones();
        let Some(remover) = &self.remover else {
            return Err(ItemError::new(
                FailureKind::MalformedBatch,
                format!(
                    "batch has {} tombstone(s) and this pipeline has no vector store to apply them",
                    tombstones.len()
                ),
            ));
        };
        match remover.remove_documents(&batch.source, &tombstones).await {
            Ok(chunks) => {
                DocumentsRemoved {
                    source: &batch.source,
                    documents: tombstones.len(),
                    chunks,
                }
                .emit();
                Ok(())
            }
            Err(e) if e.retryable => Err(ItemError::new(
                FailureKind::ChromaUnavailable,
                e.to_string(),
            )),
            Err(e) => Err(ItemError::new(FailureKind::ChromaRejected, e.to_string())),
        }
    }
}

#[async_trait]
impl ItemStage for BatchLoader {
    type Input = BatchRef;
    type Output = Chunk;

    fn name(&self) -> &'static str {
        "batch_loader"
    }

    fn concurrency(&self) -> usize {
        4
    }

    async fn process(
        &self,
        batch: &BatchRef,
        ctx: &StageContext,
    ) -> Result<Vec<Chunk>, StageError> {
        // Every failure to read one object is that batch's alone: the others of the same
        // delivery may be fine, and a long-running listener must not stop for one object.
        let bytes = self.store.get(&batch.key).await.map_err(|e| {
            let kind = match &e {
                StoreError::NotFound { .. } => FailureKind::MissingBatch,
                StoreError::InvalidKey { .. } => FailureKind::InvalidBatchKey,
                StoreError::Refused { .. } => FailureKind::BatchRefused,
                StoreError::Io { .. } => FailureKind::StoreUnavailable,
            };
            ItemError::new(kind, e.to_string())
        })?;
        let key = batch.key.clone();
        let loaded = tokio::task::spawn_blocking(move || load_batch(&key, &bytes))
            .await
            .map_err(|e| FatalError::Panicked(format!("batch_loader: {e}")))?
            .map_err(|e| ItemError::new(FailureKind::MalformedBatch, e.to_string()))?;
        for rejected in &loaded.rejected {
            let item_id = format!("{}#chunks[{}]", batch.key, rejected.index);
            let error = ItemError::new(FailureKind::MalformedChunk, rejected.error.to_string());
            ctx.dead_letter(
                &loaded.batch.source,
                &item_id,
                ItemKind::BatchChunk,
                &rejected.chunk,
                &error,
            )
            .await?;
        }
        self.apply_tombstones(&loaded.batch).await?;
        kass_pipeline::tally::advance("batch files", 1);
        Ok(loaded.batch.into_chunks())
    }
}
