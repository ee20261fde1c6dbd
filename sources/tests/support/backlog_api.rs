//! A local Backlog API v2 server for the `backlog` source's tests, answering as Nulab
//! documents (developer.nulab.com/docs/backlog/api/2/: Get Project List, Get Issue List, Get
//! Comment List, Get Project Recent Updates, Get Wiki Page List, Get Wiki Page, Get Document
//! List, Get Document; Rate Limit; Error Response). Each behaviour notes what it reproduces:
//!
//! - authentication by the `apiKey` query parameter; a wrong key answers 401 with Backlog's
//!   error body `{"errors": [{"message", "code": 11, "moreInfo"}]}`, whose message here
//!   **echoes the key it was given** (what a careless server or proxy does: the test proves
//!   kass masks it anyway);
//! - `GET /projects` (the projects the key can read), `GET /projects/:key` with 403 for a
//!   project the key may not read (`forbidden`, code 11, the key echoed too) and 404
//!   `No project.` (code 6) for an unknown one; a project carries `textFormattingRule`;
//! - `GET /issues` filtered by `projectId[]` and `updatedSince` (a date, `yyyy-MM-dd`:
//!   issues updated on or after that day), ordered by `sort=updated` and `order`, paged by
//!   `offset` and `count` (default 20, at most 100), with no total and no next-page marker;
//! - `GET /issues/:keyOrId` (404 `No issue.` once deleted);
//! - `GET /issues/:key/comments` ordered by `order` (default `desc`), paged by `minId` /
//!   `maxId` (exclusive bounds here; the source is written for either) and `count` (at most
//!   100); a change-log-only comment has empty `content`;
//! - a new comment or an edit of the issue moves its `updated`; an edited or deleted comment
//!   does not move it here (the API docs do not say it does): it shows only as an "issue
//!   updated" activity, which is what the source relies on;
//! - `GET /projects/:key/activities` with `activityTypeId[]`, `minId`, `maxId`, `count`,
//!   `order` (default `desc`): 1 issue created, 2 updated, 3 commented, 4 deleted, 5 wiki
//!   created, 6 wiki updated, 7 wiki deleted; `content.id` and `content.key_id` name the issue;
//! - `GET /wikis?projectIdOrKey=` lists the pages without content, `GET /wikis/:id` one page
//!   with it; `GET /documents?projectId[]=` (offset paged) and `GET /documents/:id` (`plain`);
//! - `X-RateLimit-Limit`, `-Remaining` and `-Reset` (epoch seconds) on every answer; with
//!   [`BacklogServer::rate_window`], a real window per key and request type (search: the
//!   issue listing; read: the other GETs) from `rate_window.rs`, and 429 with Backlog's error
//!   body beyond it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

#[path = "rate_window.rs"]
pub mod rate_window;

/// When the server's clock starts: the real time the process started, so the source's own
/// clock (which decides `updatedSince`) and the server's agree as they would in life.
fn start() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(|| chrono::Utc::now().timestamp())
}

#[derive(Debug, Clone)]
pub struct BComment {
    pub id: u64,
    pub content: String,
    pub author: String,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone)]
pub struct BIssue {
    pub id: u64,
    pub key_id: u64,
    pub summary: String,
    pub description: String,
    pub status: String,
    pub created: i64,
    pub updated: i64,
    pub comments: Vec<BComment>,
}

#[derive(Debug, Clone)]
pub struct BPage {
    pub name: String,
    pub content: String,
    pub updated: i64,
}

#[derive(Debug, Clone, Default)]
pub struct BProject {
    pub id: u64,
    pub key: String,
    /// `markdown` or `backlog`.
    pub rule: String,
    pub issues: BTreeMap<u64, BIssue>,
    pub wikis: BTreeMap<u64, BPage>,
    pub documents: BTreeMap<String, BPage>,
}

#[derive(Debug, Clone)]
pub struct BActivity {
    pub id: u64,
    pub project: String,
    pub kind: u32,
    pub content: Value,
}

/// The space: projects, their activity, and a clock that only moves forward.
#[derive(Debug, Default)]
pub struct Space {
    pub projects: Vec<BProject>,
    /// Project keys the key may not read (403).
    pub forbidden: Vec<String>,
    pub activities: Vec<BActivity>,
    clock: i64,
    next_id: u64,
}

