//! The API client against servers that count: the local GitLab server with a real per-token
//! window (`support/rate_window.rs`), whose answers state the count in `RateLimit-*` headers,
//! and a Backlog-like server that takes its key in the query string and echoes it back.

#[path = "support/gitlab_rest_api.rs"]
mod gitlab_rest_api;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gitlab_rest_api::{GitlabServer, Instance};
use kass_pipeline::http::{Answer, Auth};
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::secret::Secret;
use kass_sources::api::paging::next_link;
use kass_sources::api::{
    ApiClient, ApiConfig, BudgetScope, MethodLimiters, RateLimitConfig, ServerBudget,
};
use reqwest::header::HeaderName;

const TOKEN: &str = "glpat-budget-test-0000000000";

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        initial_backoff_ms: 20,
        max_backoff_ms: 5_000,
    }
}

/// A GitLab client as `gitlab_api/config.rs` builds it, with no fixed tier (so the server's
/// headers alone pace it) and the header budget when `budget`.
fn gitlab_client(server: &GitlabServer, budget: bool, headroom: f64) -> ApiClient {
    let config = RateLimitConfig {
        headroom,
        ..RateLimitConfig::default()
    };
    ApiClient::new(ApiConfig {
        auth: Some(Auth::Header(
            HeaderName::from_static("private-token"),
            Secret::new(TOKEN),
        )),
        retry: quick_retries(),
        limiters: Arc::new(MethodLimiters::unlimited()),
        budget: budget.then(|| Arc::new(ServerBudget::new(BudgetScope::User, &config).unwrap())),
        ..ApiConfig::new("gitlab", format!("{}/api/v4", server.base_url()))
    })
    .unwrap()
}

/// A project of `issues` issues with two notes each.
async fn gitlab(issues: u64) -> GitlabServer {
    let mut instance = Instance::default();
    instance.add_project(7, "group/app");
    for i in 0..issues {
        let iid = instance.open("group/app", false, &format!("issue {i}"), "text");
        instance.comment("group/app", false, iid, "ana", "first");
        instance.comment("group/app", false, iid, "bob", "second");
    }
    GitlabServer::start(instance, TOKEN).await
}

