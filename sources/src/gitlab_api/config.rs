//! `[[sources]] type = "gitlab"`: a GitLab instance's projects through the REST API v4.

use std::sync::Arc;

use chrono::NaiveDate;
use kass_pipeline::http::Auth;
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::FatalError;
use reqwest::header::HeaderName;
use serde::Deserialize;

use super::include::Include;
use super::state::ProjectState;
use super::web::GitlabWeb;
use super::GitlabApi;
use crate::api::scope_status::ScopeStatus;
use crate::api::{
    settings, ApiClient, ApiConfig, BudgetScope, MethodLimiters, RateLimitConfig, ServerBudget,
    Tier,
};
use crate::deletion_guard::DeletionGuard;
use crate::{BuildSource, SourceDeps};

/// One GitLab source.
///
/// ```toml
/// [[sources]]
/// type = "gitlab"
/// name = "gitlab"
/// base_url = "https://gitlab.com"
/// token_env = "GITLAB_TOKEN"
/// projects = ["group/app"]
/// groups = ["platform"]
/// include = ["issues", "merge_requests", "wiki", "code"]
/// code_ref = "main"
/// since = "2024-01-01"
/// notes_lookback_days = 14
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabApiConfig {
    /// The source label (batch keys, metrics, chunk ids).
    #[serde(default = "default_name")]
    pub name: String,
    /// gitlab.com or a self-managed instance; the API is at `{base_url}/api/v4`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The variable holding the token (a personal, project or group access token with
    /// `read_api`), sent as `PRIVATE-TOKEN`; never logged.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// `private_token` (the `PRIVATE-TOKEN` header, default) or `bearer` (OAuth tokens).
    #[serde(default)]
    pub auth: TokenKind,
    /// Project paths (`group/app`) or ids to read.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Group paths (`group`, `group/sub`) or ids: every project of each, subgroups and archived
    /// projects included, listed once per run and read alongside `projects` (once each). A
    /// project that leaves the group stops being read and its documents are deleted.
    #[serde(default)]
    pub groups: Vec<String>,
    /// What to read of each project: `issues`, `merge_requests`, `wiki`, `code`.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// The branch, tag or commit whose files `code` reads; by default each project's default
    /// branch.
    #[serde(default)]
    pub code_ref: Option<String>,
    /// Repository files larger than this many bytes are not read as documents (skipped and
    /// counted, `kass_records_dropped_total{reason="too_large"}`): generated or vendored files,
    /// data dumps.
    #[serde(default = "default_max_code_file_bytes")]
    pub max_code_file_bytes: u64,
    /// Issues and merge requests last updated before this day are not read.
    #[serde(default)]
    pub since: Option<NaiveDate>,
    /// Notes of issues active in the last this many days are read again every run (an edit or
    /// deletion of a note is seen even where GitLab's counts do not show it).
    #[serde(default = "default_notes_lookback_days")]
    pub notes_lookback_days: u32,
    /// Also keep the notes GitLab writes itself ("closed", "changed the description").
    #[serde(default)]
    pub system_notes: bool,
    /// The largest share (0 to 1) of a project's, or the source's, documents one run may
    /// delete without `--allow-deletions`.
    #[serde(default = "default_max_deletion_share")]
    pub max_deletion_share: f64,
    /// A listing reaching this many pages is incomplete (and deletes nothing).
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Requests per minute (gitlab.com: 2,000 per user for authenticated API traffic). The
    /// `RateLimit-*` headers of GitLab's answers pace the source too, per user across all
    /// routes as GitLab counts; the slower of the two wins.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: f64,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// How the token travels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    #[default]
    PrivateToken,
    Bearer,
}

fn default_name() -> String {
    "gitlab".to_string()
}
fn default_base_url() -> String {
    "https://gitlab.com".to_string()
}
fn default_token_env() -> String {
    "GITLAB_TOKEN".to_string()
}
fn default_include() -> Vec<String> {
    vec!["issues".to_string(), "merge_requests".to_string()]
}
fn default_max_code_file_bytes() -> u64 {
    1024 * 1024
}
fn default_notes_lookback_days() -> u32 {
    14
}
fn default_max_deletion_share() -> f64 {
    0.2
}
fn default_max_pages() -> usize {
    10_000
}
fn default_requests_per_minute() -> f64 {
    2_000.0
}

impl BuildSource for GitlabApiConfig {
    type Source = GitlabApi;

    fn name(&self) -> &str {
        &self.name
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn cursor_settings(&self) -> Option<String> {
        Some(format!("gitlab:{}", self.name))
    }

    fn scope_status(
        &self,
        cursor: &crate::cursor::CursorState,
    ) -> Option<crate::api::scope_status::ScopeStatus> {
        Some(ScopeStatus::of::<ProjectState>("projects", cursor))
    }

    fn build_with(self, deps: SourceDeps) -> Result<GitlabApi, FatalError> {
        let bad =
            |reason: String| FatalError::Config(format!("gitlab source `{}`: {reason}", self.name));
        let token = settings::credentials(&self.token_env, "the access token").map_err(bad)?;
        let guard =
            DeletionGuard::new(self.max_deletion_share, deps.allow_deletions).map_err(bad)?;
        let max_pages = settings::max_pages(self.max_pages).map_err(bad)?;
        if self.projects.is_empty() && self.groups.is_empty() {
            return Err(bad(
                "projects and groups are empty: name at least one project or group".to_string(),
            ));
        }
        let include = Include::parse(&self.include).map_err(bad)?;
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
        let budget = ServerBudget::new(BudgetScope::User, &self.rate_limit)
            .map_err(|e| bad(format!("rate_limit: {e}")))?;
        let auth = match self.auth {
            TokenKind::PrivateToken => {
                Auth::Header(HeaderName::from_static("private-token"), token)
            }
            TokenKind::Bearer => Auth::Bearer(token),
        };
        let api = format!("{}/api/v4", self.base_url.trim_end_matches('/'));
        let client = ApiClient::new(ApiConfig {
            auth: Some(auth),
            retry: self.retry.clone(),
            limiters: Arc::new(limiters),
            budget: Some(Arc::new(budget)),
            ..ApiConfig::new(self.name.clone(), api)
        })
        .map_err(|e| bad(e.to_string()))?;
        Ok(GitlabApi {
            web: GitlabWeb { client, max_pages },
            include,
            guard,
            cursor: deps.cursor,
            outbox: deps.tombstones,
            config: self,
        })
    }
}
