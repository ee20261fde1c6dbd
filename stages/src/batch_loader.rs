//! The batch loader: the embed half's first stage. Reads each announced batch file back from
//! the store, validates it against the batch contract, and emits its chunks.
//!
//! A malformed or missing batch is dead-lettered (with the key and offending field) and the
//! other batches go on.

use std::sync::Arc;

use async_trait::async_trait;

use kass_pipeline::batch::{read_batch, BatchRef};
use kass_pipeline::store::{ObjectStore, StoreError};
use kass_pipeline::{Chunk, FatalError, ItemError, ItemStage, StageContext, StageError};

pub struct BatchLoader {
    store: Arc<dyn ObjectStore>,
}

impl BatchLoader {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
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
        _ctx: &StageContext,
    ) -> Result<Vec<Chunk>, StageError> {
        let bytes = self.store.get(&batch.key).await.map_err(|e| match e {
            // Announced but absent: this batch is unusable, others may be fine.
            StoreError::NotFound { .. } => {
                StageError::Item(ItemError::new("missing_batch", e.to_string()))
            }
            // Unreachable after the store's retries: every other batch would fail the same way.
            other => StageError::Fatal(other.into()),
        })?;
        let key = batch.key.clone();
        let parsed = tokio::task::spawn_blocking(move || read_batch(&key, &bytes))
            .await
            .map_err(|e| FatalError::Panicked(format!("batch_loader: {e}")))?
            .map_err(|e| ItemError::new("malformed_batch", e.to_string()))?;
        Ok(parsed.into_chunks())
    }
}
