//! Sinks: where chunks end up. The fetch half ends in the [`batch_writer`].

pub mod batch_writer;