impl Space {
    /// Every change is a minute later; ids come from one counter (Backlog's are unique).
    fn tick(&mut self) -> i64 {
        self.clock += 1;
        start() + self.clock * 60
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Moves the clock by `seconds` (back, for history made long ago).
    pub fn advance(&mut self, seconds: i64) {
        self.clock += seconds / 60;
    }

    /// Moves the clock to the real time now, if it is behind (changes made after history
    /// written in the past happen now).
    pub fn catch_up(&mut self) {
        let now = (chrono::Utc::now().timestamp() - start()) / 60;
        self.clock = self.clock.max(now);
    }

    fn log(&mut self, project: &str, kind: u32, content: Value) {
        let id = self.id();
        self.activities.push(BActivity {
            id,
            project: project.to_string(),
            kind,
            content,
        });
    }

    pub fn add_project(&mut self, key: &str, rule: &str) {
        let id = self.id();
        self.projects.push(BProject {
            id,
            key: key.to_string(),
            rule: rule.to_string(),
            ..BProject::default()
        });
    }

    pub fn project_mut(&mut self, key: &str) -> &mut BProject {
        self.projects
            .iter_mut()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("no project {key}"))
    }

    fn issue_mut(&mut self, key: &str, n: u64) -> &mut BIssue {
        self.project_mut(key).issues.get_mut(&n).expect("the issue")
    }

    /// A new issue; returns its number (`keyId`).
    pub fn open(&mut self, key: &str, summary: &str, description: &str) -> u64 {
        let at = self.tick();
        let id = self.id();
        let project = self.project_mut(key);
        let n = project.issues.keys().max().copied().unwrap_or(0) + 1;
        project.issues.insert(
            n,
            BIssue {
                id,
                key_id: n,
                summary: summary.to_string(),
                description: description.to_string(),
                status: "Open".to_string(),
                created: at,
                updated: at,
                comments: Vec::new(),
            },
        );
        self.log(key, 1, json!({"id": id, "key_id": n, "summary": summary}));
        n
    }

    /// A comment (empty `content`: a change-log-only one); moves the issue's `updated`.
    pub fn comment(&mut self, key: &str, n: u64, author: &str, content: &str) -> u64 {
        let at = self.tick();
        let cid = self.id();
        let issue = self.issue_mut(key, n);
        issue.updated = at;
        issue.comments.push(BComment {
            id: cid,
            content: content.to_string(),
            author: author.to_string(),
            created: at,
            updated: at,
        });
        let id = issue.id;
        self.log(
            key,
            3,
            json!({"id": id, "key_id": n, "comment": {"id": cid, "content": content}}),
        );
        cid
    }

    /// Edits a comment: the issue's `updated` stays; an "issue updated" activity says so.
    pub fn edit_comment(&mut self, key: &str, n: u64, cid: u64, content: &str) {
        let at = self.tick();
        let issue = self.issue_mut(key, n);
        let id = issue.id;
        if let Some(c) = issue.comments.iter_mut().find(|c| c.id == cid) {
            c.content = content.to_string();
            c.updated = at;
        }
        self.log(
            key,
            2,
            json!({"id": id, "key_id": n, "comment": {"id": cid}}),
        );
    }

    /// Deletes a comment: as [`Self::edit_comment`].
    pub fn delete_comment(&mut self, key: &str, n: u64, cid: u64) {
        self.tick();
        let issue = self.issue_mut(key, n);
        let id = issue.id;
        issue.comments.retain(|c| c.id != cid);
        self.log(
            key,
            2,
            json!({"id": id, "key_id": n, "comment": {"id": cid}}),
        );
    }

    /// Closes an issue (an edit of its fields): moves `updated`.
    pub fn close(&mut self, key: &str, n: u64) {
        let at = self.tick();
        let issue = self.issue_mut(key, n);
        issue.status = "Closed".to_string();
        issue.updated = at;
        let id = issue.id;
        self.log(
            key,
            2,
            json!({"id": id, "key_id": n, "changes": [{"field": "status"}]}),
        );
    }

    pub fn delete(&mut self, key: &str, n: u64) {
        self.tick();
        if let Some(issue) = self.project_mut(key).issues.remove(&n) {
            self.log(
                key,
                4,
                json!({"id": issue.id, "key_id": n, "summary": issue.summary}),
            );
        }
    }

    /// Creates or edits a wiki page; returns its id.
    pub fn write_wiki(&mut self, key: &str, name: &str, content: &str) -> u64 {
        let at = self.tick();
        let existing = self
            .project_mut(key)
            .wikis
            .iter()
            .find(|(_, p)| p.name == name)
            .map(|(id, _)| *id);
        let (id, kind) = match existing {
            Some(id) => (id, 6),
            None => (self.id(), 5),
        };
        self.project_mut(key).wikis.insert(
            id,
            BPage {
                name: name.to_string(),
                content: content.to_string(),
                updated: at,
            },
        );
        self.log(key, kind, json!({"id": id, "name": name}));
        id
    }

