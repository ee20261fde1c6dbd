//! The two pieces every client-side rate limit in kass is made of, shared by the embed stage's
//! endpoint limiter and the API sources' per-method limiters, so both space requests the same
//! way and honour a 429 the same way.
//!
//! - [`quota`]: a governor GCRA quota that spaces requests evenly at `window / (rate * (1 -
//!   headroom))`, with at most `burst` back to back after an idle spell. Over any `window` at
//!   most `rate + burst - 1` requests go out, which is what a server counting a sliding window
//!   accepts.
//! - [`Pause`]: a shared "paused until": a 429's Retry-After applies to the account (or the
//!   method), not to the one request that got it, so every task waits it out together.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::Quota;
use tokio::time::Instant;

/// A quota of `per_window` requests (or tokens) per `window`, minus `headroom` (a share, at
/// most 0.5) kept unused so that network jitter does not push two requests into the server's
/// same window; `burst` of them may go back to back after an idle spell.
pub fn quota(per_window: f64, burst: u32, headroom: f64, window: Duration) -> Quota {
    let effective = (per_window * (1.0 - headroom.clamp(0.0, 0.5))).max(1e-3);
    let interval = window.div_f64(effective).max(Duration::from_nanos(1));
    Quota::with_period(interval)
        .expect("interval is positive")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"))
}

/// A "paused until" shared by every task that sends to the same place.
#[derive(Debug, Default)]
pub struct Pause {
    until: Mutex<Option<Instant>>,
}

impl Pause {
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds every caller of [`Self::wait`] back until `after` has passed; a shorter pause
    /// never cuts a longer one short.
    pub fn pause_for(&self, after: Duration) {
        let until = Instant::now() + after;
        let mut paused = self.until.lock().expect("not poisoned");
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// Waits until no pause is in force (one set while waiting is waited out too); returns
    /// how long it waited.
    pub async fn wait(&self) -> Duration {
        let started = Instant::now();
        loop {
            let pause = *self.until.lock().expect("not poisoned");
            match pause {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return started.elapsed(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_pause_holds_every_waiter_and_a_shorter_one_does_not_cut_it() {
        let pause = Arc::new(Pause::new());
        pause.pause_for(Duration::from_millis(150));
        pause.pause_for(Duration::from_millis(10));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let pause = pause.clone();
                tokio::spawn(async move { pause.wait().await })
            })
            .collect();
        for waiter in waiters {
            let waited = waiter.await.unwrap();
            assert!(waited >= Duration::from_millis(140), "{waited:?}");
        }
        assert!(pause.wait().await < Duration::from_millis(5));
    }

    #[test]
    fn quota_spaces_requests_by_the_window_over_the_rate_less_headroom() {
        let q = quota(5.0, 1, 0.0, Duration::from_secs(2));
        assert_eq!(q.replenish_interval(), Duration::from_millis(400));
        let q = quota(10.0, 3, 0.5, Duration::from_secs(1));
        assert_eq!(q.replenish_interval(), Duration::from_millis(200));
        assert_eq!(q.burst_size().get(), 3);
    }
}
