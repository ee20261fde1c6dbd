//! `[[sources]] type = "backlog"`: a Backlog space's projects through the API v2.

use std::sync::Arc;

use chrono::NaiveDate;
use kass_pipeline::http::Auth;
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::FatalError;
use serde::Deserialize;

use super::include::Include;
use super::web::{request_type, BacklogWeb};
use super::Backlog;
use crate::api::{
    settings, ApiClient, ApiConfig, BudgetScope, MethodLimiters, RateLimitConfig, ServerBudget,
    Tier,
};
use crate::deletion_guard::DeletionGuard;
use crate::{BuildSource, SourceDeps};

/// One Backlog source.
///
/// ```toml
/// [[sources]]
/// type = "backlog"
/// name = "backlog"
/// space = "example"                 # https://example.backlog.com
/// api_key_env = "BACKLOG_API_KEY"   # sent as the apiKey query parameter, never shown
/// projects = ["APP", "OPS"]         # [] = every project the key can read
/// include = ["issues", "wikis", "documents"]
/// since = "2024-01-01"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacklogConfig {
    /// The source label (batch keys, metrics, chunk ids).
    #[serde(default = "default_name")]
    pub name: String,
    /// The space id: the API is at `https://{space}.backlog.com/api/v2`.
    #[serde(default)]
    pub space: Option<String>,
    /// Instead of `space`: the space's root URL (`https://example.backlog.jp`, a test server).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The variable holding the API key. Backlog takes it only as the `apiKey` query
    /// parameter, so it is in every URL: kass adds it at send time and masks it in every
    /// message, log line and error.
    #[serde(default = "default_api_key_env")]
    pub api_key_env: String,
    /// Project keys to read; empty: every project the key can read, listed each run.
    #[serde(default)]
    pub projects: Vec<String>,
    /// What to read of each project: `issues`, `wikis`, `documents`.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Issues, pages and documents last updated before this day are not read.
    #[serde(default)]
    pub since: Option<NaiveDate>,
    /// Every this many days a project's issues are listed whole (not only those updated
    /// since the last run): the safety net for a deletion the activity feed did not show.
    #[serde(default = "default_reconcile_days")]
    pub reconcile_days: u32,
    /// The largest share (0 to 1) of a project's, or the source's, documents one run may
    /// delete without `--allow-deletions`.
    #[serde(default = "default_max_deletion_share")]
    pub max_deletion_share: f64,
    /// A listing reaching this many pages is incomplete (and deletes nothing).
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Requests per minute per request type, below the smallest plan's read limit; the
    /// `X-RateLimit-*` headers of Backlog's answers pace the source too, per request type as
    /// Backlog counts; the slower of the two wins.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: f64,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_name() -> String {
    "backlog".to_string()
}
fn default_api_key_env() -> String {
    "BACKLOG_API_KEY".to_string()
}
fn default_include() -> Vec<String> {
    ["issues", "wikis", "documents"].map(String::from).to_vec()
}
fn default_reconcile_days() -> u32 {
    7
}
fn default_max_deletion_share() -> f64 {
    0.2
}
fn default_max_pages() -> usize {
    10_000
}
fn default_requests_per_minute() -> f64 {
    600.0
}

impl BacklogConfig {
    /// The space's root URL (issue and wiki links start with it).
    fn root(&self) -> Result<String, String> {
        match (&self.space, &self.base_url) {
            (Some(_), Some(_)) => Err("set space or base_url, not both".to_string()),
            (Some(space), None)
                if !space.is_empty()
                    && space.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                Ok(format!("https://{space}.backlog.com"))
            }
            (Some(space), None) => Err(format!("space `{space}` is not a space id")),
            (None, Some(url)) => Ok(url.trim_end_matches('/').to_string()),
            (None, None) => Err("set space (https://{space}.backlog.com) or base_url".to_string()),
        }
    }
}

impl BuildSource for BacklogConfig {
    type Source = Backlog;

    fn name(&self) -> &str {
        &self.name
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn cursor_settings(&self) -> Option<String> {
        Some(format!("backlog:{}", self.name))
    }

    fn scope_status(
        &self,
        cursor: &crate::cursor::CursorState,
    ) -> Option<crate::api::scope_status::ScopeStatus> {
        Some(crate::api::scope_status::ScopeStatus::of::<
            super::state::ProjectState,
        >("projects", cursor))
    }

    fn build_with(self, deps: SourceDeps) -> Result<Backlog, FatalError> {
        let bad = |reason: String| {
            FatalError::Config(format!("backlog source `{}`: {reason}", self.name))
        };
        let key = settings::credentials(&self.api_key_env, "the API key").map_err(bad)?;
        let guard =
            DeletionGuard::new(self.max_deletion_share, deps.allow_deletions).map_err(bad)?;
        let max_pages = settings::max_pages(self.max_pages).map_err(bad)?;
        let include = Include::parse(&self.include).map_err(bad)?;
        let root = self.root().map_err(bad)?;
        if self.requests_per_minute.is_nan() || self.requests_per_minute <= 0.0 {
            return Err(bad(format!(
                "requests_per_minute must be a positive number, not {}",
                self.requests_per_minute
            )));
        }
        let tier = Tier {
            methods: Default::default(),
            default_rpm: Some(self.requests_per_minute),
        };
        let limiters = MethodLimiters::new(tier, &self.rate_limit)
            .map_err(|e| bad(format!("rate_limit: {e}")))?;
        // Backlog counts per user and request type: one budget per type.
        let scope = BudgetScope::Custom(Arc::new(|route: &str, _url: &str| {
            request_type(route).to_string()
        }));
        let budget = ServerBudget::new(scope, &self.rate_limit)
            .map_err(|e| bad(format!("rate_limit: {e}")))?;
        let client = ApiClient::new(ApiConfig {
            auth: Some(Auth::Query("apiKey".to_string(), key)),
            retry: self.retry.clone(),
            limiters: Arc::new(limiters),
            budget: Some(Arc::new(budget)),
            ..ApiConfig::new(self.name.clone(), format!("{root}/api/v2"))
        })
        .map_err(|e| bad(e.to_string()))?;
        Ok(Backlog {
            web: BacklogWeb {
                client,
                max_pages,
                root,
            },
            include,
            guard,
            cursor: deps.cursor,
            outbox: deps.tombstones,
            config: self,
        })
    }
}
