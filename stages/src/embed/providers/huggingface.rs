//! Hugging Face: the hosted Inference API's feature-extraction pipeline, and a self-hosted
//! text-embeddings-inference (TEI) server's `/embed`. Both take `{"inputs": [...]}` and answer
//! with a bare array of vectors.

use serde_json::{json, Value};

use super::remote::{bare_vectors, ProviderDefaults, WireFormat};
use crate::embed::{EmbedError, Embeddings, InputType};

/// `POST {base}/{model}/pipeline/feature-extraction` on the Inference API router.
pub struct HfInference;

/// `POST {base}/embed` on a text-embeddings-inference server.
pub struct Tei;

fn inputs_body(texts: &[&str]) -> Value {
    // Vectors come back L2-normalised, like the local model's, so cosine and dot agree.
    json!({"inputs": texts, "normalize": true})
}

impl WireFormat for HfInference {
    type Response = Vec<Value>;

    fn kind(&self) -> &'static str {
        "huggingface"
    }

    fn defaults(&self) -> ProviderDefaults {
        ProviderDefaults {
            base_url: Some("https://router.huggingface.co/hf-inference/models"),
            model: Some("sentence-transformers/all-MiniLM-L6-v2"),
            api_key_env: Some("HF_TOKEN"),
            api_key_required: false,
            max_inputs: 32,
            max_request_tokens: 32 * 512,
            // Not documented as a per-minute figure; a cautious default for free accounts.
            requests_per_minute: Some(60),
            tokens_per_minute: None,
        }
    }

    fn url(&self, base_url: &str, model: &str) -> String {
        format!(
            "{}/{model}/pipeline/feature-extraction",
            base_url.trim_end_matches('/')
        )
    }

    fn body(&self, texts: &[&str], _: InputType, _: &str, _: Option<usize>) -> Value {
        inputs_body(texts)
    }

    fn embeddings(&self, response: Vec<Value>) -> Result<Embeddings, EmbedError> {
        bare_vectors(response)
    }
}

impl WireFormat for Tei {
    type Response = Vec<Value>;

    fn kind(&self) -> &'static str {
        "tei"
    }

    fn defaults(&self) -> ProviderDefaults {
        ProviderDefaults {
            base_url: None,
            model: None,
            api_key_env: Some("TEI_API_KEY"),
            api_key_required: false,
            // TEI's default --max-client-batch-size.
            max_inputs: 32,
            max_request_tokens: 16_384,
            requests_per_minute: None,
            tokens_per_minute: None,
        }
    }

    fn url(&self, base_url: &str, _model: &str) -> String {
        format!("{}/embed", base_url.trim_end_matches('/'))
    }

    fn body(&self, texts: &[&str], _: InputType, _: &str, _: Option<usize>) -> Value {
        inputs_body(texts)
    }

    fn embeddings(&self, response: Vec<Value>) -> Result<Embeddings, EmbedError> {
        bare_vectors(response)
    }
}
