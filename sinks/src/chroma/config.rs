use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use kass_pipeline::retry::RetryPolicy;

use super::{ChromaSink, ChromaTarget, SkipStored};

/// `[chroma]` in kass.toml: where the vectors go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChromaConfig {
    /// Server URL (`http://` or `https://`); `CHROMA_URL`, or `CHROMADB_HOST` + `CHROMADB_PORT`,
    /// override it.
    #[serde(default = "default_url")]
    pub url: String,
    /// Chroma tenant (`default_tenant` on a local server; Chroma Cloud names one per account).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Database within the tenant.
    #[serde(default = "default_database")]
    pub database: String,
    /// 3 to 512 characters of `[a-zA-Z0-9._-]`, starting and ending alphanumeric.
    #[serde(default = "default_collection")]
    pub collection: String,
    /// Environment variable holding the token, if the server wants one.
    #[serde(default)]
    pub token_env: Option<String>,
    /// `authorization` (Bearer, the default) or `x-chroma-token` (Chroma Cloud).
    #[serde(default)]
    pub token_header: TokenHeader,
    /// Most records per upsert; the server's `max_batch_size` caps it further.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest a vector waits for its upsert to fill.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// Longest one request may take, in seconds, before it counts as failed (and is retried).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// `[chroma.retry]`: attempts and back-off for 5xx answers and network errors.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Longest the embed half waits for an unreachable Chroma before it embeds anything more,
    /// in seconds. Embedding what cannot be stored only spends the provider's budget: chunks
    /// wait while Chroma is down, and past this they are dead-lettered (`chroma_unavailable`,
    /// not embedded) so the delivery is retried later. Keep it under a Lambda's timeout.
    #[serde(default = "default_outage_hold_secs")]
    pub outage_hold_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenHeader {
    #[default]
    Authorization,
    XChromaToken,
}

fn default_url() -> String {
    "http://127.0.0.1:8000".into()
}
fn default_tenant() -> String {
    "default_tenant".into()
}
fn default_database() -> String {
    "default_database".into()
}
fn default_collection() -> String {
    "kass".into()
}
fn default_batch_size() -> usize {
    500
}
fn default_max_wait_ms() -> u64 {
    500
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_outage_hold_secs() -> u64 {
    120
}

impl Default for ChromaConfig {
    fn default() -> Self {
        Self {
            url: default_url(),
            tenant: default_tenant(),
            database: default_database(),
            collection: default_collection(),
            token_env: None,
            token_header: TokenHeader::default(),
            batch_size: default_batch_size(),
            max_wait_ms: default_max_wait_ms(),
            timeout_secs: default_timeout_secs(),
            retry: RetryPolicy::default(),
            outage_hold_secs: default_outage_hold_secs(),
        }
    }
}

impl ChromaConfig {
    /// The stage that drops chunks the collection already holds, before they are embedded.
    pub fn build_skip_stored(&self, target: Arc<ChromaTarget>) -> SkipStored {
        SkipStored::new(target, self.max_wait())
    }

    /// The stage that upserts vectors into the collection.
    pub fn build_sink(&self, target: Arc<ChromaTarget>) -> ChromaSink {
        ChromaSink::new(target, self.max_wait())
    }

    /// Longest a chunk waits for its request (a lookup, an upsert) to fill.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    pub fn outage_hold(&self) -> Duration {
        Duration::from_secs(self.outage_hold_secs)
    }

    /// Applies `CHROMA_URL`, or the seed deployment's `CHROMADB_HOST` / `CHROMADB_PORT`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(url) = env("CHROMA_URL").filter(|v| !v.is_empty()) {
            self.url = url;
        } else if let Some(host) = env("CHROMADB_HOST").filter(|v| !v.is_empty()) {
            let port = env("CHROMADB_PORT").unwrap_or_else(|| "8000".into());
            self.url = if host.contains("://") {
                format!("{host}:{port}")
            } else {
                format!("http://{host}:{port}")
            };
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let name = &self.collection;
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        let ends_ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if !(3..=512).contains(&name.len()) || !name.chars().all(ok_char) || !ends_ok {
            return Err(format!(
                "[chroma] collection `{name}`: 3-512 characters of [a-zA-Z0-9._-], starting and ending alphanumeric"
            ));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "[chroma] url `{}` must start with http:// or https://",
                kass_pipeline::redact::without_userinfo(&self.url)
            ));
        }
        if self.batch_size == 0 {
            return Err("[chroma] batch_size must be at least 1".into());
        }
        Ok(())
    }
}
