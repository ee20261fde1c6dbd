//! A local HTTP server that answers like the embedding APIs kass talks to: the documented
//! paths, request fields, bearer auth, response JSON, error bodies, and (optionally) a
//! requests- and tokens-per-window limit answered with 429 + Retry-After, like the real ones.
//!
//! It records every request (arrival time, inputs, tokens, status) so that tests can check
//! what the client did from the server's side: the rate never exceeded, nothing sent twice.
//! Vectors are a deterministic function of the text, so a test can check each chunk got its own.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Voyage,
    OpenAi,
    Cohere,
    HfInference,
    Tei,
}

#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub api: Api,
    /// Bearer key the server requires; `None` accepts any or none.
    pub api_key: Option<String>,
    pub dimension: usize,
    pub requests_per_window: Option<usize>,
    pub tokens_per_window: Option<usize>,
    pub window: Duration,
    /// Inputs allowed per request (the API's documented cap).
    pub max_inputs: usize,
    /// An input containing this text is refused like an over-long input.
    pub poison_marker: Option<String>,
    /// The first N requests fail with this status (500, 503, ...).
    pub fail_first: usize,
    pub fail_status: u16,
    /// Send Retry-After as an HTTP date instead of seconds.
    pub retry_after_as_date: bool,
    /// Artificial latency per request.
    pub latency: Duration,
    /// Every error message quotes the Authorization header the request carried, as some
    /// providers and gateways do: what kass must never copy into its output.
    pub echo_key: bool,
}

impl FakeOptions {
    pub fn new(api: Api) -> Self {
        Self {
            api,
            api_key: Some("test-key-123".into()),
            dimension: 8,
            requests_per_window: None,
            tokens_per_window: None,
            window: Duration::from_secs(60),
            max_inputs: 1000,
            poison_marker: None,
            fail_first: 0,
            fail_status: 503,
            retry_after_as_date: false,
            latency: Duration::ZERO,
            echo_key: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub at: Instant,
    pub inputs: Vec<String>,
    pub tokens: usize,
    pub status: u16,
    pub body: Value,
    /// The bearer key the request carried: with `api_key: None`, each client can present its
    /// own, so a test tells its workers apart.
    pub key: Option<String>,
}

/// A request as it arrived, before it was answered.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: Instant,
    pub key: Option<String>,
    pub inputs: Vec<String>,
}

struct Inner {
    options: FakeOptions,
    log: Mutex<Vec<Logged>>,
    arrivals: Mutex<Vec<Arrival>>,
    /// Accepted requests in the current window: (arrival, tokens).
    window: Mutex<VecDeque<(Instant, usize)>>,
}

pub struct FakeProvider {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The tokens the server charges: about 4 bytes per token, as BPE tokenizers do for English.
pub fn server_tokens(text: &str) -> usize {
    text.len().div_ceil(4).max(1)
}

/// The vector the server returns for `text`: a hash-seeded pseudo-random unit vector.
pub fn fake_vector(text: &str, dimension: usize) -> Vec<f32> {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        state ^= b as u64;
        state = state.wrapping_mul(0x0100_0000_01b3);
    }
    let mut v: Vec<f32> = (0..dimension)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

impl FakeProvider {
    pub async fn start(options: FakeOptions) -> Self {
        let inner = Arc::new(Inner {
            options,
            log: Mutex::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
            window: Mutex::new(VecDeque::new()),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner, task }
    }

    /// The `base_url` a kass endpoint should use for this API.
    pub fn base_url(&self) -> String {
        let root = format!("http://{}", self.addr);
        match self.inner.options.api {
            Api::Voyage | Api::OpenAi => format!("{root}/v1"),
            Api::Cohere | Api::Tei => root,
            Api::HfInference => format!("{root}/hf-inference/models"),
        }
    }

    pub fn log(&self) -> Vec<Logged> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Every request as it arrived, answered or not yet.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.inner.arrivals.lock().unwrap().clone()
    }

    /// Requests presenting `key` that arrived and are not answered yet.
    pub fn in_flight(&self, key: &str) -> usize {
        let of = |k: &Option<String>| k.as_deref() == Some(key);
        let arrived = self.arrivals().iter().filter(|a| of(&a.key)).count();
        arrived - self.log().iter().filter(|l| of(&l.key)).count()
    }

