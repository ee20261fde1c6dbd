//! Stages between sources and sinks: raw records -> documents -> chunks, and, on the embed half,
//! batch files -> chunks -> vectors.

pub mod batch_loader;
pub mod chunk_router;
pub mod chunking;
pub mod embed;
pub mod markup;
pub mod transform;
