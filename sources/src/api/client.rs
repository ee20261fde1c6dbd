//! The HTTP client of every API source: `GET {base_url}/{method}?{query}` on the shared
//! exchange ([`kass_pipeline::http`]), through the method's rate limiter, retried by the shared
//! loop ([`RetryPolicy::run`]), every try counted per source and method.
//!
//! What one call does:
//!
//! 1. waits for the method's budget and any pause a 429 set ([`MethodLimiters::acquire`]);
//!    after a pause, only one request of the method goes until it is answered; then, when the
//!    source has one, for the budget the server's last answers stated ([`ServerBudget`]); the
//!    waits are added to `kass_source_rate_limit_wait_seconds_total{source, method}`;
//! 2. sends the request with the source's [`Auth`] and counts it in
//!    `kass_source_requests_total{source, method, status}`; hands the answer's rate-limit
//!    headers to the server budget;
//! 3. asks the source's [`AnswerCheck`] whether a 2xx is what it seems: Slack answers errors,
//!    `ratelimited` included, with HTTP 200 and `{"ok": false, "error": "..."}`;
//! 4. on a 429 (or a 2xx the check calls rate limited), pauses the method (and the server
//!    budget's scope) for every task of the source, and tries again; the pause is the
//!    429's JSON body's float `retry_after` (Discord's), else the Retry-After, else the reset
//!    of a budget the answer says is spent, else the policy's back-off (gitlab.com sometimes
//!    answers 429 with neither); on a 5xx or no answer, backs off and tries again; anything else is final, as is the last try the policy allows.
//!
//! Errors are [`ApiError`]s naming the source and the method. They never hold the token: it
//! lives in a [`kass_pipeline::secret::Secret`], the request is never printed, and server
//! messages are redacted by the exchange. A key sent in the query string ([`Auth::Query`])
//! is added by the exchange at send time only, stripped from the `Link`s it is answered with
//! (so a next-page link never carries it) and masked in every failure.

use std::sync::Arc;
use std::time::Duration;

use kass_pipeline::http::{Answer, Auth, HttpClient, HttpConfig, HttpFailure};
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::telemetry::{self, SourceRetryScheduled};
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::paging::Incomplete;
use super::rate_limit::MethodLimiters;
use super::server_budget::{ServerBudget, Ticket};

/// What a 2xx answer means to the source, for APIs that answer errors with a success status.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The answer is the data asked for.
    Ok,
    /// The API refused for now: pause the method (for the pause given, else back off) and
    /// try again.
    RateLimited(Option<Duration>),
    /// The API refused for good, with its error code (`invalid_auth`, `channel_not_found`).
    Refused(String),
}

/// Reads a 2xx answer before it counts as success (Slack's `ok` field); see [`Verdict`].
pub type AnswerCheck = Arc<dyn Fn(&Answer) -> Verdict + Send + Sync>;

/// What an [`ApiClient`] is built from.
#[derive(Clone)]
pub struct ApiConfig {
    /// The source's name: the `source` label of its metrics, and the name its errors give.
    pub source: String,
    /// The API's root; a method is called at `{base_url}/{method}`.
    pub base_url: String,
    pub auth: Option<Auth>,
    /// Longest one try may take.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub limiters: Arc<MethodLimiters>,
    /// The budget the server's answers state (GitLab's `RateLimit-*` headers); `None`: the
    /// fixed tiers of `limiters` alone pace the source (Slack).
    pub budget: Option<Arc<ServerBudget>>,
    /// `None`: every 2xx is the data asked for.
    pub check: Option<AnswerCheck>,
}

impl ApiConfig {
    /// No auth, a 30 s timeout, the default retry policy, no budget, no check.
    pub fn new(source: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            base_url: base_url.into(),
            auth: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            limiters: Arc::new(MethodLimiters::unlimited()),
            budget: None,
            check: None,
        }
    }
}

/// Why a call failed, naming the source and the method; never the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("source {source_name}: cannot build its API client: {reason}")]
    Build { source_name: String, reason: String },
    #[error("source {source_name}: {method} failed after {attempts} tries: {failure}")]
    Http {
        source_name: String,
        method: String,
        attempts: u32,
        /// Boxed: it holds the server's message and JSON body, and errors travel by value.
        failure: Box<HttpFailure>,
    },
    #[error("source {source_name}: {method} still rate limited after {attempts} tries")]
    RateLimited {
        source_name: String,
        method: String,
        attempts: u32,
    },
    #[error("source {source_name}: {method} answered `{error}`")]
    Refused {
        source_name: String,
        method: String,
        /// The API's error code, for the source to act on (skip a channel, stop).
        error: String,
    },
    #[error("source {source_name}: {method} read stopped short: {reason}")]
    Incomplete {
        source_name: String,
        method: String,
        reason: Incomplete,
    },
    #[error("source {source_name}: {method} answered what it does not document: {reason}")]
    Decode {
        source_name: String,
        method: String,
        reason: String,
    },
    #[error("source {source_name}: {method} links to {link}, outside {base_url}; not followed")]
    ForeignLink {
        source_name: String,
        method: String,
        link: String,
        base_url: String,
    },
}