    pub fn delete_wiki(&mut self, key: &str, id: u64) {
        self.tick();
        if let Some(page) = self.project_mut(key).wikis.remove(&id) {
            self.log(key, 7, json!({"id": id, "name": page.name}));
        }
    }

    /// Creates or edits a document (no activity: documents are reconciled by listing).
    pub fn write_document(&mut self, key: &str, id: &str, title: &str, plain: &str) {
        let at = self.tick();
        self.project_mut(key).documents.insert(
            id.to_string(),
            BPage {
                name: title.to_string(),
                content: plain.to_string(),
                updated: at,
            },
        );
    }

    pub fn delete_document(&mut self, key: &str, id: &str) {
        self.tick();
        self.project_mut(key).documents.remove(id);
    }
}

#[derive(Default)]
struct Shared {
    space: Space,
    key: String,
    window: Option<rate_window::RateWindow>,
    /// (route, path) of every request, in order.
    log: Vec<(String, String)>,
}

type Server = Arc<Mutex<Shared>>;

pub struct BacklogServer {
    shared: Server,
    addr: SocketAddr,
}

impl BacklogServer {
    pub async fn start(space: Space, key: &str) -> Self {
        let shared: Server = Arc::new(Mutex::new(Shared {
            space,
            key: key.to_string(),
            ..Shared::default()
        }));
        let app = Router::new()
            .route("/api/v2/projects", get(projects))
            .route("/api/v2/projects/{key}", get(project))
            .route("/api/v2/projects/{key}/activities", get(activities))
            .route("/api/v2/issues", get(issues))
            .route("/api/v2/issues/{key}", get(issue))
            .route("/api/v2/issues/{key}/comments", get(comments))
            .route("/api/v2/wikis", get(wikis))
            .route("/api/v2/wikis/{id}", get(wiki))
            .route("/api/v2/documents", get(documents))
            .route("/api/v2/documents/{id}", get(document))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { shared, addr }
    }

    /// The source's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Space) -> R) -> R {
        f(&mut self.shared.lock().unwrap().space)
    }

    /// Every request so far: (route, path).
    pub fn log(&self) -> Vec<(String, String)> {
        self.shared.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.shared.lock().unwrap().log.clear();
    }

    /// From now on each key may make `limit` requests of each type per `period_secs`.
    pub fn rate_window(&self, limit: u64, period_secs: u64) {
        self.shared.lock().unwrap().window = Some(rate_window::RateWindow::new(limit, period_secs));
    }

    /// Another program using the same key spends what is left of its window of request
    /// type `kind` (`read`, `search`) now: the source's next request of that type is refused
    /// with 429, `X-RateLimit-Remaining: 0` and the reset to come, without warning.
    pub fn spend_window(&self, kind: &str) {
        let mut s = self.shared.lock().unwrap();
        let key = format!("{}:{kind}", s.key);
        let window = s
            .window
            .as_mut()
            .expect("a rate window: call rate_window first");
        while window.count(&key).remaining > 0 {}
    }

    /// Answers let through and refused (429) by the window so far.
    pub fn window_counts(&self) -> (u64, u64) {
        let s = self.shared.lock().unwrap();
        s.window
            .as_ref()
            .map_or((0, 0), |w| (w.admitted, w.refused))
    }
}

/// Backlog's error body.
fn error(status: StatusCode, message: &str, code: u32) -> Response {
    let body = json!({"errors": [{"message": message, "code": code, "moreInfo": ""}]});
    (status, Json(body)).into_response()
}

fn query_of(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn params<'a>(query: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Logs the request, counts it in the window, checks the key: `Ok` with the rate-limit
/// headers to send, or the refusal.
#[allow(clippy::result_large_err)]
fn admit(shared: &Server, uri: &Uri, route: &str) -> Result<Vec<(String, String)>, Response> {
    let mut s = shared.lock().unwrap();
    let path = uri.path().trim_start_matches("/api/v2/").to_string();
    s.log.push((route.to_string(), path));
    let query = query_of(uri);
    let key = param(&query, "apiKey").unwrap_or("").to_string();
    let kind = if route == "issues" { "search" } else { "read" };
    let headers = match s.window.as_mut() {
        Some(window) => {
            let count = window.count(&format!("{key}:{kind}"));
            let headers = count.headers("x-ratelimit-");
            if !count.allowed {
                let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests.", 24);
                put(&mut r, &headers);
                return Err(r);
            }
            headers
        }
        None => vec![
            ("x-ratelimit-limit".to_string(), "600".to_string()),
            ("x-ratelimit-remaining".to_string(), "599".to_string()),
            ("x-ratelimit-reset".to_string(), "1700000060".to_string()),
        ],
    };
    if key != s.key {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            &format!("Authentication failure. apiKey={key}"),
            11,
        );
        put(&mut r, &headers);
        return Err(r);
    }
    Ok(headers)
}

