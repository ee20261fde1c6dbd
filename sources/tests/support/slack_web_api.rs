//! A local HTTP server that answers like Slack's Web API, over a workspace a test can change
//! between runs (post, reply, edit, delete, archive, remove a channel), so incremental syncs can
//! be checked from the server's side.
//!
//! Methods served (GET with a query string, or POST with a form or JSON body), at
//! `{base_url}/{method}`:
//!
//! - `conversations.list`, `users.list`: cursor-paged lists.
//! - `conversations.history`: a channel's top-level messages, newest first.
//! - `conversations.replies`: a thread, parent first, then replies oldest first.
//! - `auth.test`: who the token is.
//! - anything else: `{"ok": false, "error": "unknown_method"}`.
//!
//! [`Workspace::write_export`] writes the same workspace as an unzipped Slack workspace export
//! (`users.json`, `channels.json`, one folder of day files per channel), its messages rendered
//! by the same function the server answers with, so an export backfill and an API sync of one
//! workspace can be compared.
//!
//! What a client must know (each point is documented by Slack, except where noted):
//!
//! - Every answer is JSON with `ok`; an error is `{"ok": false, "error": "<code>"}` with HTTP
//!   200, except rate limiting: HTTP 429, a `Retry-After` header in whole seconds (rounded up,
//!   at least 1) and `{"ok": false, "error": "ratelimited"}`.
//! - Cursors are opaque: base64 (standard alphabet, with `=` padding, so they hold `+`, `/` and
//!   `=` and must be URL-encoded) of `team:<channel id>`, `user:<user id>` or `next_ts:<ts>`, as
//!   Slack's own cursors are. The last page has `response_metadata.next_cursor == ""`. A cursor
//!   only holds a position: send the same `oldest`/`latest`/`inclusive`/`limit` with it.
//! - A page may hold fewer items than `limit` while more remain (`short_pages`, `page_cap`):
//!   only an empty `next_cursor` (or `has_more: false`) ends a listing.
//! - Timestamps are compared as numbers (seconds, microseconds), never as strings.
//! - `oldest`/`latest` are exclusive unless `inclusive` is `true`/`1`, which includes both ends.
//! - `conversations.list` lists only `public_channel` unless `types` says otherwise, and lists a
//!   private channel only if the caller is a member of it.
//! - `conversations.replies` repeats the parent at the start of every page by default (see
//!   [`ServerOptions::replies_parent_every_page`]): identify the parent by `ts == thread_ts`,
//!   not by position, and de-duplicate by `ts`.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

/// The team every answer names.
pub const TEAM_ID: &str = "T0KASSTEST";

// ------------------------------------------------------------------------------------------
// The workspace model
// ------------------------------------------------------------------------------------------

/// One message of a channel. A parent or plain message has `thread_ts` `None` or its own
/// `ts`; a reply has `thread_ts` = its parent's `ts`. A reply with subtype `thread_broadcast`
/// ("also send to channel") is listed by `conversations.history` too, as Slack does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub ts: String,
    /// The author's user id; empty for none (a bot post), which leaves `user` out of the JSON.
    pub user: String,
    pub text: String,
    pub thread_ts: Option<String>,
    pub subtype: Option<String>,
    pub edited_ts: Option<String>,
    /// Raw Slack fields the message carries besides those above (`files`, `attachments`,
    /// `user_profile`, `bot_id`, `username`, `blocks`, `reactions`, ...), merged into the
    /// message's JSON as given. The fields the server derives from the model
    /// ([`SERVED_FIELDS`]: `ts`, `user`, `text`, `subtype`, `edited`, `thread_ts`,
    /// `reply_count`, `latest_reply`, `root`, ...) are never taken from here, even where the
    /// server leaves them out (a stale `reply_count` here cannot make a plain message a parent).
    pub extra: Map<String, Value>,
}

impl Message {
    pub fn new(ts: &str, user: &str, text: &str) -> Self {
        Self {
            ts: ts.to_string(),
            user: user.to_string(),
            text: text.to_string(),
            thread_ts: None,
            subtype: None,
            edited_ts: None,
            extra: Map::new(),
        }
    }

    /// The message with `fields` (a JSON object) added to [`Message::extra`].
    pub fn with_extra(mut self, fields: Value) -> Self {
        match fields {
            Value::Object(fields) => self.extra.extend(fields),
            other => panic!("extra fields must be a JSON object, not {other}"),
        }
        self
    }

    /// A reply in a thread (a broadcast reply included).
    pub fn is_reply(&self) -> bool {
        self.thread_ts.as_deref().is_some_and(|t| t != self.ts)
    }

    pub fn is_broadcast(&self) -> bool {
        self.subtype.as_deref() == Some("thread_broadcast")
    }

    /// Listed by `conversations.history`: not a reply, or a reply also sent to the channel.
    pub fn is_top_level(&self) -> bool {
        !self.is_reply() || self.is_broadcast()
    }

    fn key(&self) -> Ts {
        Ts::parse(&self.ts).unwrap_or_else(|| panic!("message ts {:?} is not a Slack ts", self.ts))
    }
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub is_archived: bool,
    pub is_member: bool,
    pub is_private: bool,
    /// In any order: the server sorts by `ts`.
    pub messages: Vec<Message>,
}

impl Channel {
    /// A public channel the caller is a member of, without messages.
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            is_archived: false,
            is_member: true,
            is_private: false,
            messages: Vec::new(),
        }
    }

    pub fn message(&self, ts: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.ts == ts)
    }

    /// The replies of the thread whose parent is `ts`, oldest first.
    pub fn replies_of(&self, ts: &str) -> Vec<&Message> {
        let mut replies: Vec<&Message> = self
            .messages
            .iter()
            .filter(|m| m.is_reply() && m.thread_ts.as_deref() == Some(ts))
            .collect();
        replies.sort_by_key(|m| m.key());
        replies
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub display_name: String,
}

