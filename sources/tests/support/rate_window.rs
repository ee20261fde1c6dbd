//! A server-side request window for the local API servers (GitLab now; Backlog and Discord
//! next), counting per client key the way the documented limiters do, so a client's pacing
//! is judged against a real count, not a fixed header.
//!
//! - A fixed window per key, aligned to multiples of the period since the epoch: GitLab's
//!   Rack::Attack throttles count requests in `epoch / period` buckets, so every client of the
//!   key shares one count and the reset is a whole second (`RateLimit-Reset`, epoch seconds;
//!   `RateLimit-ResetTime`, its HTTP date), as gitlab.com's documented headers show.
//! - Every answer states the true count: `Limit`, `Remaining` after this request, `Reset`.
//! - Beyond the limit: 429 with `Retry-After` (seconds until the reset, rounded up) and the
//!   same headers with `Remaining: 0`; or, with [`RateWindow::bare_429`], with Retry-After
//!   alone, as gitlab.com sometimes answers (gitlab-org/gitlab#365728).
//! - Refused requests count too (Rack::Attack increments before it decides), so hammering
//!   a closed window never reopens it early.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Requests per period per key.
#[derive(Debug)]
pub struct RateWindow {
    pub limit: u64,
    /// Whole seconds, as GitLab's windows are.
    pub period_secs: u64,
    /// A 429 carries Retry-After alone, no rate-limit headers.
    pub bare_429: bool,
    /// Per key: (window number, requests counted in it).
    counts: HashMap<String, (u64, u64)>,
    /// Answers let through, and refused with 429, over the server's life.
    pub admitted: u64,
    pub refused: u64,
}

/// What the window says of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Count {
    pub limit: u64,
    /// Left in the window after this request.
    pub remaining: u64,
    /// When the window ends, epoch seconds.
    pub reset: u64,
    /// Whole seconds until then, rounded up (a 429's Retry-After).
    pub retry_after: u64,
    pub allowed: bool,
}

impl RateWindow {
    pub fn new(limit: u64, period_secs: u64) -> Self {
        assert!(period_secs >= 1, "GitLab's windows are whole seconds");
        Self {
            limit,
            period_secs,
            bare_429: false,
            counts: HashMap::new(),
            admitted: 0,
            refused: 0,
        }
    }

    /// Counts one request of `key` now.
    pub fn count(&mut self, key: &str) -> Count {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let window = now.as_secs() / self.period_secs;
        let entry = self.counts.entry(key.to_string()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        let allowed = entry.1 <= self.limit;
        if allowed {
            self.admitted += 1;
        } else {
            self.refused += 1;
        }
        let reset = (window + 1) * self.period_secs;
        let left = Duration::from_secs(reset).saturating_sub(now);
        Count {
            limit: self.limit,
            remaining: self.limit.saturating_sub(entry.1),
            reset,
            retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            allowed,
        }
    }

    /// Starts a new count for every key now (a test between phases).
    pub fn forget(&mut self) {
        self.counts.clear();
    }
}

impl Count {
    /// The headers stating this count, named `{prefix}Limit` and so on: `RateLimit-` for
    /// GitLab (with `ResetTime`), `X-RateLimit-` for Backlog and Discord.
    pub fn headers(&self, prefix: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            (format!("{prefix}limit"), self.limit.to_string()),
            (format!("{prefix}remaining"), self.remaining.to_string()),
            (format!("{prefix}reset"), self.reset.to_string()),
        ];
        if prefix.eq_ignore_ascii_case("ratelimit-") {
            let at = UNIX_EPOCH + Duration::from_secs(self.reset);
            headers.push((format!("{prefix}resettime"), httpdate::fmt_http_date(at)));
        }
        headers
    }
}
