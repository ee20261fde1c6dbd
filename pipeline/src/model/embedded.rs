use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Chunk, ItemKind, PipelineItem};

/// Which model produced a vector. A collection holds vectors of exactly one model: vectors of
/// different models (or dimensions) are not comparable, so the sink refuses to mix them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EmbeddingModel {
    /// The model's name as its provider knows it, e.g. `voyage-3.5` or `all-MiniLM-L6-v2`.
    pub name: String,
    /// Length of every vector.
    pub dimension: usize,
}

impl std::fmt::Display for EmbeddingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} dimensions)", self.name, self.dimension)
    }
}

/// A chunk with its vector: what the embed stage hands the vector-store sink.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddedChunk {
    pub chunk: Chunk,
    pub embedding: Vec<f32>,
    /// Shared by every chunk of a run; an `Arc` so that it costs one pointer per chunk.
    pub model: Arc<EmbeddingModel>,
}

impl PipelineItem for EmbeddedChunk {
    fn source(&self) -> &str {
        &self.chunk.source
    }

    fn item_id(&self) -> String {
        self.chunk.id.clone()
    }
    fn item_kind(&self) -> ItemKind {
        ItemKind::Vectors
    }
}