    pub fn count(&self, status: u16) -> usize {
        self.log().iter().filter(|l| l.status == status).count()
    }

    /// Most requests (and tokens) that arrived within any one window, over the whole log.
    pub fn max_in_any_window(&self) -> (usize, usize) {
        let log = self.log();
        let window = self.inner.options.window;
        let mut best = (0, 0);
        for (i, first) in log.iter().enumerate() {
            let within: Vec<&Logged> = log[i..]
                .iter()
                .filter(|l| l.at.duration_since(first.at) < window)
                .collect();
            best.0 = best.0.max(within.len());
            best.1 = best.1.max(within.iter().map(|l| l.tokens).sum());
        }
        best
    }
}

fn error(api: Api, status: u16, message: &str) -> Response {
    let body = match api {
        Api::Voyage => json!({"detail": message}),
        Api::OpenAi => {
            json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
        }
        Api::Cohere => json!({"id": "4f0c-fake", "message": message}),
        Api::HfInference => json!({"error": message}),
        Api::Tei => {
            json!({"error": message, "error_type": if status == 429 { "Overloaded" } else { "Validation" }})
        }
    };
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// The inputs of a request in this API's documented shape, or why it is malformed.
fn inputs_of(api: Api, uri: &Uri, body: &Value) -> Result<Vec<String>, String> {
    let path = uri.path();
    let (field, path_ok) = match api {
        Api::Voyage | Api::OpenAi => ("input", path == "/v1/embeddings"),
        Api::Cohere => ("texts", path == "/v2/embed"),
        Api::HfInference => (
            "inputs",
            path.starts_with("/hf-inference/models/")
                && path.ends_with("/pipeline/feature-extraction"),
        ),
        Api::Tei => ("inputs", path == "/embed"),
    };
    if !path_ok {
        return Err(format!("no route {path}"));
    }
    match api {
        Api::Voyage | Api::OpenAi => {
            body.get("model")
                .and_then(Value::as_str)
                .ok_or("field `model` is required")?;
        }
        Api::Cohere => {
            body.get("model")
                .and_then(Value::as_str)
                .ok_or("field `model` is required")?;
            match body.get("input_type").and_then(Value::as_str) {
                Some("search_document" | "search_query" | "classification" | "clustering") => {}
                _ => {
                    return Err(
                        "invalid request: input_type is required for embed-v3 models".into(),
                    )
                }
            }
            if body.get("embedding_types") != Some(&json!(["float"])) {
                return Err("embedding_types must be [\"float\"] here".into());
            }
        }
        Api::HfInference | Api::Tei => {}
    }
    if api == Api::Voyage {
        match body.get("input_type") {
            None | Some(Value::Null) => {}
            Some(v) if v == "document" || v == "query" => {}
            Some(v) => {
                return Err(format!(
                    "input_type {v} is not one of None, query, document"
                ))
            }
        }
    }
    let inputs = body
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("field `{field}` must be a list of strings"))?;
    inputs
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("field `{field}` must be a list of strings"))
        })
        .collect()
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let o = &inner.options;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let inputs = inputs_of(o.api, &uri, &body);
    let tokens = inputs
        .as_ref()
        .map(|i| i.iter().map(|t| server_tokens(t)).sum())
        .unwrap_or(0);
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("Bearer ").to_string());
    inner.arrivals.lock().unwrap().push(Arrival {
        at,
        key: key.clone(),
        inputs: inputs.clone().unwrap_or_default(),
    });
    let response = answer(&inner, at, &headers, &body, inputs.clone(), tokens).await;
    inner.log.lock().unwrap().push(Logged {
        at,
        inputs: inputs.unwrap_or_default(),
        tokens,
        status: response.status().as_u16(),
        body,
        key,
    });
    response
}