fn put(r: &mut Response, headers: &[(String, String)]) {
    for (name, value) in headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
}

fn ok(headers: &[(String, String)], body: Value) -> Response {
    let mut r = Json(body).into_response();
    put(&mut r, headers);
    r
}

fn time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn project_json(p: &BProject) -> Value {
    json!({"id": p.id, "projectKey": p.key, "name": format!("{} project", p.key),
           "textFormattingRule": p.rule, "archived": false})
}

fn user(name: &str) -> Value {
    json!({"id": 1, "userId": name, "name": name})
}

fn issue_json(p: &BProject, i: &BIssue) -> Value {
    json!({
        "id": i.id, "projectId": p.id, "issueKey": format!("{}-{}", p.key, i.key_id),
        "keyId": i.key_id, "summary": i.summary, "description": i.description,
        "issueType": {"id": 2, "name": "Task"}, "status": {"id": 1, "name": i.status},
        "priority": {"id": 3, "name": "Normal"}, "assignee": user("eguchi"),
        "category": [{"id": 1, "name": "backend"}], "milestone": [],
        "createdUser": user("eguchi"), "created": time(i.created), "updated": time(i.updated),
    })
}

/// The project a key or id names, unless the key may not read it.
#[allow(clippy::result_large_err)]
fn readable<'a>(
    s: &'a Shared,
    key_or_id: &str,
    headers: &[(String, String)],
) -> Result<&'a BProject, Response> {
    if s.space.forbidden.iter().any(|k| k == key_or_id) {
        let mut r = error(
            StatusCode::FORBIDDEN,
            &format!("No permission. apiKey={}", s.key),
            11,
        );
        put(&mut r, headers);
        return Err(r);
    }
    s.space
        .projects
        .iter()
        .find(|p| p.key == key_or_id || p.id.to_string() == key_or_id)
        .ok_or_else(|| {
            let mut r = error(StatusCode::NOT_FOUND, "No project.", 6);
            put(&mut r, headers);
            r
        })
}

/// `offset`/`count` paging (count default 20, at most 100).
fn offset_page(query: &[(String, String)], items: Vec<Value>) -> Vec<Value> {
    let offset: usize = param(query, "offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let count: usize = param(query, "count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
        .min(100);
    items.into_iter().skip(offset).take(count).collect()
}

/// `minId`/`maxId`/`order`/`count` paging over items with ids, ascending by id.
fn id_page(query: &[(String, String)], mut items: Vec<(u64, Value)>) -> Vec<Value> {
    let min: Option<u64> = param(query, "minId").and_then(|m| m.parse().ok());
    let max: Option<u64> = param(query, "maxId").and_then(|m| m.parse().ok());
    let count: usize = param(query, "count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
        .min(100);
    items.retain(|(id, _)| min.is_none_or(|m| *id > m) && max.is_none_or(|m| *id < m));
    items.sort_by_key(|(id, _)| *id);
    if param(query, "order") != Some("asc") {
        items.reverse();
    }
    items.into_iter().take(count).map(|(_, v)| v).collect()
}

async fn projects(State(s): State<Server>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "projects") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let list: Vec<Value> = s
        .space
        .projects
        .iter()
        .filter(|p| !s.space.forbidden.contains(&p.key))
        .map(project_json)
        .collect();
    ok(&headers, json!(list))
}

async fn project(State(s): State<Server>, Path(key): Path<String>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "project") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    match readable(&s, &key, &headers) {
        Ok(p) => ok(&headers, project_json(p)),
        Err(r) => r,
    }
}

async fn activities(State(s): State<Server>, Path(key): Path<String>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "activities") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let p = match readable(&s, &key, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let query = query_of(&uri);
    let types: Vec<u32> = params(&query, "activityTypeId[]")
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    let items: Vec<(u64, Value)> = s
        .space
        .activities
        .iter()
        .filter(|a| a.project == p.key && (types.is_empty() || types.contains(&a.kind)))
        .map(|a| {
            (a.id, json!({"id": a.id, "type": a.kind, "project": project_json(p), "content": a.content}))
        })
        .collect();
    ok(&headers, json!(id_page(&query, items)))
}

