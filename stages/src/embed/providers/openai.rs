//! OpenAI `POST /v1/embeddings`, and any server that speaks the same API (vLLM, Ollama,
//! LocalAI, LiteLLM, TEI's `/v1/embeddings` route) via `base_url`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::remote::{ProviderDefaults, WireFormat};
use crate::embed::{EmbedError, Embeddings, InputType};

pub struct OpenAi;

/// `{"data": [{"embedding": [...], "index": 0}], "usage": {"total_tokens": n}}`, also
/// Voyage's shape.
#[derive(Debug, Deserialize)]
pub struct DataList {
    pub data: Vec<DataItem>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub struct DataItem {
    pub embedding: Vec<f32>,
    pub index: usize,
}

#[derive(Debug, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub total_tokens: Option<usize>,
}

impl DataList {
    /// Vectors in input order: the API pairs each with its input's `index`, and does not
    /// promise to answer in order.
    pub fn into_embeddings(self) -> Result<Embeddings, EmbedError> {
        let n = self.data.len();
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; n];
        for item in self.data {
            let slot = vectors.get_mut(item.index).ok_or_else(|| {
                EmbedError::Protocol(format!("index {} out of range for {n} vectors", item.index))
            })?;
            if slot.replace(item.embedding).is_some() {
                return Err(EmbedError::Protocol(format!(
                    "index {} answered twice",
                    item.index
                )));
            }
        }
        Ok(Embeddings {
            vectors: vectors.into_iter().map(Option::unwrap_or_default).collect(),
            billed_tokens: self.usage.and_then(|u| u.total_tokens),
        })
    }
}

impl WireFormat for OpenAi {
    type Response = DataList;

    fn kind(&self) -> &'static str {
        "openai"
    }

    fn defaults(&self) -> ProviderDefaults {
        ProviderDefaults {
            base_url: Some("https://api.openai.com/v1"),
            model: Some("text-embedding-3-small"),
            api_key_env: Some("OPENAI_API_KEY"),
            api_key_required: true,
            // 2048 inputs, 300K tokens per request; 8192 tokens per input.
            max_inputs: 2048,
            max_request_tokens: 300_000,
            // Free tier for embedding models: 100 RPM, 40,000 TPM (tier 1: 3,000 and 1M).
            requests_per_minute: Some(100),
            tokens_per_minute: Some(40_000),
        }
    }

    fn url(&self, base_url: &str, _model: &str) -> String {
        format!("{}/embeddings", base_url.trim_end_matches('/'))
    }

    fn body(
        &self,
        texts: &[&str],
        _input_type: InputType,
        model: &str,
        dimensions: Option<usize>,
    ) -> Value {
        let mut body = json!({"input": texts, "model": model, "encoding_format": "float"});
        if let Some(d) = dimensions {
            body["dimensions"] = d.into();
        }
        body
    }

    fn embeddings(&self, response: DataList) -> Result<Embeddings, EmbedError> {
        response.into_embeddings()
    }
}
