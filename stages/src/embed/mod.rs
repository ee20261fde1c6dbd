//! The embed stage and its providers.
//!
//! - [`provider`]: the one trait every API (and the local model) implements.
//! - [`providers`]: Voyage, OpenAI (and compatible servers), Cohere, Hugging Face / TEI, and
//!   the in-process local model (kass's own forward pass).
//! - [`http`], [`rate_limit`] (+ [`adaptive`] pacing), [`tokens`]: what every remote provider shares (with the one
//!   retry loop, `kass_pipeline::retry`),
//!   written once.
//! - [`endpoint`], [`embedder`], [`batcher`], [`stage`]: budgets, retries, fallback, poison
//!   isolation and dynamic batching, around any provider.
//! - [`config`]: `[embed]` in kass.toml.

pub mod adaptive;
pub mod batcher;
pub mod config;
pub mod embedder;
pub mod endpoint;
pub mod error;
pub mod http;
pub mod provider;
pub mod providers;
pub mod rate_limit;
pub mod stage;
pub mod tokens;

pub use config::{EmbedConfig, EndpointConfig, ProviderKind};
pub use embedder::{ChunkOutcome, Embedder, EndpointChainError};
pub use error::EmbedError;
pub use provider::{EmbeddingProvider, Embeddings, InputType, RequestLimits};
pub use stage::EmbedStage;
