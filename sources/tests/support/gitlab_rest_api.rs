//! A local GitLab REST API v4 server for the `gitlab` source's tests, answering as GitLab
//! documents (https://docs.gitlab.com/api/rest/, /api/issues/, /api/merge_requests/,
//! /api/notes/). Each behaviour notes the documented behaviour it reproduces:
//!
//! - authentication by the `PRIVATE-TOKEN` header; a missing or wrong token answers 401
//!   `{"message": "401 Unauthorized"}` (REST API: authentication);
//! - `GET /projects/:id` by numeric id or URL-encoded path (`group%2Fapp`), 404
//!   `{"message": "404 Project Not Found"}` for an unknown project, 403 for one the token may
//!   not read (a project listed in `forbidden`); a project carries `web_url`, `archived` and
//!   `default_branch` (`null` for an empty repository) (Projects API);
//! - `GET /groups/:id/projects` by id or URL-encoded path: the group's own projects, with
//!   `include_subgroups=true` those of every subgroup too; archived projects included unless
//!   `archived=false`; `order_by=id`, `sort`; offset-paged as below; 404
//!   `{"message": "404 Group Not Found"}` (Groups API: list a group's projects);
//! - `GET /projects/:id/wikis`: every page (`slug`, `title`, `format`, `encoding`), `content`
//!   only with `with_content=1`; not paginated (Project wikis API: list wiki pages);
//! - `GET /projects/:id/repository/commits/:ref` for a branch name or a commit id, 404
//!   `{"message": "404 Commit Not Found"}` (Commits API: get a single commit);
//! - `GET /projects/:id/repository/tree` at `ref` (a branch or commit id, default the default
//!   branch), entries `{id, name, type: tree|blob, path, mode}` ordered by path; `recursive`
//!   walks subdirectories; `pagination=keyset` pages by an opaque `page_token` (the position
//!   after the page's last entry), naming the next page only in `Link: rel="next"` and sending
//!   no `x-next-page` or `x-total`; without it, offset pages (Repositories API: list
//!   repository tree; REST API: keyset-based pagination);
//! - `GET /projects/:id/repository/blobs/:sha/raw`: the blob's bytes as they are, 404
//!   `{"message": "404 Blob Not Found"}` (Repositories API: raw blob content);
//! - project issues with `pagination=keyset` paged by an opaque `cursor` in `Link: rel="next"`
//!   alone (no page numbers, no totals); merge requests, which do not offer it, by offset;
//! - issue and merge request listings ordered by `order_by` (`created_at` default,
//!   `updated_at`) and `sort` (`desc` default), filtered by `updated_after`, offset-paged by
//!   `page`/`per_page` (default 20, at most 100) with `x-page`, `x-per-page`, `x-next-page`
//!   (empty on the last page) and a `Link` header with `rel="next"`; `x-total` and
//!   `x-total-pages` only up to 10,000 records (REST API: pagination);
//! - `user_notes_count` counts the human (non-system) notes;
//! - a note created or edited touches its issue's `updated_at`; a deleted note does NOT (what
//!   GitLab does, and why the source compares `user_notes_count`);
//! - notes listed with `sort`/`order_by`, system notes (`"system": true`) among them; merge
//!   request diff notes carry a `position` with `new_path` and `new_line`;
//! - `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` on every answer
//!   (gitlab.com rate limits), and 429 with `Retry-After` when a storm is switched on;
//! - with [`GitlabServer::rate_window`], a real per-token window ([`rate_window`]): every
//!   answer's `RateLimit-Limit/-Remaining/-Reset/-ResetTime` state the true count (gitlab.com
//!   documents them "for all API requests"), and beyond the limit a 429 with `Retry-After`,
//!   with the same headers or, switched, without them (gitlab.com sometimes sends none,
//!   gitlab-org/gitlab#365728). Without a window the headers are fixed figures.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct FakeNote {
    pub id: u64,
    pub body: String,
    pub author: String,
    pub system: bool,
    pub created_at: i64,
    /// A merge request diff note: (file, line).
    pub position: Option<(String, u64)>,
}

