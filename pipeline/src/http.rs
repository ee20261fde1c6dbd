//! One HTTP exchange for every remote API kass calls (Chroma, the embedding providers, the
//! API sources): how the client is built, how a request is authenticated, and what a failed
//! try means.
//!
//! An [`HttpClient`] sends one try and reads the whole answer. A 2xx comes back as an
//! [`Answer`]; anything else as an [`HttpFailure`] that says whether another try is worth it
//! (no answer, a timeout, 429 and 5xx are; other statuses are final), the pause the server
//! asked for (`retry-after-ms`, then `Retry-After` in seconds or as an HTTP date) and the
//! server's own message, cut short and redacted. Retrying is the caller's, through the one
//! loop, [`crate::retry::RetryPolicy::run`]:
//!
//! ```no_run
//! # async fn demo(policy: kass_pipeline::retry::RetryPolicy) -> Result<(), kass_pipeline::http::BuildError> {
//! use std::time::Duration;
//! use kass_pipeline::http::{Auth, HttpClient, HttpConfig, HttpFailure};
//! use kass_pipeline::secret::Secret;
//!
//! let http = HttpClient::new(HttpConfig {
//!     auth: Some(Auth::Bearer(Secret::new("xoxb-0123456789"))),
//!     ..HttpConfig::new("slack", Duration::from_secs(30))
//! })?;
//! let url = "https://slack.com/api/conversations.list";
//! let answer = policy
//!     .run(|_| http.send(http.request(reqwest::Method::GET, url)), HttpFailure::retry, |_, _, _| {})
//!     .await;
//! # Ok(()) }
//! ```
//!
//! Every try is counted in `kass_http_requests_total{client, status}` and timed in
//! `kass_http_request_seconds{client}` ([`crate::telemetry::http_request`]).

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, LINK, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{error_chain, excerpt};
use crate::redact::MASK;
use crate::retry::parse_retry_after;
use crate::secret::Secret;
use crate::telemetry;

/// Longest server message kept in an error (and so in a log line or a dead letter).
pub const MAX_MESSAGE_CHARS: usize = 500;

/// The `User-Agent` of every request kass sends.
pub const USER_AGENT: &str = concat!("kass/", env!("CARGO_PKG_VERSION"));

/// How a request proves who sends it.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: Bearer <secret>`.
    Bearer(Secret),
    /// The secret alone in a header of its own (`x-chroma-token`, `PRIVATE-TOKEN`).
    Header(HeaderName, Secret),
    /// The secret as a query parameter of every request (Backlog's `apiKey=...`). A URL is
    /// printed where a header never is (a reqwest error names the URL it failed on, a server
    /// echoes it in a `Link` or an error body), so the client adds the parameter only when it
    /// sends, strips it from every `Link` it is answered with, and masks it in every failure
    /// it reports ([`HttpClient`]).
    Query(String, Secret),
    /// `Authorization: <scheme> <secret>`: Discord's `Bot <token>`.
    Scheme(&'static str, Secret),
}

/// How an [`HttpClient`] sends its [`Auth`], checked once when it is built.
#[derive(Clone)]
enum Credential {
    Header(HeaderName, HeaderValue),
    Query(String, Secret),
}

impl Auth {
    fn credential(&self) -> Result<Credential, BuildError> {
        match self {
            Self::Query(name, secret) => Ok(Credential::Query(name.clone(), secret.clone())),
            _ => self
                .header()
                .map(|(name, value)| Credential::Header(name, value)),
        }
    }

