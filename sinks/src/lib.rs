//! Sinks: where chunks end up. The fetch half ends in the [`batch_writer`], the embed half in
//! [`chroma`].

pub mod batch_writer;
pub mod chroma;
