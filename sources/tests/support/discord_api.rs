//! A local Discord REST API v10 server for the `discord` source's tests, answering as
//! discord.com/developers/docs documents it (Rate Limits; Channel: Get Channel Messages, List
//! Public Archived Threads, List Private Archived Threads; Guild: Get Guild Channels, Get
//! Guild Roles, List Active Guild Threads; Message: the Message Content intent). Each
//! behaviour notes what it reproduces:
//!
//! - authentication by `Authorization: Bot <token>`; anything else answers 401
//!   `{"message": "401: Unauthorized", "code": 0}` (the documented error body), the message
//!   here also **echoing the header it was given** (a careless proxy: kass masks it anyway);
//! - `GET /guilds/{id}/channels`: every channel, threads not among them (documented);
//! - `GET /guilds/{id}/roles`;
//! - `GET /guilds/{id}/threads/active`: `{"threads", "members"}`, every active thread of the
//!   guild, of every channel;
//! - `GET /channels/{id}/threads/archived/public` and `/private`: `{"threads", "members",
//!   "has_more"}`, newest archived first, `before` an ISO 8601 time (archived before it),
//!   `limit`; the private listing answers 403 `Missing Permissions` (code 50013) where the
//!   bot lacks MANAGE_THREADS;
//! - `GET /channels/{id}/messages` (a channel or a thread): `limit` (1-100, default 50), one
//!   of `before` / `after` (snowflakes), newest first; 403 `Missing Access` (code 50001) for
//!   a channel the bot may not view, 404 `Unknown Channel` (code 10003) once deleted;
//! - messages carry `edited_timestamp` once edited; deleted messages, threads and channels
//!   simply are no longer answered (Discord lists no deletions);
//! - a bot without the Message Content intent gets `content`, `embeds` and `attachments`
//!   empty on every message a user wrote (not on its own, nor in DMs: documented);
//! - rate limits per bucket and major parameter: every answer carries `X-RateLimit-Limit`,
//!   `-Remaining`, `-Reset` (epoch seconds, float), `-Reset-After` (seconds, float) and
//!   `-Bucket` (one hash for routes sharing a bucket: here the two archived listings
//!   share one, as shared-bucket routes do); beyond the limit, 429 with
//!   `{"message", "retry_after" (float seconds), "global": false}`, `Retry-After` and
//!   `X-RateLimit-Scope: user`. A global limit per second over every route answers 429 with
//!   `"global": true`, `X-RateLimit-Global: true` and `X-RateLimit-Scope: global`. The
//!   windows are `rate_window.rs`'s fixed windows, per bucket and major parameter.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

#[path = "rate_window.rs"]
pub mod rate_window;

const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

