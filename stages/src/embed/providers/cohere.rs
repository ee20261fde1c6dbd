//! Cohere `POST /v2/embed`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::remote::{ProviderDefaults, WireFormat};
use crate::embed::{EmbedError, Embeddings, InputType};

pub struct Cohere;

/// `{"embeddings": {"float": [[...]]}, "meta": {"billed_units": {"input_tokens": n}}}`.
#[derive(Debug, Deserialize)]
pub struct EmbedByType {
    embeddings: Floats,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
struct Floats {
    float: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    #[serde(default)]
    billed_units: Option<BilledUnits>,
}

#[derive(Debug, Deserialize)]
struct BilledUnits {
    #[serde(default)]
    input_tokens: Option<f64>,
}

impl WireFormat for Cohere {
    type Response = EmbedByType;

    fn kind(&self) -> &'static str {
        "cohere"
    }

    fn defaults(&self) -> ProviderDefaults {
        ProviderDefaults {
            base_url: Some("https://api.cohere.com"),
            model: Some("embed-english-v3.0"),
            api_key_env: Some("CO_API_KEY"),
            api_key_required: true,
            // At most 96 texts per call.
            max_inputs: 96,
            max_request_tokens: 96 * 512,
            // Embed allows 2,000 inputs per minute (trial and production alike): at 96
            // inputs per call, 20 calls per minute. No documented token limit.
            requests_per_minute: Some(20),
            tokens_per_minute: None,
        }
    }

    fn url(&self, base_url: &str, _model: &str) -> String {
        format!("{}/v2/embed", base_url.trim_end_matches('/'))
    }

    fn body(
        &self,
        texts: &[&str],
        input_type: InputType,
        model: &str,
        dimensions: Option<usize>,
    ) -> Value {
        let input_type = match input_type {
            InputType::Document => "search_document",
            InputType::Query => "search_query",
        };
        let mut body = json!({
            "texts": texts,
            "model": model,
            "input_type": input_type,
            "embedding_types": ["float"],
        });
        if let Some(d) = dimensions {
            body["output_dimension"] = d.into();
        }
        body
    }

    fn embeddings(&self, response: EmbedByType) -> Result<Embeddings, EmbedError> {
        Ok(Embeddings {
            vectors: response.embeddings.float,
            billed_tokens: response
                .meta
                .and_then(|m| m.billed_units)
                .and_then(|b| b.input_tokens)
                .map(|t| t as usize),
        })
    }
}
