//! A local AWS Lambda Runtime API (the documented `2018-06-01` interface a function's runtime
//! polls): `GET /runtime/invocation/next` hands out queued events with the documented headers,
//! `POST /runtime/invocation/{id}/response` and `/error` record the outcome. A Lambda binary
//! started with `AWS_LAMBDA_RUNTIME_API` pointing here runs exactly as in AWS.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, Value)>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<String>,
    next_id: u64,
}

#[derive(Clone)]
pub struct RuntimeApi {
    pub address: String,
    inner: Arc<Mutex<Inner>>,
    wake: Arc<tokio::sync::Notify>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let api = Self {
            address: String::new(),
            inner: Arc::default(),
            wake: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { address, ..api }
    }

    /// Environment a function process needs (the variables Lambda sets).
    pub fn env(&self, function: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", function),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2025/10/06/[$LATEST]test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let id = {
            let mut inner = self.inner.lock().unwrap();
            inner.next_id += 1;
            let id = format!("req-{:04}", inner.next_id);
            inner.queue.push_back((id.clone(), event));
            id
        };
        self.wake.notify_waiters();
        id
    }

    /// Waits for the function's answer to `id`.
    pub async fn outcome(&self, id: &str, timeout: Duration) -> Outcome {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let inner = self.inner.lock().unwrap();
                if let Some(o) = inner.outcomes.get(id) {
                    return o.clone();
                }
                if let Some(e) = &inner.init_error {
                    panic!("the function failed to initialise: {e}");
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer to invocation {id} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    loop {
        let woken = api.wake.notified();
        if let Some((id, event)) = api.inner.lock().unwrap().queue.pop_front() {
            let mut headers = HeaderMap::new();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 900_000;
            headers.insert(
                "Lambda-Runtime-Aws-Request-Id",
                HeaderValue::from_str(&id).unwrap(),
            );
            headers.insert(
                "Lambda-Runtime-Deadline-Ms",
                HeaderValue::from_str(&deadline.to_string()).unwrap(),
            );
            headers.insert(
                "Lambda-Runtime-Invoked-Function-Arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:test"),
            );
            headers.insert(
                "Lambda-Runtime-Trace-Id",
                HeaderValue::from_static(
                    "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
                ),
            );
            return (StatusCode::OK, headers, event.to_string()).into_response();
        }
        // Long poll, as the real API does, until an invocation is queued.
        let _ = tokio::time::timeout(Duration::from_millis(200), woken).await;
    }
}

fn record(api: &RuntimeApi, id: String, outcome: Outcome) -> StatusCode {
    api.inner.lock().unwrap().outcomes.insert(id, outcome);
    StatusCode::ACCEPTED
}

fn body_json(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

async fn response(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&api, id, Outcome::Response(body_json(&body)))
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    record(&api, id, Outcome::Error(body_json(&body)))
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    api.inner.lock().unwrap().init_error = Some(String::from_utf8_lossy(&body).into());
    StatusCode::ACCEPTED
}