    /// The header to send; marked sensitive, so HTTP internals never print it.
    fn header(&self) -> Result<(HeaderName, HeaderValue), BuildError> {
        let (name, value) = match self {
            Self::Bearer(secret) => (AUTHORIZATION, format!("Bearer {}", secret.expose())),
            Self::Scheme(scheme, secret) => {
                (AUTHORIZATION, format!("{scheme} {}", secret.expose()))
            }
            Self::Header(name, secret) => (name.clone(), secret.expose().to_string()),
            Self::Query(name, _) => {
                return Err(BuildError(format!(
                    "the secret for query parameter {name} travels in the URL, not a header"
                )))
            }
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            BuildError(format!(
                "the secret for header {name} holds a character a header cannot carry"
            ))
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

/// What an [`HttpClient`] is built from.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The `client` label of the request metrics: `chroma`, `voyage`, `slack`, ...
    pub name: String,
    /// Longest a whole try may take, connecting and reading the answer included.
    pub timeout: Duration,
    /// Longest the connection alone may take.
    pub connect_timeout: Duration,
    pub auth: Option<Auth>,
}

impl HttpConfig {
    /// No auth and a 10 s connect timeout.
    pub fn new(name: impl Into<String>, timeout: Duration) -> Self {
        Self {
            name: name.into(),
            timeout,
            connect_timeout: Duration::from_secs(10),
            auth: None,
        }
    }
}

/// The HTTP client could not be built (a TLS setup error, a secret no header can carry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build HTTP client: {0}")]
pub struct BuildError(String);

/// A reqwest client (rustls, kass's user agent, the configured timeouts) that authenticates
/// every request and counts every try. Cheap to clone: clones share the connection pool.
///
/// With [`Auth::Query`], the one place the key meets a URL is here: [`Self::request`] strips
/// any copy of the parameter from the URL and adds the key; [`Self::send`] strips it from the
/// answer's `Link` headers (a next-page link the server built from the request) and masks it
/// in the failure's message (reqwest's errors print the URL, servers echo it in bodies).
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    name: String,
    auth: Option<Credential>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = self.auth.as_ref().map(|c| match c {
            Credential::Header(name, _) => format!("header {name}"),
            Credential::Query(name, _) => format!("query {name}"),
        });
        f.debug_struct("HttpClient")
            .field("name", &self.name)
            .field("auth", &auth)
            .finish()
    }
}

impl HttpClient {
    pub fn new(config: HttpConfig) -> Result<Self, BuildError> {
        let client = reqwest::Client::builder()
            .tls_backend_rustls()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| BuildError(e.to_string()))?;
        let auth = config.auth.as_ref().map(Auth::credential).transpose()?;
        Ok(Self {
            client,
            name: config.name,
            auth,
        })
    }

    /// A request to `url`, authenticated; add a body, query or headers, then [`Self::send`].
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        match &self.auth {
            Some(Credential::Header(name, value)) => {
                self.client.request(method, url).header(name, value.clone())
            }
            Some(Credential::Query(name, secret)) => {
                let url = without_query_param(url, name);
                let pair = form_urlencoded::Serializer::new(String::new())
                    .append_pair(name, secret.expose())
                    .finish();
                let joiner = if url.contains('?') { '&' } else { '?' };
                self.client.request(method, format!("{url}{joiner}{pair}"))
            }
            None => self.client.request(method, url),
        }
    }

    /// Sends one try and reads the whole answer: a 2xx as an [`Answer`], anything else as
    /// the [`HttpFailure`] it means.
    pub async fn send(&self, request: RequestBuilder) -> Result<Answer, HttpFailure> {
        self.send_keeping_headers(request).await.0
    }

    /// [`Self::send`], with the headers of the answer whatever its status (empty when there
    /// was none): a 429's `RateLimit-*` headers say when the budget comes back.
    pub async fn send_keeping_headers(
        &self,
        request: RequestBuilder,
    ) -> (Result<Answer, HttpFailure>, HeaderMap) {
        let started = Instant::now();
        let (mut result, mut headers) = exchange(request).await;
        let status = match &result {
            Ok(answer) => answer.status.as_u16().to_string(),
            Err(failure) => failure.label(),
        };
        telemetry::http_request(&self.name, &status, started.elapsed().as_secs_f64());
        if let Some(Credential::Query(name, secret)) = &self.auth {
            strip_from_links(&mut headers, name);
            match &mut result {
                Ok(answer) => strip_from_links(&mut answer.headers, name),
                Err(failure) => failure.mask(secret.expose()),
            }
        }
        (result, headers)
    }

    /// `text` (a URL, a message) with this client's query-string key masked, for a caller
    /// that shows a URL of its own making (a link it refused to follow).
    pub fn shown(&self, text: &str) -> String {
        match &self.auth {
            Some(Credential::Query(_, secret)) => mask_value(text, secret.expose()),
            _ => text.to_string(),
        }
    }
}