async fn answer(
    inner: &Inner,
    at: Instant,
    headers: &HeaderMap,
    body: &Value,
    inputs: Result<Vec<String>, String>,
    tokens: usize,
) -> Response {
    let o = &inner.options;
    if !o.latency.is_zero() {
        tokio::time::sleep(o.latency).await;
    }
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok());
    let fail = |api: Api, status: u16, message: &str| match (o.echo_key, presented) {
        (true, Some(header)) => error(api, status, &format!("{message} (you sent: {header})")),
        _ => error(api, status, message),
    };
    if let Some(key) = &o.api_key {
        let expected = format!("Bearer {key}");
        if presented != Some(expected.as_str()) {
            return fail(o.api, 401, "Provided API key is invalid.");
        }
    }
    let inputs = match inputs {
        Ok(i) => i,
        Err(e) if e.starts_with("no route") => return fail(o.api, 404, &e),
        Err(e) => return fail(o.api, if o.api == Api::Voyage { 400 } else { 422 }, &e),
    };
    if inputs.len() > o.max_inputs {
        return fail(
            o.api,
            400,
            &format!("too many inputs: {} > {}", inputs.len(), o.max_inputs),
        );
    }
    // Rate limits: a sliding window over accepted requests, strict.
    {
        let mut window = inner.window.lock().unwrap();
        while window
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) >= o.window)
        {
            window.pop_front();
        }
        let used: usize = window.iter().map(|(_, t)| t).sum();
        let over_requests = o.requests_per_window.is_some_and(|r| window.len() >= r);
        let over_tokens = o.tokens_per_window.is_some_and(|t| used + tokens > t);
        if over_requests || over_tokens {
            let free_at = window.front().map(|(t, _)| *t + o.window).unwrap_or(at);
            let wait = free_at.saturating_duration_since(at);
            let header = if o.retry_after_as_date {
                httpdate::fmt_http_date(
                    std::time::SystemTime::now() + wait + Duration::from_secs(1),
                )
            } else {
                wait.as_secs_f64().ceil().max(1.0).to_string()
            };
            let mut response = fail(
                o.api,
                429,
                "You have exceeded your rate limit. Please try again later.",
            );
            response
                .headers_mut()
                .insert("retry-after", header.parse().unwrap());
            return response;
        }
        let seen = inner.log.lock().unwrap().len();
        if seen < o.fail_first {
            return fail(
                o.api,
                o.fail_status,
                "The server had an error while processing your request.",
            );
        }
        window.push_back((at, tokens));
    }
    if let Some(marker) = &o.poison_marker {
        if let Some(i) = inputs.iter().position(|t| t.contains(marker.as_str())) {
            let message = match o.api {
                Api::OpenAi => format!("This model's maximum context length is 8192 tokens, however you requested 9000 tokens in input[{i}]"),
                Api::Tei => "Input validation error: `inputs` must have less than 512 tokens. Given: 600".to_string(),
                _ => "Input text is too long for the model's context length.".to_string(),
            };
            let status = if o.api == Api::Tei { 413 } else { 400 };
            return fail(o.api, status, &message);
        }
    }
    if matches!(o.api, Api::Voyage | Api::OpenAi) && inputs.iter().any(|t| t.is_empty()) {
        return fail(
            o.api,
            400,
            "'$.input' is invalid. Please check the API reference.",
        );
    }
    let dimension = match o.api {
        Api::OpenAi => body
            .get("dimensions")
            .and_then(Value::as_u64)
            .map_or(o.dimension, |d| d as usize),
        Api::Voyage => body
            .get("output_dimension")
            .and_then(Value::as_u64)
            .map_or(o.dimension, |d| d as usize),
        _ => o.dimension,
    };
    let vectors: Vec<Vec<f32>> = inputs.iter().map(|t| fake_vector(t, dimension)).collect();
    let json = match o.api {
        Api::Voyage | Api::OpenAi => {
            // Answered in reverse: the API pairs vectors with `index` and promises no order.
            let data: Vec<Value> = vectors
                .iter()
                .enumerate()
                .rev()
                .map(|(i, v)| json!({"object": "embedding", "embedding": v, "index": i}))
                .collect();
            json!({"object": "list", "data": data, "model": body["model"], "usage": {"total_tokens": tokens}})
        }
        Api::Cohere => json!({
            "id": "b1c2-fake",
            "embeddings": {"float": vectors},
            "texts": inputs,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
            "response_type": "embeddings_by_type"
        }),
        Api::HfInference | Api::Tei => json!(vectors),
    };
    axum::Json(json).into_response()
}
