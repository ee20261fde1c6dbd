//! The embedding APIs' side of the shared HTTP exchange ([`kass_pipeline::http`]): POST JSON
//! with a bearer key and turn a failed try into the [`EmbedError`] that says what the embed
//! stage does about it. Providers only build bodies and read vectors.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use kass_pipeline::error::excerpt;
use kass_pipeline::http::{
    Auth, BuildError, HttpClient, HttpConfig, HttpFailure, MAX_MESSAGE_CHARS,
};
use kass_pipeline::secret::Secret;

use super::EmbedError;

#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    http: HttpClient,
}

impl HttpEndpoint {
    /// `name` labels the request metrics (`kass_http_requests_total{client}`).
    pub fn new(name: &str, api_key: Option<Secret>, timeout: Duration) -> Result<Self, BuildError> {
        let http = HttpClient::new(HttpConfig {
            auth: api_key.map(Auth::Bearer),
            ..HttpConfig::new(name, timeout)
        })?;
        Ok(Self { http })
    }

    /// POSTs `body` to `url` and parses a 2xx answer as `T`.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<T, EmbedError> {
        let request = self.http.request(Method::POST, url).json(body);
        let answer = self.http.send(request).await.map_err(embed_error)?;
        answer.json().map_err(|e| {
            EmbedError::Protocol(format!(
                "cannot read the answer of {url}: {e} (body starts: {})",
                excerpt(&String::from_utf8_lossy(&answer.body), MAX_MESSAGE_CHARS)
            ))
        })
    }
}

/// Maps a non-2xx answer to what the embed stage should do about it.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> EmbedError {
    embed_error(HttpFailure::from_answer(status, headers, body))
}

/// The shared classification, refined by what embedding APIs document: 408 and 424 are worth
/// another try, 400, 413 and 422 blame the inputs, and OpenAI's 429 for an account out of
/// credit is final.
fn embed_error(failure: HttpFailure) -> EmbedError {
    let (status, message, retry_after, json) = match failure {
        HttpFailure::Status {
            status,
            message,
            retry_after,
            json,
        } => (status.as_u16(), message, retry_after, json),
        HttpFailure::Timeout { message } | HttpFailure::Network { message } => {
            return EmbedError::Transient {
                status: None,
                message,
                retry_after: None,
            }
        }
    };
    // Hugging Face answers 503 with {"estimated_time": seconds} while a model loads.
    let retry_after = retry_after.or_else(|| {
        json.as_ref()
            .and_then(|v| v.get("estimated_time"))
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    });
    let out_of_quota = json
        .as_ref()
        .and_then(|v| v.pointer("/error/code"))
        .and_then(Value::as_str)
        == Some("insufficient_quota");
    if out_of_quota {
        return EmbedError::Rejected { status, message };
    }
    match status {
        429 => EmbedError::RateLimited {
            message,
            retry_after,
        },
        408 | 500..=599 | 424 => EmbedError::Transient {
            status: Some(status),
            message,
            retry_after,
        },
        400 | 413 | 422 => EmbedError::InvalidInput {
            status,
            index: input_index(&message),
            message,
        },
        _ => EmbedError::Rejected { status, message },
    }
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

#[cfg(test)]
mod tests {
    use reqwest::header::RETRY_AFTER;

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
