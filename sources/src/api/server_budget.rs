//! Request budgets read from the server's own answers, so a source slows down before the
//! limit instead of learning it from a 429.
//!
//! APIs that count requests say so in every answer: how many are left (`remaining`) until
//! the count starts again (`reset`). Each names its headers and its scope differently:
//!
//! | API     | headers                                                     | counted per            |
//! |---------|-------------------------------------------------------------|------------------------|
//! | GitLab  | `RateLimit-Limit/-Remaining/-Reset` (epoch s), `-ResetTime` (HTTP date) | user, all routes |
//! | Backlog | `X-RateLimit-Limit/-Remaining/-Reset` (epoch s)              | user and request type  |
//! | Discord | `X-RateLimit-Limit/-Remaining/-Reset/-Reset-After` (s, float), `-Bucket` | route + major parameter |
//!
//! [`Observed::from_headers`] reads any of them; the source picks the [`BudgetScope`] its API
//! counts by. With `R` requests left until the reset at `T`, [`ServerBudget::acquire`] spaces
//! the next requests `(T - now) / (R - reserve)` apart, so the budget lasts until `T`; the
//! reserve is the [`RateLimitConfig::headroom`] share of the limit, kept for the other
//! clients of the same user and for network jitter. With nothing usable left it waits until
//! `T`. Requests already sent and not yet answered count as spent, so tasks sharing a budget
//! never overdraw it. The source's fixed tier ([`super::MethodLimiters`]) still applies: a
//! request waits for both, so the slower of the two wins.
//!
//! Once a window has passed, or after a 429, one request (a probe) goes alone to learn the
//! new window; the others wait for its answer, as [`super::MethodLimiters`] does after a
//! pause. A server that sends no such headers (a self-managed GitLab without limits, Slack)
//! leaves the budget unlimited: its 429s are handled by Retry-After, then back-off.
//!
//! Discord ([`BudgetScope::Bucketed`]): routes answering the same `X-RateLimit-Bucket` share
//! one budget per major parameter, so once a route's first answer names its bucket, its
//! requests are paced with every other route of that bucket; and a global limit (about 50
//! requests per second for a bot, over every route) is kept by [`ServerBudget::with_global`].
//! A 429 whose `X-RateLimit-Global: true` (or `X-RateLimit-Scope: global`) says the global
//! limit was hit pauses every budget of the source, not the route's alone.
//!
//! Time: a relative reset (`Reset-After`) is used as it is. An absolute one (epoch seconds,
//! HTTP date) is measured against the answer's `Date` when the local clock differs from it
//! by more than [`SKEW_TOLERANCE`] (`Date` has one-second resolution; below that the local
//! clock is the finer one), and is cut to [`MAX_RESET_WAIT`]: a reset further out (a skewed
//! clock, a daily quota) is waited for at most that long, after which the server's answer,
//! a 429's Retry-After included, says the rest. A `Reset` below 10^9 is taken as seconds from
//! now (the IETF RateLimit draft's meaning), not as a date in 2001.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, DATE};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::rate_limit::{RateLimitConfig, RateLimitError};

/// Longest wait an absolute reset may ask for (GitLab, Backlog and Discord count over a
/// minute or less).
pub const MAX_RESET_WAIT: Duration = Duration::from_secs(120);

/// A clock difference below this is the `Date` header's resolution, not skew.
pub const SKEW_TOLERANCE: Duration = Duration::from_secs(2);

/// Two resets closer than this are the same window (they are rounded to a second, and
/// measured at slightly different moments).
const SAME_WINDOW: Duration = Duration::from_millis(500);

/// Names the budget of a request from its route and URL.
pub type ScopeName = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

/// Which requests share one budget on the server.
#[derive(Clone)]
pub enum BudgetScope {
    /// Every request of the source: GitLab counts per user across all routes.
    User,
    /// One budget per route: Backlog counts per user per request type, when the source names
    /// its routes by that type.
    Route,
    /// The source names each request's budget from its route and URL (Backlog: its request
    /// type).
    Custom(ScopeName),
    /// Discord: per bucket and major parameter. The source names a request's major parameter
    /// (channel or guild id) from its route and URL; the bucket is learnt from the answers
    /// (`X-RateLimit-Bucket`), so routes answering the same bucket share one budget per major
    /// parameter. Until a route's bucket is known, the route is its own bucket.
    Bucketed(ScopeName),
}

