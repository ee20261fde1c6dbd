//! The fallback chain and poison-input isolation: what turns a group of chunks into vectors,
//! or into precise dead letters, whatever the providers answer.

use std::sync::Arc;

use kass_pipeline::telemetry::EmbedFallbackUsed;
use kass_pipeline::{Chunk, EmbeddedChunk, EmbeddingModel, FailureKind, FatalError, ItemError};

use super::endpoint::Endpoint;
use super::{EmbedError, InputType, RequestLimits};

/// Chunks embedded, and chunks that could not be, each with the reason.
#[derive(Default)]
pub struct ChunkOutcome {
    pub embedded: Vec<EmbeddedChunk>,
    pub failed: Vec<(Chunk, ItemError)>,
}

/// The primary endpoint followed by its fallbacks, all serving the same model.
pub struct Embedder {
    endpoints: Vec<Endpoint>,
    model: Arc<EmbeddingModel>,
}

/// An endpoint's failure, named.
struct ChainError {
    endpoint: String,
    error: EmbedError,
}

/// An endpoint chain that cannot be used, naming the endpoints.
#[derive(Debug, thiserror::Error)]
pub enum EndpointChainError {
    #[error("no embedding endpoint configured")]
    Empty,
    #[error(
        "fallback endpoint `{fallback}` serves {fallback_model}, but `{first}` serves {model}: a \
         fallback must serve the same model"
    )]
    MixedModels {
        fallback: String,
        fallback_model: EmbeddingModel,
        first: String,
        model: EmbeddingModel,
    },
}

impl Embedder {
    /// Fails when the chain is empty or its endpoints serve different models: a fallback
    /// that answers with another model's vectors would corrupt the collection.
    pub fn new(endpoints: Vec<Endpoint>) -> Result<Self, EndpointChainError> {
        let first = endpoints.first().ok_or(EndpointChainError::Empty)?;
        let model = first.provider.model().clone();
        for e in &endpoints[1..] {
            if e.provider.model() != &model {
                return Err(EndpointChainError::MixedModels {
                    fallback: e.name.clone(),
                    fallback_model: e.provider.model().clone(),
                    first: first.name.clone(),
                    model,
                });
            }
        }
        Ok(Self {
            endpoints,
            model: Arc::new(model),
        })
    }

    pub fn model(&self) -> &Arc<EmbeddingModel> {
        &self.model
    }

    pub fn primary(&self) -> &Endpoint {
        &self.endpoints[0]
    }

    /// The primary's request limits, which the batcher fills requests up to.
    pub fn limits(&self) -> RequestLimits {
        self.primary().provider.limits()
    }

    pub fn count_tokens(&self, text: &str) -> usize {
        self.primary().provider.count_tokens(text)
    }

    /// Embeds a search query (query input type), for `kass query` and `kass eval`.
    pub async fn embed_query(&self, text: &str) -> Result<Vec<f32>, FatalError> {
        match self.on_chain(&[text], InputType::Query).await {
            Ok(mut vectors) => Ok(vectors.pop().unwrap_or_default()),
            Err(e) => Err(FatalError::Stage {
                stage: "embed".into(),
                reason: format!("endpoint `{}`: {}", e.endpoint, e.error),
            }),
        }
    }

    /// Tries each endpoint in turn; a refused input is not the endpoint's fault, so it is
    /// returned at once instead of being sent to the next endpoint.
    async fn on_chain(
        &self,
        texts: &[&str],
        input_type: InputType,
    ) -> Result<Vec<Vec<f32>>, ChainError> {
        let mut last = None;
        for endpoint in &self.endpoints {
            if let Some(ChainError {
                endpoint: from,
                error,
            }) = &last
            {
                EmbedFallbackUsed {
                    from,
                    to: &endpoint.name,
                    error,
                }
                .emit();
            }
            match endpoint.embed(texts, input_type).await {
                Ok(e) => return Ok(e.vectors),
                Err(error) => {
                    let failed = ChainError {
                        endpoint: endpoint.name.clone(),
                        error,
                    };
                    if matches!(failed.error, EmbedError::InvalidInput { .. }) {
                        return Err(failed);
                    }
                    last = Some(failed);
                }
            }
        }
        Err(last.expect("the chain has at least one endpoint"))
    }

    /// Embeds `chunks` as documents. A request refused because of its inputs is split in
    /// halves until the refused chunk stands alone; only that chunk fails (with the provider's
    /// message), the rest is embedded. When every endpoint stays unavailable past its retries,
    /// the chunks fail with that reason (and go to the dead letters, to be re-run). An endpoint
    /// refusing the request itself (bad key, unknown model) after the whole chain is fatal:
    /// every other batch would fail the same way.
    pub async fn embed_chunks(&self, chunks: Vec<Chunk>) -> Result<ChunkOutcome, FatalError> {
        let mut outcome = ChunkOutcome::default();
        let mut pending = vec![chunks];
        while let Some(mut group) = pending.pop() {
            if group.is_empty() {
                continue;
            }
            let texts: Vec<&str> = group.iter().map(|c| c.text.as_str()).collect();
            let result = self.on_chain(&texts, InputType::Document).await;
            drop(texts);
            match result {
                Ok(vectors) => outcome.embedded.extend(group.into_iter().zip(vectors).map(
                    |(chunk, embedding)| EmbeddedChunk {
                        chunk,
                        embedding,
                        model: self.model.clone(),
                    },
                )),
                Err(ChainError {
                    endpoint,
                    error: error @ EmbedError::InvalidInput { .. },
                }) => {
                    if group.len() == 1 {
                        let reason = format!("endpoint `{endpoint}` refused this chunk: {error}");
                        let chunk = group.pop().expect("one chunk");
                        outcome.failed.push((
                            chunk,
                            ItemError::new(FailureKind::EmbedInputRefused, reason),
                        ));
                        continue;
                    }
                    // When the provider names the input, try it alone first; it is only
                    // dead-lettered if refused on its own, so a wrong index costs one request.
                    let blamed = match error {
                        EmbedError::InvalidInput { index: Some(i), .. } if i < group.len() => {
                            Some(i)
                        }
                        _ => None,
                    };
                    match blamed {
                        Some(i) => {
                            let alone = group.remove(i);
                            pending.push(group);
                            pending.push(vec![alone]);
                        }
                        None => {
                            let right = group.split_off(group.len() / 2);
                            pending.push(right);
                            pending.push(group);
                        }
                    }
                }
                Err(ChainError {
                    endpoint,
                    error: error @ EmbedError::Rejected { .. },
                }) => {
                    return Err(FatalError::Stage {
                        stage: "embed".into(),
                        reason: format!("endpoint `{endpoint}` refuses every request: {error}"),
                    })
                }
                Err(ChainError { endpoint, error }) => {
                    let error_type = match error {
                        EmbedError::Protocol(_) | EmbedError::Local(_) => {
                            FailureKind::EmbedBadResponse
                        }
                        _ => FailureKind::EmbedUnavailable,
                    };
                    let reason = format!("endpoint `{endpoint}` failed after its retries: {error}");
                    outcome.failed.extend(
                        group
                            .into_iter()
                            .map(|c| (c, ItemError::new(error_type, reason.clone()))),
                    );
                }
            }
        }
        Ok(outcome)
    }
}
