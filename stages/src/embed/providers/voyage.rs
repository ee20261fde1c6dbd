//! Voyage AI `POST /v1/embeddings`.

use serde_json::{json, Value};

use super::openai::DataList;
use super::remote::{ProviderDefaults, WireFormat};
use crate::embed::{EmbedError, Embeddings, InputType};

pub struct Voyage;

impl WireFormat for Voyage {
    type Response = DataList;

    fn kind(&self) -> &'static str {
        "voyage"
    }

    fn defaults(&self) -> ProviderDefaults {
        ProviderDefaults {
            base_url: Some("https://api.voyageai.com/v1"),
            model: Some("voyage-3.5"),
            api_key_env: Some("VOYAGE_API_KEY"),
            api_key_required: true,
            // 1,000 inputs per request; 320K tokens for voyage-3.5 (1M for -lite, 120K for
            // voyage-code-3: set `max_request_tokens` for those).
            max_inputs: 1_000,
            max_request_tokens: 120_000,
            // Without a payment method on the account: 3 RPM and 10K TPM.
            requests_per_minute: Some(3),
            tokens_per_minute: Some(10_000),
        }
    }

    fn url(&self, base_url: &str, _model: &str) -> String {
        format!("{}/embeddings", base_url.trim_end_matches('/'))
    }

    fn body(
        &self,
        texts: &[&str],
        input_type: InputType,
        model: &str,
        dimensions: Option<usize>,
    ) -> Value {
        let input_type = match input_type {
            InputType::Document => "document",
            InputType::Query => "query",
        };
        let mut body = json!({"input": texts, "model": model, "input_type": input_type});
        if let Some(d) = dimensions {
            body["output_dimension"] = d.into();
        }
        body
    }

    fn embeddings(&self, response: DataList) -> Result<Embeddings, EmbedError> {
        response.into_embeddings()
    }
}