async fn issues(State(s): State<Server>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "issues") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let query = query_of(&uri);
    let ids = params(&query, "projectId[]");
    let since = param(&query, "updatedSince").map(|d| {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .expect("updatedSince is yyyy-MM-dd")
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    });
    let mut found: Vec<(&BProject, &BIssue)> = s
        .space
        .projects
        .iter()
        .filter(|p| ids.is_empty() || ids.contains(&p.id.to_string().as_str()))
        .flat_map(|p| p.issues.values().map(move |i| (p, i)))
        .filter(|(_, i)| since.is_none_or(|t| i.updated >= t))
        .collect();
    assert_eq!(
        param(&query, "sort"),
        Some("updated"),
        "the source sorts by updated"
    );
    found.sort_by_key(|(_, i)| (i.updated, i.id));
    if param(&query, "order") != Some("asc") {
        found.reverse();
    }
    let items = found.into_iter().map(|(p, i)| issue_json(p, i)).collect();
    ok(&headers, json!(offset_page(&query, items)))
}

fn find_issue<'a>(s: &'a Shared, key: &str) -> Option<(&'a BProject, &'a BIssue)> {
    let (project, n) = key.rsplit_once('-')?;
    let p = s.space.projects.iter().find(|p| p.key == project)?;
    Some((p, p.issues.get(&n.parse().ok()?)?))
}

async fn issue(State(s): State<Server>, Path(key): Path<String>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "issue") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    match find_issue(&s, &key) {
        Some((p, i)) => ok(&headers, issue_json(p, i)),
        None => error(StatusCode::NOT_FOUND, "No issue.", 6),
    }
}

async fn comments(State(s): State<Server>, Path(key): Path<String>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "issue_comments") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let Some((_, i)) = find_issue(&s, &key) else {
        return error(StatusCode::NOT_FOUND, "No issue.", 6);
    };
    let items = i
        .comments
        .iter()
        .map(|c| {
            let changes = if c.content.is_empty() { json!([{"field": "status", "newValue": "Closed"}]) } else { json!([]) };
            (c.id, json!({"id": c.id, "content": c.content, "changeLog": changes,
                           "createdUser": user(&c.author), "created": time(c.created), "updated": time(c.updated)}))
        })
        .collect();
    ok(&headers, json!(id_page(&query_of(&uri), items)))
}

async fn wikis(State(s): State<Server>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "wikis") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let query = query_of(&uri);
    let p = match readable(&s, param(&query, "projectIdOrKey").unwrap_or(""), &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let list: Vec<Value> = p
        .wikis
        .iter()
        .map(|(id, w)| json!({"id": id, "projectId": p.id, "name": w.name, "updated": time(w.updated)}))
        .collect();
    ok(&headers, json!(list))
}

async fn wiki(State(s): State<Server>, Path(id): Path<u64>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "wiki") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    match s
        .space
        .projects
        .iter()
        .find_map(|p| p.wikis.get(&id).map(|w| (p, w)))
    {
        Some((p, w)) => ok(
            &headers,
            json!({"id": id, "projectId": p.id, "name": w.name, "content": w.content, "updated": time(w.updated)}),
        ),
        None => error(StatusCode::NOT_FOUND, "No wiki.", 6),
    }
}

async fn documents(State(s): State<Server>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "documents") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    let query = query_of(&uri);
    let ids = params(&query, "projectId[]");
    let items: Vec<Value> = s
        .space
        .projects
        .iter()
        .filter(|p| ids.contains(&p.id.to_string().as_str()))
        .flat_map(|p| p.documents.iter().map(move |(id, d)| json!({"id": id, "projectId": p.id, "title": d.name, "updated": time(d.updated)})))
        .collect();
    ok(&headers, json!(offset_page(&query, items)))
}

async fn document(State(s): State<Server>, Path(id): Path<String>, uri: Uri) -> Response {
    let headers = match admit(&s, &uri, "document") {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = s.lock().unwrap();
    match s
        .space
        .projects
        .iter()
        .find_map(|p| p.documents.get(&id).map(|d| (p, d)))
    {
        Some((p, d)) => ok(
            &headers,
            json!({"id": id, "projectId": p.id, "title": d.name, "plain": d.content, "updated": time(d.updated)}),
        ),
        None => error(StatusCode::NOT_FOUND, "No document.", 6),
    }
}
