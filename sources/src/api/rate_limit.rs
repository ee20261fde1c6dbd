//! Per-method request budgets of an API source.
//!
//! Web APIs limit requests per method (Slack: per method per workspace, in tiers of requests
//! per minute; `conversations.list` is Tier 2, `conversations.history` Tier 3 or, for apps
//! outside the Marketplace, 1 per minute). So every method gets its own governor limiter,
//! sized from its requests-per-minute figure, shared by every task of the source: requests
//! are spaced evenly, never bursted, so a server counting a sliding window never refuses one.
//!
//! A 429 pauses the method, not just the request that got it: [`MethodLimiters::pause`] sets
//! the method's shared "paused until", and every task's [`MethodLimiters::acquire`] of that
//! method waits it out, including one already waiting for its budget when the 429 came (it
//! looks again once the budget lets it go). After a pause, the first request is a probe: it
//! alone goes until it is answered ([`Permit`]); answered, the method opens for all; refused
//! again, it pauses again. So a server refusing a method for a while sees one request per
//! Retry-After, not one per waiting task.
//!
//! Tests shrink time instead of sleeping for minutes: [`RateLimitConfig::rate_scale`]
//! multiplies every figure (a tier of 1 per minute at `rate_scale = 60` is 1 per second), and
//! [`RateLimitConfig::methods`] replaces single figures.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use kass_pipeline::rate_limit::quota;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The rate-limit settings every API source takes (`[sources.rate_limit]`), applied over the
/// figures of the source's tier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per minute for single methods, replacing the tier's figure:
    /// `methods = { "conversations.history" = 1 }`.
    #[serde(default)]
    pub methods: BTreeMap<String, f64>,
    /// Multiplies every method's requests per minute. 1 in production; tests against a local
    /// server raise it (60 turns a minute into a second) instead of sleeping for minutes.
    #[serde(default = "default_rate_scale")]
    pub rate_scale: f64,
    /// Share of each method's budget left unused, so that network jitter does not push two
    /// requests into the server's same window (at most 0.5).
    #[serde(default = "default_headroom")]
    pub headroom: f64,
}

fn default_rate_scale() -> f64 {
    1.0
}
fn default_headroom() -> f64 {
    0.02
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            methods: BTreeMap::new(),
            rate_scale: default_rate_scale(),
            headroom: default_headroom(),
        }
    }
}

/// A figure [`RateLimitConfig`] cannot use; names the setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate_scale must be a positive number, not {0}")]
    Scale(f64),
    #[error("headroom must be between 0 and 0.5, not {0}")]
    Headroom(f64),
    #[error("requests per minute of {method} must be a positive number, not {rpm}")]
    Rpm { method: String, rpm: f64 },
}

/// The requests-per-minute figure of each method a source calls (its tier), before
/// [`RateLimitConfig`] applies. A method not listed gets `default_rpm`; `None` leaves it
/// unlimited.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tier {
    pub methods: BTreeMap<String, f64>,
    pub default_rpm: Option<f64>,
}

impl Tier {
    /// A tier from `(method, requests per minute)` pairs.
    pub fn new<'a>(methods: impl IntoIterator<Item = (&'a str, f64)>) -> Self {
        Self {
            methods: methods
                .into_iter()
                .map(|(m, rpm)| (m.to_string(), rpm))
                .collect(),
            default_rpm: None,
        }
    }

    /// Methods not listed get `rpm` requests per minute.
    pub fn with_default(mut self, rpm: f64) -> Self {
        self.default_rpm = Some(rpm);
        self
    }
}

/// One method's budget and its 429 gate.
#[derive(Debug)]
struct MethodLimiter {
    budget: Option<DefaultDirectRateLimiter>,
    gate: Mutex<Gate>,
    /// Wakes the tasks waiting for a probe's answer.
    answered: Notify,
}

/// What a 429 left of a method.
#[derive(Debug, Default)]
struct Gate {
    /// The method is held until then.
    paused_until: Option<Instant>,
    /// A 429 came and no request has been answered since: the next request is a probe.
    recovering: bool,
    /// A probe is out: every other request waits for its answer.
    probing: bool,
}

/// Why [`MethodLimiters::acquire`] cannot let a request go yet.
enum Hold {
    Until(Instant),
    Probe,
}

impl MethodLimiter {
    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().expect("not poisoned")
    }

    /// What holds a request back now, if anything.
    fn hold(gate: &Gate) -> Option<Hold> {
        match gate.paused_until {
            Some(until) if until > Instant::now() => Some(Hold::Until(until)),
            _ if gate.probing => Some(Hold::Probe),
            _ => None,
        }
    }

    /// Waits until neither a pause nor a probe holds the method.
    async fn wait_open(&self) {
        loop {
            let answered = self.answered.notified();
            futures::pin_mut!(answered);
            // Registered before looking, so a probe answered in between still wakes us.
            answered.as_mut().enable();
            let hold = Self::hold(&self.gate());
            match hold {
                None => return,
                Some(Hold::Until(until)) => tokio::time::sleep_until(until).await,
                Some(Hold::Probe) => answered.await,
            }
        }
    }
}

