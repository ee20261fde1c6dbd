use serde::{Deserialize, Serialize};

use crate::model::{ItemKind, PipelineItem};

/// A batch file that has been durably written: what crosses the boundary between the halves
/// (in one process through a channel, split through an S3 ObjectCreated event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRef {
    pub key: String,
    pub source: String,
    pub chunk_count: usize,
    pub bytes: usize,
}

impl PipelineItem for BatchRef {
    fn source(&self) -> &str {
        &self.source
    }
    fn item_id(&self) -> String {
        self.key.clone()
    }
    fn item_kind(&self) -> ItemKind {
        ItemKind::Batch
    }
}