#[derive(Debug, Clone)]
pub struct DMessage {
    pub id: u64,
    pub author: String,
    pub bot: bool,
    pub content: String,
    pub at: i64,
    pub edited: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DChannel {
    pub id: String,
    pub name: String,
    /// 0 text, 5 announcement, 15 forum, 16 media, 2 voice.
    pub kind: u8,
    /// The bot may not view it: 403.
    pub forbidden: bool,
}

#[derive(Debug, Clone)]
pub struct DThread {
    pub id: String,
    pub parent: String,
    pub name: String,
    pub private: bool,
    /// Unix seconds it was archived at; `None`: active.
    pub archived_at: Option<i64>,
}

/// One guild: channels, threads, messages by channel or thread id, and the bot's standing.
#[derive(Debug, Default)]
pub struct Guild {
    pub id: String,
    pub channels: BTreeMap<String, DChannel>,
    pub threads: BTreeMap<String, DThread>,
    pub messages: BTreeMap<String, BTreeMap<u64, DMessage>>,
    pub roles: BTreeMap<String, String>,
    /// The bot lacks the Message Content intent.
    pub no_content_intent: bool,
    /// The bot lacks MANAGE_THREADS: private archived threads are refused.
    pub no_manage_threads: bool,
    seq: u64,
}

impl Guild {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            ..Self::default()
        }
    }

    /// A snowflake made at `at` (unix seconds), unique and ordered like time.
    pub fn snowflake(&mut self, at: i64) -> u64 {
        self.seq += 1;
        (((at * 1000 - DISCORD_EPOCH_MS) as u64) << 22) + (self.seq & 0x3f_ffff)
    }

    pub fn add_channel(&mut self, name: &str, kind: u8) -> String {
        let id = self.snowflake(now() - 400 * 86_400).to_string();
        self.channels.insert(
            id.clone(),
            DChannel {
                id: id.clone(),
                name: name.to_string(),
                kind,
                forbidden: false,
            },
        );
        id
    }

    /// Posts a message in a channel or thread at `at`; returns its id.
    pub fn post(&mut self, container: &str, author: &str, content: &str, at: i64) -> u64 {
        let id = self.snowflake(at);
        self.messages
            .entry(container.to_string())
            .or_default()
            .insert(
                id,
                DMessage {
                    id,
                    author: author.to_string(),
                    bot: false,
                    content: content.to_string(),
                    at,
                    edited: None,
                },
            );
        id
    }

    /// Starts a thread (a forum post when `parent` is a forum) with a first message.
    pub fn thread(&mut self, parent: &str, name: &str, first: &str, at: i64) -> String {
        let id = self.snowflake(at).to_string();
        self.threads.insert(
            id.clone(),
            DThread {
                id: id.clone(),
                parent: parent.to_string(),
                name: name.to_string(),
                private: false,
                archived_at: None,
            },
        );
        self.post(&id, "u1", first, at);
        id
    }

    pub fn edit(&mut self, container: &str, id: u64, content: &str, at: i64) {
        if let Some(m) = self
            .messages
            .get_mut(container)
            .and_then(|ms| ms.get_mut(&id))
        {
            m.content = content.to_string();
            m.edited = Some(at);
        }
    }

    pub fn delete(&mut self, container: &str, id: u64) {
        if let Some(ms) = self.messages.get_mut(container) {
            ms.remove(&id);
        }
    }

    /// A channel renamed (its id stays).
    pub fn rename_channel(&mut self, id: &str, name: &str) {
        self.channels.get_mut(id).expect("the channel").name = name.to_string();
    }

    pub fn delete_thread(&mut self, id: &str) {
        self.threads.remove(id);
        self.messages.remove(id);
    }

    pub fn delete_channel(&mut self, id: &str) {
        self.channels.remove(id);
        self.messages.remove(id);
        let threads: Vec<String> = self
            .threads
            .values()
            .filter(|t| t.parent == id)
            .map(|t| t.id.clone())
            .collect();
        for t in threads {
            self.delete_thread(&t);
        }
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Default)]
struct Shared {
    guild: Guild,
    token: String,
    /// Per bucket and major parameter.
    window: Option<rate_window::RateWindow>,
    /// Over every route.
    global: Option<rate_window::RateWindow>,
    /// (route, major parameter) of every request, in order.
    log: Vec<(String, String)>,
    /// Epoch seconds of each request of `log`.
    times: Vec<f64>,
    global_refused: u64,
    /// Messages answered over the server's life.
    served_messages: u64,
}

type Server = Arc<Mutex<Shared>>;

pub struct DiscordServer {
    shared: Server,
    addr: SocketAddr,
}

impl DiscordServer {
    pub async fn start(guild: Guild, token: &str) -> Self {
        let shared: Server = Arc::new(Mutex::new(Shared {
            guild,
            token: token.to_string(),
            ..Shared::default()
        }));
        let app = Router::new()
            .route("/api/v10/guilds/{g}/channels", get(channels))
            .route("/api/v10/guilds/{g}/roles", get(roles))
            .route("/api/v10/guilds/{g}/threads/active", get(active))
            .route(
                "/api/v10/channels/{c}/threads/archived/{which}",
                get(archived),
            )
            .route("/api/v10/channels/{c}/messages", get(messages))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { shared, addr }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/api/v10", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Guild) -> R) -> R {
        f(&mut self.shared.lock().unwrap().guild)
    }

    pub fn log(&self) -> Vec<(String, String)> {
        self.shared.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        let mut s = self.shared.lock().unwrap();
        s.log.clear();
        s.times.clear();
    }

    /// Every request so far with its time (epoch seconds): (route, major parameter, at).
    pub fn timed_log(&self) -> Vec<(String, String, f64)> {
        let s = self.shared.lock().unwrap();
        s.log
            .iter()
            .zip(&s.times)
            .map(|((r, m), t)| (r.clone(), m.clone(), *t))
            .collect()
    }

    /// Messages answered so far.
    pub fn served_messages(&self) -> u64 {
        self.shared.lock().unwrap().served_messages
    }

    /// From now on each bucket and major parameter may take `limit` requests per
    /// `period_secs`, and the bot `global` requests per second over every route.
    pub fn rate_limits(&self, limit: u64, period_secs: u64, global: u64) {
        let mut s = self.shared.lock().unwrap();
        s.window = Some(rate_window::RateWindow::new(limit, period_secs));
        s.global = Some(rate_window::RateWindow::new(global, 1));
    }

