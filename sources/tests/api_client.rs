//! The shared machinery of API sources (`kass_sources::api`) against a local HTTP server that
//! answers the way the documented APIs do: Slack's Web API (cursor paging, errors as
//! `{"ok": false, "error": ...}`, 429 with Retry-After, per-method limits) and GitLab's REST API
//! (page numbers, `X-Next-Page`, `Link` headers). Each branch of the server names the documented
//! behaviour it reproduces.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, StatusCode, Uri};
use futures::TryStreamExt;
use kass_pipeline::http::{retry_after, Answer, Auth};
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::secret::Secret;
use kass_sources::api::paging::{
    cursor_pages, linked_pages, next_cursor, next_link, next_page, numbered_pages, Page, PageError,
};
use kass_sources::api::{
    ApiClient, ApiConfig, ApiError, MethodLimiters, RateLimitConfig, Tier, Verdict,
};
use serde_json::{json, Value};

const TOKEN: &str = "xoxb-api-test-0000000000-abcdefghijklmnop";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Request {
    /// The path after `/api/`: the Slack method, or the GitLab resource.
    method: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    at: Instant,
}

/// What the server answers: status, headers, JSON body.
type Reply = (StatusCode, Vec<(&'static str, String)>, Value);

/// Every request the server answered, with the status it answered.
type Log = Arc<Mutex<Vec<(Request, u16)>>>;

/// Serves `handler` on a loopback port; returns the API's base URL and the server's log.
async fn serve(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> (String, Log) {
    let log = Log::default();
    let handler = Arc::new(handler);
    let seen = log.clone();
    let handle = move |uri: Uri, headers: HeaderMap| {
        let handler = handler.clone();
        let seen = seen.clone();
        async move {
            let request = Request {
                method: uri.path().trim_start_matches("/api/").to_string(),
                query: form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect(),
                headers,
                at: Instant::now(),
            };
            let (status, reply_headers, body) = handler(&request);
            seen.lock().unwrap().push((request, status.as_u16()));
            let mut response_headers = HeaderMap::new();
            for (name, value) in reply_headers {
                response_headers.append(
                    HeaderName::from_static(name),
                    value.parse().expect("a header value"),
                );
            }
            (status, response_headers, axum::Json(body))
        }
    };
    let app = axum::Router::new().fallback(handle);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/api"), log)
}

/// Slack's envelope as the Slack source will read it: `ok: false` is an error whatever the
/// HTTP status, `ratelimited` among them (then Retry-After says for how long).
fn slack_ok(answer: &Answer) -> Verdict {
    let body: Value = answer.json().unwrap_or(Value::Null);
    if body["ok"].as_bool() != Some(false) {
        return Verdict::Ok;
    }
    match body["error"].as_str().unwrap_or("unknown_error") {
        "ratelimited" => Verdict::RateLimited(retry_after(&answer.headers)),
        error => Verdict::Refused(error.to_string()),
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff_ms: 20,
        max_backoff_ms: 5_000,
    }
}

fn slack_client(base_url: &str, limiters: MethodLimiters) -> ApiClient {
    ApiClient::new(ApiConfig {
        auth: Some(Auth::Bearer(Secret::new(TOKEN))),
        retry: quick_retries(),
        limiters: Arc::new(limiters),
        check: Some(Arc::new(slack_ok)),
        ..ApiConfig::new("slack", base_url)
    })
    .unwrap()
}

/// Slack answers a request without the bot token with `not_authed`, and one with another
/// token with `invalid_auth`, both as HTTP 200 with `ok: false`.
fn slack_auth_error(request: &Request) -> Option<Reply> {
    let auth = request.headers.get("authorization")?.to_str().ok();
    let error = match auth {
        None => "not_authed",
        Some(value) if value == format!("Bearer {TOKEN}") => return None,
        Some(_) => "invalid_auth",
    };
    Some((StatusCode::OK, vec![], json!({"ok": false, "error": error})))
}

/// Lists of a cursor-paged method, paged the way the server chooses (Slack documents pages
/// holding fewer items than `limit` while more remain); the cursor is opaque to the client.
fn cursor_paged(
    request: &Request,
    key: &str,
    items: &[Value],
    page_sizes: &[usize],
    last_omits_metadata: bool,
) -> Reply {
    let page: usize = request
        .query
        .get("cursor")
        .map(|c| c.trim_start_matches("dGVhbTp").parse().unwrap())
        .unwrap_or(0);
    let limit: usize = request.query["limit"].parse().unwrap();
    let start: usize = page_sizes[..page].iter().sum();
    let size = page_sizes[page].min(limit);
    let mut body = json!({"ok": true, key: items[start..start + size]});
    if page + 1 < page_sizes.len() {
        body["response_metadata"] = json!({"next_cursor": format!("dGVhbTp{}", page + 1)});
    } else if !last_omits_metadata {
        // The last page: documented as an empty `next_cursor`...
        body["response_metadata"] = json!({"next_cursor": ""});
    } // ... or no `response_metadata` at all, as some methods answer.
    (StatusCode::OK, vec![], body)
}

/// Reads every page of `method` through the shared cursor stream.
async fn list_all(client: &ApiClient, method: &str, key: &str) -> Result<Vec<String>, ApiError> {
    let pages = cursor_pages(None, 100, |cursor: Option<String>| async move {
        let mut query = vec![("limit", "10"), ("types", "public_channel")];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.as_str()));
        }
        let (body, _): (Value, _) = client.get_json(method, &query).await?;
        let items = body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_string())
            .collect();
        Ok(Page {
            items,
            next: next_cursor(&body).map_err(|reason| client.incomplete(method, reason))?,
        })
    });
    let pages: Vec<Page<String, String>> =
        pages
            .try_collect()
            .await
            .map_err(|e: PageError<ApiError>| {
                e.into_error(|reason| client.incomplete(method, reason))
            })?;
    Ok(pages.into_iter().flat_map(|page| page.items).collect())
}