impl fmt::Debug for BudgetScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::User => "User",
            Self::Route => "Route",
            Self::Custom(_) => "Custom",
            Self::Bucketed(_) => "Bucketed",
        })
    }
}

/// What one answer said of its budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Requests per window; `None` when the server did not say.
    pub limit: Option<u64>,
    pub remaining: u64,
    /// Until the count starts again, from when the answer was read.
    pub reset_after: Duration,
    /// Discord's shared bucket of the route, for a source that maps routes to buckets.
    pub bucket: Option<String>,
}

impl Observed {
    /// The budget an answer's headers state (`RateLimit-*`, else `X-RateLimit-*`); `None`
    /// without a remaining count and a reset.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        Self::at(headers, SystemTime::now())
    }

    fn at(headers: &HeaderMap, now: SystemTime) -> Option<Self> {
        let server_now = headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .filter(|date| distance(*date, now) > SKEW_TOLERANCE)
            .unwrap_or(now);
        ["ratelimit-", "x-ratelimit-"]
            .into_iter()
            .find_map(|prefix| Self::with_prefix(headers, prefix, server_now))
    }

    fn with_prefix(headers: &HeaderMap, prefix: &str, now: SystemTime) -> Option<Self> {
        let get = |suffix: &str| {
            headers
                .get(format!("{prefix}{suffix}"))
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let number = |suffix: &str| {
            get(suffix)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n >= 0.0)
        };
        let remaining = number("remaining")? as u64;
        let reset_after = number("reset-after")
            .map(Duration::from_secs_f64)
            .or_else(|| number("reset").map(|reset| from_reset(reset, now)))
            .or_else(|| {
                let at = httpdate::parse_http_date(get("resettime")?).ok()?;
                Some(at.duration_since(now).unwrap_or(Duration::ZERO))
            })?;
        Some(Self {
            limit: number("limit").map(|l| l as u64),
            remaining,
            reset_after: reset_after.min(MAX_RESET_WAIT),
            bucket: get("bucket").map(str::to_string),
        })
    }
}

/// A `Reset` value: epoch seconds, or seconds from now when too small to be a date.
fn from_reset(reset: f64, now: SystemTime) -> Duration {
    if reset < 1e9 {
        return Duration::from_secs_f64(reset);
    }
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    Duration::from_secs_f64(reset).saturating_sub(now)
}

fn distance(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default()
}

/// The budgets of one source, one per scope, created on first use. Share it (`Arc`) between
/// every task of the source.
#[derive(Debug)]
pub struct ServerBudget {
    scope: BudgetScope,
    headroom: f64,
    shared: Arc<Shared>,
}

/// What every request of the source shares: the budgets by key, the buckets routes were
/// found in, the global limit.
#[derive(Debug, Default)]
struct Shared {
    scopes: Mutex<HashMap<String, Arc<ScopeBudget>>>,
    /// Route -> the bucket its answers named ([`BudgetScope::Bucketed`]).
    buckets: Mutex<HashMap<String, String>>,
    global: Option<Global>,
}

/// A limit over every request of the source (Discord's global limit), and the pause a global
/// 429 sets.
#[derive(Debug)]
struct Global {
    limiter: governor::DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
}

impl Shared {
    fn budget(&self, key: String) -> Arc<ScopeBudget> {
        let mut scopes = self.scopes.lock().expect("not poisoned");
        scopes.entry(key).or_default().clone()
    }

    fn bucket_of(&self, route: &str) -> Option<String> {
        self.buckets
            .lock()
            .expect("not poisoned")
            .get(route)
            .cloned()
    }