impl User {
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            real_name: name.to_string(),
            display_name: name.to_string(),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Workspace {
    pub channels: Vec<Channel>,
    pub users: Vec<User>,
}

impl Workspace {
    /// The channel named `name` (or, failing that, with id `name`). Panics if there is none.
    pub fn channel_mut(&mut self, name: &str) -> &mut Channel {
        let i = self
            .channels
            .iter()
            .position(|c| c.name == name)
            .or_else(|| self.channels.iter().position(|c| c.id == name))
            .unwrap_or_else(|| panic!("no channel {name:?} in the workspace"));
        &mut self.channels[i]
    }

    /// The channel named `name` (or with id `name`). Panics if there is none.
    pub fn channel(&self, name: &str) -> &Channel {
        self.channels
            .iter()
            .find(|c| c.name == name)
            .or_else(|| self.channels.iter().find(|c| c.id == name))
            .unwrap_or_else(|| panic!("no channel {name:?} in the workspace"))
    }

    /// Adds a public channel the caller is a member of.
    pub fn add_channel(&mut self, id: &str, name: &str) -> &mut Channel {
        self.channels.push(Channel::new(id, name));
        self.channels.last_mut().unwrap()
    }

    pub fn add_user(&mut self, id: &str, name: &str) -> &mut User {
        self.users.push(User::new(id, name));
        self.users.last_mut().unwrap()
    }

    /// Posts a plain message to the channel.
    pub fn post(&mut self, channel: &str, ts: &str, user: &str, text: &str) {
        self.post_message(channel, Message::new(ts, user, text));
    }

    /// Adds a message built by the caller (with [`Message::extra`], a subtype, ...). A reply
    /// (`thread_ts` another message's `ts`) makes its parent a thread parent, as
    /// [`Workspace::reply`] does.
    pub fn post_message(&mut self, channel: &str, message: Message) {
        let channel = self.channel_mut(channel);
        if message.is_reply() {
            let parent_ts = message.thread_ts.as_deref().unwrap();
            let parent = channel
                .messages
                .iter_mut()
                .find(|m| m.ts == parent_ts)
                .unwrap_or_else(|| panic!("no parent message {parent_ts} to reply to"));
            assert!(
                !parent.is_reply(),
                "{parent_ts} is a reply: Slack threads are one level deep"
            );
            parent.thread_ts = Some(parent_ts.to_string());
        }
        channel.messages.push(message);
    }

    /// The message `ts` of the channel, to change it (its [`Message::extra`], say). Panics if
    /// there is none.
    pub fn message_mut(&mut self, channel: &str, ts: &str) -> &mut Message {
        self.channel_mut(channel)
            .messages
            .iter_mut()
            .find(|m| m.ts == ts)
            .unwrap_or_else(|| panic!("no message {ts} in {channel:?}"))
    }

    /// Replies in the thread of `parent_ts` (which becomes a thread parent).
    pub fn reply(&mut self, channel: &str, parent_ts: &str, ts: &str, user: &str, text: &str) {
        self.push_reply(channel, parent_ts, ts, user, text, None);
    }

    /// Replies in the thread of `parent_ts` and also sends the reply to the channel: subtype
    /// `thread_broadcast`, listed by both `conversations.replies` and `conversations.history`.
    pub fn broadcast(&mut self, channel: &str, parent_ts: &str, ts: &str, user: &str, text: &str) {
        self.push_reply(
            channel,
            parent_ts,
            ts,
            user,
            text,
            Some("thread_broadcast".to_string()),
        );
    }

    fn push_reply(
        &mut self,
        channel: &str,
        parent_ts: &str,
        ts: &str,
        user: &str,
        text: &str,
        subtype: Option<String>,
    ) {
        assert_ne!(ts, parent_ts, "a reply has a ts of its own");
        self.post_message(
            channel,
            Message {
                thread_ts: Some(parent_ts.to_string()),
                subtype,
                ..Message::new(ts, user, text)
            },
        );
    }

    /// Edits a message: new text, `edited.ts` = `edited_ts` (its `ts` does not change).
    pub fn edit(&mut self, channel: &str, ts: &str, new_text: &str, edited_ts: &str) {
        let message = self
            .channel_mut(channel)
            .messages
            .iter_mut()
            .find(|m| m.ts == ts)
            .unwrap_or_else(|| panic!("no message {ts} to edit"));
        message.text = new_text.to_string();
        message.edited_ts = Some(edited_ts.to_string());
    }

    /// Deletes a message. Simplification: deleting a parent with replies deletes the whole
    /// thread (Slack instead leaves a `tombstone` parent, "This message was deleted.", while
    /// replies remain). Deleting a reply leaves the rest of its thread.
    pub fn delete(&mut self, channel: &str, ts: &str) {
        let channel = self.channel_mut(channel);
        let before = channel.messages.len();
        channel
            .messages
            .retain(|m| m.ts != ts && !(m.is_reply() && m.thread_ts.as_deref() == Some(ts)));
        assert!(channel.messages.len() < before, "no message {ts} to delete");
    }

    /// Removes the channel entirely: it leaves `conversations.list` and its methods answer
    /// `channel_not_found` (as for a deleted channel).
    pub fn remove_channel(&mut self, name: &str) {
        let id = self.channel(name).id.clone();
        self.channels.retain(|c| c.id != id);
    }

    /// Archives the channel: `is_archived: true`, hidden by `exclude_archived`, its history
    /// still readable (as Slack's is).
    pub fn archive(&mut self, name: &str) {
        self.channel_mut(name).is_archived = true;
    }

    pub fn unarchive(&mut self, name: &str) {
        self.channel_mut(name).is_archived = false;
    }

