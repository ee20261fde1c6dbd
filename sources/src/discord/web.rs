//! The Discord REST API v10 calls the source makes, on the shared API client, each under a
//! route label (`guild_channels`, `guild_roles`, `active_threads`, `archived_threads_public`,
//! `archived_threads_private`, `channel_messages`) so ids never become a metric label; the
//! major parameter of each (the guild or channel id in its path, [`major_parameter`]) and
//! the bucket its answers name pick its rate-limit budget (see `crate::api::server_budget`).
//!
//! Discord pages two ways: messages by snowflake (`before`, newest first, `limit` 100; the
//! end is a page shorter than asked or one reaching the floor), archived threads by
//! `before` (an ISO 8601 archive time), newest archived first, while `has_more`.

use futures::{Stream, TryStreamExt};
use serde::Deserialize;
use serde_json::Value;

use crate::api::paging::{cursor_pages, Page, PageError};
use crate::api::{ApiClient, ApiError};

/// Messages per page: Discord's maximum.
pub(super) const PAGE: usize = 100;

/// Discord's epoch (2015-01-01) in unix milliseconds: snowflakes count from it.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// The unix seconds a snowflake was made at.
#[cfg(test)]
fn snowflake_secs(id: &str) -> Option<i64> {
    let id: u64 = id.parse().ok()?;
    Some(((id >> 22) as i64 + DISCORD_EPOCH_MS) / 1000)
}

/// The smallest snowflake made at unix second `secs`: `before` it is everything older.
pub(super) fn snowflake_at(secs: i64) -> String {
    let ms = (secs * 1000 - DISCORD_EPOCH_MS).max(0) as u64;
    (ms << 22).to_string()
}

/// The guild or channel id a path names first: Discord's major parameter.
pub(super) fn major_parameter(url: &str) -> String {
    let mut parts = url.split(['/', '?']);
    while let Some(part) = parts.next() {
        if matches!(part, "channels" | "guilds") {
            if let Some(id) = parts.next() {
                return format!("{part}/{id}");
            }
        }
    }
    String::new()
}

/// A guild channel or thread, as the listings give it; only what kass uses.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Channel {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub name: Option<String>,
    /// A thread's channel (forum post: the forum).
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub thread_metadata: Option<ThreadMetadata>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct ThreadMetadata {
    #[serde(default)]
    pub archived: bool,
    /// When the thread's archive status last changed (ISO 8601).
    #[serde(default)]
    pub archive_timestamp: Option<String>,
}

impl Channel {
    /// Text (0), announcement (5), forum (15) and media (16) channels: those holding
    /// messages or posts.
    pub fn is_readable_kind(&self) -> bool {
        matches!(self.kind, 0 | 5 | 15 | 16)
    }

    /// A private thread (type 12).
    pub fn is_private(&self) -> bool {
        self.kind == 12
    }

    /// Forum and media channels hold only threads (their posts).
    pub fn holds_only_threads(&self) -> bool {
        matches!(self.kind, 15 | 16)
    }

    /// Unix seconds of the thread's last archive change; `None` for an active thread.
    pub fn archived_at(&self) -> Option<i64> {
        let meta = self.thread_metadata.as_ref().filter(|m| m.archived)?;
        parse_time(meta.archive_timestamp.as_deref()?)
    }
}

/// Unix seconds of an ISO 8601 time.
pub(super) fn parse_time(at: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.timestamp())
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Role {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// `GET /guilds/{id}/threads/active` and the archived listings.
#[derive(Debug, Deserialize)]
struct ThreadList {
    #[serde(default)]
    threads: Vec<Channel>,
    #[serde(default)]
    has_more: bool,
}

/// Which archived threads: public ones, or private ones (the bot needs MANAGE_THREADS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Archived {
    Public,
    Private,
}

impl Archived {
    pub const BOTH: [Archived; 2] = [Archived::Public, Archived::Private];