async fn exchange(request: RequestBuilder) -> (Result<Answer, HttpFailure>, HeaderMap) {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return (Err(HttpFailure::network(e)), HeaderMap::new()),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => return (Err(HttpFailure::network(e)), headers),
    };
    let result = if status.is_success() {
        Ok(Answer {
            status,
            headers: headers.clone(),
            body: body.to_vec(),
        })
    } else {
        Err(HttpFailure::from_answer(status, &headers, &body))
    };
    (result, headers)
}

/// `url` without any `name=...` pair in its query (a link the server built from a request
/// that carried the key); borrowed when there is none.
pub fn without_query_param<'a>(url: &'a str, name: &str) -> std::borrow::Cow<'a, str> {
    let Some((base, rest)) = url.split_once('?') else {
        return url.into();
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (rest, None),
    };
    let is_key = |pair: &&str| {
        let key = pair.split('=').next().unwrap_or("");
        form_urlencoded::parse(key.as_bytes())
            .next()
            .is_some_and(|(k, _)| k == name)
            || key == name
    };
    if !query.split('&').any(|pair| is_key(&pair)) {
        return url.into();
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !is_key(pair))
        .collect();
    let mut out = base.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out.into()
}

/// Every `Link` value with the `name` parameter taken out of its targets.
fn strip_from_links(headers: &mut HeaderMap, name: &str) {
    let links: Vec<HeaderValue> = headers.get_all(LINK).iter().cloned().collect();
    if links.is_empty() {
        return;
    }
    headers.remove(LINK);
    for link in links {
        let Ok(text) = link.to_str() else { continue };
        let cleaned = strip_link_targets(text, name);
        if let Ok(value) = HeaderValue::from_str(&cleaned) {
            headers.append(LINK, value);
        }
    }
}

