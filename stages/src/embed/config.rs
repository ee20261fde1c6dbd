//! `[embed]` in kass.toml: which provider, its limits, and how requests are batched.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use kass_pipeline::secret::Secret;
use kass_pipeline::tokenizer::default_model_dir;

use super::endpoint::Endpoint;
use super::http::HttpEndpoint;
use super::providers::cohere::Cohere;
use super::providers::huggingface::{HfInference, Tei};
use super::providers::openai::OpenAi;
use super::providers::voyage::Voyage;
use super::providers::{LocalModel, LocalProvider, Precision, RemoteProvider, WireFormat};
use super::rate_limit::RateLimits;
use super::stage::EmbedStage;
use super::tokens::TokenCount;
use super::{Embedder, EmbeddingProvider, RequestLimits};
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::EmbeddingModel;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    /// The primary endpoint, `[embed.provider]`; the local model when absent.
    #[serde(default)]
    pub provider: EndpointConfig,
    /// `[[embed.fallback]]`: endpoints serving the same model, tried in order when the one
    /// before keeps failing (another key, an OpenAI-compatible mirror).
    #[serde(default)]
    pub fallback: Vec<EndpointConfig>,
    /// Most chunks per request (the provider's own limit applies too).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest a chunk waits for its request to fill.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// Requests in flight at once; default 4 for remote providers, 2 for the local model (its
    /// threads take the second request's micro-batches as they free up, so no core idles
    /// between requests).
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_batch_size() -> usize {
    50
}
fn default_max_wait_ms() -> u64 {
    200
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            provider: EndpointConfig::default(),
            fallback: Vec::new(),
            batch_size: default_batch_size(),
            max_wait_ms: default_max_wait_ms(),
            max_in_flight: None,
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    #[default]
    Local,
    Voyage,
    OpenAi,
    Cohere,
    HuggingFace,
    Tei,
}

/// One endpoint. Every key is optional: defaults come from the provider's documentation
/// (URL, model, key variable, request limits, lowest tier's rate limits).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    #[serde(default)]
    pub kind: ProviderKind,
    /// Label in metrics and logs; default the kind (with `-fallback-N` for fallbacks).
    pub name: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// Environment variable holding the API key (the key itself never goes in the file).
    pub api_key_env: Option<String>,
    /// Vector length: sent as the API's dimension parameter, and required for models kass
    /// does not know.
    pub dimensions: Option<usize>,
    /// 0 means unlimited.
    pub requests_per_minute: Option<u32>,
    /// 0 means unlimited.
    pub tokens_per_minute: Option<u32>,
    /// Requests that may go back to back after an idle spell (default 1: evenly spaced).
    pub request_burst: Option<u32>,
    /// The "minute" of the two limits above, for APIs that count over another window.
    pub rate_window_ms: Option<u64>,
    pub max_inputs: Option<usize>,
    pub max_request_tokens: Option<usize>,
    /// The provider's tokenizer.json, for exact token counts instead of the estimate.
    pub tokenizer: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
    /// Local model: the directory with config.json, tokenizer.json, model.safetensors.
    pub model_dir: Option<PathBuf>,
    /// Local model: inputs per forward pass (default 8).
    pub micro_batch: Option<usize>,
    /// Local model: forward passes at once, each on one thread (default: one per core).
    /// Remote providers: workers (`kass embed --listen` processes, concurrent Lambda
    /// invocations) sharing this account's limits; each keeps to `requests_per_minute /
    /// workers` and `tokens_per_minute / workers` (default 1). See docs/scaling.md.
    pub workers: Option<usize>,
    /// Local model: `auto` (default), `f32` or `int8` (dense layers in 8-bit integers).
    /// `auto` runs `int8` where the CPU has an int8 kernel faster than f32 (AVX2, AVX-VNNI or
    /// AVX-512 VNNI) and `f32` elsewhere, so it is never slower than f32; `int8` asked for on
    /// a CPU without them runs a scalar loop several times slower than f32 (and says so in the
    /// log). `KASS_CPU_PATH` lowers the CPU path (see docs/local-model.md).
    pub precision: Option<Precision>,
}

#[derive(Debug, thiserror::Error)]
#[error("[embed] {0}")]
pub struct EmbedConfigError(pub String);