/// Leave to send one request of a method, from [`MethodLimiters::acquire`]; say how it was
/// answered with [`Permit::answered`] or [`Permit::rate_limited`]. A permit dropped unanswered
/// (the call was given up) lets another request probe.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<MethodLimiter>,
    probe: bool,
    waited: Duration,
}

impl Permit {
    /// How long [`MethodLimiters::acquire`] waited for it.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The server answered, and not with a rate limit: after a pause, the method is open.
    pub fn answered(self) {
        if self.probe {
            self.limiter.gate().recovering = false;
        }
    }

    /// The server refused for now: the method is held for `after` (its Retry-After; with
    /// none, the caller pauses it for its back-off), and the next request is a probe.
    pub fn rate_limited(self, after: Option<Duration>) {
        let mut gate = self.limiter.gate();
        gate.recovering = true;
        if let Some(after) = after {
            pause_gate(&mut gate, after);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe {
            self.limiter.gate().probing = false;
            self.limiter.answered.notify_waiters();
        }
    }
}

/// Holds the method for `after` from now; a shorter pause never cuts a longer one short.
fn pause_gate(gate: &mut Gate, after: Duration) {
    let until = Instant::now() + after;
    if gate.paused_until.is_none_or(|p| p < until) {
        gate.paused_until = Some(until);
    }
}

/// The limiters of one source, one per method, created on first use. Share it (`Arc`) between
/// every task of the source: a budget is only a budget if everyone draws from the same one.
#[derive(Debug)]
pub struct MethodLimiters {
    /// Requests per minute per method, scaled; `None`: unlimited.
    rpm: BTreeMap<String, f64>,
    default_rpm: Option<f64>,
    headroom: f64,
    methods: Mutex<HashMap<String, Arc<MethodLimiter>>>,
}

impl MethodLimiters {
    /// The tier's figures with the config's overrides and scale applied.
    pub fn new(tier: Tier, config: &RateLimitConfig) -> Result<Self, RateLimitError> {
        let scale = config.rate_scale;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(RateLimitError::Scale(scale));
        }
        if !(0.0..=0.5).contains(&config.headroom) {
            return Err(RateLimitError::Headroom(config.headroom));
        }
        let mut rpm = tier.methods;
        rpm.extend(config.methods.clone());
        let default = tier.default_rpm.map(|rpm| ("other methods", rpm));
        let figures = rpm.iter().map(|(m, rpm)| (m.as_str(), *rpm)).chain(default);
        for (method, rpm) in figures {
            if !(rpm.is_finite() && rpm > 0.0) {
                return Err(RateLimitError::Rpm {
                    method: method.to_string(),
                    rpm,
                });
            }
        }
        Ok(Self {
            rpm: rpm.into_iter().map(|(m, r)| (m, r * scale)).collect(),
            default_rpm: tier.default_rpm.map(|r| r * scale),
            headroom: config.headroom,
            methods: Mutex::new(HashMap::new()),
        })
    }

    /// No budget for any method; a 429 still pauses its method.
    pub fn unlimited() -> Self {
        Self::new(Tier::default(), &RateLimitConfig::default()).expect("defaults are valid")
    }

    /// The requests per minute `method` gets (scaled); `None`: unlimited.
    pub fn rpm(&self, method: &str) -> Option<f64> {
        self.rpm.get(method).copied().or(self.default_rpm)
    }

    fn limiter(&self, method: &str) -> Arc<MethodLimiter> {
        let mut methods = self.methods.lock().expect("not poisoned");
        methods
            .entry(method.to_string())
            .or_insert_with(|| {
                Arc::new(MethodLimiter {
                    budget: self.rpm(method).map(|rpm| {
                        DefaultDirectRateLimiter::direct(quota(
                            rpm,
                            1,
                            self.headroom,
                            Duration::from_secs(60),
                        ))
                    }),
                    gate: Mutex::new(Gate::default()),
                    answered: Notify::new(),
                })
            })
            .clone()
    }

    /// Waits until `method` may be called: no pause holds it, no probe is out, and its budget
    /// has room; then looks again, since a 429 may have come while it waited for the budget.
    /// After a pause, the permit it returns is the probe: the only one until it is answered.
    pub async fn acquire(&self, method: &str) -> Permit {
        let limiter = self.limiter(method);
        let started = Instant::now();
        loop {
            limiter.wait_open().await;
            if let Some(budget) = &limiter.budget {
                budget.until_ready().await;
            }
            let mut gate = limiter.gate();
            if MethodLimiter::hold(&gate).is_some() {
                continue;
            }
            let probe = gate.recovering;
            gate.probing = probe;
            drop(gate);
            return Permit {
                limiter: limiter.clone(),
                probe,
                waited: started.elapsed(),
            };
        }
    }