    /// (admitted, refused) by the bucket windows, and refusals of the global limit.
    pub fn refusals(&self) -> (u64, u64, u64) {
        let s = self.shared.lock().unwrap();
        let (a, r) = s
            .window
            .as_ref()
            .map_or((0, 0), |w| (w.admitted, w.refused));
        (a, r, s.global_refused)
    }
}

/// The bucket hash of a route: routes sharing a bucket answer the same one.
fn bucket(route: &str) -> &'static str {
    match route {
        "messages" => "80c17d2f203122d936070c88c8d10f33",
        "archived" => "a0e3c1f3b7d2a9c8e1f0b2a3c4d5e6f7",
        "active" => "41f9cd5d28af77da04563bcb1d67fdfd",
        _ => "b6cc6c6e03d2d4f1ab5a5d3ff1bb3fe2",
    }
}

/// Discord's error body.
fn error(status: StatusCode, message: &str, code: u32) -> Response {
    (status, Json(json!({"message": message, "code": code}))).into_response()
}

fn query_of(uri: &Uri) -> BTreeMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn put(r: &mut Response, headers: &[(String, String)]) {
    for (name, value) in headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A 429 as Discord answers it: `retry_after` in float seconds, `global`, the scope.
fn too_many(retry_after: f64, global: bool, headers: &[(String, String)]) -> Response {
    let body = json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global});
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    put(&mut r, headers);
    let mut extra = vec![
        (
            "retry-after".to_string(),
            format!("{}", retry_after.ceil() as u64),
        ),
        (
            "x-ratelimit-scope".to_string(),
            if global { "global" } else { "user" }.to_string(),
        ),
    ];
    if global {
        extra.push(("x-ratelimit-global".to_string(), "true".to_string()));
    }
    put(&mut r, &extra);
    r
}

/// Logs the request, counts it (global, then bucket), checks the token: `Ok` with the
/// rate-limit headers to send, or the refusal.
#[allow(clippy::result_large_err)]
fn admit(
    shared: &Server,
    headers: &HeaderMap,
    route: &str,
    major: &str,
) -> Result<Vec<(String, String)>, Response> {
    let mut s = shared.lock().unwrap();
    s.log.push((route.to_string(), major.to_string()));
    s.times.push(epoch_secs());
    if let Some(global) = s.global.as_mut() {
        let count = global.count("global");
        if !count.allowed {
            let wait = (count.reset as f64 - epoch_secs()).max(0.001);
            s.global_refused += 1;
            return Err(too_many(wait, true, &[]));
        }
    }
    let bucket = bucket(route);
    let stated = match s.window.as_mut() {
        Some(window) => {
            let count = window.count(&format!("{bucket}:{major}"));
            let reset_after = (count.reset as f64 - epoch_secs()).max(0.001);
            let stated = vec![
                ("x-ratelimit-limit".to_string(), count.limit.to_string()),
                (
                    "x-ratelimit-remaining".to_string(),
                    count.remaining.to_string(),
                ),
                (
                    "x-ratelimit-reset".to_string(),
                    format!("{:.3}", count.reset as f64),
                ),
                (
                    "x-ratelimit-reset-after".to_string(),
                    format!("{reset_after:.3}"),
                ),
                ("x-ratelimit-bucket".to_string(), bucket.to_string()),
            ];
            if !count.allowed {
                return Err(too_many(reset_after, false, &stated));
            }
            stated
        }
        None => vec![
            ("x-ratelimit-limit".to_string(), "1000".to_string()),
            ("x-ratelimit-remaining".to_string(), "999".to_string()),
            ("x-ratelimit-reset-after".to_string(), "60.000".to_string()),
            ("x-ratelimit-bucket".to_string(), bucket.to_string()),
        ],
    };
    let expected = format!("Bot {}", s.token);
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given != expected {
        // Discord answers "401: Unauthorized"; this one also echoes the header it was given,
        // as a careless proxy would: kass must mask it anyway.
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            &format!("401: Unauthorized ({given})"),
            0,
        );
        put(&mut r, &stated);
        return Err(r);
    }
    Ok(stated)
}

fn ok(headers: &[(String, String)], body: Value) -> Response {
    let mut r = Json(body).into_response();
    put(&mut r, headers);
    r
}

