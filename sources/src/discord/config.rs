//! `[[sources]] type = "discord"`: a bot's guilds through the Discord REST API v10.

use std::sync::Arc;

use chrono::NaiveDate;
use kass_pipeline::http::Auth;
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::FatalError;
use serde::Deserialize;

use super::state::ChannelState;
use super::web::{major_parameter, DiscordWeb};
use super::Discord;
use crate::api::scope_status::ScopeStatus;
use crate::api::{
    settings, ApiClient, ApiConfig, BudgetScope, MethodLimiters, RateLimitConfig, ServerBudget,
    Tier,
};
use crate::deletion_guard::DeletionGuard;
use crate::{BuildSource, SourceDeps};

/// One Discord source.
///
/// ```toml
/// [[sources]]
/// type = "discord"
/// name = "discord"
/// token_env = "DISCORD_BOT_TOKEN"          # sent as Authorization: Bot <token>, never shown
/// base_url = "https://discord.com/api/v10"
/// guilds = ["123456789012345678"]
/// channels = []                            # names or ids; [] = every channel the bot reads
/// since = "2025-01-01"
/// lookback_days = 14
/// reconcile_days = 7                       # archived threads listed whole this often
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// The source label (batch keys, metrics, chunk ids).
    #[serde(default = "default_name")]
    pub name: String,
    /// The variable holding the bot token.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// The API's root (a test server in the tests).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Guild (server) ids to read.
    pub guilds: Vec<String>,
    /// Channel names or ids to read; empty: every text, announcement, forum and media
    /// channel of the guilds (those the bot may not read are skipped and counted).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Messages and threads before this day are not read.
    #[serde(default)]
    pub since: Option<NaiveDate>,
    /// Days read again every run: Discord lists neither edits nor deletions, so they are
    /// found by reading the recent past again and comparing.
    #[serde(default = "default_lookback_days")]
    pub lookback_days: u32,
    /// Every this many days each channel's archived threads are listed whole (about one
    /// request per 100 threads), so a thread archived before the window and deleted since is
    /// seen gone; in between, the listing stops at the window.
    #[serde(default = "default_reconcile_days")]
    pub reconcile_days: u32,
    /// The largest share (0 to 1) of a channel's, or the source's, documents one run may
    /// delete without `--allow-deletions`.
    #[serde(default = "default_max_deletion_share")]
    pub max_deletion_share: f64,
    /// A listing reaching this many pages is incomplete (and deletes nothing).
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Discord's global limit for a bot, requests per second over every route; the
    /// per-route buckets come from the `X-RateLimit-*` headers of the answers.
    #[serde(default = "default_global_per_second")]
    pub global_per_second: f64,
    /// `headroom` defaults to 0 here: Discord's buckets are small (5 requests), so any
    /// share kept back costs a whole request of five (the budget's reserve rounds up), and a
    /// bot's buckets are its own. The server budget never sends more than an answer says is
    /// left before its reset, so no reserve is needed against the count itself.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_name() -> String {
    "discord".to_string()
}
fn default_token_env() -> String {
    "DISCORD_BOT_TOKEN".to_string()
}
fn default_base_url() -> String {
    "https://discord.com/api/v10".to_string()
}
fn default_lookback_days() -> u32 {
    14
}
fn default_reconcile_days() -> u32 {
    7
}
fn default_max_deletion_share() -> f64 {
    0.2
}
fn default_max_pages() -> usize {
    100_000
}
fn default_global_per_second() -> f64 {
    50.0
}
fn default_rate_limit() -> RateLimitConfig {
    RateLimitConfig {
        headroom: 0.0,
        ..RateLimitConfig::default()
    }
}

impl BuildSource for DiscordConfig {
    type Source = Discord;

    fn name(&self) -> &str {
        &self.name
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn cursor_settings(&self) -> Option<String> {
        Some(format!("discord:{}", self.name))
    }

    fn scope_status(&self, cursor: &crate::cursor::CursorState) -> Option<ScopeStatus> {
        let mut threads = 0;
        let mut status = ScopeStatus::of_each("channels", cursor, |state: &ChannelState| {
            threads += state.watched.len();
        });
        status.details.insert("watched_threads", threads.into());
        Some(status)
    }

    fn build_with(self, deps: SourceDeps) -> Result<Discord, FatalError> {
        let bad = |reason: String| {
            FatalError::Config(format!("discord source `{}`: {reason}", self.name))
        };
        let token = settings::credentials(&self.token_env, "the bot token").map_err(bad)?;
        let guard =
            DeletionGuard::new(self.max_deletion_share, deps.allow_deletions).map_err(bad)?;
        let max_pages = settings::max_pages(self.max_pages).map_err(bad)?;
        if self.guilds.is_empty() {
            return Err(bad("guilds must name at least one guild id".to_string()));
        }
        if self.global_per_second.is_nan() || self.global_per_second <= 0.0 {
            return Err(bad(format!(
                "global_per_second must be a positive number, not {}",
                self.global_per_second
            )));
        }
        let limiters = MethodLimiters::new(Tier::default(), &self.rate_limit)
            .map_err(|e| bad(format!("rate_limit: {e}")))?;
        // Discord counts per bucket (learnt from the answers) and major parameter.
        let scope = BudgetScope::Bucketed(Arc::new(|_route: &str, url: &str| major_parameter(url)));
        let budget = ServerBudget::new(scope, &self.rate_limit)
            .map_err(|e| bad(format!("rate_limit: {e}")))?
            .with_global(self.global_per_second * self.rate_limit.rate_scale);
        let client = ApiClient::new(ApiConfig {
            auth: Some(Auth::Scheme("Bot", token)),
            retry: self.retry.clone(),
            limiters: Arc::new(limiters),
            budget: Some(Arc::new(budget)),
            ..ApiConfig::new(self.name.clone(), self.base_url.clone())
        })
        .map_err(|e| bad(e.to_string()))?;
        Ok(Discord {
            web: DiscordWeb { client, max_pages },
            guard,
            cursor: deps.cursor,
            outbox: deps.tombstones,
            config: self,
        })
    }
}
