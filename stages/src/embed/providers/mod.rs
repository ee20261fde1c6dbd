//! The embedding providers: one file per API, plus the in-process model.

pub mod cohere;
pub mod huggingface;
pub mod local;
pub mod openai;
pub mod remote;
pub mod voyage;

pub use local::{LocalModel, LocalModelError, LocalProvider, Precision};
pub use remote::{ProviderDefaults, RemoteProvider, WireFormat};