    /// Holds every budget of the source until `until` (a 429 of the global limit).
    fn pause_all(&self, until: Instant) {
        if let Some(global) = &self.global {
            let mut paused = global.paused_until.lock().expect("not poisoned");
            if paused.is_none_or(|p| p < until) {
                *paused = Some(until);
            }
        }
        for scope in self.scopes.lock().expect("not poisoned").values() {
            let mut state = scope.state();
            state.recovering = true;
            if state.paused_until.is_none_or(|p| p < until) {
                state.paused_until = Some(until);
            }
        }
    }
}

/// Where a request of a [`BudgetScope::Bucketed`] source is counted: its route and major
/// parameter, so an answer naming the route's bucket moves it there.
#[derive(Debug, Clone)]
struct BucketKey {
    route: String,
    major: String,
    /// The bucket the route was known in when the request went; `None`: not yet.
    bucket: Option<String>,
}

/// One scope's budget and the tasks waiting on it.
#[derive(Debug, Default)]
struct ScopeBudget {
    state: Mutex<State>,
    /// Wakes the tasks waiting for a probe's answer.
    answered: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The newest window an answer described.
    window: Option<Window>,
    /// Requests let go so far: a request's number orders its answer among the others.
    sent: u64,
    last_sent: Option<Instant>,
    /// A 429's pause (its Retry-After, the reset, or the back-off).
    paused_until: Option<Instant>,
    /// A 429 came and no request has been answered since: the next request is a probe.
    recovering: bool,
    /// A probe is out: every other request waits for its answer.
    probing: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    limit: u64,
    /// Left after request number `seq` was counted.
    remaining: u64,
    seq: u64,
    reset_at: Instant,
}

/// What [`State::admit`] decided.
enum Admit {
    Go { seq: u64, probe: bool },
    Until(Instant),
    Answer,
}

impl State {
    fn admit(&mut self, now: Instant, headroom: f64) -> Admit {
        if let Some(until) = self.paused_until.filter(|u| *u > now) {
            return Admit::Until(until);
        }
        let stale = self.window.is_some_and(|w| w.reset_at <= now);
        if self.recovering || stale {
            return if self.probing {
                Admit::Answer
            } else {
                self.go(now, true)
            };
        }
        let Some(w) = self.window else {
            return self.go(now, false);
        };
        let sent_after = self.sent.saturating_sub(w.seq + 1);
        let reserve = (w.limit as f64 * headroom).ceil() as u64;
        let usable = w
            .remaining
            .saturating_sub(sent_after)
            .saturating_sub(reserve);
        if usable == 0 {
            return Admit::Until(w.reset_at);
        }
        let spacing = (w.reset_at - now).div_f64(usable as f64);
        match self.last_sent.map(|last| last + spacing) {
            Some(next) if next > now => Admit::Until(next),
            _ => self.go(now, false),
        }
    }

    fn go(&mut self, now: Instant, probe: bool) -> Admit {
        let seq = self.sent;
        self.sent += 1;
        self.last_sent = Some(now);
        self.probing |= probe;
        Admit::Go { seq, probe }
    }

    fn observe(&mut self, seq: u64, observed: Option<Observed>, limited: bool, now: Instant) {
        if limited {
            self.recovering = true;
        }
        // A reset already past (a static or skewed header) says nothing of what is left.
        let Some(o) = observed.filter(|o| !o.reset_after.is_zero()) else {
            // A probe answered without a budget: the server does not count for us (now).
            if !limited && self.window.is_none_or(|w| w.reset_at <= now) {
                self.window = None;
            }
            return;
        };
        let reset_at = now + o.reset_after;
        let newer = match self.window {
            None => true,
            Some(w) => {
                w.reset_at <= now
                    || reset_at > w.reset_at + SAME_WINDOW
                    || (seq > w.seq && reset_at + SAME_WINDOW >= w.reset_at)
            }
        };
        if newer {
            self.window = Some(Window {
                limit: o.limit.unwrap_or(0).max(o.remaining),
                remaining: o.remaining,
                seq,
                reset_at,
            });
        }
    }
}

impl ScopeBudget {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }
}