#[tokio::test]
async fn cursor_paging_reads_every_short_page_until_the_cursor_runs_out() {
    let channels: Vec<Value> = (0..23)
        .map(|i| json!({"id": format!("C{i:03}"), "name": format!("chan-{i}"), "is_channel": true}))
        .collect();
    let users: Vec<Value> = (0..4).map(|i| json!({"id": format!("U{i}")})).collect();
    let (base, log) = serve(move |request| {
        if let Some(refusal) = slack_auth_error(request) {
            return refusal;
        }
        match request.method.as_str() {
            // conversations.list: pages of 3, 10, 1 and 9 for a limit of 10; the last page
            // says it is the last with an empty next_cursor.
            "conversations.list" => {
                cursor_paged(request, "channels", &channels, &[3, 10, 1, 9], false)
            }
            // users.list: the last page has no response_metadata at all.
            "users.list" => cursor_paged(request, "members", &users, &[1, 3], true),
            _ => (
                StatusCode::OK,
                vec![],
                json!({"ok": false, "error": "unknown_method"}),
            ),
        }
    })
    .await;
    let client = slack_client(&base, MethodLimiters::unlimited());

    let ids = list_all(&client, "conversations.list", "channels")
        .await
        .unwrap();
    let expected: Vec<String> = (0..23).map(|i| format!("C{i:03}")).collect();
    assert_eq!(ids, expected);
    let users = list_all(&client, "users.list", "members").await.unwrap();
    assert_eq!(users, vec!["U0", "U1", "U2", "U3"]);

    let log = log.lock().unwrap();
    let cursors: Vec<Option<&str>> = log
        .iter()
        .filter(|(r, _)| r.method == "conversations.list")
        .map(|(r, _)| r.query.get("cursor").map(String::as_str))
        .collect();
    assert_eq!(
        cursors,
        vec![None, Some("dGVhbTp1"), Some("dGVhbTp2"), Some("dGVhbTp3")]
    );
    assert_eq!(log.len(), 6, "one request per page, none after the last");
    for (request, status) in log.iter() {
        assert_eq!(*status, 200);
        assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(request.query["limit"], "10");
    }
}