impl ApiError {
    /// The HTTP status of a failed exchange (a REST API's 401, 403, 404).
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { failure, .. } => failure.status(),
            _ => None,
        }
    }

    /// The API's error code of a refusal (`invalid_auth`), the HTTP status of a failure, or
    /// why a paged read stopped short (`repeated_cursor`, `incomplete_listing`, `page_cap`).
    pub fn code(&self) -> Option<String> {
        match self {
            Self::Refused { error, .. } => Some(error.clone()),
            Self::Incomplete { reason, .. } => Some(reason.code().to_string()),
            Self::Http { failure, .. } => failure.status().map(|s| s.to_string()),
            _ => None,
        }
    }
}

/// One failed try, before the retry loop decides.
#[derive(Debug)]
enum TryFailure {
    /// With the wait until the reset when the answer said the budget is spent.
    Http(HttpFailure, Option<Duration>),
    RateLimited(Option<Duration>),
    Refused(String),
}

impl TryFailure {
    fn retry(&self) -> Option<Option<Duration>> {
        match self {
            Self::Http(failure, reset) if failure.status() == Some(429) => {
                failure.retry().map(|_| asked_pause(failure).or(*reset))
            }
            Self::Http(failure, _) => failure.retry(),
            Self::RateLimited(after) => Some(*after),
            Self::Refused(_) => None,
        }
    }

    /// The pause a rate limit asked for.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http(failure, reset) => asked_pause(failure).or(*reset),
            Self::RateLimited(after) => *after,
            Self::Refused(_) => None,
        }
    }

    fn is_rate_limit(&self) -> bool {
        match self {
            Self::Http(failure, _) => failure.status() == Some(429),
            Self::RateLimited(_) => true,
            Self::Refused(_) => false,
        }
    }
}

impl std::fmt::Display for TryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(failure, _) => failure.fmt(f),
            Self::RateLimited(_) => f.write_str("rate limited"),
            Self::Refused(error) => write!(f, "refused: {error}"),
        }
    }
}

/// An API source's client; cheap to clone, clones share connections and rate limiters.
#[derive(Clone)]
pub struct ApiClient {
    source: String,
    base_url: String,
    http: HttpClient,
    retry: RetryPolicy,
    limiters: Arc<MethodLimiters>,
    budget: Option<Arc<ServerBudget>>,
    check: Option<AnswerCheck>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("source", &self.source)
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .finish()
    }
}

