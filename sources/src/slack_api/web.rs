//! The Slack Web API calls the source makes, on the shared API client: the envelope check
//! (errors come as HTTP 200 with `{"ok": false, "error": ...}`), cursor paging that ends only
//! when `response_metadata.next_cursor` is empty (never on a short page) and is complete only
//! then (see `crate::api::paging`: a page announcing `has_more` without a cursor, a cursor
//! handed out again, or the page cap end the read as [`ApiError::Incomplete`]), typed answers.

use std::sync::Arc;

use futures::TryStreamExt;
use kass_pipeline::http::{retry_after, Answer};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::tier::{HISTORY, LIST, REPLIES, USERS};
use crate::api::paging::{cursor_pages, next_cursor, Page, PageError, PageTrail};
use crate::api::{AnswerCheck, ApiClient, ApiError, Verdict};
use crate::slack::people::SlackUser;

/// Errors that mean the token cannot be used at all: the source stops.
const AUTH_ERRORS: [&str; 4] = [
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
];

/// Whether `error` means the token is unusable (stop) rather than one scope being unreadable.
pub(super) fn is_auth_failure(error: &ApiError) -> bool {
    error
        .code()
        .is_some_and(|code| AUTH_ERRORS.contains(&code.as_str()))
}

/// Slack's envelope: `ok: false` is an error whatever the HTTP status; `ratelimited` among
/// them waits for the Retry-After.
pub(super) fn envelope_check() -> AnswerCheck {
    Arc::new(|answer: &Answer| {
        let body: Value = answer.json().unwrap_or(Value::Null);
        if body["ok"].as_bool() != Some(false) {
            return Verdict::Ok;
        }
        match body["error"].as_str().unwrap_or("unknown_error") {
            "ratelimited" => Verdict::RateLimited(retry_after(&answer.headers)),
            error => Verdict::Refused(error.to_string()),
        }
    })
}

/// A conversation as `conversations.list` answers it.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct ListedChannel {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_archived: bool,
    #[serde(default)]
    pub is_member: bool,
    /// Direct and group messages: the bot is in those it can list (no `is_member` is sent).
    #[serde(default)]
    pub is_im: bool,
    #[serde(default)]
    pub is_mpim: bool,
}

/// The Web API of one workspace.
#[derive(Debug, Clone)]
pub(super) struct SlackWeb {
    pub client: ApiClient,
    /// Messages asked for per page of history and replies.
    pub page_size: usize,
    /// The most pages one read (a listing, a window of history, a thread) may take.
    pub max_pages: usize,
}

impl SlackWeb {
    /// Every conversation of `types` (comma-separated), archived ones left out.
    pub async fn conversations(&self, types: &str) -> Result<Vec<ListedChannel>, ApiError> {
        self.all_pages(
            LIST,
            "channels",
            &[("types", types), ("exclude_archived", "true")],
        )
        .await
    }

    /// Every user of the workspace, for the names documents show.
    pub async fn users(&self) -> Result<Vec<SlackUser>, ApiError> {
        self.all_pages(USERS, "members", &[]).await
    }

    /// The trail of a read of history paged by hand: pass each page's `next` through
    /// [`Self::follow`].
    pub fn trail(&self) -> PageTrail<String> {
        PageTrail::new(None, self.max_pages)
    }

    /// The cursor of the next page of history, or `None` once the read is complete; an error
    /// when it stops short (a cursor handed out again, the page cap).
    pub fn follow(
        &self,
        trail: &mut PageTrail<String>,
        next: Option<String>,
    ) -> Result<Option<String>, ApiError> {
        trail
            .follow(next)
            .map_err(|reason| self.client.incomplete(HISTORY, reason))
    }

    /// One page of a channel's top-level messages, newest first, with `oldest < ts < latest`
    /// (either bound left out when `None`).
    pub async fn history_page(
        &self,
        channel: &str,
        oldest: Option<&str>,
        latest: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<Value, String>, ApiError> {
        let limit = self.page_size.to_string();
        let mut query = vec![("channel", channel), ("limit", limit.as_str())];
        query.extend(oldest.map(|o| ("oldest", o)));
        query.extend(latest.map(|l| ("latest", l)));
        query.extend(cursor.map(|c| ("cursor", c)));
        self.page(HISTORY, "messages", &query).await
    }

    /// A thread: its parent first, then every reply. `None` when Slack no longer knows it
    /// (`thread_not_found`: the parent was deleted).
    pub async fn replies(&self, channel: &str, ts: &str) -> Result<Option<Vec<Value>>, ApiError> {
        let limit = self.page_size.to_string();
        let pages = cursor_pages(None, self.max_pages, |cursor: Option<String>| {
            let limit = limit.clone();
            async move {
                let mut query = vec![("channel", channel), ("ts", ts), ("limit", limit.as_str())];
                query.extend(cursor.as_deref().map(|c| ("cursor", c)));
                self.page::<Value>(REPLIES, "messages", &query).await
            }
        });
        let mut messages: Vec<Value> = Vec::new();
        let result = pages
            .try_for_each(|page| {
                for message in page.items {
                    // Pages after the first repeat the parent (Slack documents the parent
                    // at the head of every page); keep it once.
                    let repeated = !messages.is_empty() && message["ts"] == messages[0]["ts"];
                    if !repeated {
                        messages.push(message);
                    }
                }
                futures::future::ready(Ok(()))
            })
            .await
            .map_err(|e| e.into_error(|reason| self.client.incomplete(REPLIES, reason)));
        match result {
            Ok(()) => Ok(Some(messages)),
            Err(e) if e.code().as_deref() == Some("thread_not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every item under `field` of every page of a cursor-paged list method.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        method: &str,
        field: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, ApiError> {
        let pages = cursor_pages(None, self.max_pages, |cursor: Option<String>| async move {
            let mut query = query.to_vec();
            query.push(("limit", "200"));
            query.extend(cursor.as_deref().map(|c| ("cursor", c)));
            self.page::<T>(method, field, &query).await
        });
        let pages: Vec<Page<T, String>> =
            pages
                .try_collect()
                .await
                .map_err(|e: PageError<ApiError>| {
                    e.into_error(|reason| self.client.incomplete(method, reason))
                })?;
        Ok(pages.into_iter().flat_map(|p| p.items).collect())
    }

    /// One page: the items under `field`, and the next cursor; a page that announces more
    /// (`has_more`) without a cursor is an incomplete read.
    async fn page<T: DeserializeOwned>(
        &self,
        method: &str,
        field: &str,
        query: &[(&str, &str)],
    ) -> Result<Page<T, String>, ApiError> {
        let (body, _) = self.client.get_json::<Value>(method, query).await?;
        let next = next_cursor(&body).map_err(|reason| self.client.incomplete(method, reason))?;
        let items = match body.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(items) => serde_json::from_value(items.clone()).map_err(|e| ApiError::Decode {
                source_name: self.client.source().to_string(),
                method: method.to_string(),
                reason: format!("`{field}`: {e}"),
            })?,
        };
        Ok(Page { items, next })
    }
}
