//! One endpoint of the fallback chain: a provider behind its own rate limiter and retry
//! policy. Every request of the embed stage goes through [`Endpoint::embed`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use kass_pipeline::telemetry::{self, EmbedRetryScheduled};

use super::rate_limit::{RateLimiter, RateLimits, Signal};
use super::{EmbedError, EmbeddingProvider, Embeddings, InputType};
use kass_pipeline::retry::RetryPolicy;

pub struct Endpoint {
    /// Label in metrics, logs and dead letters (`voyage`, `openai-mirror`, ...).
    pub name: String,
    pub provider: Arc<dyn EmbeddingProvider>,
    limits: RateLimits,
    limiter: RateLimiter,
    retry: RetryPolicy,
}

impl Endpoint {
    pub fn new(
        name: String,
        provider: Arc<dyn EmbeddingProvider>,
        limits: RateLimits,
        retry: RetryPolicy,
    ) -> Self {
        // This worker's share, per minute whatever window tests shrink time to: "used /
        // allowed" is one query.
        telemetry::embed_budget(
            &name,
            per_minute(&limits, limits.share(limits.requests_per_window)),
            per_minute(&limits, limits.share(limits.tokens_per_window)),
        );
        telemetry::embed_budget_workers(&name, limits.workers);
        Self {
            name,
            provider,
            limiter: RateLimiter::new(limits),
            limits,
            retry,
        }
    }

    pub fn rate_limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Sends one request within the rate budget, retrying 429s, 5xx and network errors (with
    /// the provider's Retry-After, else exponential back-off with jitter) up to the policy's
    /// bound. Answers are checked: one vector per input, each of the model's dimension.
    pub async fn embed(
        &self,
        texts: &[&str],
        input_type: InputType,
    ) -> Result<Embeddings, EmbedError> {
        let tokens: usize = texts.iter().map(|t| self.provider.count_tokens(t)).sum();
        let result = self
            .retry
            .run(
                |_| self.attempt(texts, input_type, tokens),
                |e: &EmbedError| e.is_retryable().then(|| e.retry_after()),
                |e, attempt, delay| {
                    if matches!(e, EmbedError::RateLimited { .. }) {
                        // The whole account is over its budget, not just this request.
                        self.limiter.pause_for(delay);
                        telemetry::embed_rate_limit_wait(&self.name, delay.as_secs_f64());
                    }
                    EmbedRetryScheduled {
                        endpoint: &self.name,
                        reason: e.kind(),
                        attempt,
                        delay,
                        error: e,
                    }
                    .emit();
                },
            )
            .await
            .map_err(|(e, _)| e)?;
        telemetry::embed_batch(&self.name, texts.len());
        telemetry::embed_tokens(&self.name, "estimated", tokens);
        if let Some(billed) = result.billed_tokens {
            telemetry::embed_tokens(&self.name, "billed", billed);
        }
        telemetry::embeddings_received(&self.name, result.vectors.len());
        Ok(result)
    }

    /// One try: wait for the budget, send, check, count.
    async fn attempt(
        &self,
        texts: &[&str],
        input_type: InputType,
        tokens: usize,
    ) -> Result<Embeddings, EmbedError> {
        let waited = self.limiter.acquire(tokens).await;
        if waited > Duration::from_millis(1) {
            telemetry::embed_rate_limit_wait(&self.name, waited.as_secs_f64());
        }
        telemetry::embed_in_flight(&self.name, 1.0);
        let started = Instant::now();
        let result = self
            .provider
            .embed(texts, input_type)
            .await
            .and_then(|e| self.check(e, texts.len()));
        telemetry::embed_in_flight(&self.name, -1.0);
        self.limiter.observe(signal_of(&result), started.elapsed());
        let (requests, tokens) = self.limiter.used();
        telemetry::embed_budget_used(
            &self.name,
            per_minute(&self.limits, Some(requests as f64)),
            per_minute(&self.limits, Some(tokens as f64)),
            per_minute(&self.limits, self.limiter.adaptive_rate()),
        );
        telemetry::embed_request(
            &self.name,
            &status_label(&result),
            started.elapsed().as_secs_f64(),
        );
        result
    }

    fn check(&self, embeddings: Embeddings, inputs: usize) -> Result<Embeddings, EmbedError> {
        let dimension = self.provider.model().dimension;
        if embeddings.vectors.len() != inputs {
            return Err(EmbedError::Protocol(format!(
                "{} vectors for {inputs} inputs",
                embeddings.vectors.len()
            )));
        }
        if let Some((i, v)) = embeddings
            .vectors
            .iter()
            .enumerate()
            .find(|(_, v)| v.len() != dimension || v.iter().any(|x| !x.is_finite()))
        {
            return Err(EmbedError::Protocol(format!(
                "vector {i} has {} values (expected {dimension}) or a non-finite value",
                v.len()
            )));
        }
        Ok(embeddings)
    }
}

/// A count per `limits.window` as a count per minute (0: none).
fn per_minute(limits: &RateLimits, n: Option<f64>) -> f64 {
    n.map_or(0.0, |n| n * 60.0 / limits.window.as_secs_f64().max(1e-9))
}

/// What an answer says about the provider's load, for the adaptive pacer.
fn signal_of(result: &Result<Embeddings, EmbedError>) -> Signal {
    match result {
        Ok(_) => Signal::Ok,
        Err(EmbedError::RateLimited { .. })
        | Err(EmbedError::Transient {
            status: Some(503), ..
        }) => Signal::Overloaded,
        Err(_) => Signal::Neutral,
    }
}

fn status_label(result: &Result<Embeddings, EmbedError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(EmbedError::RateLimited { .. }) => "429".into(),
        Err(EmbedError::Transient {
            status: Some(s), ..
        })
        | Err(EmbedError::InvalidInput { status: s, .. })
        | Err(EmbedError::Rejected { status: s, .. }) => s.to_string(),
        Err(e) => e.kind().into(),
    }
}