/// A backfill as the GitLab source does it: the issue listing page by page, and the notes of
/// each issue, `tasks` at a time; returns how many requests it made.
async fn backfill(client: &ApiClient, issues: u64, tasks: u64) -> u64 {
    let mut requests = 0;
    let mut page = 1;
    loop {
        let answer = client
            .get_route(
                "issues",
                "projects/7/issues",
                &[("per_page", "5"), ("page", &page.to_string())],
            )
            .await
            .unwrap();
        requests += 1;
        if next_link(&answer.headers).is_none() {
            break;
        }
        page += 1;
    }
    let notes: Vec<_> = (0..tasks)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut n = 0;
                for iid in (1..=issues).filter(|i| i % tasks == t) {
                    let path = format!("projects/7/issues/{iid}/notes");
                    client.get_route("issue_notes", &path, &[]).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    for task in notes {
        requests += task.await.unwrap();
    }
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_from_the_headers_keeps_a_backfill_under_the_window_with_no_429() {
    // 20 requests per 1 s window per token; 40 issues: 8 listing pages and 40 notes requests.
    let server = gitlab(40).await;
    server.rate_window(20, 1, false);
    let client = gitlab_client(&server, true, 0.02);
    let started = Instant::now();
    let requests = backfill(&client, 40, 4).await;
    let elapsed = started.elapsed();
    assert_eq!(requests, 48);
    assert_eq!(
        server.window_counts(),
        (48, 0),
        "the window refused requests"
    );
    // 19 usable per window (1 kept in reserve): 48 need 3 windows at least, and pacing must
    // not waste more than about one.
    assert!(elapsed >= Duration::from_millis(1_500), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(4_500), "{elapsed:?}");

    // The control: the same backfill without the header budget is refused, so the window
    // above was a real constraint.
    let server = gitlab(40).await;
    server.rate_window(20, 1, false);
    let unpaced = gitlab_client(&server, false, 0.02);
    backfill(&unpaced, 40, 4).await;
    assert!(server.window_counts().1 > 0, "the window never bit");
}

/// Sleeps until 50 ms into the next window of `period` seconds (the server's windows are
/// aligned to the epoch, as GitLab's are), so a test's requests fall in one window.
async fn at_window_start(period: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let next = Duration::from_secs((now.as_secs() / period + 1) * period);
    tokio::time::sleep(next - now + Duration::from_millis(50)).await;
}

fn header(answer: &Answer, name: &str) -> u64 {
    answer.headers[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_left_the_next_request_waits_for_the_reset() {
    let server = gitlab(1).await;
    server.rate_window(5, 2, false);
    let notes = |client: ApiClient| async move {
        client
            .get_route("issue_notes", "projects/7/issues/1/notes", &[])
            .await
            .unwrap()
    };
    at_window_start(2).await;
    // Another client of the same user spends 4 of the 5.
    let other = gitlab_client(&server, false, 0.0);
    for _ in 0..4 {
        notes(other.clone()).await;
    }
    let client = gitlab_client(&server, true, 0.0);
    let last = notes(client.clone()).await;
    assert_eq!(header(&last, "ratelimit-remaining"), 0);
    let reset = header(&last, "ratelimit-reset");
    let started = Instant::now();
    let next = notes(client.clone()).await;
    let waited = started.elapsed();
    let until_reset = Duration::from_secs(reset)
        .saturating_sub(SystemTime::now().duration_since(UNIX_EPOCH).unwrap() - waited);
    // Sent once the window reset, not refused and retried.
    assert_eq!(server.window_counts(), (6, 0));
    assert!(header(&next, "ratelimit-reset") > reset);
    assert!(
        waited + Duration::from_millis(50) >= until_reset,
        "{waited:?} < {until_reset:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_headers_falls_back_to_retry_after_with_one_probe() {
    let server = gitlab(1).await;
    server.rate_window(3, 2, true);
    at_window_start(2).await;
    // Another client of the same user spends the window; ours has not heard of it.
    let other = gitlab_client(&server, false, 0.0);
    for _ in 0..3 {
        other
            .get_route("issue_notes", "projects/7/issues/1/notes", &[])
            .await
            .unwrap();
    }
    let client = gitlab_client(&server, true, 0.0);
    let started = Instant::now();
    client
        .get_route("issues", "projects/7/issues", &[])
        .await
        .unwrap();
    let waited = started.elapsed();
    // One refusal (a 429 with Retry-After alone), then the retry after the Retry-After: the
    // back-off of 20 ms alone would have been refused again and again.
    assert_eq!(server.window_counts(), (4, 1));
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
}

/// What a tracing subscriber wrote, every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Seven characters: below the global redactor's minimum, so only the client's own masking
/// can keep it out of the output.
const KEY: &str = "Qz7kP9x";

/// Backlog-like: `apiKey` in the query. A request carrying it other than exactly once is
/// refused. The first page links to the next with the key in the link (as a server building
/// links from the request URL does); the second page fails once with a 500 quoting the key;
/// `missing` is a 404 quoting it.
async fn backlog() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/api/v2", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let base = base_url.clone();
    let handle = move |uri: Uri, _: HeaderMap| {
        let log = log.clone();
        let base = base.clone();
        async move {
            let query: Vec<(String, String)> =
                form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let keys: Vec<&String> = query
                .iter()
                .filter(|(k, _)| k == "apiKey")
                .map(|(_, v)| v)
                .collect();
            let tries = {
                let mut log = log.lock().unwrap();
                log.push(uri.to_string());
                log.iter().filter(|u| u.starts_with(uri.path())).count()
            };
            let echo = |status: StatusCode, what: &str| -> Response {
                let body = serde_json::json!({
                    "errors": [{"message": format!("{what} (apiKey={KEY})")}],
                    "message": format!("{what}: key {KEY} at {uri}"),
                });
                (status, axum::Json(body)).into_response()
            };
            if keys != [KEY] {
                return echo(StatusCode::UNAUTHORIZED, "bad key");
            }
            match uri.path() {
                "/api/v2/issues" => {
                    let link = format!("<{base}/issues2?apiKey={KEY}&offset=1>; rel=\"next\"");
                    let mut r = axum::Json(serde_json::json!([{"id": 1}])).into_response();
                    r.headers_mut().insert("link", link.parse().unwrap());
                    r
                }
                "/api/v2/issues2" if tries == 1 => echo(StatusCode::INTERNAL_SERVER_ERROR, "busy"),
                "/api/v2/issues2" => axum::Json(serde_json::json!([{"id": 2}])).into_response(),
                _ => echo(StatusCode::NOT_FOUND, "no such thing"),
            }
        }
    };
    let app = axum::Router::new().fallback(handle);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base_url, seen)
}

fn backlog_client(base_url: &str) -> ApiClient {
    ApiClient::new(ApiConfig {
        auth: Some(Auth::Query("apiKey".into(), Secret::new(KEY))),
        retry: quick_retries(),
        ..ApiConfig::new("backlog", base_url)
    })
    .unwrap()
}

#[tokio::test]
async fn a_query_string_key_is_sent_once_and_never_shows_in_any_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (base_url, seen) = backlog().await;
    let client = backlog_client(&base_url);
    let mut shown = Vec::<String>::new();

    let first = client.get_route("issues", "issues", &[]).await.unwrap();
    let link = next_link(&first.headers).expect("a next link");
    shown.push(format!("{:?}", first.headers));
    shown.push(link.clone());
    // The 500 is retried (and logged), then the page comes.
    let second = client.get_link("issues", &link).await.unwrap();
    assert_eq!(second.json::<serde_json::Value>().unwrap()[0]["id"], 2);

    let missing = client
        .get_route("missing", "missing", &[])
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));
    shown.push(missing.to_string());
    shown.push(format!("{missing:?}"));

    let foreign = client
        .get_link(
            "issues",
            &format!("http://elsewhere/api/v2/issues?apiKey={KEY}"),
        )
        .await
        .unwrap_err();
    shown.push(foreign.to_string());
    shown.push(format!("{foreign:?}"));

    // No server: reqwest's error names the URL it was sending to.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/api/v2", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = backlog_client(&dead)
        .get_route("issues", "issues", &[])
        .await;
    let unreachable = unreachable.unwrap_err();
    assert!(
        unreachable.to_string().contains("apiKey=***"),
        "{unreachable}"
    );
    shown.push(unreachable.to_string());
    shown.push(format!("{unreachable:?}"));
    shown.push(format!("{client:?}"));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("busy"), "the retry was not logged: {logs}");
    shown.push(logs);
    for text in &shown {
        assert!(!text.contains(KEY), "the key shows in: {text}");
    }
    // Every request carried the key exactly once (the server refuses otherwise), and it
    // was the server, not the client, that saw it.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.iter().all(|u| u.matches(KEY).count() == 1), "{seen:?}");
}