#[derive(Debug, Clone)]
pub struct FakeIssue {
    pub iid: u64,
    pub title: String,
    pub description: String,
    pub state: String,
    pub labels: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub notes: Vec<FakeNote>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeProject {
    pub id: u64,
    pub path: String,
    pub archived: bool,
    pub issues: BTreeMap<u64, FakeIssue>,
    pub merge_requests: BTreeMap<u64, FakeIssue>,
    /// Slug -> page.
    pub wiki: BTreeMap<String, FakeWikiPage>,
    pub repo: FakeRepo,
}

#[derive(Debug, Clone)]
pub struct FakeWikiPage {
    pub title: String,
    pub format: String,
    pub content: String,
}

/// A repository: branches naming commits, each commit a whole tree (path -> blob id), blobs
/// by id (the SHA-256 of their bytes here; git's SHA-1 in GitLab: either changes exactly when
/// the content does).
#[derive(Debug, Clone, Default)]
pub struct FakeRepo {
    pub default_branch: Option<String>,
    pub branches: BTreeMap<String, String>,
    pub commits: BTreeMap<String, BTreeMap<String, String>>,
    pub blobs: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct FakeGroup {
    pub id: u64,
    pub path: String,
}

/// The instance: groups, projects, and a clock that only moves forward (every change is later).
#[derive(Debug, Default)]
pub struct Instance {
    pub groups: Vec<FakeGroup>,
    pub projects: Vec<FakeProject>,
    /// Project paths the token may not read (403).
    pub forbidden: Vec<String>,
    clock: i64,
    next_note: u64,
}

impl Instance {
    fn tick(&mut self) -> i64 {
        self.clock += 1;
        1_700_000_000 + self.clock * 60
    }

    pub fn add_project(&mut self, id: u64, path: &str) {
        self.projects.push(FakeProject {
            id,
            path: path.to_string(),
            ..FakeProject::default()
        });
    }

    pub fn project_mut(&mut self, path: &str) -> &mut FakeProject {
        self.projects
            .iter_mut()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no project {path}"))
    }

    fn items(&mut self, path: &str, mr: bool) -> &mut BTreeMap<u64, FakeIssue> {
        let project = self.project_mut(path);
        if mr {
            &mut project.merge_requests
        } else {
            &mut project.issues
        }
    }

    /// A new issue (or merge request); returns its iid.
    pub fn open(&mut self, path: &str, mr: bool, title: &str, description: &str) -> u64 {
        let at = self.tick();
        let items = self.items(path, mr);
        let iid = items.keys().max().copied().unwrap_or(0) + 1;
        items.insert(
            iid,
            FakeIssue {
                iid,
                title: title.to_string(),
                description: description.to_string(),
                state: "opened".to_string(),
                labels: Vec::new(),
                created_at: at,
                updated_at: at,
                notes: Vec::new(),
            },
        );
        iid
    }

