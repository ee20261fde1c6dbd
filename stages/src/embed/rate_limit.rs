//! Requests-per-minute and tokens-per-minute budgets for one endpoint, with governor's GCRA
//! (the quota and the shared Retry-After pause are [`kass_pipeline::rate_limit`]'s).
//!
//! Why both: providers enforce both (Voyage without a payment method: 3 RPM and 10K TPM), and
//! whichever is tighter depends on the chunk sizes. Tokens are counted before sending.
//!
//! Documented burst: requests are spaced evenly at `window / (rpm * (1 - headroom))`, with at
//! most `request_burst` sent back to back after an idle spell; so over any `window` at most
//! `rpm + request_burst` requests go out. Tokens likewise, with a burst of one full request
//! (`token_burst`, the request token cap): at most `tpm + token_burst` tokens per window.
//! `headroom` (2 % by default) keeps the long-run rate just under the limit, so that network
//! jitter does not push two requests into the provider's same window.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use kass_pipeline::rate_limit::{self, Pause};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    pub requests_per_window: Option<u32>,
    pub tokens_per_window: Option<u32>,
    pub request_burst: u32,
    pub token_burst: u32,
    pub headroom: f64,
    /// One minute, except in tests that shrink time.
    pub window: Duration,
}

impl RateLimits {
    pub fn unlimited() -> Self {
        Self {
            requests_per_window: None,
            tokens_per_window: None,
            request_burst: 1,
            token_burst: 1,
            headroom: 0.0,
            window: Duration::from_secs(60),
        }
    }
}

/// Waits until a request of `n` tokens fits both budgets, and after a 429 until the
/// provider's Retry-After has passed, for every request of the endpoint at once.
pub struct RateLimiter {
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<(DefaultDirectRateLimiter, NonZeroU32)>,
    pause: Pause,
}

fn quota(per_window: u32, burst: u32, limits: &RateLimits) -> Quota {
    rate_limit::quota(per_window as f64, burst, limits.headroom, limits.window)
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        let requests = limits
            .requests_per_window
            .map(|rpm| DefaultDirectRateLimiter::direct(quota(rpm, limits.request_burst, &limits)));
        let tokens = limits.tokens_per_window.map(|tpm| {
            let burst = limits.token_burst.max(1);
            (
                DefaultDirectRateLimiter::direct(quota(tpm, burst, &limits)),
                NonZeroU32::new(burst).expect("at least 1"),
            )
        });
        Self {
            requests,
            tokens,
            pause: Pause::new(),
        }
    }

    /// Waits for the budget of one request of `tokens` tokens; returns how long it waited.
    /// A request larger than the token burst waits for a full burst (it cannot ever fit more).
    pub async fn acquire(&self, tokens: usize) -> Duration {
        let started = Instant::now();
        self.pause.wait().await;
        if let Some(requests) = &self.requests {
            requests.until_ready().await;
        }
        if let Some((limiter, burst)) = &self.tokens {
            let n = NonZeroU32::new(tokens.clamp(1, burst.get() as usize) as u32)
                .expect("clamped to at least 1");
            // Cannot fail: n <= burst.
            let _ = limiter.until_n_ready(n).await;
        }
        started.elapsed()
    }

    /// Holds every request of this endpoint back until `after` has passed (a 429's
    /// Retry-After applies to the account, not just to the request that got it).
    pub fn pause_for(&self, after: Duration) {
        self.pause.pause_for(after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u32>, tpm: Option<u32>, window_ms: u64) -> RateLimits {
        RateLimits {
            requests_per_window: rpm,
            tokens_per_window: tpm,
            request_burst: 1,
            token_burst: 100,
            headroom: 0.0,
            window: Duration::from_millis(window_ms),
        }
    }

    #[tokio::test]
    async fn requests_are_spaced_by_the_window_over_the_rate() {
        let limiter = RateLimiter::new(limits(Some(10), None, 500));
        let started = Instant::now();
        for _ in 0..6 {
            limiter.acquire(1).await;
        }
        // First at once, then one per 50 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(240), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
    }

    #[tokio::test]
    async fn tokens_budget_holds_back_large_requests() {
        // 1000 tokens per 500 ms; burst 100: ten requests of 100 tokens need ~450 ms.
        let limiter = RateLimiter::new(limits(None, Some(1000), 500));
        let started = Instant::now();
        for _ in 0..10 {
            limiter.acquire(100).await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(420), "{elapsed:?}");
        // Oversized requests are clamped to the burst instead of failing.
        limiter.acquire(10_000).await;
    }

    #[tokio::test]
    async fn a_pause_holds_every_request() {
        let limiter = RateLimiter::new(RateLimits::unlimited());
        limiter.pause_for(Duration::from_millis(120));
        let waited = limiter.acquire(1).await;
        assert!(waited >= Duration::from_millis(110), "{waited:?}");
    }
}