/// The `<url>` targets of one `Link` value with the parameter removed.
fn strip_link_targets(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|i| open + i) else {
            break;
        };
        out.push_str(&rest[..=open]);
        out.push_str(&without_query_param(&rest[open + 1..close], name));
        out.push('>');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn mask_json(json: &mut Value, value: &str) {
    match json {
        Value::String(text) => *text = mask_value(text, value),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_json(v, value)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_json(v, value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` with `value` masked as it is and as a URL's query carries it (form-encoded).
fn mask_value(text: &str, value: &str) -> String {
    if value.is_empty() {
        return text.to_string();
    }
    let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let mut out = text.replace(value, MASK);
    if encoded != value {
        out = out.replace(&encoded, MASK);
    }
    out
}

/// A 2xx answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Why one try failed. Messages are excerpts, redacted, and never hold the request (and so
/// never its credentials).
#[derive(Debug, Clone, PartialEq)]
pub enum HttpFailure {
    /// No answer within the timeout.
    Timeout { message: String },
    /// No answer: refused, reset, a DNS failure, a body cut off.
    Network { message: String },
    /// An answer outside 2xx.
    Status {
        status: StatusCode,
        /// The server's own words ([`error_message`]).
        message: String,
        /// The pause the server asked for ([`retry_after`]).
        retry_after: Option<Duration>,
        /// The body, when it is JSON, for what a caller reads beyond the message.
        json: Option<Value>,
    },
}

impl HttpFailure {
    fn network(e: reqwest::Error) -> Self {
        // reqwest's Display names the URL but never headers, so a key cannot appear here.
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        let message = excerpt(&format!("{what}: {}", error_chain(&e)), MAX_MESSAGE_CHARS);
        if e.is_timeout() {
            Self::Timeout { message }
        } else {
            Self::Network { message }
        }
    }

    /// The failure a non-2xx answer means.
    pub fn from_answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        Self::Status {
            status,
            message: error_message(status, json.as_ref(), body),
            retry_after: retry_after(headers),
            json,
        }
    }

    /// Worth sending the same request again: no answer, 429 or 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Network { .. } => true,
            Self::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
        }
    }

    /// The pause the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// What [`crate::retry::RetryPolicy::run`] asks of an error: `None` when it is final,
    /// else the pause the server asked for (`Some(None)`: back off as usual).
    pub fn retry(&self) -> Option<Option<Duration>> {
        self.is_retryable().then(|| self.retry_after())
    }

    /// The answer's status code; `None` when there was no answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }

    /// Masks `value` (a query-string key) in the message, whatever its length: the global
    /// redactor leaves values under [`crate::redact::MIN_SECRET_CHARS`] alone.
    fn mask(&mut self, value: &str) {
        match self {
            Self::Timeout { message } | Self::Network { message } => {
                *message = mask_value(message, value)
            }
            Self::Status { message, json, .. } => {
                *message = mask_value(message, value);
                if let Some(json) = json {
                    mask_json(json, value);
                }
            }
        }
    }

    /// The server's message, or what went wrong on the way.
    pub fn message(&self) -> &str {
        match self {
            Self::Timeout { message } | Self::Network { message } => message,
            Self::Status { message, .. } => message,
        }
    }

    /// The `status` label of the request metrics: the code, `timeout` or `network`.
    pub fn label(&self) -> String {
        match self {
            Self::Timeout { .. } => "timeout".into(),
            Self::Network { .. } => "network".into(),
            Self::Status { status, .. } => status.as_u16().to_string(),
        }
    }
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { message } | Self::Network { message } => f.write_str(message),
            Self::Status {
                status, message, ..
            } => write!(f, "HTTP {}: {message}", status.as_u16()),
        }
    }
}

/// The pause a response asks for: `retry-after-ms` (milliseconds, sent by OpenAI-style APIs
/// and read first by their SDKs), else `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| header(RETRY_AFTER.as_str()).and_then(parse_retry_after))
}

/// The message of an error body, cut to [`MAX_MESSAGE_CHARS`] and redacted: the text in the
/// JSON shapes APIs document, else the body's text, else the status's reason.
///
/// Shapes: Backlog `{"errors": [{"message", "code"}]}`; OpenAI `{"error": {"message"}}`; Chroma `{"error": kind, "message"}`, Cohere,
/// GitLab and Discord `{"message"}`; TEI, Hugging Face and Slack `{"error": "..."}`; FastAPI
/// (Voyage) `{"detail": "..."}` or a list of `{"msg"}`.
pub fn error_message(status: StatusCode, json: Option<&Value>, body: &[u8]) -> String {
    let message = json
        .and_then(json_message)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    if message.trim().is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string();
    }
    excerpt(&message, MAX_MESSAGE_CHARS)
}

fn json_message(body: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        let messages: Vec<String> = errors.iter().filter_map(backlog_error).collect();
        if !messages.is_empty() {
            return Some(messages.join("; "));
        }
    }
    let error = body.get("error");
    if let Some(message) = error.and_then(|e| e.get("message")).and_then(text) {
        return Some(message);
    }
    if let Some(message) = body.get("message").and_then(text) {
        return Some(message);
    }
    if let Some(error) = error.and_then(text) {
        return Some(error);
    }
    let detail = body.get("detail")?;
    text(detail).or_else(|| {
        detail.as_array().map(|items| {
            items
                .iter()
                .map(|i| i.get("msg").and_then(text).unwrap_or_else(|| i.to_string()))
                .collect::<Vec<_>>()
                .join("; ")
        })
    })
}