    /// A note: touches the issue's `updated_at`, as GitLab does.
    pub fn comment(&mut self, path: &str, mr: bool, iid: u64, author: &str, body: &str) -> u64 {
        self.note(path, mr, iid, author, body, false, None)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn note(
        &mut self,
        path: &str,
        mr: bool,
        iid: u64,
        author: &str,
        body: &str,
        system: bool,
        position: Option<(String, u64)>,
    ) -> u64 {
        let at = self.tick();
        self.next_note += 1;
        let id = self.next_note;
        let issue = self.items(path, mr).get_mut(&iid).expect("the issue");
        issue.notes.push(FakeNote {
            id,
            body: body.to_string(),
            author: author.to_string(),
            system,
            created_at: at,
            position,
        });
        issue.updated_at = at;
        id
    }

    /// An edited note: touches the issue's `updated_at`.
    pub fn edit_note(&mut self, path: &str, mr: bool, iid: u64, note: u64, body: &str) {
        let at = self.tick();
        let issue = self.items(path, mr).get_mut(&iid).expect("the issue");
        if let Some(n) = issue.notes.iter_mut().find(|n| n.id == note) {
            n.body = body.to_string();
            issue.updated_at = at;
        }
    }

    /// A deleted note: `updated_at` does NOT move (GitLab's behaviour).
    pub fn delete_note(&mut self, path: &str, mr: bool, iid: u64, note: u64) {
        let issue = self.items(path, mr).get_mut(&iid).expect("the issue");
        issue.notes.retain(|n| n.id != note);
    }

    pub fn close(&mut self, path: &str, mr: bool, iid: u64) {
        let at = self.tick();
        let issue = self.items(path, mr).get_mut(&iid).expect("the issue");
        issue.state = "closed".to_string();
        issue.updated_at = at;
    }

    pub fn delete(&mut self, path: &str, mr: bool, iid: u64) {
        self.items(path, mr).remove(&iid);
    }

    /// A group (or subgroup: a path with a `/`); its projects are those whose path is below it.
    pub fn add_group(&mut self, id: u64, path: &str) {
        self.groups.push(FakeGroup {
            id,
            path: path.to_string(),
        });
    }

    /// The project moves to another namespace (GitLab's transfer): it leaves its group.
    pub fn transfer(&mut self, path: &str, new_path: &str) {
        self.project_mut(path).path = new_path.to_string();
    }

    /// A wiki page created or edited.
    pub fn write_page(&mut self, path: &str, slug: &str, content: &str) {
        self.project_mut(path).wiki.insert(
            slug.to_string(),
            FakeWikiPage {
                title: slug.rsplit('/').next().unwrap_or(slug).to_string(),
                format: "markdown".to_string(),
                content: content.to_string(),
            },
        );
    }

    pub fn delete_page(&mut self, path: &str, slug: &str) {
        self.project_mut(path).wiki.remove(slug);
    }

    /// A commit on `branch` (created if new; the first one becomes the default branch) that
    /// writes (`Some`) or removes (`None`) files; returns the commit id.
    pub fn push(&mut self, path: &str, branch: &str, changes: &[(&str, Option<&[u8]>)]) -> String {
        use sha2::{Digest, Sha256};
        let at = self.tick();
        let repo = &mut self.project_mut(path).repo;
        let mut tree = repo
            .branches
            .get(branch)
            .map(|c| repo.commits[c].clone())
            .unwrap_or_default();
        for (file, content) in changes {
            match content {
                Some(bytes) => {
                    let blob = hex::encode(Sha256::digest(bytes));
                    repo.blobs.insert(blob.clone(), bytes.to_vec());
                    tree.insert(file.to_string(), blob);
                }
                None => {
                    tree.remove(*file);
                }
            }
        }
        let commit = hex::encode(Sha256::digest(format!("{at} {branch} {tree:?}")));
        repo.commits.insert(commit.clone(), tree);
        repo.branches.insert(branch.to_string(), commit.clone());
        repo.default_branch
            .get_or_insert_with(|| branch.to_string());
        commit
    }
}

#[derive(Default)]
struct Shared {
    /// The per-token window, when a test sets one ([`GitlabServer::rate_window`]).
    window: Option<rate_window::RateWindow>,
    instance: Instance,
    token: String,
    base: String,
    /// (route, path) of every request, in order.
    log: Vec<(String, String)>,
    /// 429 with `Retry-After: 1` for this many answers.
    storm: usize,
    /// An instance older than keyset pages for project issues: 405 to `pagination=keyset`.
    no_issue_keyset: bool,
}

type Server = Arc<Mutex<Shared>>;

pub struct GitlabServer {
    shared: Server,
    addr: SocketAddr,
}

impl GitlabServer {
    pub async fn start(instance: Instance, token: &str) -> Self {
        let shared: Server = Arc::new(Mutex::new(Shared {
            instance,
            token: token.to_string(),
            ..Shared::default()
        }));
        let app = Router::new()
            .route("/api/v4/projects/{id}", get(project))
            .route("/api/v4/projects/{id}/{kind}", get(listing))
            .route("/api/v4/projects/{id}/{kind}/{iid}", get(one))
            .route("/api/v4/projects/{id}/{kind}/{iid}/notes", get(notes))
            .route("/api/v4/groups/{id}/projects", get(group_projects))
            .route("/api/v4/projects/{id}/wikis", get(wikis))
            .route(
                "/api/v4/projects/{id}/repository/commits/{git_ref}",
                get(commit),
            )
            .route("/api/v4/projects/{id}/repository/tree", get(tree))
            .route(
                "/api/v4/projects/{id}/repository/blobs/{sha}/raw",
                get(blob),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        shared.lock().unwrap().base = format!("http://{addr}");
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { shared, addr }
    }

    /// What the `gitlab` source's `base_url` is.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Instance) -> R) -> R {
        f(&mut self.shared.lock().unwrap().instance)
    }

