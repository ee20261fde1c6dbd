use async_trait::async_trait;

use kass_pipeline::EmbeddingModel;

use super::EmbedError;

/// What the text will be used for. Retrieval models embed queries and documents differently
/// (Voyage `input_type`, Cohere `search_query`/`search_document`); symmetric models ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    Document,
    Query,
}

/// A provider's per-request limits; the embed stage never builds a larger request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most inputs in one request.
    pub max_inputs: usize,
    /// Most tokens (as counted by [`EmbeddingProvider::count_tokens`]) in one request.
    pub max_tokens: usize,
}

/// The vectors of one request, in input order, and what the provider billed if it said.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub billed_tokens: Option<usize>,
}

/// One embedding API (or the in-process model). Implementations only translate one request
/// into the provider's wire format and classify its errors; rate limiting, retries, batching,
/// splitting and fallback live once, in the embed stage.
#[async_trait]
pub trait EmbeddingProvider: Send + Sync + 'static {
    /// The provider's kind, e.g. `voyage`.
    fn kind(&self) -> &'static str;

    fn model(&self) -> &EmbeddingModel;

    fn limits(&self) -> RequestLimits;

    /// Tokens the provider will count for `text`: exact with the provider's tokenizer where we
    /// have it, otherwise a conservative estimate (see [`super::tokens`]).
    fn count_tokens(&self, text: &str) -> usize;

    async fn embed(&self, texts: &[&str], input_type: InputType) -> Result<Embeddings, EmbedError>;
}