fn iso(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

fn thread_json(g: &Guild, t: &DThread) -> Value {
    json!({
        "id": t.id, "type": if t.private { 12 } else { 11 }, "guild_id": g.id,
        "parent_id": t.parent, "name": t.name,
        "thread_metadata": {
            "archived": t.archived_at.is_some(),
            "archive_timestamp": iso(t.archived_at.unwrap_or(now())),
            "auto_archive_duration": 1440, "locked": false
        }
    })
}

async fn channels(State(s): State<Server>, Path(g): Path<String>, h: HeaderMap) -> Response {
    let stated = match admit(&s, &h, "guild_channels", &format!("guilds/{g}")) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let list: Vec<Value> = s
        .guild
        .channels
        .values()
        .map(|c| json!({"id": c.id, "type": c.kind, "guild_id": g, "name": c.name, "position": 0}))
        .collect();
    ok(&stated, Value::Array(list))
}

async fn roles(State(s): State<Server>, Path(g): Path<String>, h: HeaderMap) -> Response {
    let stated = match admit(&s, &h, "guild_roles", &format!("guilds/{g}")) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let list: Vec<Value> = s
        .guild
        .roles
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    ok(&stated, Value::Array(list))
}

async fn active(State(s): State<Server>, Path(g): Path<String>, h: HeaderMap) -> Response {
    let stated = match admit(&s, &h, "active", &format!("guilds/{g}")) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let list: Vec<Value> = s
        .guild
        .threads
        .values()
        .filter(|t| t.archived_at.is_none())
        .map(|t| thread_json(&s.guild, t))
        .collect();
    ok(&stated, json!({"threads": list, "members": []}))
}

async fn archived(
    State(s): State<Server>,
    Path((c, which)): Path<(String, String)>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    let stated = match admit(&s, &h, "archived", &format!("channels/{c}")) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let private = which == "private";
    if private && s.guild.no_manage_threads {
        return error(StatusCode::FORBIDDEN, "Missing Permissions", 50013);
    }
    if let Some(r) = channel_refusal(&s.guild, &c) {
        return r;
    }
    let q = query_of(&uri);
    let before = q
        .get("before")
        .and_then(|b| chrono::DateTime::parse_from_rfc3339(b).ok())
        .map(|b| b.timestamp());
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    let mut list: Vec<&DThread> = s
        .guild
        .threads
        .values()
        .filter(|t| t.parent == c && t.private == private)
        .filter(|t| {
            t.archived_at
                .is_some_and(|at| before.is_none_or(|b| at < b))
        })
        .collect();
    list.sort_by_key(|t| std::cmp::Reverse(t.archived_at));
    let has_more = list.len() > limit;
    let page: Vec<Value> = list
        .into_iter()
        .take(limit)
        .map(|t| thread_json(&s.guild, t))
        .collect();
    ok(
        &stated,
        json!({"threads": page, "members": [], "has_more": has_more}),
    )
}

/// 404 for a channel or thread that does not exist (any more), 403 for one the bot may not
/// view.
fn channel_refusal(g: &Guild, id: &str) -> Option<Response> {
    match (g.channels.get(id), g.threads.get(id)) {
        (Some(c), _) if c.forbidden => Some(error(StatusCode::FORBIDDEN, "Missing Access", 50001)),
        (Some(_), _) | (None, Some(_)) => None,
        (None, None) => Some(error(StatusCode::NOT_FOUND, "Unknown Channel", 10003)),
    }
}

async fn messages(
    State(s): State<Server>,
    Path(c): Path<String>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    let stated = match admit(&s, &h, "messages", &format!("channels/{c}")) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let mut s = s.lock().unwrap();
    if let Some(r) = channel_refusal(&s.guild, &c) {
        return r;
    }
    let q = query_of(&uri);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(50)
        .clamp(1, 100);
    let before: Option<u64> = q.get("before").and_then(|b| b.parse().ok());
    let after: Option<u64> = q.get("after").and_then(|b| b.parse().ok());
    let empty = BTreeMap::new();
    let all = s.guild.messages.get(&c).unwrap_or(&empty);
    let chosen: Vec<&DMessage> = match after {
        // `after`: the messages right after it, still answered newest first.
        Some(after) => {
            let mut v: Vec<&DMessage> =
                all.range(after + 1..).map(|(_, m)| m).take(limit).collect();
            v.reverse();
            v
        }
        None => all
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .map(|(_, m)| m)
            .take(limit)
            .collect(),
    };
    let hidden = s.guild.no_content_intent;
    let list: Vec<Value> = chosen
        .into_iter()
        .map(|m| {
            let content = if hidden && !m.bot { "" } else { m.content.as_str() };
            json!({
                "id": m.id.to_string(), "type": 0, "channel_id": c,
                "author": {"id": m.author, "username": m.author, "global_name": format!("User {}", m.author), "bot": m.bot},
                "content": content, "timestamp": iso(m.at),
                "edited_timestamp": m.edited.map(iso),
                "attachments": [], "embeds": [], "mentions": [], "pinned": false, "tts": false
            })
        })
        .collect();
    s.served_messages += list.len() as u64;
    ok(&stated, Value::Array(list))
}