    /// Every request so far: (route, path).
    pub fn log(&self) -> Vec<(String, String)> {
        self.shared.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.shared.lock().unwrap().log.clear();
    }

    /// The next `n` answers are 429 with `Retry-After: 1`.
    pub fn storm(&self, n: usize) {
        self.shared.lock().unwrap().storm = n;
    }

    /// Answers `pagination=keyset` on project issues with 405, as GitLab does where keyset
    /// pagination is "not yet available for this type of request".
    pub fn without_issue_keyset(&self) {
        self.shared.lock().unwrap().no_issue_keyset = true;
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

#[path = "rate_window.rs"]
pub mod rate_window;

impl GitlabServer {
    /// From now on, each token may make `limit` requests per `period_secs` window; every
    /// answer states the count. `bare_429`: refusals carry Retry-After alone.
    pub fn rate_window(&self, limit: u64, period_secs: u64, bare_429: bool) {
        let mut window = rate_window::RateWindow::new(limit, period_secs);
        window.bare_429 = bare_429;
        self.shared.lock().unwrap().window = Some(window);
    }

    /// Answers let through and refused (429) by the window so far.
    pub fn window_counts(&self) -> (u64, u64) {
        let s = self.shared.lock().unwrap();
        s.window
            .as_ref()
            .map_or((0, 0), |w| (w.admitted, w.refused))
    }
}

thread_local! {
    /// The count [`admit`] made of the request this thread is answering, for
    /// [`with_limits`] to state: a handler runs from one to the other without an `.await`,
    /// so on one thread, and its signature stays `Response -> Response` for every route.
    static COUNTED: std::cell::Cell<Option<rate_window::Count>> =
        const { std::cell::Cell::new(None) };
}

/// Auth, the request log, the rate-limit window and a storm, for every route (the refusal
/// is the answer to send, big as answers are).
#[allow(clippy::result_large_err)]
fn admit(shared: &Server, headers: &HeaderMap, route: &str, path: String) -> Result<(), Response> {
    let mut s = shared.lock().unwrap();
    s.log.push((route.to_string(), path));
    COUNTED.set(None);
    if s.storm > 0 {
        s.storm -= 1;
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Retry later");
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        return Err(r);
    }
    let token = headers.get("private-token").and_then(|v| v.to_str().ok());
    if let Some(window) = s.window.as_mut() {
        // Rack::Attack counts per user before anything else is checked.
        let count = window.count(token.unwrap_or("anonymous"));
        COUNTED.set(Some(count));
        if !count.allowed {
            let r = error(StatusCode::TOO_MANY_REQUESTS, "Retry later");
            let mut r = if window.bare_429 {
                COUNTED.set(None);
                r
            } else {
                with_limits(r)
            };
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(count.retry_after));
            return Err(r);
        }
    }
    if token != Some(s.token.as_str()) {
        return Err(error(StatusCode::UNAUTHORIZED, "401 Unauthorized"));
    }
    Ok(())
}

/// The rate-limit headers: the window's true count of this request when a test set one,
/// else fixed figures.
fn with_limits(mut r: Response) -> Response {
    let h = r.headers_mut();
    let Some(count) = COUNTED.get() else {
        h.insert("ratelimit-limit", HeaderValue::from_static("2000"));
        h.insert("ratelimit-remaining", HeaderValue::from_static("1999"));
        h.insert("ratelimit-reset", HeaderValue::from_static("1700000060"));
        return r;
    };
    for (name, value) in count.headers("ratelimit-") {
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    r
}

fn find<'a>(instance: &'a Instance, id: &str) -> Option<&'a FakeProject> {
    instance
        .projects
        .iter()
        .find(|p| p.id.to_string() == id || p.path == id)
}

async fn project(State(s): State<Server>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = admit(&s, &headers, "project", format!("projects/{id}")) {
        return r;
    }
    let shared = s.lock().unwrap();
    if shared.instance.forbidden.contains(&id) {
        return error(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    match find(&shared.instance, &id) {
        Some(p) => with_limits(Json(project_json(&shared.base, p)).into_response()),
        None => error(StatusCode::NOT_FOUND, "404 Project Not Found"),
    }
}

fn project_json(base: &str, p: &FakeProject) -> Value {
    json!({
        "id": p.id,
        "path_with_namespace": p.path,
        "web_url": format!("{base}/{}", p.path),
        "default_branch": p.repo.default_branch,
        "archived": p.archived,
    })
}

fn issue_json(base: &str, project: &FakeProject, kind: &str, i: &FakeIssue) -> Value {
    let time = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    json!({
        "id": project.id * 100_000 + i.iid,
        "iid": i.iid,
        "project_id": project.id,
        "title": i.title,
        "description": i.description,
        "state": i.state,
        "labels": i.labels,
        "author": {"username": "ana", "name": "Ana"},
        "assignees": [],
        "milestone": null,
        "web_url": format!("{base}/{}/-/{kind}/{}", project.path, i.iid),
        "created_at": time(i.created_at),
        "updated_at": time(i.updated_at),
        "user_notes_count": i.notes.iter().filter(|n| !n.system).count(),
    })
}

/// `page`/`per_page` offset paging with GitLab's headers and `Link: rel="next"`.
fn paged(base: &str, path: &str, query: &BTreeMap<String, String>, items: Vec<Value>) -> Response {
    let per_page: usize = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let page: usize = query
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let more = page * per_page < total;
    let mut r = with_limits(Json(Value::Array(slice)).into_response());
    let h = r.headers_mut();
    h.insert("x-page", HeaderValue::from_str(&page.to_string()).unwrap());
    h.insert(
        "x-per-page",
        HeaderValue::from_str(&per_page.to_string()).unwrap(),
    );
    let next = if more {
        (page + 1).to_string()
    } else {
        String::new()
    };
    h.insert("x-next-page", HeaderValue::from_str(&next).unwrap());
    if total <= 10_000 {
        h.insert(
            "x-total",
            HeaderValue::from_str(&total.to_string()).unwrap(),
        );
    }
    if more {
        let mut q: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| *k != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        q.push(("page".into(), (page + 1).to_string()));
        let qs: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        let link = format!("<{base}/api/v4/{path}?{qs}>; rel=\"next\"");
        h.insert("link", HeaderValue::from_str(&link).unwrap());
    }
    r
}

fn query_of(uri: &Uri) -> BTreeMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn kind_of(kind: &str) -> Option<bool> {
    match kind {
        "issues" => Some(false),
        "merge_requests" => Some(true),
        _ => None,
    }
}

async fn listing(
    State(s): State<Server>,
    Path((id, kind)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = query_of(&uri);
    let Some(mr) = kind_of(&kind) else {
        return error(StatusCode::NOT_FOUND, "404 Not Found");
    };
    if let Err(r) = admit(&s, &headers, &kind, format!("projects/{id}/{kind}")) {
        return r;
    }
    let shared = s.lock().unwrap();
    let Some(p) = find(&shared.instance, &id) else {
        return error(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    let after = query
        .get("updated_after")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp());
    let mut items: Vec<&FakeIssue> = if mr { &p.merge_requests } else { &p.issues }
        .values()
        .filter(|i| after.is_none_or(|a| i.updated_at > a))
        .collect();
    let by_updated = query.get("order_by").map(String::as_str) == Some("updated_at");
    items.sort_by_key(|i| {
        (
            if by_updated {
                i.updated_at
            } else {
                i.created_at
            },
            i.iid,
        )
    });
    if query.get("sort").map(String::as_str) != Some("asc") {
        items.reverse();
    }
    if !mr && query.get("pagination").map(String::as_str) == Some("keyset") {
        if shared.no_issue_keyset {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"error": "Keyset pagination is not yet available for this type of request"})),
            )
                .into_response();
        }
        return keyset_issues(&shared.base, p, &id, &query, items, by_updated);
    }
    let values = items
        .into_iter()
        .map(|i| issue_json(&shared.base, p, &kind, i))
        .collect();
    paged(
        &shared.base,
        &format!("projects/{id}/{kind}"),
        &query,
        values,
    )
}

/// Project issues with `pagination=keyset` (GitLab 18.x; REST API: keyset-based pagination,
/// and the issues API's `cursor` parameter): the page after the opaque `cursor`, which encodes
/// the ordering key of the last record sent; the next page only in `Link: rel="next"`, with no
/// `x-page`, `x-next-page` or totals. `items` are already ordered.
fn keyset_issues(
    base: &str,
    p: &FakeProject,
    id: &str,
    query: &BTreeMap<String, String>,
    items: Vec<&FakeIssue>,
    by_updated: bool,
) -> Response {
    let per_page: usize = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let key = |i: &FakeIssue| {
        let at = if by_updated {
            i.updated_at
        } else {
            i.created_at
        };
        format!("{at}:{}", i.iid)
    };
    let start = match query.get("cursor") {
        None => 0,
        Some(cursor) => {
            let Some(after) = hex::decode(cursor)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            else {
                return error(StatusCode::BAD_REQUEST, "400 Bad request - invalid cursor");
            };
            items
                .iter()
                .position(|i| key(i) == after)
                .map_or(items.len(), |n| n + 1)
        }
    };
    let page: Vec<&FakeIssue> = items.iter().skip(start).take(per_page).copied().collect();
    let more = start + page.len() < items.len();
    let values = page
        .iter()
        .map(|i| issue_json(base, p, "issues", i))
        .collect();
    let mut r = with_limits(Json(Value::Array(values)).into_response());
    if let (true, Some(last)) = (more, page.last()) {
        let q: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| *k != "cursor")
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain([("cursor".to_string(), hex::encode(key(last)))])
            .collect();
        let qs: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        let link = format!("<{base}/api/v4/projects/{id}/issues?{qs}>; rel=\"next\"");
        r.headers_mut()
            .insert("link", HeaderValue::from_str(&link).unwrap());
    }
    r
}

async fn one(
    State(s): State<Server>,
    Path((id, kind, iid)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let Some(mr) = kind_of(&kind) else {
        return error(StatusCode::NOT_FOUND, "404 Not Found");
    };
    let route = if mr { "merge_request" } else { "issue" };
    if let Err(r) = admit(&s, &headers, route, format!("projects/{id}/{kind}/{iid}")) {
        return r;
    }
    let shared = s.lock().unwrap();
    let found = find(&shared.instance, &id).and_then(|p| {
        let items = if mr { &p.merge_requests } else { &p.issues };
        items
            .get(&iid)
            .map(|i| issue_json(&shared.base, p, &kind, i))
    });
    match found {
        Some(v) => with_limits(Json(v).into_response()),
        None => error(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

async fn notes(
    State(s): State<Server>,
    Path((id, kind, iid)): Path<(String, String, u64)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = query_of(&uri);
    let Some(mr) = kind_of(&kind) else {
        return error(StatusCode::NOT_FOUND, "404 Not Found");
    };
    let route = if mr {
        "merge_request_notes"
    } else {
        "issue_notes"
    };
    if let Err(r) = admit(
        &s,
        &headers,
        route,
        format!("projects/{id}/{kind}/{iid}/notes"),
    ) {
        return r;
    }
    let shared = s.lock().unwrap();
    let Some(p) = find(&shared.instance, &id) else {
        return error(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    let items = if mr { &p.merge_requests } else { &p.issues };
    let Some(issue) = items.get(&iid) else {
        return error(StatusCode::NOT_FOUND, "404 Not found");
    };
    let time = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut notes: Vec<&FakeNote> = issue.notes.iter().collect();
    if query.get("sort").map(String::as_str) != Some("asc") {
        notes.reverse();
    }
    let values = notes
        .into_iter()
        .map(|n| {
            let mut v = json!({
                "id": n.id,
                "body": n.body,
                "author": {"username": n.author, "name": n.author},
                "created_at": time(n.created_at),
                "system": n.system,
                "noteable_iid": iid,
            });
            if let Some((path, line)) = &n.position {
                v["type"] = json!("DiffNote");
                v["position"] = json!({"new_path": path, "new_line": line});
            }
            v
        })
        .collect();
    paged(
        &shared.base,
        &format!("projects/{id}/{kind}/{iid}/notes"),
        &query,
        values,
    )
}

async fn group_projects(
    State(s): State<Server>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = query_of(&uri);
    if let Err(r) = admit(
        &s,
        &headers,
        "group_projects",
        format!("groups/{id}/projects"),
    ) {
        return r;
    }
    let shared = s.lock().unwrap();
    let Some(group) = shared
        .instance
        .groups
        .iter()
        .find(|g| g.id.to_string() == id || g.path == id)
    else {
        return error(StatusCode::NOT_FOUND, "404 Group Not Found");
    };
    let subgroups = query.get("include_subgroups").map(String::as_str) == Some("true");
    let archived = query.get("archived").map(|a| a == "true");
    let mut projects: Vec<&FakeProject> = shared
        .instance
        .projects
        .iter()
        .filter(|p| {
            let Some(rest) = p.path.strip_prefix(&format!("{}/", group.path)) else {
                return false;
            };
            subgroups || !rest.contains('/')
        })
        .filter(|p| archived.is_none_or(|a| p.archived == a))
        .collect();
    // Created in id order here, so `created_at` and `id` order alike.
    projects.sort_by_key(|p| p.id);
    if query.get("sort").map(String::as_str) != Some("asc") {
        projects.reverse();
    }
    let values = projects
        .into_iter()
        .map(|p| project_json(&shared.base, p))
        .collect();
    paged(
        &shared.base,
        &format!("groups/{id}/projects"),
        &query,
        values,
    )
}

async fn wikis(
    State(s): State<Server>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = query_of(&uri);
    if let Err(r) = admit(&s, &headers, "wikis", format!("projects/{id}/wikis")) {
        return r;
    }
    let shared = s.lock().unwrap();
    let Some(p) = find(&shared.instance, &id) else {
        return error(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    let with_content = matches!(
        query.get("with_content").map(String::as_str),
        Some("1" | "true")
    );
    let pages: Vec<Value> = p
        .wiki
        .iter()
        .map(|(slug, page)| {
            let mut v = json!({
                "slug": slug,
                "title": page.title,
                "format": page.format,
                "encoding": "UTF-8",
            });
            if with_content {
                v["content"] = json!(page.content);
            }
            v
        })
        .collect();
    with_limits(Json(Value::Array(pages)).into_response())
}

/// The commit a branch name or commit id names in `p`.
fn resolve(p: &FakeProject, git_ref: &str) -> Option<String> {
    let repo = &p.repo;
    repo.branches.get(git_ref).cloned().or_else(|| {
        repo.commits
            .contains_key(git_ref)
            .then(|| git_ref.to_string())
    })
}

async fn commit(
    State(s): State<Server>,
    Path((id, git_ref)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(
        &s,
        &headers,
        "commit",
        format!("projects/{id}/repository/commits/{git_ref}"),
    ) {
        return r;
    }
    let shared = s.lock().unwrap();
    let Some(p) = find(&shared.instance, &id) else {
        return error(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    match resolve(p, &git_ref) {
        Some(sha) => with_limits(
            Json(json!({"id": sha, "short_id": &sha[..8], "title": "a commit"})).into_response(),
        ),
        None => error(StatusCode::NOT_FOUND, "404 Commit Not Found"),
    }
}

async fn tree(
    State(s): State<Server>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = query_of(&uri);
    if let Err(r) = admit(
        &s,
        &headers,
        "tree",
        format!("projects/{id}/repository/tree"),
    ) {
        return r;
    }
    let shared = s.lock().unwrap();
    let Some(p) = find(&shared.instance, &id) else {
        return error(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    let git_ref = query
        .get("ref")
        .cloned()
        .or_else(|| p.repo.default_branch.clone())
        .unwrap_or_default();
    let Some(sha) = resolve(p, &git_ref) else {
        return error(StatusCode::NOT_FOUND, "404 Tree Not Found");
    };
    let recursive = query.get("recursive").map(String::as_str) == Some("true");
    // Every entry: the files, and each directory above one.
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for (path, blob) in &p.repo.commits[&sha] {
        let parts: Vec<&str> = path.split('/').collect();
        for depth in 1..parts.len() {
            let dir = parts[..depth].join("/");
            entries.entry(dir.clone()).or_insert_with(|| {
                json!({"id": format!("tree-{dir}"), "name": parts[depth - 1], "type": "tree", "path": dir, "mode": "040000"})
            });
        }
        entries.insert(
            path.clone(),
            json!({"id": blob, "name": parts[parts.len() - 1], "type": "blob", "path": path, "mode": "100644"}),
        );
    }
    let items: Vec<(String, Value)> = entries
        .into_iter()
        .filter(|(path, _)| recursive || !path.contains('/'))
        .collect();
    if query.get("pagination").map(String::as_str) != Some("keyset") {
        let values = items.into_iter().map(|(_, v)| v).collect();
        return paged(
            &shared.base,
            &format!("projects/{id}/repository/tree"),
            &query,
            values,
        );
    }
    let per_page: usize = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    // The token is opaque to clients: here, the hex of the last path a page held.
    let after = query
        .get("page_token")
        .and_then(|t| hex::decode(t).ok())
        .map(|b| String::from_utf8(b).unwrap());
    let rest: Vec<(String, Value)> = items
        .into_iter()
        .filter(|(path, _)| after.as_ref().is_none_or(|a| path > a))
        .collect();
    let more = rest.len() > per_page;
    let page: Vec<(String, Value)> = rest.into_iter().take(per_page).collect();
    let next_token = page.last().map(|(path, _)| hex::encode(path));
    let mut r =
        with_limits(Json(Value::Array(page.into_iter().map(|(_, v)| v).collect())).into_response());
    if more {
        let mut q: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| *k != "page_token")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        q.push(("page_token".into(), next_token.unwrap()));
        let qs: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        let link = format!(
            "<{}/api/v4/projects/{id}/repository/tree?{qs}>; rel=\"next\"",
            shared.base
        );
        r.headers_mut()
            .insert("link", HeaderValue::from_str(&link).unwrap());
    }
    r
}

async fn blob(
    State(s): State<Server>,
    Path((id, sha)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(
        &s,
        &headers,
        "blob",
        format!("projects/{id}/repository/blobs/{sha}/raw"),
    ) {
        return r;
    }
    let shared = s.lock().unwrap();
    let Some(p) = find(&shared.instance, &id) else {
        return error(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    match p.repo.blobs.get(&sha) {
        Some(bytes) => with_limits(
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8",
                )],
                bytes.clone(),
            )
                .into_response(),
        ),
        None => error(StatusCode::NOT_FOUND, "404 Blob Not Found"),
    }
}