impl ApiClient {
    pub fn new(config: ApiConfig) -> Result<Self, ApiError> {
        let http = HttpClient::new(HttpConfig {
            auth: config.auth,
            ..HttpConfig::new(config.source.clone(), config.timeout)
        })
        .map_err(|e| ApiError::Build {
            source_name: config.source.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            base_url: config.base_url.trim_end_matches('/').to_string(),
            source: config.source,
            http,
            retry: config.retry,
            limiters: config.limiters,
            budget: config.budget,
            check: config.check,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// A paged read of `method` that stopped short, as an error naming the source and method.
    pub fn incomplete(&self, method: &str, reason: Incomplete) -> ApiError {
        ApiError::Incomplete {
            source_name: self.source.clone(),
            method: method.to_string(),
            reason,
        }
    }

    /// Calls `method` with `query` and returns the 2xx answer, retried as the module says.
    pub async fn get(&self, method: &str, query: &[(&str, &str)]) -> Result<Answer, ApiError> {
        self.get_route(method, method, query).await
    }

    /// Calls `path` (under `base_url`) as `route`: the route, not the path, labels the
    /// request's metrics, picks its rate limiter and names it in errors, so the ids in a REST
    /// path (`projects/123/issues/45/notes`) never become a label (`issue_notes`).
    pub async fn get_route(
        &self,
        route: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Answer, ApiError> {
        let url = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        self.call(route, &url, query).await
    }

    /// A 2xx answer's body as `T`; a body of another shape is an error naming `route`.
    pub fn decode<T: DeserializeOwned>(&self, route: &str, answer: &Answer) -> Result<T, ApiError> {
        answer.json().map_err(|e| ApiError::Decode {
            source_name: self.source.clone(),
            method: route.to_string(),
            reason: e.to_string(),
        })
    }

    /// [`Self::get`], the body parsed as `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        method: &str,
        query: &[(&str, &str)],
    ) -> Result<(T, Answer), ApiError> {
        let answer = self.get(method, query).await?;
        let value = answer.json().map_err(|e| ApiError::Decode {
            source_name: self.source.clone(),
            method: method.to_string(),
            reason: e.to_string(),
        })?;
        Ok((value, answer))
    }

    /// Follows a link a page of `method` gave (`Link: <url>; rel="next"`), counted and limited
    /// as `method`. A link outside `base_url` is refused: it would carry the token elsewhere.
    pub async fn get_link(&self, method: &str, link: &str) -> Result<Answer, ApiError> {
        let inside = link
            .strip_prefix(&self.base_url)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
        if !inside {
            return Err(ApiError::ForeignLink {
                source_name: self.source.clone(),
                method: method.to_string(),
                link: kass_pipeline::error::excerpt(&self.http.shown(link), 200),
                base_url: self.base_url.clone(),
            });
        }
        self.call(method, link, &[]).await
    }

    async fn call(
        &self,
        method: &str,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<Answer, ApiError> {
        let result = self
            .retry
            .run(
                |_| self.try_once(method, url, query),
                TryFailure::retry,
                |failure, attempt, delay| {
                    if failure.is_rate_limit() {
                        self.limiters.pause(method, delay);
                        if let Some(budget) = &self.budget {
                            budget.pause(method, url, delay);
                        }
                        telemetry::source_rate_limit_wait(
                            &self.source,
                            method,
                            delay.as_secs_f64(),
                        );
                    }
                    SourceRetryScheduled {
                        source: &self.source,
                        method,
                        attempt,
                        delay,
                        error: failure,
                    }
                    .emit();
                },
            )
            .await;
        result.map_err(|(failure, attempts)| {
            let source_name = self.source.clone();
            let method = method.to_string();
            match failure {
                TryFailure::Http(failure, _) if failure.status() == Some(429) => {
                    ApiError::RateLimited {
                        source_name,
                        method,
                        attempts,
                    }
                }
                TryFailure::Http(failure, _) => ApiError::Http {
                    source_name,
                    method,
                    attempts,
                    failure: Box::new(failure),
                },
                TryFailure::RateLimited(_) => ApiError::RateLimited {
                    source_name,
                    method,
                    attempts,
                },
                TryFailure::Refused(error) => ApiError::Refused {
                    source_name,
                    method,
                    error,
                },
            }
        })
    }

    async fn try_once(
        &self,
        method: &str,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<Answer, TryFailure> {
        let permit = self.limiters.acquire(method).await;
        let ticket = match &self.budget {
            Some(budget) => Some(budget.acquire(method, url).await),
            None => None,
        };
        let waited = permit.waited() + ticket.as_ref().map_or(Duration::ZERO, Ticket::waited);
        if !waited.is_zero() {
            telemetry::source_rate_limit_wait(&self.source, method, waited.as_secs_f64());
        }
        let request = self.http.request(Method::GET, &with_query(url, query));
        let (sent, headers) = self.http.send_keeping_headers(request).await;
        let mut outcome = match sent {
            Ok(answer) => match self.check.as_ref().map_or(Verdict::Ok, |c| c(&answer)) {
                Verdict::Ok => Ok(answer),
                Verdict::RateLimited(after) => Err(TryFailure::RateLimited(after)),
                Verdict::Refused(error) => Err(TryFailure::Refused(error)),
            },
            Err(failure) => Err(TryFailure::Http(failure, None)),
        };
        let no_answer = matches!(&outcome, Err(TryFailure::Http(f, _)) if f.status().is_none());
        if let Some(ticket) = ticket.filter(|_| !no_answer) {
            let limited = matches!(&outcome, Err(f) if f.is_rate_limit());
            let asked = outcome
                .as_ref()
                .err()
                .filter(|f| f.is_rate_limit())
                .and_then(TryFailure::retry_after);
            let reset = ticket.answered_asking(&headers, limited, asked);
            if let Err(TryFailure::Http(_, spent)) = &mut outcome {
                *spent = reset;
            }
        }
        match &outcome {
            Err(failure) if failure.is_rate_limit() => permit.rate_limited(failure.retry_after()),
            _ => permit.answered(),
        }
        let status = match &outcome {
            Ok(answer) => answer.status.as_u16().to_string(),
            Err(TryFailure::Http(failure, _)) => failure.label(),
            Err(TryFailure::RateLimited(_)) => "ratelimited".to_string(),
            Err(TryFailure::Refused(error)) => error.clone(),
        };
        telemetry::source_request(&self.source, method, &status);
        outcome
    }
}

/// The pause a failed answer asks for: a 429's JSON body's `retry_after` in seconds, a float
/// (Discord's `{"message", "retry_after": 0.5, "global"}`, more precise than its
/// `Retry-After` header, which is rounded up to whole seconds), else the headers'
/// ([`HttpFailure::retry_after`]: `retry-after-ms`, `Retry-After`). A body's value that is
/// not a finite, non-negative number is ignored.
fn asked_pause(failure: &HttpFailure) -> Option<Duration> {
    let from_body = match failure {
        HttpFailure::Status {
            status,
            json: Some(body),
            ..
        } if status.as_u16() == 429 => body
            .get("retry_after")
            .and_then(serde_json::Value::as_f64)
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok()),
        _ => None,
    };
    from_body.or_else(|| failure.retry_after())
}

/// `url` with `query` appended, form-encoded (after the link's own query, if it has one).
fn with_query(url: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return url.to_string();
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}{encoded}")
}

#[cfg(test)]
mod tests {
    use kass_pipeline::secret::Secret;

    use super::*;

    #[test]
    fn a_429_body_s_float_retry_after_is_the_pause_before_the_header_s() {
        use reqwest::header::{HeaderMap, HeaderValue};
        use reqwest::StatusCode;
        let failure = |retry_after_header: Option<&str>, body: &str| {
            let mut headers = HeaderMap::new();
            if let Some(value) = retry_after_header {
                headers.insert("retry-after", HeaderValue::from_str(value).unwrap());
            }
            HttpFailure::from_answer(StatusCode::TOO_MANY_REQUESTS, &headers, body.as_bytes())
        };
        let discord =
            r#"{"message": "You are being rate limited.", "retry_after": 0.5, "global": false}"#;
        // Discord's header says 1 (rounded up): the body's 0.5 is taken.
        let limited = failure(Some("1"), discord);
        assert_eq!(asked_pause(&limited), Some(Duration::from_millis(500)));
        let tried = TryFailure::Http(limited, Some(Duration::from_secs(9)));
        assert_eq!(tried.retry(), Some(Some(Duration::from_millis(500))));
        assert_eq!(tried.retry_after(), Some(Duration::from_millis(500)));
        // No header at all: the body alone.
        assert_eq!(
            asked_pause(&failure(None, r#"{"retry_after": 2.25}"#)),
            Some(Duration::from_millis(2250))
        );
        // No body's value, or one that is no pause: the header's.
        assert_eq!(
            asked_pause(&failure(Some("3"), r#"{"message": "slow down"}"#)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            asked_pause(&failure(Some("3"), r#"{"retry_after": -1}"#)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            asked_pause(&failure(Some("3"), r#"{"retry_after": "soon"}"#)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(asked_pause(&failure(None, "not json")), None);
        // Neither: the reset the budget stated.
        let tried = TryFailure::Http(failure(None, "{}"), Some(Duration::from_secs(4)));
        assert_eq!(tried.retry(), Some(Some(Duration::from_secs(4))));
        // Only a 429's body is read: a 503's `retry_after` field is the server's own business.
        let unavailable = HttpFailure::from_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            br#"{"retry_after": 0.5}"#,
        );
        assert_eq!(asked_pause(&unavailable), None);
    }

    #[test]
    fn query_parameters_are_encoded_after_the_url() {
        assert_eq!(
            with_query(
                "http://x/api/m",
                &[("cursor", "dGVhbTpD+/="), ("limit", "200")]
            ),
            "http://x/api/m?cursor=dGVhbTpD%2B%2F%3D&limit=200"
        );
        assert_eq!(
            with_query("http://x/p?page=2", &[("a", "b c")]),
            "http://x/p?page=2&a=b+c"
        );
        assert_eq!(with_query("http://x/p", &[]), "http://x/p");
    }

    #[tokio::test]
    async fn a_link_outside_the_api_is_never_followed() {
        let client = ApiClient::new(ApiConfig {
            auth: Some(Auth::Bearer(Secret::new("xoxb-client-unit-0001"))),
            ..ApiConfig::new("gitlab", "http://127.0.0.1:9/api/v4/")
        })
        .unwrap();
        for link in [
            "https://evil.example/api/v4/projects?page=2",
            "http://127.0.0.1:9/api/v4evil/projects",
        ] {
            let error = client.get_link("projects", link).await.unwrap_err();
            assert!(matches!(error, ApiError::ForeignLink { .. }), "{error}");
            assert!(error
                .to_string()
                .starts_with("source gitlab: projects links to"));
        }
        assert!(!format!("{client:?}").contains("xoxb-client-unit"));
    }
}