/// One of Backlog's `{"errors": [{"message", "code", "moreInfo"}]}`: `message (code N)`.
fn backlog_error(error: &Value) -> Option<String> {
    let message = error.get("message")?.as_str()?;
    Some(match error.get("code").and_then(Value::as_i64) {
        Some(code) => format!("{message} (code {code})"),
        None => message.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn failure(code: u16, body: &str, pairs: &[(&str, &str)]) -> HttpFailure {
        HttpFailure::from_answer(
            StatusCode::from_u16(code).unwrap(),
            &headers(pairs),
            body.as_bytes(),
        )
    }

    #[test]
    fn retry_after_in_seconds_milliseconds_and_as_a_date() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        // The milliseconds win: they are the finer of the two.
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "2"),
                ("retry-after-ms", "1500")
            ])),
            Some(Duration::from_millis(1500))
        );
        // A bad milliseconds value falls back to the standard header.
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2"), ("retry-after-ms", "-1")])),
            Some(Duration::from_secs(2))
        );
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        let asked = retry_after(&headers(&[("retry-after", &in_a_minute)])).unwrap();
        assert!(asked > Duration::from_secs(55) && asked <= Duration::from_secs(60));
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn no_answer_429_and_5xx_are_retried_other_statuses_are_final() {
        for code in [429, 500, 502, 503, 504] {
            assert!(failure(code, "", &[]).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 413, 422] {
            let f = failure(code, "", &[]);
            assert!(!f.is_retryable(), "{code}");
            assert_eq!(f.retry(), None, "{code}");
        }
        assert!(HttpFailure::Timeout {
            message: "t".into()
        }
        .is_retryable());
        assert!(HttpFailure::Network {
            message: "n".into()
        }
        .is_retryable());
        let busy = failure(503, "", &[("retry-after", "3")]);
        assert_eq!(busy.retry(), Some(Some(Duration::from_secs(3))));
        assert_eq!(failure(500, "", &[]).retry(), Some(None));
        assert_eq!(busy.status(), Some(503));
        assert_eq!(
            HttpFailure::Network {
                message: "n".into()
            }
            .status(),
            None
        );
    }

    #[test]
    fn a_status_failure_names_its_code_and_the_server_message() {
        let f = failure(
            503,
            r#"{"error":"Unavailable","message":"compactor busy"}"#,
            &[],
        );
        assert_eq!(f.to_string(), "HTTP 503: compactor busy");
        assert_eq!(f.label(), "503");
        let t = HttpFailure::Timeout {
            message: "timed out: operation timed out".into(),
        };
        assert_eq!(t.to_string(), "timed out: operation timed out");
        assert_eq!(t.label(), "timeout");
    }

    #[test]
    fn messages_from_every_documented_error_shape() {
        let message = |body: &str| match failure(400, body, &[]) {
            HttpFailure::Status { message, .. } => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(r#"{"error":{"message":"Invalid 'input[2]'","type":"invalid_request_error"}}"#),
            "Invalid 'input[2]'"
        );
        assert_eq!(
            message(r#"{"error":"InvalidArgumentError","message":"Expected 384 dimensions"}"#),
            "Expected 384 dimensions"
        );
        assert_eq!(
            message(r#"{"id":"x","message":"invalid api token"}"#),
            "invalid api token"
        );
        assert_eq!(
            message(r#"{"ok":false,"error":"channel_not_found"}"#),
            "channel_not_found"
        );
        assert_eq!(message(r#"{"detail":"rate limit"}"#), "rate limit");
        assert_eq!(
            message(r#"{"errors":[{"message":"No project.","code":6,"moreInfo":""}]}"#),
            "No project. (code 6)"
        );
        assert_eq!(
            message(r#"{"detail":[{"msg":"field required"},{"msg":"too long"}]}"#),
            "field required; too long"
        );
        // Not JSON, or JSON without a known field: the text itself.
        assert_eq!(
            message("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(message(r#"{"code":7}"#), r#"{"code":7}"#);
        // An empty body, or an empty message: the status's reason.
        assert_eq!(message(""), "Bad Request");
        assert_eq!(message(r#"{"message":"  "}"#), "Bad Request");
        assert_eq!(
            error_message(StatusCode::from_u16(599).unwrap(), None, b" "),
            "no message"
        );
    }

    #[test]
    fn messages_are_cut_and_redacted() {
        crate::redact::register("sk-http-unit-0123456789");
        let long = "x".repeat(5_000);
        let f = failure(500, &long, &[]);
        assert!(f.message().chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(f.message().ends_with('…'));
        let echoed = failure(
            401,
            r#"{"message":"bad key sk-http-unit-0123456789 from https://bob:pw@proxy/v1"}"#,
            &[],
        );
        assert_eq!(echoed.message(), "bad key *** from https://***@proxy/v1");
    }

    #[test]
    fn auth_headers_are_sensitive_and_checked_once() {
        let (name, value) = Auth::Bearer(Secret::new("tok-http-unit-0001"))
            .header()
            .unwrap();
        assert_eq!(name, AUTHORIZATION);
        assert_eq!(value, "Bearer tok-http-unit-0001");
        assert!(value.is_sensitive());
        let (_, value) = Auth::Scheme("Bot", Secret::new("tok-http-unit-0004"))
            .header()
            .unwrap();
        assert_eq!(value, "Bot tok-http-unit-0004");
        assert!(value.is_sensitive());
        let named = HeaderName::from_static("x-chroma-token");
        let (name, value) = Auth::Header(named.clone(), Secret::new("tok-http-unit-0002"))
            .header()
            .unwrap();
        assert_eq!(
            (name, value.to_str().unwrap()),
            (named, "tok-http-unit-0002")
        );
        let refused = Auth::Bearer(Secret::new("tok-with\nnewline")).header();
        assert!(refused.is_err());
        assert!(!refused.unwrap_err().to_string().contains("newline"));
        let client = HttpClient::new(HttpConfig {
            auth: Some(Auth::Bearer(Secret::new("tok-http-unit-0003"))),
            ..HttpConfig::new("unit", Duration::from_secs(1))
        })
        .unwrap();
        assert!(!format!("{client:?}").contains("tok-http-unit"));
    }

    #[test]
    fn a_query_key_is_stripped_from_urls_and_links_and_masked_in_messages() {
        assert_eq!(
            without_query_param("http://x/api/m?apiKey=k1&page=2#top", "apiKey"),
            "http://x/api/m?page=2#top"
        );
        assert_eq!(
            without_query_param("http://x/api/m?page=2&apiKey=k1", "apiKey"),
            "http://x/api/m?page=2"
        );
        assert_eq!(
            without_query_param("http://x/m?apiKey=k1", "apiKey"),
            "http://x/m"
        );
        assert!(matches!(
            without_query_param("http://x/m?apikeys=1", "apiKey"),
            std::borrow::Cow::Borrowed(_)
        ));
        let link = r#"<http://x/m?apiKey=Qz7%2Bk&page=3>; rel="next", <http://x/m?page=1&apiKey=Qz7%2Bk>; rel="first""#;
        assert_eq!(
            strip_link_targets(link, "apiKey"),
            r#"<http://x/m?page=3>; rel="next", <http://x/m?page=1>; rel="first""#
        );
        assert_eq!(
            mask_value(
                "for url (http://x/m?apiKey=Qz7%2Bk): key Qz7+k refused",
                "Qz7+k"
            ),
            "for url (http://x/m?apiKey=***): key *** refused"
        );
        let client = HttpClient::new(HttpConfig {
            auth: Some(Auth::Query("apiKey".into(), Secret::new("Qz7+k"))),
            ..HttpConfig::new("unit", Duration::from_secs(1))
        })
        .unwrap();
        let request = client
            .request(Method::GET, "http://x/m?apiKey=old&page=2")
            .build()
            .unwrap();
        assert_eq!(request.url().as_str(), "http://x/m?page=2&apiKey=Qz7%2Bk");
        assert!(!format!("{client:?}").contains("Qz7"));
    }
}