    fn channel_by_id(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }
}

/// A Slack ts for `secs` seconds and `micros` microseconds: `"1700000000.000123"`.
pub fn ts(secs: u64, micros: u32) -> String {
    format!("{secs}.{micros:06}")
}

/// The Slack ts of the current time.
pub fn now_ts() -> String {
    let now = chrono::Utc::now();
    ts(now.timestamp() as u64, now.timestamp_subsec_micros())
}

/// A Slack timestamp as a number: seconds and microseconds, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Ts(u64, u32);

impl Ts {
    /// `"1700000000.000123"`, `"1700000000"`, `"1700000000.5"` (= .500000), `"0"`.
    fn parse(s: &str) -> Option<Ts> {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let micros = format!("{frac:0<6}").parse().ok()?;
        Some(Ts(secs.parse().ok()?, micros))
    }
}

// ------------------------------------------------------------------------------------------
// Options and the log
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The bot token the server requires, as `Authorization: Bearer <token>` (or, on POST, a
    /// `token` body field, as Slack also accepts).
    pub token: String,
    /// `conversations.history`/`conversations.replies` return at most this many messages a
    /// page whatever `limit` says (Slack: 15 for non-Marketplace apps since May 2025).
    pub page_cap: Option<usize>,
    /// Per method: at most N accepted requests in any sliding window of this length; more get
    /// HTTP 429, `Retry-After` (seconds until the window frees, rounded up, at least 1) and
    /// `{"ok": false, "error": "ratelimited"}`. Slack limits per method per workspace per app.
    pub method_limits: Vec<(String, usize, Duration)>,
    /// Pages hold `ceil(limit / 2)` items while more remain, `next_cursor` still set (Slack:
    /// "Fewer than the requested number of items may be returned, even if the end ... hasn't
    /// been reached").
    pub short_pages: bool,
    /// A 429 storm: the first N requests (any method) after `start`/`set_options` answer 429
    /// with `Retry-After: 1`.
    pub fail_429_first: usize,
    /// Channel ids whose history and replies answer `not_in_channel` (the bot was not invited).
    pub not_in_channel: Vec<String>,
    /// `conversations.replies` puts the parent at the start of every page (true, the default:
    /// what Slack is widely reported to do; its documentation does not say) or of the first
    /// page only (false). Either way the parent counts toward the page's size.
    pub replies_parent_every_page: bool,
    /// Waits this long before answering each request.
    pub latency: Duration,
    /// Pagination gone wrong, per method (and channel). Not Slack's documented contract
    /// (<https://api.slack.com/docs/pagination>: follow `next_cursor` until it is empty), but
    /// what issue 21 measured from a live workspace; see [`BrokenCursor`].
    pub broken_paging: Vec<BrokenPaging>,
    /// A rate-limit storm on one method for a while (Slack, <https://api.slack.com/docs/rate-limits>:
    /// "HTTP 429 Too Many Requests ... a Retry-After HTTP header containing the number of
    /// seconds until you can retry"; a workspace busy with other apps keeps a method refused
    /// for longer than one Retry-After).
    pub method_storm: Option<MethodStorm>,
    /// `conversations.list` answers `ok` with no conversations at all, its last page and all:
    /// what a token whose scopes or installation changed under it was seen to answer, the
    /// channels still there and readable.
    pub empty_listing: bool,
}

/// How [`BrokenPaging`] breaks a page that has more after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenCursor {
    /// `has_more: true` with `next_cursor: ""`: more announced, no way to it (measured on
    /// `conversations.history`).
    NoCursor,
    /// Every page after the first names its own cursor as the next one, forever: the same
    /// cursor handed out again (measured: 1,934 calls in 120 s).
    Repeated,
}

/// Breaks the paging of `method` (of `channel` only, if given) as `kind` says.
#[derive(Debug, Clone)]
pub struct BrokenPaging {
    pub method: String,
    pub channel: Option<String>,
    pub kind: BrokenCursor,
}

/// Every request of `method` answers 429 with `Retry-After: retry_after_secs` for `period`
/// from the first request of it (after `start`/`set_options`).
#[derive(Debug, Clone)]
pub struct MethodStorm {
    pub method: String,
    pub period: Duration,
    pub retry_after_secs: u64,
}

impl ServerOptions {
    /// Requires `token`; no page cap, no rate limits, full pages, no storm.
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_string(),
            page_cap: None,
            method_limits: Vec::new(),
            short_pages: false,
            fail_429_first: 0,
            not_in_channel: Vec::new(),
            replies_parent_every_page: true,
            latency: Duration::ZERO,
            broken_paging: Vec::new(),
            method_storm: None,
            empty_listing: false,
        }
    }

    /// Breaks the paging of `method` (of `channel` only, if given) as `kind` says.
    pub fn broken(mut self, method: &str, channel: Option<&str>, kind: BrokenCursor) -> Self {
        self.broken_paging.push(BrokenPaging {
            method: method.to_string(),
            channel: channel.map(str::to_string),
            kind,
        });
        self
    }

    /// Adds a limit of `n` requests per `window` for `method`.
    pub fn limit(mut self, method: &str, n: usize, window: Duration) -> Self {
        self.method_limits.push((method.to_string(), n, window));
        self
    }
}

/// One request as the server answered it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The Slack method: the path after `/api/`.
    pub method: String,
    /// Query string and (for POST) body fields; a `token` field is logged as `<redacted>`.
    pub query: HashMap<String, String>,
    pub status: u16,
    /// The `error` of an `ok: false` answer.
    pub error: Option<String>,
    /// `Retry-After` seconds of a 429.
    pub retry_after: Option<u64>,
    pub at: Instant,
    /// Whether the request carried an `Authorization` header.
    pub auth_header: bool,
    /// Messages in the answer (history and replies), a repeated parent included.
    pub messages: usize,
}

struct Inner {
    workspace: Mutex<Workspace>,
    options: Mutex<ServerOptions>,
    /// Requests still to refuse in the 429 storm.
    storm_left: Mutex<usize>,
    /// When the method storm began (its method's first request).
    method_storm_began: Mutex<Option<Instant>>,
    /// Accepted requests per rate-limited method, in the current window. Its lock also orders
    /// arrival instants, so that the log's `at` agree with the limiter's decisions.
    accepted: Mutex<HashMap<String, VecDeque<Instant>>>,
    log: Mutex<Vec<Logged>>,
}

