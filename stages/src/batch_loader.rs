//! The batch loader: the embed half's first stage. Reads each announced batch file back from
//! the store, validates it against the batch contract, and emits its chunks.
//!
//! A malformed or missing batch is dead-lettered (with the key and offending field) and the
//! other batches go on.

use std::sync::Arc;

use async_trait::async_trait;

use kass_pipeline::batch::{read_batch, BatchRef};
use kass_pipeline::store::{ObjectStore, StoreError};
use kass_pipeline::{Chunk, ItemError, ItemStage, StageContext};

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
    ) -> Result<Vec<Chunk>, ItemError> {
        let bytes = self.store.get(&batch.key).await.map_err(|e| match e {
            StoreError::NotFound { .. } => ItemError::new("missing_batch", e.to_string()),
            other => ItemError::new("store_read", other.to_string()),
        })?;
        let parsed = read_batch(&batch.key, &bytes)
            .map_err(|e| ItemError::new("malformed_batch", e.to_string()))?;
        Ok(parsed.into_chunks())
    }
}
