//! The `kass` application: configuration and the assembly of sources, stages and sinks into
//! pipelines. The `kass` binary (and later the Lambda binaries) are thin shells over this.

pub mod assembly;
pub mod config;
pub mod eval;
pub mod invocation_metrics;
pub mod lambda;
pub mod logging;
pub mod source_config;
pub mod split;
