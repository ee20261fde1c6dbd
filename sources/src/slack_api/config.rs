//! The `slack_api` source's configuration (`[[sources]] type = "slack_api"`) and how it is
//! checked and turned into the running [`SlackApi`].

use std::sync::Arc;

use chrono::NaiveDate;
use globset::{Glob, GlobSet, GlobSetBuilder};
use kass_pipeline::http::Auth;
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::FatalError;
use serde::Deserialize;

use super::tier::RateTier;
use super::web::{envelope_check, SlackWeb};
use super::SlackApi;
use crate::api::{settings, ApiClient, ApiConfig, MethodLimiters, RateLimitConfig};
use crate::deletion_guard::DeletionGuard;
use crate::{BuildSource, SourceDeps};

/// Reads a Slack workspace through the Web API.
///
/// ```toml
/// [[sources]]
/// type = "slack_api"
/// name = "slack"
/// token_env = "SLACK_BOT_TOKEN"
/// channels = ["dev-*", "general"]
/// exclude_channels = ["random"]
/// since = "2025-01-01"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackApiConfig {
    /// The `source` label on every document; also names batches, metrics and the state in
    /// `_state/{name}.json`. Use the export's name to continue an export's documents.
    #[serde(default = "default_name")]
    pub name: String,
    /// The environment variable holding the bot token (`xoxb-...`); in Lambda, a key of the
    /// `KASS_SECRETS` secret.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Channels to read, as globs over names (`dev-*`); empty: every channel the bot is in.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Channels never read (their documents are deleted), as globs over names.
    #[serde(default)]
    pub exclude_channels: Vec<String>,
    /// Conversation types: `public_channel`, `private_channel`, `mpim`, `im` (the token needs
    /// the matching scopes).
    #[serde(default = "default_types")]
    pub types: Vec<String>,
    /// The first backfill goes back to this day (`YYYY-MM-DD`); default: everything.
    #[serde(default)]
    pub since: Option<NaiveDate>,
    /// Days of history read again every run, and how long a thread is watched for late
    /// replies after its last activity. Edits and deletions older than this are not seen.
    #[serde(default = "default_thread_lookback_days")]
    pub thread_lookback_days: u32,
    /// `internal` (customer-built or Marketplace app: Tier 3) or `non_marketplace` (1 request
    /// per minute, 15 messages per page for history and replies).
    #[serde(default)]
    pub rate_tier: RateTier,
    /// Any server speaking the Web API (GovSlack, a proxy, a test server).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Messages asked for per page of history and replies; default and maximum: the tier's.
    #[serde(default)]
    pub page_size: Option<usize>,
    /// The largest share (0 to 1) of the source's documents one run may delete; a run that
    /// finds more gone deletes nothing until run with `--allow-deletions`.
    #[serde(default = "default_max_deletion_share")]
    pub max_deletion_share: f64,
    /// The most pages one read may take (a listing, a channel's window or backfill, a
    /// thread); a read that reaches it is incomplete and deletes nothing (a backfill resumes
    /// where it stopped on the next run).
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Overrides of the tier's requests per minute, and `rate_scale` for tests.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Tries and back-off of one request (429 and 5xx; a Retry-After is honoured up to
    /// `max_backoff_ms`).
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_name() -> String {
    "slack".to_string()
}
fn default_token_env() -> String {
    "SLACK_BOT_TOKEN".to_string()
}
fn default_types() -> Vec<String> {
    vec!["public_channel".to_string()]
}
fn default_thread_lookback_days() -> u32 {
    14
}
fn default_base_url() -> String {
    "https://slack.com/api".to_string()
}
fn default_max_deletion_share() -> f64 {
    0.2
}
fn default_max_pages() -> usize {
    10_000
}

impl SlackApiConfig {
    /// A config reading every channel the bot is in at `base_url`, the rest at defaults.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            name: default_name(),
            token_env: default_token_env(),
            channels: Vec::new(),
            exclude_channels: Vec::new(),
            types: default_types(),
            since: None,
            thread_lookback_days: default_thread_lookback_days(),
            rate_tier: RateTier::default(),
            base_url: base_url.into(),
            page_size: None,
            max_deletion_share: default_max_deletion_share(),
            max_pages: default_max_pages(),
            rate_limit: RateLimitConfig::default(),
            retry: RetryPolicy::default(),
        }
    }
}

impl BuildSource for SlackApiConfig {
    type Source = SlackApi;

    fn name(&self) -> &str {
        &self.name
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn cursor_settings(&self) -> Option<String> {
        Some(format!("slack_api:{}", self.name))
    }

    fn scope_status(
        &self,
        cursor: &crate::cursor::CursorState,
    ) -> Option<crate::api::scope_status::ScopeStatus> {
        Some(super::status(cursor))
    }

    /// Reads the token, compiles the channel globs and sizes the rate limiters from the tier.
    fn build_with(self, deps: SourceDeps) -> Result<SlackApi, FatalError> {
        let bad = |reason: String| {
            FatalError::Config(format!("slack_api source `{}`: {reason}", self.name))
        };
        let token = settings::credentials(&self.token_env, "the bot token").map_err(bad)?;
        let guard =
            DeletionGuard::new(self.max_deletion_share, deps.allow_deletions).map_err(bad)?;
        let max_pages = settings::max_pages(self.max_pages).map_err(bad)?;
        let page_max = self.rate_tier.page_max();
        let page_size = self.page_size.unwrap_or(page_max);
        if !(1..=page_max).contains(&page_size) {
            return Err(bad(format!(
                "page_size must be between 1 and {page_max} for rate_tier {:?}",
                self.rate_tier
            )));
        }
        let limiters = MethodLimiters::new(self.rate_tier.limits(), &self.rate_limit)
            .map_err(|e| bad(format!("rate_limit: {e}")))?;
        let client = ApiClient::new(ApiConfig {
            auth: Some(Auth::Bearer(token)),
            retry: self.retry.clone(),
            limiters: Arc::new(limiters),
            check: Some(envelope_check()),
            ..ApiConfig::new(self.name.clone(), self.base_url.clone())
        })
        .map_err(|e| bad(e.to_string()))?;
        let include = globs(&self.channels).map_err(|e| bad(format!("channels: {e}")))?;
        let exclude =
            globs(&self.exclude_channels).map_err(|e| bad(format!("exclude_channels: {e}")))?;
        Ok(SlackApi {
            web: SlackWeb {
                client,
                page_size,
                max_pages,
            },
            include,
            exclude,
            guard,
            cursor: deps.cursor,
            outbox: deps.tombstones,
            config: self,
        })
    }
}

fn globs(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        set.add(Glob::new(pattern.trim_start_matches('#'))?);
    }
    set.build()
}