impl ServerBudget {
    /// Budgets by `scope`, keeping the config's `headroom` share of each limit in reserve.
    pub fn new(scope: BudgetScope, config: &RateLimitConfig) -> Result<Self, RateLimitError> {
        if !(0.0..=0.5).contains(&config.headroom) {
            return Err(RateLimitError::Headroom(config.headroom));
        }
        Ok(Self {
            scope,
            headroom: config.headroom,
            shared: Arc::new(Shared::default()),
        })
    }

    /// Adds a limit of `per_second` requests over every route (Discord's global limit), the
    /// config's headroom kept in reserve.
    pub fn with_global(mut self, per_second: f64) -> Self {
        let quota =
            kass_pipeline::rate_limit::quota(per_second, 1, self.headroom, Duration::from_secs(1));
        self.shared = Arc::new(Shared {
            global: Some(Global {
                limiter: governor::RateLimiter::direct(quota),
                paused_until: Mutex::new(None),
            }),
            ..Shared::default()
        });
        self
    }

    fn scope(&self, route: &str, url: &str) -> (Arc<ScopeBudget>, Option<BucketKey>) {
        let (key, bucketed) = match &self.scope {
            BudgetScope::User => (String::new(), None),
            BudgetScope::Route => (route.to_string(), None),
            BudgetScope::Custom(name) => (name(route, url), None),
            BudgetScope::Bucketed(major) => {
                let at = BucketKey {
                    route: route.to_string(),
                    major: major(route, url),
                    bucket: self.shared.bucket_of(route),
                };
                (at.key(), Some(at))
            }
        };
        (self.shared.budget(key), bucketed)
    }

    /// Waits for the global limit and its pause, if the source has one.
    async fn global_turn(&self) {
        let Some(global) = &self.shared.global else {
            return;
        };
        loop {
            let paused = *global.paused_until.lock().expect("not poisoned");
            match paused.filter(|p| *p > Instant::now()) {
                Some(until) => tokio::time::sleep_until(until).await,
                None => break,
            }
        }
        global.limiter.until_ready().await;
    }

    /// Waits until the budget of the request to `url` (as `route`) lets it go: no pause
    /// holds it, no probe is out, and it is its turn in the spacing the last answer set.
    pub async fn acquire(&self, route: &str, url: &str) -> Ticket {
        let (scope, bucketed) = self.scope(route, url);
        let started = Instant::now();
        loop {
            let answered = scope.answered.notified();
            futures::pin_mut!(answered);
            // Registered before looking, so a probe answered in between still wakes us.
            answered.as_mut().enable();
            let admit = scope.state().admit(Instant::now(), self.headroom);
            match admit {
                Admit::Go { seq, probe } => {
                    self.global_turn().await;
                    return Ticket {
                        scope: scope.clone(),
                        seq,
                        probe,
                        waited: started.elapsed(),
                        bucketed,
                        shared: self.shared.clone(),
                    };
                }
                Admit::Until(until) => tokio::time::sleep_until(until).await,
                Admit::Answer => answered.await,
            }
        }
    }

    /// Holds every request of the budget `url` belongs to for `after` (a 429's pause, for a
    /// server that counts per user: every route is refused alike).
    pub fn pause(&self, route: &str, url: &str, after: Duration) {
        let (scope, _) = self.scope(route, url);
        let mut state = scope.state();
        let until = Instant::now() + after;
        state.recovering = true;
        if state.paused_until.is_none_or(|p| p < until) {
            state.paused_until = Some(until);
        }
    }
}

/// Leave to send one request, from [`ServerBudget::acquire`]; hand it the answer's headers
/// with [`Ticket::answered`]. Dropped unanswered (no answer came), it lets another request
/// probe.
#[derive(Debug)]
pub struct Ticket {
    scope: Arc<ScopeBudget>,
    seq: u64,
    probe: bool,
    waited: Duration,
    bucketed: Option<BucketKey>,
    shared: Arc<Shared>,
}

impl BucketKey {
    fn key(&self) -> String {
        let bucket = self.bucket.as_deref().unwrap_or(&self.route);
        format!("{bucket}|{}", self.major)
    }
}