    /// Holds every request of `method` back until `after` has passed (a 429's Retry-After);
    /// the first request after it is a probe.
    pub fn pause(&self, method: &str, after: Duration) {
        let limiter = self.limiter(method);
        let mut gate = limiter.gate();
        gate.recovering = true;
        pause_gate(&mut gate, after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiters(rpm: f64, scale: f64) -> MethodLimiters {
        let config = RateLimitConfig {
            rate_scale: scale,
            headroom: 0.0,
            ..RateLimitConfig::default()
        };
        MethodLimiters::new(Tier::new([("a.list", rpm)]), &config).unwrap()
    }

    #[tokio::test]
    async fn a_scaled_tier_spaces_requests_evenly_per_method() {
        // 1 per minute at scale 600 is one per 100 ms.
        let limiters = limiters(1.0, 600.0);
        assert_eq!(limiters.rpm("a.list"), Some(600.0));
        let started = Instant::now();
        for _ in 0..4 {
            limiters.acquire("a.list").await.answered();
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(450), "{elapsed:?}");
        // Another method has a budget of its own (here none at all).
        let other = Instant::now();
        for _ in 0..4 {
            limiters.acquire("b.list").await.answered();
        }
        assert!(other.elapsed() < Duration::from_millis(20));
    }

    #[tokio::test]
    async fn a_pause_holds_only_its_method_for_every_task() {
        let limiters = Arc::new(limiters(6000.0, 1.0));
        limiters.pause("a.list", Duration::from_millis(150));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let limiters = limiters.clone();
                tokio::spawn(async move {
                    let permit = limiters.acquire("a.list").await;
                    let waited = permit.waited();
                    permit.answered();
                    waited
                })
            })
            .collect();
        assert!(limiters.acquire("b.list").await.waited() < Duration::from_millis(20));
        for task in tasks {
            let waited = task.await.unwrap();
            assert!(waited >= Duration::from_millis(140), "{waited:?}");
        }
    }

    #[tokio::test]
    async fn after_a_pause_one_probe_goes_alone_until_it_is_answered() {
        let limiters = Arc::new(limiters(600_000.0, 1.0));
        // A request already past the pause, waiting for its budget, when the 429 comes.
        let first = limiters.acquire("a.list").await;
        limiters.pause("a.list", Duration::from_millis(100));
        let started = Instant::now();
        let (sent, rx) = tokio::sync::mpsc::unbounded_channel::<Permit>();
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (limiters, sent) = (limiters.clone(), sent.clone());
                tokio::spawn(async move { sent.send(limiters.acquire("a.list").await).unwrap() })
            })
            .collect();
        first.rate_limited(None);
        let mut rx = rx;
        let probe = rx.recv().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(95));
        // The probe is out: nobody else goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            rx.try_recv().is_err(),
            "a second request went with the probe"
        );
        // Refused again: the next probe goes only after the new pause.
        probe.rate_limited(Some(Duration::from_millis(100)));
        let again = Instant::now();
        let probe = rx.recv().await.unwrap();
        assert!(again.elapsed() >= Duration::from_millis(95));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(rx.try_recv().is_err());
        // Answered: the method opens for everyone.
        probe.answered();
        rx.recv().await.unwrap().answered();
        for task in tasks {
            task.await.unwrap();
        }
        // A probe given up (dropped) lets the next request probe instead.
        limiters.pause("a.list", Duration::from_millis(1));
        let given_up = limiters.acquire("a.list").await;
        drop(given_up);
        limiters.acquire("a.list").await.answered();
        assert!(limiters.acquire("a.list").await.waited() < Duration::from_millis(20));
    }

    #[test]
    fn overrides_replace_the_tier_and_bad_figures_are_refused() {
        let config: RateLimitConfig =
            toml::from_str("methods = { \"a.list\" = 3 }\nrate_scale = 2").unwrap();
        let limiters =
            MethodLimiters::new(Tier::new([("a.list", 50.0)]).with_default(20.0), &config).unwrap();
        assert_eq!(limiters.rpm("a.list"), Some(6.0));
        assert_eq!(limiters.rpm("users.list"), Some(40.0));
        let zero = RateLimitConfig {
            rate_scale: 0.0,
            ..RateLimitConfig::default()
        };
        assert_eq!(
            MethodLimiters::new(Tier::default(), &zero).unwrap_err(),
            RateLimitError::Scale(0.0)
        );
        let bad = MethodLimiters::new(Tier::new([("a.list", -1.0)]), &RateLimitConfig::default());
        assert!(bad.unwrap_err().to_string().contains("a.list"));
    }
}
