//! When to try a remote call again (an embedding request, a Chroma write), and how long to wait
//! first.

use std::time::{Duration, SystemTime};

use rand::Rng;
use serde::Deserialize;

/// `[embed.retry]` and `[chroma.retry]` in kass.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Tries per request, the first included; after the last, the embed stage moves to the
    /// fallback endpoint (if any) and the sinks dead-letter the batch.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First back-off when the provider gave no Retry-After; doubles per attempt.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest single back-off, and the longest Retry-After honoured (a longer one is capped,
    /// so one odd header cannot stall the run for hours).
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

fn default_max_attempts() -> u32 {
    8
}
fn default_initial_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_ms() -> u64 {
    60_000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        }
    }
}

impl RetryPolicy {
    /// The pause before try number `attempt + 1` (`attempt` counts from 0).
    ///
    /// With a Retry-After: exactly that (capped), plus up to 10 % jitter so that requests
    /// waiting on the same header do not return at the same instant. Without one: "equal
    /// jitter" exponential back-off, between half and all of `initial * 2^attempt`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let cap = Duration::from_millis(self.max_backoff_ms);
        let mut rng = rand::rng();
        match retry_after {
            Some(after) => {
                let after = after.min(cap);
                let jitter = after.mul_f64(rng.random_range(0.0..0.1));
                after + jitter.min(Duration::from_secs(1))
            }
            None => {
                let exp = Duration::from_millis(self.initial_backoff_ms)
                    .saturating_mul(1u32 << attempt.min(20))
                    .min(cap);
                exp.mul_f64(rng.random_range(0.5..=1.0))
            }
        }
    }
}

impl RetryPolicy {
    /// Runs `attempt` (given the attempt number, from 0) until it succeeds, fails for good, or
    /// the policy's bound is reached: the one retry loop of every remote call kass makes.
    ///
    /// `retryable` says whether an error is worth another try and, if so, the pause the server
    /// asked for (`Some(None)`: retry with back-off). `on_retry` sees each error that will be
    /// retried, with the pause chosen, before the sleep (logs, metrics, a shared rate-limit
    /// pause). On failure, returns the last error and how many attempts were made.
    pub async fn run<T, E, Fut>(
        &self,
        mut attempt: impl FnMut(u32) -> Fut,
        retryable: impl Fn(&E) -> Option<Option<Duration>>,
        mut on_retry: impl FnMut(&E, u32, Duration),
    ) -> Result<T, (E, u32)>
    where
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut n = 0;
        loop {
            let error = match attempt(n).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            n += 1;
            match retryable(&error) {
                Some(after) if n < self.max_attempts => {
                    let delay = self.delay(n - 1, after);
                    on_retry(&error, n, delay);
                    tokio::time::sleep(delay).await;
                }
                _ => return Err((error, n)),
            }
        }
    }
}

/// Parses an HTTP `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
/// A date in the past means "now". Fractional seconds, which some servers send, are accepted.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-3"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let header = httpdate::fmt_http_date(in_a_minute);
        let parsed = parse_retry_after(&header).unwrap();
        assert!(parsed > Duration::from_secs(55) && parsed <= Duration::from_secs(60));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn run_retries_only_what_is_retryable_up_to_the_bound() {
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
        };
        let mut seen = Vec::new();
        let result: Result<(), (&str, u32)> = policy
            .run(
                |_| async { Err("busy") },
                |_| Some(None),
                |e, n, _| seen.push((*e, n)),
            )
            .await;
        assert_eq!(result, Err(("busy", 3)));
        assert_eq!(seen, vec![("busy", 1), ("busy", 2)]);
        let result: Result<(), (&str, u32)> = policy
            .run(|_| async { Err("bad key") }, |_| None, |_, _, _| {})
            .await;
        assert_eq!(result, Err(("bad key", 1)));
        let result = policy
            .run(
                |n| async move {
                    if n < 2 {
                        Err("busy")
                    } else {
                        Ok(n)
                    }
                },
                |_| Some(Some(Duration::from_millis(1))),
                |_, _, _| {},
            )
            .await;
        assert_eq!(result, Ok(2));
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
        };
        let first = policy.delay(0, None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = policy.delay(2, None);
        assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
        assert!(policy.delay(30, None) <= Duration::from_secs(1));
        let asked = policy.delay(0, Some(Duration::from_millis(300)));
        assert!(asked >= Duration::from_millis(300) && asked <= Duration::from_millis(330));
        // A Retry-After beyond the cap is capped.
        assert!(policy.delay(0, Some(Duration::from_secs(3600))) <= Duration::from_millis(1_100));
    }
}