#[tokio::test]
async fn a_429_pauses_its_method_for_the_retry_after_and_the_request_is_repeated() {
    let refused_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let refused = refused_at.clone();
    let (base, log) = serve(move |request| {
        if request.method != "conversations.history" {
            return (StatusCode::OK, vec![], json!({"ok": true, "members": []}));
        }
        // Slack's documented rate limiting: HTTP 429, `Retry-After` in seconds, and the body
        // `{"ok": false, "error": "ratelimited"}`; the limit holds for the method until then,
        // whoever asks.
        let mut refused = refused.lock().unwrap();
        let now = Instant::now();
        let until = refused.map(|at| at + Duration::from_secs(1));
        if refused.is_none() || until.is_some_and(|until| now < until) {
            refused.get_or_insert(now);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                vec![("retry-after", "1".to_string())],
                json!({"ok": false, "error": "ratelimited"}),
            );
        }
        (
            StatusCode::OK,
            vec![],
            json!({"ok": true, "messages": [], "has_more": false}),
        )
    })
    .await;
    let client = slack_client(&base, MethodLimiters::unlimited());

    let first = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .get("conversations.history", &[("channel", "C1")])
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Another task of the source, same method: it waits out the pause instead of asking.
    let second = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .get("conversations.history", &[("channel", "C2")])
                .await
        })
    };
    // Another method is not paused.
    let other_started = Instant::now();
    client.get("users.list", &[]).await.unwrap();
    assert!(other_started.elapsed() < Duration::from_millis(500));
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();

    let refused_at = refused_at.lock().unwrap().unwrap();
    let log = log.lock().unwrap();
    let history: Vec<(Duration, u16)> = log
        .iter()
        .filter(|(r, _)| r.method == "conversations.history")
        .map(|(r, status)| (r.at.saturating_duration_since(refused_at), *status))
        .collect();
    assert_eq!(
        history.len(),
        3,
        "one refusal, then each request once: {history:?}"
    );
    assert_eq!(history[0].1, 429);
    for (since_refusal, status) in &history[1..] {
        assert_eq!(*status, 200);
        assert!(
            *since_refusal >= Duration::from_secs(1),
            "asked again after {since_refusal:?}"
        );
    }
}

#[tokio::test]
async fn slack_errors_in_a_200_are_typed_ratelimited_is_retried_and_the_token_never_shows() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let (base, log) = serve(move |request| {
        if let Some(refusal) = slack_auth_error(request) {
            return refusal;
        }
        match request.method.as_str() {
            // The envelope every Slack error comes in: HTTP 200, `ok: false` and an error
            // code; here `ratelimited` with its Retry-After, once.
            "conversations.replies" if counted.fetch_add(1, Ordering::SeqCst) == 0 => (
                StatusCode::OK,
                vec![("retry-after", "1".to_string())],
                json!({"ok": false, "error": "ratelimited"}),
            ),
            "conversations.replies" => {
                (StatusCode::OK, vec![], json!({"ok": true, "messages": []}))
            }
            // A documented per-channel error: final, not retried.
            _ => (
                StatusCode::OK,
                vec![],
                json!({"ok": false, "error": "channel_not_found"}),
            ),
        }
    })
    .await;
    let client = slack_client(&base, MethodLimiters::unlimited());
    let started = Instant::now();
    client
        .get(
            "conversations.replies",
            &[("channel", "C1"), ("ts", "1700000000.000100")],
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let error = client
        .get("conversations.info", &[("channel", "C404")])
        .await
        .unwrap_err();
    assert_eq!(error.code().as_deref(), Some("channel_not_found"));
    assert_eq!(
        error.to_string(),
        "source slack: conversations.info answered `channel_not_found`"
    );

    // A revoked token: `invalid_auth`, once, named with the source; the token nowhere.
    let wrong = ApiClient::new(ApiConfig {
        auth: Some(Auth::Bearer(Secret::new("xoxb-api-test-revoked-0001"))),
        check: Some(Arc::new(slack_ok)),
        ..ApiConfig::new("slack", &base)
    })
    .unwrap();
    let error = wrong.get("conversations.list", &[]).await.unwrap_err();
    assert!(matches!(error, ApiError::Refused { ref error, .. } if error == "invalid_auth"));
    let shown = format!("{error} {error:?} {wrong:?}");
    assert!(
        shown.contains("source slack: conversations.list"),
        "{shown}"
    );
    assert!(!shown.contains("xoxb-"), "{shown}");
    let log = log.lock().unwrap();
    assert_eq!(
        log.iter()
            .filter(|(r, _)| r.method == "conversations.info")
            .count(),
        1
    );
    assert_eq!(
        log.iter()
            .filter(|(r, _)| r.method == "conversations.list")
            .count(),
        1
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported_with_source_and_method() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let (base, _) = serve(move |request| match request.method.as_str() {
        // An outage: 503 twice, then the answer.
        "team.info" if counted.fetch_add(1, Ordering::SeqCst) < 2 => (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![],
            json!({"ok": false, "error": "service_unavailable"}),
        ),
        "team.info" => (
            StatusCode::OK,
            vec![],
            json!({"ok": true, "team": {"id": "T1"}}),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![],
            json!({"ok": false, "error": "fatal_error"}),
        ),
    })
    .await;
    let client = slack_client(&base, MethodLimiters::unlimited());
    let (team, _): (Value, _) = client.get_json("team.info", &[]).await.unwrap();
    assert_eq!(team["team"]["id"], "T1");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let error = client.get("emoji.list", &[]).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "source slack: emoji.list failed after 4 tries: HTTP 500: fatal_error"
    );
}