pub struct SlackServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SlackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SlackServer {
    pub async fn start(workspace: Workspace, options: ServerOptions) -> Self {
        let inner = Arc::new(Inner {
            workspace: Mutex::new(workspace),
            storm_left: Mutex::new(options.fail_429_first),
            method_storm_began: Mutex::new(None),
            options: Mutex::new(options),
            accepted: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT/api`: methods are at `{base_url}/{method}`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Reads or changes the workspace (between runs, or mid-run).
    pub fn with_workspace<R>(&self, f: impl FnOnce(&mut Workspace) -> R) -> R {
        f(&mut self.inner.workspace.lock().unwrap())
    }

    /// Replaces the options; restarts the 429 storm with `fail_429_first` and forgets the
    /// rate-limit windows.
    pub fn set_options(&self, options: ServerOptions) {
        *self.inner.storm_left.lock().unwrap() = options.fail_429_first;
        *self.inner.method_storm_began.lock().unwrap() = None;
        self.inner.accepted.lock().unwrap().clear();
        *self.inner.options.lock().unwrap() = options;
    }

    pub fn options(&self) -> ServerOptions {
        self.inner.options.lock().unwrap().clone()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.inner.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.inner.log.lock().unwrap().clear();
    }

    /// Requests of `method`, whatever their answer.
    pub fn count(&self, method: &str) -> usize {
        self.log().iter().filter(|l| l.method == method).count()
    }

    /// Requests answered 429, all methods.
    pub fn refused_429(&self) -> usize {
        self.log().iter().filter(|l| l.status == 429).count()
    }

    /// Messages served by `method` over all its requests.
    pub fn messages_returned(&self, method: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l.method == method)
            .map(|l| l.messages)
            .sum()
    }

    /// Most requests of `method` not answered 429 that arrived within any `window`.
    pub fn max_in_window(&self, method: &str, window: Duration) -> usize {
        let times: Vec<Instant> = self
            .log()
            .iter()
            .filter(|l| l.method == method && l.status != 429)
            .map(|l| l.at)
            .collect();
        let mut sorted = times;
        sorted.sort();
        (0..sorted.len())
            .map(|i| {
                sorted[i..]
                    .iter()
                    .take_while(|t| t.duration_since(sorted[i]) < window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

// ------------------------------------------------------------------------------------------
// Serving
// ------------------------------------------------------------------------------------------

/// What the server answers, and what the log keeps of it.
struct Outcome {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
    messages: usize,
}

impl Outcome {
    fn ok(body: Value) -> Self {
        Self::ok_with(body, 0)
    }

    fn ok_with(mut body: Value, messages: usize) -> Self {
        body["ok"] = json!(true);
        Self {
            status: StatusCode::OK,
            retry_after: None,
            body,
            messages,
        }
    }

    /// Slack's error envelope: HTTP 200, `ok: false`, an error code.
    fn error(code: &str) -> Self {
        Self {
            status: StatusCode::OK,
            retry_after: None,
            body: json!({"ok": false, "error": code}),
            messages: 0,
        }
    }

    /// Slack's rate limiting: HTTP 429, `Retry-After` in seconds, `error: ratelimited`.
    fn ratelimited(seconds: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(seconds),
            body: json!({"ok": false, "error": "ratelimited"}),
            messages: 0,
        }
    }
}

type Params = HashMap<String, String>;

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = uri
        .path()
        .strip_prefix("/api/")
        .unwrap_or(uri.path())
        .to_string();
    let mut params: Params = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    if method == Method::POST {
        params.extend(body_params(&headers, &body));
    }
    let auth_header = headers.contains_key("authorization");
    let (at, outcome) = answer(&inner, &name, &params, &headers);
    let latency = inner.options.lock().unwrap().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(token) = params.get_mut("token") {
        *token = "<redacted>".to_string();
    }
    inner.log.lock().unwrap().push(Logged {
        method: name,
        query: params,
        status: outcome.status.as_u16(),
        error: outcome.body["error"].as_str().map(str::to_string),
        retry_after: outcome.retry_after,
        at,
        auth_header,
        messages: outcome.messages,
    });
    let mut response = (outcome.status, axum::Json(outcome.body)).into_response();
    if let Some(seconds) = outcome.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(seconds));
    }
    response
}

/// Slack takes arguments as `application/x-www-form-urlencoded` or `application/json` bodies.
fn body_params(headers: &HeaderMap, body: &Bytes) -> Params {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return form_urlencoded::parse(body).into_owned().collect();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => fields
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        _ => Params::new(),
    }
}

/// The arrival instant and the answer.
fn answer(inner: &Inner, name: &str, params: &Params, headers: &HeaderMap) -> (Instant, Outcome) {
    let options = inner.options.lock().unwrap().clone();
    {
        let mut accepted = inner.accepted.lock().unwrap();
        let at = Instant::now();
        // The 429 storm: every method refused, `Retry-After: 1`.
        {
            let mut left = inner.storm_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return (at, Outcome::ratelimited(1));
            }
        }
        // The method storm: this method refused with its Retry-After for the storm's period.
        if let Some(storm) = options.method_storm.as_ref().filter(|s| s.method == name) {
            let began = *inner.method_storm_began.lock().unwrap().get_or_insert(at);
            if at.duration_since(began) < storm.period {
                return (at, Outcome::ratelimited(storm.retry_after_secs));
            }
        }
        // Authentication: Slack answers HTTP 200 with `not_authed` when no token is presented
        // and `invalid_auth` when the token is not valid.
        if let Some(error) = auth_error(&options.token, headers, params) {
            return (at, Outcome::error(error));
        }
        // Per-method limits (Slack: "per API method per workspace per app"), as a strict
        // sliding window; HTTP 429 with `Retry-After` = seconds until a request would be
        // accepted again.
        if let Some((_, n, window)) = options.method_limits.iter().find(|(m, ..)| m == name) {
            let queue = accepted.entry(name.to_string()).or_default();
            while queue
                .front()
                .is_some_and(|t| at.duration_since(*t) >= *window)
            {
                queue.pop_front();
            }
            if queue.len() >= *n {
                let free_at = queue.front().map_or(at + *window, |t| *t + *window);
                let wait = free_at.saturating_duration_since(at);
                let seconds = (wait.as_secs_f64().ceil() as u64).max(1);
                return (at, Outcome::ratelimited(seconds));
            }
            queue.push_back(at);
        }
        drop(accepted);
        let workspace = inner.workspace.lock().unwrap();
        let outcome = match name {
            "auth.test" => auth_test(),
            "conversations.list" => conversations_list(&workspace, params, &options),
            "users.list" => users_list(&workspace, params, &options),
            "conversations.history" => conversations_history(&workspace, params, &options),
            "conversations.replies" => conversations_replies(&workspace, params, &options),
            // Slack: `unknown_method` for a method that does not exist.
            _ => Outcome::error("unknown_method"),
        };
        let mut outcome = outcome;
        let channel = params.get("channel");
        for rule in &options.broken_paging {
            if rule.method == name && rule.channel.as_ref().is_none_or(|c| Some(c) == channel) {
                break_paging(&mut outcome.body, rule.kind, params);
            }
        }
        (at, outcome)
    }
}

/// A page that has more after it (`has_more`, or a `next_cursor`), broken as `kind` says; a
/// last page, or an error, is left as it is.
fn break_paging(body: &mut Value, kind: BrokenCursor, params: &Params) {
    let cursor = body["response_metadata"]["next_cursor"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let more = body["has_more"].as_bool() == Some(true) || !cursor.is_empty();
    if body["ok"] != json!(true) || !more {
        return;
    }
    match kind {
        BrokenCursor::NoCursor => {
            body["has_more"] = json!(true);
            body["response_metadata"] = json!({"next_cursor": ""});
        }
        BrokenCursor::Repeated => {
            if let Some(asked) = params.get("cursor").filter(|c| !c.is_empty()) {
                body["response_metadata"] = json!({"next_cursor": asked});
            }
        }
    }
}

fn auth_error(token: &str, headers: &HeaderMap, params: &Params) -> Option<&'static str> {
    let presented = match headers.get("authorization") {
        Some(value) => match value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
            Some(bearer) => Some(bearer.to_string()),
            None => return Some("invalid_auth"),
        },
        None => params.get("token").cloned(),
    };
    match presented {
        None => Some("not_authed"),
        Some(t) if t.is_empty() => Some("not_authed"),
        Some(t) if t == token => None,
        Some(_) => Some("invalid_auth"),
    }
}

/// `auth.test`: the documented fields of a bot token's identity.
fn auth_test() -> Outcome {
    Outcome::ok(json!({
        "url": "https://kass-test.slack.com/",
        "team": "Kass Test",
        "user": "kassbot",
        "team_id": TEAM_ID,
        "user_id": "U0KASSBOT",
        "bot_id": "B0KASSBOT",
        "is_enterprise_install": false,
    }))
}

// ------------------------------------------------------------------------------------------
// Arguments
// ------------------------------------------------------------------------------------------

/// `limit`: absent, empty or 0 means the method's default; above the method's maximum, the
/// maximum; not a number, `invalid_arguments`.
fn limit_param(params: &Params, default: usize, max: usize) -> Result<usize, Outcome> {
    match params.get("limit").map(|s| s.trim()) {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(0) => Ok(default),
            Ok(n) => Ok(n.min(max)),
            Err(_) => Err(Outcome::error("invalid_arguments")),
        },
    }
}

fn bool_param(params: &Params, name: &str) -> bool {
    matches!(params.get(name).map(String::as_str), Some("true" | "1"))
}

/// `oldest`/`latest`: a Slack ts; Slack answers `invalid_ts_oldest`/`invalid_ts_latest` for a
/// malformed one.
fn ts_param(params: &Params, name: &str) -> Result<Option<Ts>, Outcome> {
    match params.get(name).map(|s| s.trim()) {
        None | Some("") => Ok(None),
        Some(s) => Ts::parse(s)
            .map(Some)
            .ok_or_else(|| Outcome::error(&format!("invalid_ts_{name}"))),
    }
}

/// The cursor of the request, decoded: `None` for the first page (no cursor, or an empty one),
/// `invalid_cursor` for one the server did not make.
fn cursor_param(params: &Params, kind: &str) -> Result<Option<String>, Outcome> {
    match params.get("cursor").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(cursor) => decode_cursor(cursor, kind)
            .map(Some)
            .ok_or_else(|| Outcome::error("invalid_cursor")),
    }
}

/// Items on a page: `limit`, capped by `page_cap` (history and replies), halved with
/// `short_pages`; at least one.
fn page_size(limit: usize, cap: Option<usize>, short: bool) -> usize {
    let mut size = limit;
    if let Some(cap) = cap {
        size = size.min(cap);
    }
    if short {
        size = size.div_ceil(2);
    }
    size.max(1)
}

fn encode_cursor(kind: &str, value: &str) -> String {
    base64_encode(format!("{kind}:{value}").as_bytes())
}

fn decode_cursor(cursor: &str, kind: &str) -> Option<String> {
    let text = String::from_utf8(base64_decode(cursor)?).ok()?;
    let value = text.strip_prefix(kind)?.strip_prefix(':')?;
    (!value.is_empty()).then(|| value.to_string())
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    // A whole number of 4-character groups (`is_multiple_of` is newer than the MSRV).
    if text.is_empty() || !text.chunks_exact(4).remainder().is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for (c, chunk) in text.chunks(4).enumerate() {
        let last = c == text.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &b in &chunk[..4 - pad] {
            let v = BASE64.iter().position(|&a| a == b)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

// ------------------------------------------------------------------------------------------
// Lists
// ------------------------------------------------------------------------------------------

/// A cursor-paged list, in id order: the cursor is `<kind>:<id of the next item>`, and a page
/// starts at the first item whose id is not below it (so a list changed between pages neither
/// repeats nor skips the items that stayed). Slack: `response_metadata.next_cursor`, empty on
/// the last page.
fn list_page(
    mut items: Vec<(String, Value)>,
    params: &Params,
    key: &str,
    kind: &str,
    limit: usize,
    short: bool,
) -> Outcome {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match cursor_param(params, kind) {
        Ok(None) => 0,
        Ok(Some(id)) => items.partition_point(|(i, _)| *i < id),
        Err(e) => return e,
    };
    let size = page_size(limit, None, short);
    let end = start.saturating_add(size).min(items.len());
    let next = items
        .get(end)
        .map_or(String::new(), |(id, _)| encode_cursor(kind, id));
    let page: Vec<Value> = items.drain(start..end).map(|(_, v)| v).collect();
    Outcome::ok(json!({key: page, "response_metadata": {"next_cursor": next}}))
}

/// `conversations.list`. Documented: `types` (comma list; default `public_channel`; `im` and
/// `mpim` match nothing here; another value is `invalid_types`), `exclude_archived`, `limit`
/// (default 100, under 1000), `cursor`. A private channel is listed only to a member, as for a
/// bot token.
fn conversations_list(workspace: &Workspace, params: &Params, options: &ServerOptions) -> Outcome {
    let types = params
        .get("types")
        .map(String::as_str)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("public_channel");
    let (mut public, mut private) = (false, false);
    for t in types.split(',').map(str::trim) {
        match t {
            "public_channel" => public = true,
            "private_channel" => private = true,
            "im" | "mpim" => {}
            _ => return Outcome::error("invalid_types"),
        }
    }
    let limit = match limit_param(params, 100, 999) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let exclude_archived = bool_param(params, "exclude_archived");
    let items = workspace
        .channels
        .iter()
        .filter(|_| !options.empty_listing)
        .filter(|c| {
            if c.is_private {
                private && c.is_member
            } else {
                public
            }
        })
        .filter(|c| !(exclude_archived && c.is_archived))
        .map(|c| (c.id.clone(), channel_json(c)))
        .collect();
    list_page(
        items,
        params,
        "channels",
        "team",
        limit,
        options.short_pages,
    )
}

fn channel_json(c: &Channel) -> Value {
    let created = c
        .messages
        .iter()
        .map(|m| m.key().0)
        .min()
        .unwrap_or(1_600_000_000);
    json!({
        "id": c.id,
        "name": c.name,
        "name_normalized": c.name,
        "is_channel": !c.is_private,
        "is_group": c.is_private,
        "is_im": false,
        "is_mpim": false,
        "is_private": c.is_private,
        "is_archived": c.is_archived,
        "is_general": false,
        "is_member": c.is_member,
        "created": created,
        "creator": "U0KASSBOT",
        "context_team_id": TEAM_ID,
    })
}

/// `users.list`. Documented: `limit` (without one, Slack tries to return every user), `cursor`;
/// `members` with `profile`.
fn users_list(workspace: &Workspace, params: &Params, options: &ServerOptions) -> Outcome {
    let limit = match limit_param(params, usize::MAX, usize::MAX) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let short = options.short_pages && limit != usize::MAX;
    let items = workspace
        .users
        .iter()
        .map(|u| (u.id.clone(), user_json(u)))
        .collect();
    list_page(items, params, "members", "user", limit, short)
}

/// A user as `users.list` serves a member (and an export's `users.json` holds it).
fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "team_id": TEAM_ID,
        "name": u.name,
        "deleted": false,
        "real_name": u.real_name,
        "is_bot": false,
        "is_app_user": false,
        "profile": {
            "real_name": u.real_name,
            "real_name_normalized": u.real_name,
            "display_name": u.display_name,
            "display_name_normalized": u.display_name,
            "team": TEAM_ID,
        },
    })
}

// ------------------------------------------------------------------------------------------
// Messages
// ------------------------------------------------------------------------------------------

/// A message as Slack's methods return it: `type`, `ts`, `user`, `text`, `subtype` if any,
/// `edited: {user, ts}` if edited; a thread parent with replies carries `thread_ts`,
/// `reply_count`, `reply_users_count`, `latest_reply`, `reply_users`; a reply carries
/// `thread_ts` and `parent_user_id` (and a broadcast reply in history, `root`: its parent).
/// Then the message's [`Message::extra`] fields, except [`SERVED_FIELDS`].
fn message_json(channel: &Channel, m: &Message, with_root: bool) -> Value {
    let mut v = Map::new();
    v.insert("type".into(), json!("message"));
    if let Some(subtype) = &m.subtype {
        v.insert("subtype".into(), json!(subtype));
    }
    v.insert("ts".into(), json!(m.ts));
    if !m.user.is_empty() {
        v.insert("user".into(), json!(m.user));
    }
    v.insert("text".into(), json!(m.text));
    v.insert("team".into(), json!(TEAM_ID));
    if let Some(edited) = &m.edited_ts {
        let mut e = Map::new();
        if !m.user.is_empty() {
            e.insert("user".into(), json!(m.user));
        }
        e.insert("ts".into(), json!(edited));
        v.insert("edited".into(), Value::Object(e));
    }
    if m.is_reply() {
        let parent_ts = m.thread_ts.clone().unwrap();
        v.insert("thread_ts".into(), json!(parent_ts));
        if let Some(parent) = channel.message(&parent_ts) {
            v.insert("parent_user_id".into(), json!(parent.user));
            if with_root && m.is_broadcast() {
                v.insert("root".into(), message_json(channel, parent, false));
            }
        }
    } else {
        let replies = channel.replies_of(&m.ts);
        if let Some(latest) = replies.last() {
            let mut users: Vec<&str> = Vec::new();
            for r in &replies {
                if !users.contains(&r.user.as_str()) {
                    users.push(&r.user);
                }
            }
            v.insert("thread_ts".into(), json!(m.ts));
            v.insert("reply_count".into(), json!(replies.len()));
            v.insert("reply_users_count".into(), json!(users.len()));
            v.insert("latest_reply".into(), json!(latest.ts));
            v.insert("reply_users".into(), json!(users));
            v.insert("is_locked".into(), json!(false));
            v.insert("subscribed".into(), json!(false));
        }
    }
    for (key, value) in &m.extra {
        if !SERVED_FIELDS.contains(&key.as_str()) {
            v.insert(key.clone(), value.clone());
        }
    }
    Value::Object(v)
}

/// The message fields [`message_json`] derives from the model: a [`Message::extra`] field of
/// one of these names is ignored.
pub const SERVED_FIELDS: &[&str] = &[
    "type",
    "subtype",
    "ts",
    "user",
    "text",
    "team",
    "edited",
    "thread_ts",
    "parent_user_id",
    "root",
    "reply_count",
    "reply_users_count",
    "latest_reply",
    "reply_users",
    "is_locked",
    "subscribed",
];

/// Whether `t` lies within `oldest`..`latest`: both ends excluded unless `inclusive`.
fn in_range(t: Ts, oldest: Option<Ts>, latest: Option<Ts>, inclusive: bool) -> bool {
    let after = oldest.is_none_or(|o| if inclusive { t >= o } else { t > o });
    let before = latest.is_none_or(|l| if inclusive { t <= l } else { t < l });
    after && before
}

/// The channel of a history/replies request: `channel_not_found` for an unknown (or removed)
/// id, then `not_in_channel` for a channel the bot was not invited to. An archived channel
/// stays readable.
fn readable_channel<'w>(
    workspace: &'w Workspace,
    params: &Params,
    options: &ServerOptions,
) -> Result<&'w Channel, Outcome> {
    let id = params.get("channel").map(String::as_str).unwrap_or("");
    let channel = workspace
        .channel_by_id(id)
        .ok_or_else(|| Outcome::error("channel_not_found"))?;
    if options.not_in_channel.iter().any(|c| c == id) {
        return Err(Outcome::error("not_in_channel"));
    }
    Ok(channel)
}

struct Window {
    oldest: Option<Ts>,
    latest: Option<Ts>,
    inclusive: bool,
    limit: usize,
    /// The ts the page starts at (included), from the cursor.
    from: Option<Ts>,
}

fn window_params(params: &Params, default_limit: usize, max: usize) -> Result<Window, Outcome> {
    let from = match cursor_param(params, "next_ts")? {
        None => None,
        Some(t) => Some(Ts::parse(&t).ok_or_else(|| Outcome::error("invalid_cursor"))?),
    };
    Ok(Window {
        oldest: ts_param(params, "oldest")?,
        latest: ts_param(params, "latest")?,
        inclusive: bool_param(params, "inclusive"),
        limit: limit_param(params, default_limit, max)?,
        from,
    })
}

/// `conversations.history`. Documented: top-level messages (thread parents, plain messages,
/// replies also sent to the channel; not other replies), newest first; `oldest` (default 0)
/// and `latest` (default now; here: no upper bound, so test messages "in the future" are
/// listed) exclusive unless `inclusive`; `limit` default 100, at most 999 (and `page_cap`);
/// `has_more` and `response_metadata.next_cursor` (`next_ts:<ts of the next, older, message>`)
/// while older messages in the range remain.
fn conversations_history(
    workspace: &Workspace,
    params: &Params,
    options: &ServerOptions,
) -> Outcome {
    let channel = match readable_channel(workspace, params, options) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let w = match window_params(params, 100, 999) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let mut listed: Vec<&Message> = channel
        .messages
        .iter()
        .filter(|m| m.is_top_level())
        .filter(|m| in_range(m.key(), w.oldest, w.latest, w.inclusive))
        .filter(|m| w.from.is_none_or(|f| m.key() <= f))
        .collect();
    listed.sort_by_key(|m| std::cmp::Reverse(m.key()));
    let size = page_size(w.limit, options.page_cap, options.short_pages);
    let has_more = listed.len() > size;
    let next = if has_more {
        encode_cursor("next_ts", &listed[size].ts)
    } else {
        String::new()
    };
    listed.truncate(size);
    let messages: Vec<Value> = listed
        .iter()
        .map(|m| message_json(channel, m, true))
        .collect();
    let n = messages.len();
    Outcome::ok_with(
        json!({
            "messages": messages,
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": next},
        }),
        n,
    )
}

/// `conversations.replies`. Documented: `channel` and `ts` required (`ts` of an existing
/// message, else `thread_not_found`; so for `channel_join`/`channel_leave` messages, which
/// cannot be threaded); the parent first, then replies oldest first ("The earliest messages in
/// the time range are returned first"); a message without replies returns alone; `limit`
/// (default 10 on api.slack.com's reference), `oldest`/`latest`/`inclusive` (here they filter
/// the replies, the parent is always included); cursor paging with `has_more`.
///
/// Chosen where the documentation is silent: the parent opens every page (or only the first,
/// with `replies_parent_every_page: false`) and counts toward the page's size (a page holds at
/// least one reply, so a 1-item page still advances); the cursor is `next_ts:<ts of the next
/// reply>`. Asked with the `ts` of a reply, the server answers that reply alone (as reported
/// in slackapi/bolt-python#783).
fn conversations_replies(
    workspace: &Workspace,
    params: &Params,
    options: &ServerOptions,
) -> Outcome {
    let channel = match readable_channel(workspace, params, options) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let w = match window_params(params, 10, 999) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let ts = params.get("ts").map(String::as_str).unwrap_or("");
    let Some(parent) = channel.message(ts) else {
        return Outcome::error("thread_not_found");
    };
    if matches!(
        parent.subtype.as_deref(),
        Some("channel_join" | "channel_leave")
    ) {
        return Outcome::error("thread_not_found");
    }
    if parent.is_reply() {
        let messages = vec![message_json(channel, parent, false)];
        return Outcome::ok_with(
            json!({"messages": messages, "has_more": false, "response_metadata": {"next_cursor": ""}}),
            1,
        );
    }
    let replies: Vec<&Message> = channel
        .replies_of(&parent.ts)
        .into_iter()
        .filter(|m| in_range(m.key(), w.oldest, w.latest, w.inclusive))
        .filter(|m| w.from.is_none_or(|f| m.key() >= f))
        .collect();
    let size = page_size(w.limit, options.page_cap, options.short_pages);
    let with_parent = w.from.is_none() || options.replies_parent_every_page;
    let slots = if with_parent {
        size.saturating_sub(1).max(1)
    } else {
        size
    };
    let has_more = replies.len() > slots;
    let next = if has_more {
        encode_cursor("next_ts", &replies[slots].ts)
    } else {
        String::new()
    };
    let mut messages = Vec::new();
    if with_parent {
        messages.push(message_json(channel, parent, false));
    }
    messages.extend(
        replies
            .iter()
            .take(slots)
            .map(|m| message_json(channel, m, false)),
    );
    let n = messages.len();
    Outcome::ok_with(
        json!({
            "messages": messages,
            "has_more": has_more,
            "response_metadata": {"next_cursor": next},
        }),
        n,
    )
}

// ------------------------------------------------------------------------------------------
// The export
// ------------------------------------------------------------------------------------------

impl Workspace {
    /// Writes the workspace into `dir` (created if missing) as an unzipped Slack workspace
    /// export holds it, for the `slack_export` source to read:
    ///
    /// - `users.json`: every user, as `users.list` serves a member.
    /// - `channels.json`: the public channels, archived ones included, as
    ///   `conversations.list` serves them; `groups.json` likewise for the private channels
    ///   (all of them, member or not, as an admin's export holds them), only if there are any.
    /// - `<channel name>/<YYYY-MM-DD>.json` per channel and UTC day holding messages: a JSON
    ///   array of every message of that day, replies included, oldest first, each as the
    ///   server serves it ([`message_json`]: a broadcast reply with `root`, as
    ///   `conversations.history` serves it and exports hold it). A channel without messages
    ///   has no folder (exports leave quiet channels out).
    ///
    /// Writing again into the same `dir` brings it up to date: a file is rewritten only if its
    /// content changed (so an unchanged channel's files keep their modification times, and a
    /// resumed run sees no change there), day files and folders left without messages are
    /// removed, and so is a folder of day files whose channel is no longer in the workspace.
    /// Other files in `dir` are left alone. Panics on an I/O error.
    pub fn write_export(&self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let users: Vec<Value> = self.users.iter().map(user_json).collect();
        write_if_changed(&dir.join("users.json"), &Value::Array(users));
        let listing = |private: bool| -> Vec<Value> {
            let mut channels: Vec<&Channel> = self
                .channels
                .iter()
                .filter(|c| c.is_private == private)
                .collect();
            channels.sort_by(|a, b| a.id.cmp(&b.id));
            channels.into_iter().map(channel_json).collect()
        };
        write_if_changed(&dir.join("channels.json"), &Value::Array(listing(false)));
        let groups = listing(true);
        let groups_path = dir.join("groups.json");
        if groups.is_empty() {
            remove_if_present(&groups_path);
        } else {
            write_if_changed(&groups_path, &Value::Array(groups));
        }

        let mut folders = std::collections::HashSet::new();
        for channel in &self.channels {
            assert!(
                folders.insert(channel.name.as_str()),
                "two channels named {:?}: an export's folders could not tell them apart",
                channel.name
            );
            let folder = dir.join(&channel.name);
            let mut days: std::collections::BTreeMap<String, Vec<&Message>> = Default::default();
            for m in &channel.messages {
                days.entry(utc_day(m.key())).or_default().push(m);
            }
            if !days.is_empty() {
                std::fs::create_dir_all(&folder)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", folder.display()));
            }
            for (day, messages) in &mut days {
                messages.sort_by_key(|m| m.key());
                let rendered: Vec<Value> = messages
                    .iter()
                    .map(|m| message_json(channel, m, true))
                    .collect();
                write_if_changed(&folder.join(format!("{day}.json")), &Value::Array(rendered));
            }
            let written: Vec<String> = days.keys().map(|d| format!("{d}.json")).collect();
            remove_stale_day_files(&folder, &written);
        }
        // Folders of channels no longer in the workspace (removed, or renamed).
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() && !folders.contains(name.as_str()) {
                remove_stale_day_files(&entry.path(), &[]);
            }
        }
    }
}

/// The UTC day of a ts, `YYYY-MM-DD`: the day file a message is exported in.
fn utc_day(t: Ts) -> String {
    let secs = i64::try_from(t.0).expect("ts within chrono's range");
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("ts within chrono's range")
        .format("%Y-%m-%d")
        .to_string()
}

/// Writes `value` as pretty JSON (as exports are) unless the file already holds exactly that.
fn write_if_changed(path: &std::path::Path, value: &Value) {
    let mut body = serde_json::to_vec_pretty(value).unwrap();
    body.push(b'\n');
    if std::fs::read(path).ok().as_deref() == Some(body.as_slice()) {
        return;
    }
    std::fs::write(path, body).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn remove_if_present(path: &std::path::Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", path.display()),
    }
}

/// Removes the day files (`YYYY-MM-DD.json`) of `folder` not named in `keep`, then the folder
/// itself if that left it empty. A missing folder is fine.
fn remove_stale_day_files(folder: &std::path::Path, keep: &[String]) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.map(Result::unwrap) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_day = name
            .strip_suffix(".json")
            .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
        if is_day && !keep.contains(&name) {
            remove_if_present(&entry.path());
        }
    }
    if std::fs::read_dir(folder).unwrap().next().is_none() {
        std::fs::remove_dir(folder)
            .unwrap_or_else(|e| panic!("cannot remove {}: {e}", folder.display()));
    }
}
