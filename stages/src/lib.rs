//! Stages between sources and sinks: raw records -> documents -> chunks, and, on the embed half,
//! batch files -> chunks.

pub mod batch_loader;
pub mod chunk_router;
pub mod chunking;
pub mod markup;
pub mod transform;