/// A server enforcing a strict limit per method: at most `limit` requests in any
/// `window`, counted from arrival; one more is answered 429 (Slack evaluates its limits per
/// method, per workspace, in windows of a minute; shrunk here to seconds).
struct StrictLimit {
    window: Duration,
    accepted: HashMap<String, Vec<Instant>>,
    refused: usize,
}

impl StrictLimit {
    fn admit(&mut self, method: &str, limit: usize) -> bool {
        let now = Instant::now();
        let window = self.window;
        let accepted = self.accepted.entry(method.to_string()).or_default();
        let recent = accepted
            .iter()
            .filter(|at| now.duration_since(**at) < window)
            .count();
        if recent >= limit {
            self.refused += 1;
            return false;
        }
        accepted.push(now);
        true
    }
}

#[tokio::test]
async fn a_strict_per_method_limit_is_never_exceeded_and_nearly_all_used() {
    // conversations.history at Tier 3 (50 per minute) and users.list at Tier 2 (20 per
    // minute), both run three times faster: 5 and 2 per 2 s, which the server enforces.
    let tier = Tier::new([("conversations.history", 50.0), ("users.list", 20.0)]);
    let config = RateLimitConfig {
        rate_scale: 3.0,
        headroom: 0.05,
        ..RateLimitConfig::default()
    };
    let limits: HashMap<&str, usize> = [("conversations.history", 5), ("users.list", 2)].into();
    let server = Arc::new(Mutex::new(StrictLimit {
        window: Duration::from_secs(2),
        accepted: HashMap::new(),
        refused: 0,
    }));
    let state = server.clone();
    let (base, _) = serve(move |request| {
        let limit = limits[request.method.as_str()];
        let mut server = state.lock().unwrap();
        if server.admit(&request.method, limit) {
            (StatusCode::OK, vec![], json!({"ok": true, "messages": []}))
        } else {
            (
                StatusCode::TOO_MANY_REQUESTS,
                vec![("retry-after", "2".to_string())],
                json!({"ok": false, "error": "ratelimited"}),
            )
        }
    })
    .await;
    let client = slack_client(&base, MethodLimiters::new(tier, &config).unwrap());

    // Three tasks share conversations.history, two share users.list, as a source's channel
    // workers would.
    let runs = [("conversations.history", 3, 24), ("users.list", 2, 8)];
    let mut tasks = Vec::new();
    for (method, workers, requests) in runs {
        let left = Arc::new(AtomicUsize::new(requests));
        for _ in 0..workers {
            let client = client.clone();
            let left = left.clone();
            tasks.push(tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    client.get(method, &[("channel", "C1")]).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }

    let server = server.lock().unwrap();
    assert_eq!(server.refused, 0, "requests refused with 429");
    for (method, per_window) in [("conversations.history", 5.0), ("users.list", 2.0)] {
        let accepted = &server.accepted[method];
        let span = accepted
            .last()
            .unwrap()
            .duration_since(accepted[0])
            .as_secs_f64();
        // Achieved rate over the allowed one: (n - 1) intervals in `span`, against one
        // interval per window / limit.
        let share = (accepted.len() - 1) as f64 / span * (2.0 / per_window);
        eprintln!(
            "{method}: {} requests in {span:.2} s, {share:.3} of the allowed budget, 0 refused",
            accepted.len()
        );
        assert!(share >= 0.9, "{method} used {share:.3} of its budget");
    }
}

#[tokio::test]
async fn link_and_page_number_paging_follow_gitlab_headers_to_the_last_page() {
    let (base, log) = serve(|request| {
        let host = request.headers["host"].to_str().unwrap().to_string();
        let page: usize = request.query.get("page").map_or(1, |p| p.parse().unwrap());
        let per_page: usize = request.query["per_page"].parse().unwrap();
        let total: usize = 5;
        let pages = total.div_ceil(per_page);
        let issues: Vec<Value> = ((page - 1) * per_page + 1..=(page * per_page).min(total))
            .map(|iid| json!({"iid": iid}))
            .collect();
        // GitLab's offset pagination: `X-Next-Page` empty on the last page, and `Link`
        // with prev/next/first/last where they exist.
        let link = |p: usize, rel: &str| {
            format!(
                "<http://{host}/api/projects/8/issues?page={p}&per_page={per_page}>; rel=\"{rel}\""
            )
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < pages {
            links.push(link(page + 1, "next"));
        }
        links.push(link(1, "first"));
        links.push(link(pages, "last"));
        let next = if page < pages {
            (page + 1).to_string()
        } else {
            String::new()
        };
        let headers = vec![
            ("link", links.join(", ")),
            ("x-next-page", next),
            ("x-page", page.to_string()),
            ("x-per-page", per_page.to_string()),
            ("x-total", total.to_string()),
        ];
        match request.headers.get("private-token") {
            Some(token) if token == TOKEN => (StatusCode::OK, headers, Value::Array(issues)),
            _ => (
                StatusCode::UNAUTHORIZED,
                vec![],
                json!({"message": "401 Unauthorized"}),
            ),
        }
    })
    .await;
    let client = ApiClient::new(ApiConfig {
        auth: Some(Auth::Header(
            HeaderName::from_static("private-token"),
            Secret::new(TOKEN),
        )),
        retry: quick_retries(),
        ..ApiConfig::new("gitlab", &base)
    })
    .unwrap();
    let method = "projects/8/issues";
    let iids = |answer: &Answer| -> Vec<u64> {
        let issues: Vec<Value> = answer.json().unwrap();
        issues.iter().map(|i| i["iid"].as_u64().unwrap()).collect()
    };

    let linked: Vec<Page<u64, String>> = linked_pages(100, |link: Option<String>| {
        let client = &client;
        async move {
            let answer = match link {
                None => client.get(method, &[("per_page", "2")]).await?,
                Some(link) => client.get_link(method, &link).await?,
            };
            Ok::<_, ApiError>(Page {
                items: iids(&answer),
                next: next_link(&answer.headers),
            })
        }
    })
    .try_collect()
    .await
    .unwrap();
    let items: Vec<u64> = linked.iter().flat_map(|p| p.items.clone()).collect();
    assert_eq!(items, vec![1, 2, 3, 4, 5]);

    let numbered: Vec<Page<u64, u32>> = numbered_pages(1, 100, |page: u32| {
        let client = &client;
        async move {
            let page = page.to_string();
            let answer = client
                .get(method, &[("page", &page), ("per_page", "2")])
                .await?;
            Ok::<_, ApiError>(Page {
                items: iids(&answer),
                next: next_page(&answer.headers),
            })
        }
    })
    .try_collect()
    .await
    .unwrap();
    let items: Vec<u64> = numbered.iter().flat_map(|p| p.items.clone()).collect();
    assert_eq!(items, vec![1, 2, 3, 4, 5]);

    let log = log.lock().unwrap();
    let pages: Vec<Option<&str>> = log
        .iter()
        .map(|(r, _)| r.query.get("page").map(String::as_str))
        .collect();
    assert_eq!(
        pages,
        vec![None, Some("2"), Some("3"), Some("1"), Some("2"), Some("3")]
    );
    assert!(log.iter().all(|(_, status)| *status == 200));
}

/// Counter increments and gauge increments, as `(name, labels, value)`.
type Recorded = Arc<Mutex<Vec<(String, Vec<(String, String)>, f64)>>>;

struct Recording(Recorded);

struct Metric(Recorded, String, Vec<(String, String)>);

impl metrics::CounterFn for Metric {
    fn increment(&self, by: u64) {
        self.0
            .lock()
            .unwrap()
            .push((self.1.clone(), self.2.clone(), by as f64));
    }
    fn absolute(&self, _: u64) {}
}

impl metrics::GaugeFn for Metric {
    fn increment(&self, by: f64) {
        self.0
            .lock()
            .unwrap()
            .push((self.1.clone(), self.2.clone(), by));
    }
    fn decrement(&self, _: f64) {}
    fn set(&self, _: f64) {}
}

impl Recording {
    fn metric(&self, key: &metrics::Key) -> Arc<Metric> {
        let labels = key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        Arc::new(Metric(self.0.clone(), key.name().to_string(), labels))
    }
}

impl metrics::Recorder for Recording {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.metric(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.metric(key))
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

// One thread, so the thread's recorder sees every metric the client records.
#[tokio::test(flavor = "current_thread")]
async fn every_try_is_counted_by_source_method_and_status_and_rate_limit_waits_add_up() {
    let recorded = Recorded::default();
    let recorder = Recording(recorded.clone());
    let _guard = metrics::set_default_local_recorder(&recorder);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let (base, _) = serve(move |request| match request.method.as_str() {
        // A documented Slack rate limit (429, Retry-After: 1), then the answer.
        "conversations.history" if counted.fetch_add(1, Ordering::SeqCst) == 0 => (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "1".to_string())],
            json!({"ok": false, "error": "ratelimited"}),
        ),
        "conversations.history" => (StatusCode::OK, vec![], json!({"ok": true, "messages": []})),
        _ => (
            StatusCode::OK,
            vec![],
            json!({"ok": false, "error": "not_in_channel"}),
        ),
    })
    .await;
    let client = slack_client(&base, MethodLimiters::unlimited());
    client
        .get("conversations.history", &[("channel", "C1")])
        .await
        .unwrap();
    client
        .get("conversations.join", &[("channel", "C2")])
        .await
        .unwrap_err();

    let recorded = recorded.lock().unwrap();
    let requests: Vec<(&str, &str, f64)> = recorded
        .iter()
        .filter(|(name, _, _)| name == "kass_source_requests_total")
        .map(|(_, labels, by)| {
            let label = |key: &str| labels.iter().find(|(k, _)| k == key).unwrap().1.as_str();
            assert_eq!(label("source"), "slack");
            (label("method"), label("status"), *by)
        })
        .collect();
    assert_eq!(
        requests,
        vec![
            ("conversations.history", "429", 1.0),
            ("conversations.history", "200", 1.0),
            ("conversations.join", "not_in_channel", 1.0),
        ]
    );
    let waited: f64 = recorded
        .iter()
        .filter(|(name, labels, _)| {
            name == "kass_source_rate_limit_wait_seconds_total"
                && labels.contains(&("method".to_string(), "conversations.history".to_string()))
        })
        .map(|(_, _, seconds)| seconds)
        .sum();
    assert!((1.0..1.2).contains(&waited), "waited {waited} s");
}
