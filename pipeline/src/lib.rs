//! The kass core: everything the sources, stages and sinks agree on.
//!
//! - [`model`]: the items that flow (raw records, documents, chunks).
//! - [`batch`]: the batch file, the contract between the fetch half and the embed half.
//! - [`stage`], [`channel`], [`topology`]: how stages are written, joined and run.
//! - [`dead_letter`]: where per-item failures go instead of stopping the run; [`failure_kind`]:
//!   why an item failed, as a closed set.
//! - [`store`]: the object store (local directory or S3) that batches and dead letters live in.
//! - [`http`]: the one HTTP exchange of every remote API (client, auth, failures, Retry-After).
//! - [`rate_limit`]: request spacing (governor quotas) and the shared Retry-After pause.
//! - [`retry`]: back-off and Retry-After parsing for every remote call (embedding APIs, Chroma).
//! - [`secret`]: API keys that cannot leak into logs, errors or Debug output.
//! - [`redact`]: the one redactor for text leaving the process (secrets, URL user info).
//! - [`telemetry`]: every metric kass emits, defined once; [`internal_event`]: the events that
//!   write a log line and a metric with one call.

pub mod batch;
pub mod channel;
pub mod context;
pub mod dead_letter;
pub mod error;
pub mod failure_kind;
pub mod http;
pub mod internal_event;
pub mod model;
pub mod rate_limit;
pub mod redact;
pub mod retry;
pub mod secret;
pub mod shutdown;
pub mod stage;
mod stage_clock;
pub mod store;
pub mod tally;
pub mod telemetry;
pub mod tokenizer;
pub mod topology;
mod wordpiece_count;

pub use channel::{Inlet, Outlet};
pub use context::StageContext;
pub use error::{FatalError, ItemError, StageError};
pub use failure_kind::FailureKind;
pub use model::{
    Chunk, Document, DocumentKind, EmbeddedChunk, EmbeddingModel, ItemKind, Message, MetaValue,
    Metadata, PipelineItem, RawRecord,
};
pub use stage::{ItemStage, Source, StreamStage};
pub use topology::{Flow, Topology, TopologyConfig};
