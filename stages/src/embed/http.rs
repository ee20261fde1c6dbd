//! The HTTP exchange every remote provider shares: POST JSON with a bearer key, classify the
//! answer's status into an [`EmbedError`], pull the provider's message out of its error body
//! and the Retry-After header out of its headers. Providers only build bodies and read vectors.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use kass_pipeline::error::error_chain;
use kass_pipeline::secret::Secret;

use super::retry::parse_retry_after;
use super::EmbedError;

/// Longest provider message kept in an error (and so in a dead letter).
const MAX_MESSAGE_CHARS: usize = 500;

#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    client: reqwest::Client,
    api_key: Option<Secret>,
}

impl HttpEndpoint {
    pub fn new(api_key: Option<Secret>, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("kass/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Self { client, api_key })
    }

    /// POSTs `body` to `url` and parses a 2xx answer as `T`.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<T, EmbedError> {
        let mut request = self.client.post(url).json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request.send().await.map_err(network_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(network_error)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                EmbedError::Protocol(format!(
                    "cannot read the answer of {url}: {e} (body starts: {})",
                    excerpt(&String::from_utf8_lossy(&bytes))
                ))
            });
        }
        Err(classify(status, &headers, &bytes))
    }
}

fn network_error(e: reqwest::Error) -> EmbedError {
    // reqwest's Display names the URL but never headers, so the key cannot appear here.
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    EmbedError::Transient {
        status: None,
        message: excerpt(&format!("{what}: {}", error_chain(&e))),
        retry_after: None,
    }
}

/// Maps a non-2xx answer to what the embed stage should do about it.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> EmbedError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(error_message).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no message")
                .to_string()
        } else {
            text.into_owned()
        }
    });
    let message = excerpt(&message);
    // OpenAI's SDKs read the non-standard `retry-after-ms` first; then RFC 9110's header.
    let retry_after = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| {
            headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
        })
        // Hugging Face answers 503 with {"estimated_time": seconds} while a model loads.
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("estimated_time"))
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
        });
    let code = status.as_u16();
    // OpenAI answers 429 when the account is out of credit: waiting will not help.
    let out_of_quota = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/code"))
        .and_then(Value::as_str)
        == Some("insufficient_quota");
    if out_of_quota {
        return EmbedError::Rejected {
            status: code,
            message,
        };
    }
    match code {
        429 => EmbedError::RateLimited {
            message,
            retry_after,
        },
        408 | 500..=599 | 424 => EmbedError::Transient {
            status: Some(code),
            message,
            retry_after,
        },
        400 | 413 | 422 => EmbedError::InvalidInput {
            status: code,
            index: input_index(&message),
            message,
        },
        _ => EmbedError::Rejected {
            status: code,
            message,
        },
    }
}

/// The message in the error bodies providers document: OpenAI `{"error":{"message"}}`,
/// TEI and Hugging Face `{"error": "..."}`, Voyage `{"detail": "..."}` (FastAPI, sometimes a
/// list of `{"msg"}`), Cohere `{"message": "..."}`.
fn error_message(body: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    if let Some(error) = body.get("error") {
        return text(error).or_else(|| error.get("message").and_then(text));
    }
    if let Some(detail) = body.get("detail") {
        return text(detail).or_else(|| {
            detail.as_array().map(|items| {
                items
                    .iter()
                    .map(|i| i.get("msg").and_then(text).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
    }
    body.get("message").and_then(text)
}

/// The input a message blames, when it says (`input[3]`, `inputs[3]`, `texts[3]`).
fn input_index(message: &str) -> Option<usize> {
    for marker in ["input[", "inputs[", "texts["] {
        if let Some(at) = message.find(marker) {
            let rest = &message[at + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if rest[digits.len()..].starts_with(']') {
                return digits.parse().ok();
            }
        }
    }
    None
}

fn excerpt(text: &str) -> String {
    kass_pipeline::error::excerpt(text, MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str, retry_after: Option<&str>) -> EmbedError {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(RETRY_AFTER, v.parse().unwrap());
        }
        classify(
            StatusCode::from_u16(code).unwrap(),
            &headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn statuses_map_to_what_the_stage_does() {
        match status(
            429,
            r#"{"detail":"You have exceeded your rate limit"}"#,
            Some("3"),
        ) {
            EmbedError::RateLimited {
                message,
                retry_after,
            } => {
                assert_eq!(message, "You have exceeded your rate limit");
                assert_eq!(retry_after, Some(Duration::from_secs(3)));
            }
            other => panic!("{other:?}"),
        }
        match status(
            400,
            r#"{"error":{"message":"Invalid 'input[2]': string too long","type":"invalid_request_error"}}"#,
            None,
        ) {
            EmbedError::InvalidInput { index, .. } => assert_eq!(index, Some(2)),
            other => panic!("{other:?}"),
        }
        match status(
            503,
            r#"{"error":"Model is currently loading","estimated_time":20.5}"#,
            None,
        ) {
            EmbedError::Transient { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs_f64(20.5)))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            status(
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                None
            ),
            EmbedError::Rejected { status: 429, .. }
        ));
        assert!(matches!(
            status(401, r#"{"message":"invalid api token"}"#, None),
            EmbedError::Rejected { status: 401, .. }
        ));
        assert!(matches!(
            status(
                422,
                r#"{"error":"Input validation error","error_type":"Validation"}"#,
                None
            ),
            EmbedError::InvalidInput {
                status: 422,
                index: None,
                ..
            }
        ));
        assert!(matches!(
            status(502, "<html>bad gateway</html>", None),
            EmbedError::Transient {
                status: Some(502),
                ..
            }
        ));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(5_000);
        let e = status(500, &long, None);
        assert!(e.to_string().len() < 600);
    }
}