/// Whether a 429's headers say the global limit refused it (Discord: `X-RateLimit-Global`,
/// `X-RateLimit-Scope: global`).
fn is_global(headers: &HeaderMap) -> bool {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    get("x-ratelimit-global").as_deref() == Some("true")
        || get("x-ratelimit-scope").as_deref() == Some("global")
}

impl Ticket {
    /// How long [`ServerBudget::acquire`] waited for it.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The server answered with `headers`, refusing for now if `rate_limited`; returns how
    /// long until the reset when the answer says nothing is left (a 429's pause when it
    /// sent no Retry-After).
    pub fn answered(self, headers: &HeaderMap, rate_limited: bool) -> Option<Duration> {
        self.answered_asking(headers, rate_limited, None)
    }

    /// [`Ticket::answered`], with the pause a 429 asked for in its body (`asked`: Discord's
    /// float `retry_after`), which a global 429 pauses every budget for instead of the
    /// headers' `Retry-After` (rounded up to whole seconds).
    pub fn answered_asking(
        self,
        headers: &HeaderMap,
        rate_limited: bool,
        asked: Option<Duration>,
    ) -> Option<Duration> {
        let observed = Observed::from_headers(headers);
        let exhausted = observed
            .as_ref()
            .filter(|o| o.remaining == 0)
            .map(|o| o.reset_after);
        let now = Instant::now();
        if rate_limited && is_global(headers) {
            let after = asked
                .or_else(|| kass_pipeline::http::retry_after(headers))
                .unwrap_or(Duration::from_secs(1));
            self.shared.pause_all(now + after);
        }
        // The answer names the route's bucket for the first time: the route is counted
        // there from now on, with every other route of the bucket, this answer included.
        let moved = match (
            &self.bucketed,
            observed.as_ref().and_then(|o| o.bucket.clone()),
        ) {
            (Some(at), Some(bucket)) if at.bucket.as_deref() != Some(bucket.as_str()) => {
                self.shared
                    .buckets
                    .lock()
                    .expect("not poisoned")
                    .insert(at.route.clone(), bucket.clone());
                let key = BucketKey {
                    bucket: Some(bucket),
                    ..at.clone()
                }
                .key();
                Some(self.shared.budget(key))
            }
            _ => None,
        };
        if let Some(shared) = moved {
            let mut state = shared.state();
            let seq = state.sent;
            state.sent += 1;
            state.observe(seq, observed.clone(), rate_limited, now);
        }
        let mut state = self.scope.state();
        state.observe(self.seq, observed, rate_limited, now);
        if self.probe && !rate_limited {
            state.recovering = false;
        }
        exhausted
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.probe {
            self.scope.state().probing = false;
            self.scope.answered.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn epoch(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn gitlab_backlog_and_discord_headers_are_read_alike() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let gitlab = headers(&[
            ("ratelimit-limit", "2000"),
            ("ratelimit-remaining", "1990"),
            ("ratelimit-reset", "1700000030"),
            ("ratelimit-resettime", "Tue, 14 Nov 2023 22:13:50 GMT"),
        ]);
        let o = Observed::at(&gitlab, now).unwrap();
        assert_eq!((o.limit, o.remaining), (Some(2000), 1990));
        assert_eq!(o.reset_after, Duration::from_secs(30));
        // ResetTime alone (an HTTP date).
        let date_only = headers(&[
            ("ratelimit-remaining", "5"),
            ("ratelimit-resettime", "Tue, 14 Nov 2023 22:13:50 GMT"),
        ]);
        assert_eq!(
            Observed::at(&date_only, now).unwrap().reset_after,
            Duration::from_secs(30)
        );
        let backlog = headers(&[
            ("x-ratelimit-limit", "150"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000045"),
        ]);
        let o = Observed::at(&backlog, now).unwrap();
        assert_eq!((o.remaining, o.reset_after), (0, Duration::from_secs(45)));
        // Discord: the relative Reset-After wins over the epoch Reset.
        let discord = headers(&[
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "1"),
            ("x-ratelimit-reset", "1700000999.5"),
            ("x-ratelimit-reset-after", "1.25"),
            ("x-ratelimit-bucket", "abcd1234"),
        ]);
        let o = Observed::at(&discord, now).unwrap();
        assert_eq!(o.reset_after, Duration::from_millis(1250));
        assert_eq!(o.bucket.as_deref(), Some("abcd1234"));
        // No remaining count, or no reset: nothing to pace by.
        assert_eq!(
            Observed::at(&headers(&[("ratelimit-limit", "10")]), now),
            None
        );
        assert_eq!(
            Observed::at(&headers(&[("x-ratelimit-remaining", "3")]), now),
            None
        );
    }

    #[test]
    fn a_skewed_clock_is_corrected_by_the_date_and_far_resets_are_cut() {
        let server = SystemTime::now();
        let reset = epoch(server) + 20;
        let date = httpdate::fmt_http_date(server);
        let answer = headers(&[
            ("date", &date),
            ("ratelimit-remaining", "3"),
            ("ratelimit-reset", &reset.to_string()),
        ]);
        // Our clock is 10 minutes late: without the Date we would wait 10 more minutes.
        let late = Observed::at(&answer, server - Duration::from_secs(600)).unwrap();
        assert!(late.reset_after <= Duration::from_secs(20), "{late:?}");
        assert!(late.reset_after >= Duration::from_secs(18), "{late:?}");
        // A reset an hour out is waited for at most MAX_RESET_WAIT.
        let far = headers(&[
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", &(epoch(server) + 3600).to_string()),
        ]);
        assert_eq!(
            Observed::at(&far, server).unwrap().reset_after,
            MAX_RESET_WAIT
        );
        // A small Reset is seconds from now (IETF draft), not a date in 1970.
        let delta = headers(&[("ratelimit-remaining", "1"), ("ratelimit-reset", "7")]);
        assert_eq!(
            Observed::at(&delta, server).unwrap().reset_after,
            Duration::from_secs(7)
        );
    }

    fn budget(headroom: f64) -> ServerBudget {
        let config = RateLimitConfig {
            headroom,
            ..RateLimitConfig::default()
        };
        ServerBudget::new(BudgetScope::User, &config).unwrap()
    }

    fn answer(remaining: u64, limit: u64, reset_after: Duration) -> HeaderMap {
        headers(&[
            ("x-ratelimit-limit", &limit.to_string()),
            ("x-ratelimit-remaining", &remaining.to_string()),
            (
                "x-ratelimit-reset-after",
                &reset_after.as_secs_f64().to_string(),
            ),
        ])
    }

    #[tokio::test]
    async fn the_remaining_requests_are_spread_until_the_reset() {
        let budget = budget(0.0);
        let first = budget.acquire("a", "u").await;
        assert_eq!(
            first.answered(&answer(4, 10, Duration::from_millis(400)), false),
            None
        );
        // 4 left for 400 ms: one per 100 ms, on any route (the budget is the user's).
        let started = Instant::now();
        for (i, route) in ["a", "b", "c"].into_iter().enumerate() {
            let ticket = budget.acquire(route, "u").await;
            let left = 3 - i as u64;
            let reset = Duration::from_millis(400).saturating_sub(started.elapsed());
            ticket.answered(&answer(left, 10, reset), false);
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(280), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(390), "{elapsed:?}");
    }

    #[tokio::test]
    async fn nothing_left_waits_for_the_reset_then_one_probe_goes_alone() {
        let budget = Arc::new(budget(0.0));
        let first = budget.acquire("a", "u").await;
        let exhausted = first.answered(&answer(0, 10, Duration::from_millis(200)), false);
        assert_eq!(exhausted, Some(Duration::from_millis(200)));
        let started = Instant::now();
        let probe = budget.acquire("a", "u").await;
        assert!(started.elapsed() >= Duration::from_millis(195));
        let other = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.acquire("b", "u").await.waited() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!other.is_finished(), "a request went with the probe");
        probe.answered(&answer(9, 10, Duration::from_secs(10)), false);
        assert!(other.await.unwrap() >= Duration::from_millis(45));
    }

    #[tokio::test]
    async fn the_reserve_is_kept_and_a_server_without_headers_is_not_paced() {
        // 10% of 20 is 2 requests kept back: 2 left means wait for the reset.
        let budget = budget(0.1);
        let first = budget.acquire("a", "u").await;
        first.answered(&answer(2, 20, Duration::from_millis(150)), false);
        let started = Instant::now();
        budget
            .acquire("a", "u")
            .await
            .answered(&HeaderMap::new(), false);
        assert!(started.elapsed() >= Duration::from_millis(145));
        // The probe after the reset answered without headers: no budget is paced any more.
        let quick = Instant::now();
        for _ in 0..5 {
            budget
                .acquire("a", "u")
                .await
                .answered(&HeaderMap::new(), false);
        }
        assert!(quick.elapsed() < Duration::from_millis(20));
    }

    fn discord_answer(remaining: u64, reset_after: Duration, bucket: &str) -> HeaderMap {
        let mut h = answer(remaining, 5, reset_after);
        h.extend(headers(&[("x-ratelimit-bucket", bucket)]));
        h
    }

    fn bucketed() -> ServerBudget {
        let config = RateLimitConfig {
            headroom: 0.0,
            ..RateLimitConfig::default()
        };
        // The major parameter is the URL itself here.
        let major = BudgetScope::Bucketed(Arc::new(|_: &str, url: &str| url.to_string()));
        ServerBudget::new(major, &config).unwrap()
    }

    #[tokio::test]
    async fn routes_answering_the_same_bucket_share_its_budget_per_major_parameter() {
        let budget = bucketed();
        let reset = Duration::from_millis(400);
        // Two routes of one channel answering the same bucket: the second spends it.
        budget
            .acquire("messages", "c1")
            .await
            .answered(&discord_answer(4, reset, "B"), false);
        budget
            .acquire("message", "c1")
            .await
            .answered(&discord_answer(0, reset, "B"), false);
        // The first route waits for the bucket's reset, though its own answer left 4.
        let started = Instant::now();
        budget
            .acquire("messages", "c1")
            .await
            .answered(&discord_answer(4, reset, "B"), false);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "the bucket's spent budget held the other route: {:?}",
            started.elapsed()
        );
        // Another channel of the same bucket has its own budget: c1's is spent, c2 goes now.
        budget
            .acquire("message", "c1")
            .await
            .answered(&discord_answer(0, reset, "B"), false);
        let other = Instant::now();
        budget
            .acquire("message", "c2")
            .await
            .answered(&discord_answer(4, reset, "B"), false);
        assert!(
            other.elapsed() < Duration::from_millis(50),
            "{:?}",
            other.elapsed()
        );
    }