    /// Its key in a channel's saved backfill position.
    pub fn key(self) -> &'static str {
        self.path()
    }

    fn route(self) -> &'static str {
        match self {
            Self::Public => "archived_threads_public",
            Self::Private => "archived_threads_private",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct DiscordWeb {
    pub client: ApiClient,
    pub max_pages: usize,
}

impl DiscordWeb {
    /// Every channel of a guild (threads are not among them).
    pub async fn channels(&self, guild: &str) -> Result<Vec<Channel>, ApiError> {
        self.get("guild_channels", &format!("guilds/{guild}/channels"), &[])
            .await
    }

    pub async fn roles(&self, guild: &str) -> Result<Vec<Role>, ApiError> {
        self.get("guild_roles", &format!("guilds/{guild}/roles"), &[])
            .await
    }

    /// Every active thread of a guild, of every channel.
    pub async fn active_threads(&self, guild: &str) -> Result<Vec<Channel>, ApiError> {
        let list: ThreadList = self
            .get(
                "active_threads",
                &format!("guilds/{guild}/threads/active"),
                &[],
            )
            .await?;
        Ok(list.threads)
    }

    /// Pages of a channel's archived threads, newest archived first, from `before` (an ISO
    /// 8601 time; `None`: the newest).
    pub fn archived_threads<'a>(
        &'a self,
        channel: &'a str,
        which: Archived,
        before: Option<String>,
    ) -> impl Stream<Item = Result<Page<Channel, String>, ApiError>> + 'a {
        let route = which.route();
        let path = format!("channels/{channel}/threads/archived/{}", which.path());
        cursor_pages(before, self.max_pages, move |before: Option<String>| {
            let path = path.clone();
            async move {
                let mut query = vec![("limit", "100")];
                if let Some(before) = &before {
                    query.push(("before", before.as_str()));
                }
                let list: ThreadList = self.get(route, &path, &query).await?;
                let next = list
                    .has_more
                    .then(|| {
                        list.threads
                            .iter()
                            .filter_map(|t| t.thread_metadata.as_ref()?.archive_timestamp.clone())
                            .min_by_key(|at| parse_time(at))
                    })
                    .flatten();
                Ok(Page {
                    items: list.threads,
                    next,
                })
            }
        })
        .map_err(move |e| match e {
            PageError::Fetch(e) => e,
            PageError::Incomplete(reason) => self.client.incomplete(route, reason),
        })
    }

    /// Pages of a channel's (or thread's) messages, newest first, `before` a snowflake
    /// (`None`: the newest), ending with the first page reaching `floor` (a snowflake) or
    /// shorter than a full page.
    pub fn messages<'a>(
        &'a self,
        channel: &'a str,
        before: Option<String>,
        floor: Option<u64>,
    ) -> impl Stream<Item = Result<Page<Value, String>, ApiError>> + 'a {
        let route = "channel_messages";
        let path = format!("channels/{channel}/messages");
        cursor_pages(before, self.max_pages, move |before: Option<String>| {
            let path = path.clone();
            async move {
                let limit = PAGE.to_string();
                let mut query = vec![("limit", limit.as_str())];
                if let Some(before) = &before {
                    query.push(("before", before.as_str()));
                }
                let items: Vec<Value> = self.get(route, &path, &query).await?;
                let oldest = items
                    .iter()
                    .filter_map(|m| m["id"].as_str()?.parse::<u64>().ok())
                    .min();
                let next = oldest
                    .filter(|o| items.len() >= PAGE && floor.is_none_or(|f| *o > f))
                    .map(|o| o.to_string());
                Ok(Page { items, next })
            }
        })
        .map_err(move |e| match e {
            PageError::Fetch(e) => e,
            PageError::Incomplete(reason) => self.client.incomplete(route, reason),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let answer = self.client.get_route(route, path, query).await?;
        self.client.decode(route, &answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_order_like_time() {
        // The documented example: 175928847299117063 was made 2016-04-30 11:18:25.796 UTC.
        assert_eq!(snowflake_secs("175928847299117063"), Some(1_462_015_105));
        let at = snowflake_at(1_462_015_105);
        assert!(at.parse::<u64>().unwrap() <= 175_928_847_299_117_063);
        assert_eq!(snowflake_secs(&at), Some(1_462_015_105));
    }

    #[test]
    fn the_major_parameter_is_the_first_guild_or_channel_id() {
        assert_eq!(
            major_parameter("https://x/api/v10/channels/42/messages?before=1"),
            "channels/42"
        );
        assert_eq!(
            major_parameter("https://x/api/v10/guilds/7/threads/active"),
            "guilds/7"
        );
    }
}
