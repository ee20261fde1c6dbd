//! The `kass` application: configuration and the assembly of sources, stages and sinks into
//! pipelines. The `kass` binary (and later the Lambda binaries) are thin shells over this.

pub mod config;
pub mod eval;
pub mod lambda;
pub mod sources;
pub mod split;
pub mod telemetry;
pub mod topology;