/// Vector lengths of models kass knows, so that they need no `dimensions`.
fn known_dimension(model: &str) -> Option<usize> {
    let name = model.rsplit('/').next().unwrap_or(model);
    Some(match name {
        "voyage-3.5" | "voyage-3.5-lite" | "voyage-3-large" | "voyage-code-3" | "voyage-3"
        | "voyage-context-3" => 1024,
        "voyage-3-lite" => 512,
        "text-embedding-3-small" | "text-embedding-ada-002" => 1536,
        "text-embedding-3-large" => 3072,
        "embed-english-v3.0" | "embed-multilingual-v3.0" => 1024,
        "embed-english-light-v3.0" | "embed-multilingual-light-v3.0" => 384,
        "embed-v4.0" => 1536,
        "all-MiniLM-L6-v2" | "all-MiniLM-L12-v2" | "bge-small-en-v1.5" | "e5-small-v2" => 384,
        "all-mpnet-base-v2" | "bge-base-en-v1.5" | "nomic-embed-text-v1.5" | "e5-base-v2" => 768,
        "bge-large-en-v1.5" | "e5-large-v2" => 1024,
        _ => return None,
    })
}

impl EmbedConfig {
    pub fn validate(&self) -> Result<(), EmbedConfigError> {
        if self.batch_size == 0 {
            return Err(EmbedConfigError("batch_size must be at least 1".into()));
        }
        if self.retry.max_attempts == 0 {
            return Err(EmbedConfigError(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Builds the endpoints (loading the local model if configured) and the chain.
    pub fn build_embedder(&self) -> Result<Arc<Embedder>, EmbedConfigError> {
        self.validate()?;
        let mut endpoints = vec![self.provider.build(self, None)?];
        for (i, fallback) in self.fallback.iter().enumerate() {
            endpoints.push(fallback.build(self, Some(i + 1))?);
        }
        Embedder::new(endpoints)
            .map(Arc::new)
            .map_err(|e| EmbedConfigError(e.to_string()))
    }

    /// The stage over an already built embedder (shared with `kass query`).
    pub fn stage(&self, embedder: Arc<Embedder>) -> EmbedStage {
        let limits = embedder.limits();
        let in_flight = self.max_in_flight.unwrap_or(match self.provider.kind {
            ProviderKind::Local => 2,
            _ => 4,
        });
        EmbedStage::new(
            embedder,
            limits,
            Duration::from_millis(self.max_wait_ms),
            in_flight,
        )
    }
}

impl EndpointConfig {
    fn label(&self, fallback: Option<usize>) -> String {
        self.name.clone().unwrap_or_else(|| {
            let kind = self.kind_name();
            match fallback {
                Some(n) => format!("{kind}-fallback-{n}"),
                None => kind.to_string(),
            }
        })
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            ProviderKind::Local => "local",
            ProviderKind::Voyage => "voyage",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Cohere => "cohere",
            ProviderKind::HuggingFace => "huggingface",
            ProviderKind::Tei => "tei",
        }
    }

    fn build(
        &self,
        embed: &EmbedConfig,
        fallback: Option<usize>,
    ) -> Result<Endpoint, EmbedConfigError> {
        let name = self.label(fallback);
        let err = |msg: String| EmbedConfigError(format!("endpoint `{name}`: {msg}"));
        let (provider, defaults): (Arc<dyn EmbeddingProvider>, _) = match self.kind {
            ProviderKind::Local => {
                let dir = self.model_dir.clone().unwrap_or_else(default_model_dir);
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let model = LocalModel::load(
                    &dir,
                    self.micro_batch.unwrap_or(8),
                    self.workers.unwrap_or(cores),
                    self.precision.unwrap_or_default(),
                )
                .map_err(|e| err(e.to_string()))?;
                let max_inputs = self
                    .max_inputs
                    .unwrap_or(embed.batch_size)
                    .min(embed.batch_size);
                (
                    Arc::new(LocalProvider::new(Arc::new(model), max_inputs)),
                    None,
                )
            }
            ProviderKind::Voyage => self.remote(Voyage, &name, embed, &err)?,
            ProviderKind::OpenAi => self.remote(OpenAi, &name, embed, &err)?,
            ProviderKind::Cohere => self.remote(Cohere, &name, embed, &err)?,
            ProviderKind::HuggingFace => self.remote(HfInference, &name, embed, &err)?,
            ProviderKind::Tei => self.remote(Tei, &name, embed, &err)?,
        };
        let limits = match defaults {
            None => RateLimits::unlimited(),
            Some((rpm, tpm)) => {
                let limit = |v: Option<u32>| v.filter(|&n| n > 0);
                let rpm = limit(self.requests_per_minute.or(rpm));
                let tpm = limit(self.tokens_per_minute.or(tpm));
                RateLimits {
                    requests_per_window: rpm,
                    tokens_per_window: tpm,
                    request_burst: self.request_burst.unwrap_or(1).max(1),
                    token_burst: provider.limits().max_tokens.min(u32::MAX as usize) as u32,
                    headroom: 0.02,
                    window: Duration::from_millis(self.rate_window_ms.unwrap_or(60_000).max(1)),
                    workers: self.workers.unwrap_or(1).clamp(1, u32::MAX as usize) as u32,
                }
            }
        };
        Ok(Endpoint::new(name, provider, limits, embed.retry.clone()))
    }

    /// A remote provider and its default (rpm, tpm).
    #[allow(clippy::type_complexity)]
    fn remote<W: WireFormat>(
        &self,
        wire: W,
        name: &str,
        embed: &EmbedConfig,
        err: &dyn Fn(String) -> EmbedConfigError,
    ) -> Result<
        (
            Arc<dyn EmbeddingProvider>,
            Option<(Option<u32>, Option<u32>)>,
        ),
        EmbedConfigError,
    > {
        // `workers` means workers sharing the limits here (see the field).
        if self.model_dir.is_some() || self.micro_batch.is_some() || self.precision.is_some() {
            return Err(err(
                "model_dir, micro_batch and precision apply to the local model only".into(),
            ));
        }
        let d = wire.defaults();
        let base_url = self
            .base_url
            .clone()
            .or(d.base_url.map(str::to_string))
            .ok_or_else(|| err("base_url is required".into()))?;
        let model = self
            .model
            .clone()
            .or(d.model.map(str::to_string))
            .ok_or_else(|| err("model is required".into()))?;
        let dimension = self
            .dimensions
            .or_else(|| known_dimension(&model))
            .ok_or_else(|| {
                err(format!(
                    "the vector length of model `{model}` is not known: set dimensions"
                ))
            })?;
        let key_env = self
            .api_key_env
            .clone()
            .or(d.api_key_env.map(str::to_string));
        let api_key = match key_env.as_deref() {
            Some(var) => Secret::from_env(var).map_err(|e| err(format!("the API key in {e}")))?,
            None => None,
        };
        if api_key.is_none() && d.api_key_required {
            return Err(err(format!(
                "no API key: set the environment variable {}",
                key_env.as_deref().unwrap_or("named by api_key_env")
            )));
        }
        let tokens = match &self.tokenizer {
            Some(path) => TokenCount::from_file(path).map_err(|e| err(e.to_string()))?,
            None => TokenCount::Estimate,
        };
        let rpm = self.requests_per_minute.or(d.requests_per_minute);
        let tpm = self.tokens_per_minute.or(d.tokens_per_minute);
        // Requests sized so that both budgets run out together (tpm / rpm tokens), but at
        // least a tenth of the minute's tokens, and never over the provider's cap.
        let balanced = match (rpm.filter(|&r| r > 0), tpm.filter(|&t| t > 0)) {
            (Some(r), Some(t)) => Some(((t / r).max(t / 10)) as usize),
            (None, Some(t)) => Some(t as usize / 10),
            _ => None,
        };
        let max_tokens = self
            .max_request_tokens
            .or(balanced.map(|b| b.min(d.max_request_tokens)))
            .unwrap_or(d.max_request_tokens)
            .max(1);
        let max_inputs = self
            .max_inputs
            .unwrap_or(d.max_inputs)
            .min(embed.batch_size)
            .max(1);
        let http = HttpEndpoint::new(
            name,
            api_key,
            Duration::from_secs(self.timeout_secs.unwrap_or(60)),
        )
        .map_err(|e| err(e.to_string()))?;
        let url = wire.url(&base_url, &model);
        let provider = RemoteProvider {
            wire,
            http,
            url,
            model: EmbeddingModel {
                name: model,
                dimension,
            },
            dimensions: self.dimensions,
            limits: RequestLimits {
                max_inputs,
                max_tokens,
            },
            tokens,
        };
        Ok((Arc::new(provider), Some((rpm, tpm))))
    }
}