    #[tokio::test]
    async fn a_global_429_pauses_for_the_pause_its_body_asked_not_the_rounded_header() {
        let budget = bucketed().with_global(1000.0);
        let limited = headers(&[("retry-after", "2"), ("x-ratelimit-global", "true")]);
        let ticket = budget.acquire("messages", "c0").await;
        ticket.answered_asking(&limited, true, Some(Duration::from_millis(300)));
        let paused = Instant::now();
        budget
            .acquire("threads", "g9")
            .await
            .answered(&HeaderMap::new(), false);
        let waited = paused.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn the_global_limit_paces_every_route_and_a_global_429_pauses_them_all() {
        let budget = bucketed().with_global(20.0);
        let started = Instant::now();
        for i in 0..6 {
            let url = format!("c{i}");
            budget
                .acquire("messages", &url)
                .await
                .answered(&HeaderMap::new(), false);
        }
        // 20 per second over every route: 6 requests take at least 5 intervals of 50 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(240),
            "{:?}",
            started.elapsed()
        );
        let limited = headers(&[("retry-after", "0.3"), ("x-ratelimit-global", "true")]);
        let ticket = budget.acquire("messages", "c0").await;
        ticket.answered(&limited, true);
        let paused = Instant::now();
        budget
            .acquire("threads", "g9")
            .await
            .answered(&HeaderMap::new(), false);
        assert!(
            paused.elapsed() >= Duration::from_millis(250),
            "{:?}",
            paused.elapsed()
        );
    }
}
