//! One [`EmbeddingProvider`] for every HTTP API: the APIs differ only in their URL, request
//! body and response shape ([`WireFormat`]); the HTTP exchange, error classification and token
//! counting are the same and live here and in [`crate::embed::http`].

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use kass_pipeline::EmbeddingModel;

use crate::embed::http::HttpEndpoint;
use crate::embed::tokens::TokenCount;
use crate::embed::{EmbedError, EmbeddingProvider, Embeddings, InputType, RequestLimits};

/// What a provider's documentation fixes: where it lives and what it allows.
#[derive(Debug, Clone, Copy)]
pub struct ProviderDefaults {
    pub base_url: Option<&'static str>,
    pub model: Option<&'static str>,
    /// Environment variable holding the key; `None` when the API needs none by default.
    pub api_key_env: Option<&'static str>,
    pub api_key_required: bool,
    pub max_inputs: usize,
    pub max_request_tokens: usize,
    /// Lowest documented tier's limits, so that a new key works out of the box.
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
}

/// One API's request and response JSON.
pub trait WireFormat: Send + Sync + 'static {
    type Response: DeserializeOwned + Send;

    fn kind(&self) -> &'static str;

    fn defaults(&self) -> ProviderDefaults;

    fn url(&self, base_url: &str, model: &str) -> String;

    fn body(
        &self,
        texts: &[&str],
        input_type: InputType,
        model: &str,
        dimensions: Option<usize>,
    ) -> Value;

    fn embeddings(&self, response: Self::Response) -> Result<Embeddings, EmbedError>;
}

pub struct RemoteProvider<W: WireFormat> {
    pub wire: W,
    pub http: HttpEndpoint,
    pub url: String,
    pub model: EmbeddingModel,
    /// Sent as the API's dimension parameter (Matryoshka truncation) when configured.
    pub dimensions: Option<usize>,
    pub limits: RequestLimits,
    pub tokens: TokenCount,
}

#[async_trait]
impl<W: WireFormat> EmbeddingProvider for RemoteProvider<W> {
    fn kind(&self) -> &'static str {
        self.wire.kind()
    }

    fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    fn limits(&self) -> RequestLimits {
        self.limits
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.tokens.count(text)
    }

    async fn embed(&self, texts: &[&str], input_type: InputType) -> Result<Embeddings, EmbedError> {
        let body = self
            .wire
            .body(texts, input_type, &self.model.name, self.dimensions);
        let response: W::Response = self.http.post_json(&self.url, &body).await?;
        self.wire.embeddings(response)
    }
}

/// Vectors as a bare JSON array of arrays (Hugging Face, TEI), rejecting token-level output.
pub fn bare_vectors(response: Vec<Value>) -> Result<Embeddings, EmbedError> {
    let vectors = response
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value::<Vec<f32>>(v).map_err(|e| {
                EmbedError::Protocol(format!(
                    "item {i} is not a vector of numbers ({e}); token-level output needs a \
                     model with a pooling layer"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Embeddings {
        vectors,
        billed_tokens: None,
    })
}
