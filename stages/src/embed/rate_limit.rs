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
//!
//! Several workers, one account: with `workers = N` each worker keeps to `rpm / N` and
//! `tpm / N`. Their clocks are not aligned, so over any window the provider sees at most
//! `rpm + N * request_burst` requests from all of them (each worker's share plus its own
//! burst) and `tpm + N * token_burst` tokens. On top of the share, each worker paces itself
//! adaptively ([`super::adaptive`]): slower after a 429, a 503 or a slow answer, back up to its
//! share while answers are fast and 2xx.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use kass_pipeline::rate_limit::{self, Pause};
use tokio::time::Instant;

use super::adaptive::AdaptivePacer;
pub use super::adaptive::Signal;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    pub requests_per_window: Option<u32>,
    pub tokens_per_window: Option<u32>,
    pub request_burst: u32,
    pub token_burst: u32,
    pub headroom: f64,
    /// One minute, except in tests that shrink time.
    pub window: Duration,
    /// Workers (processes, Lambda invocations) sharing the budget: each keeps to its share.
    pub workers: u32,
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
            workers: 1,
        }
    }

    /// This worker's share of a budget of `per_window`.
    pub fn share(&self, per_window: Option<u32>) -> Option<f64> {
        per_window.map(|n| f64::from(n) / f64::from(self.workers.max(1)))
    }
}

/// Waits until a request of `n` tokens fits both budgets, and after a 429 until the
/// provider's Retry-After has passed, for every request of the endpoint at once.
pub struct RateLimiter {
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<(DefaultDirectRateLimiter, NonZeroU32)>,
    pause: Pause,
    pacer: AdaptivePacer,
    window: Duration,
    /// Requests sent in the last window: (when, tokens), for the "used" gauges.
    sent: Mutex<VecDeque<(Instant, usize)>>,
}

fn quota(per_window: f64, burst: u32, limits: &RateLimits) -> Quota {
    rate_limit::quota(per_window, burst, limits.headroom, limits.window)
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        let rpm = limits.share(limits.requests_per_window);
        let requests = rpm
            .map(|rpm| DefaultDirectRateLimiter::direct(quota(rpm, limits.request_burst, &limits)));
        let tokens = limits.share(limits.tokens_per_window).map(|tpm| {
            let burst = limits.token_burst.max(1);
            (
                DefaultDirectRateLimiter::direct(quota(tpm, burst, &limits)),
                NonZeroU32::new(burst).expect("at least 1"),
            )
        });
        let headroom = 1.0 - limits.headroom.clamp(0.0, 0.5);
        Self {
            requests,
            tokens,
            pause: Pause::new(),
            pacer: AdaptivePacer::new(rpm.map(|r| r * headroom), limits.window),
            window: limits.window,
            sent: Mutex::default(),
        }
    }

    /// Waits for the budget of one request of `tokens` tokens; returns how long it waited.
    /// A request larger than the token burst waits for a full burst (it cannot ever fit more).
    pub async fn acquire(&self, tokens: usize) -> Duration {
        let started = Instant::now();
        self.pause.wait().await;
        self.pacer.acquire().await;
        if let Some(requests) = &self.requests {
            requests.until_ready().await;
        }
        if let Some((limiter, burst)) = &self.tokens {
            let n = NonZeroU32::new(tokens.clamp(1, burst.get() as usize) as u32)
                .expect("clamped to at least 1");
            // Cannot fail: n <= burst.
            let _ = limiter.until_n_ready(n).await;
        }
        let now = Instant::now();
        let mut sent = self.sent.lock().expect("not poisoned");
        while sent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.window)
        {
            sent.pop_front();
        }
        sent.push_back((now, tokens));
        started.elapsed()
    }

    /// Requests and tokens sent in the last window (this worker's use of its budget).
    pub fn used(&self) -> (usize, usize) {
        let sent = self.sent.lock().expect("not poisoned");
        let now = Instant::now();
        let recent = sent
            .iter()
            .filter(|(at, _)| now.duration_since(*at) < self.window);
        recent.fold((0, 0), |(r, t), (_, n)| (r + 1, t + n))
    }

    /// Requests per window the adaptive pacer allows now (`None`: no request budget).
    pub fn adaptive_rate(&self) -> Option<f64> {
        self.pacer.rate()
    }

    /// Tells the adaptive pacer how a request went.
    pub fn observe(&self, signal: Signal, rtt: Duration) {
        self.pacer.observe(signal, rtt);
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
            workers: 1,
        }
    }

    #[tokio::test]
    async fn each_of_n_workers_keeps_to_its_share() {
        // 30 per 600 ms over 3 workers: 10 each, one per 60 ms; 6 requests take ~300 ms.
        let mut shared = limits(Some(30), Some(3000), 600);
        shared.workers = 3;
        let limiter = RateLimiter::new(shared);
        let started = Instant::now();
        for _ in 0..6 {
            limiter.acquire(1).await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
        assert_eq!(limiter.used(), (6, 6));
        assert_eq!(limiter.adaptive_rate(), Some(10.0));
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
