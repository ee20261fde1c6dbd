use std::time::Duration;

/// Why an embedding request failed, classified by what the caller should do about it.
///
/// The embed stage retries `RateLimited` and `Transient`, isolates the offending chunk of an
/// `InvalidInput` by splitting the batch, moves on to the fallback endpoint after `Rejected`,
/// and dead-letters the batch after a `Protocol` error. Messages are the provider's own words,
/// shortened; they never contain the request (and so never a key).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    /// 429: over the provider's rate limit (TEI also answers 429 when overloaded).
    #[error("rate limited (429): {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// 5xx, 408, timeouts, refused connections: likely to succeed later.
    #[error("{}: {message}", status.map_or_else(|| "network error".to_string(), |s| format!("HTTP {s}")))]
    Transient {
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// 400, 413, 422: the request's inputs were refused (too long, empty, too many). Splitting
    /// the batch finds the input at fault; `index` names it when the provider said which.
    #[error("input refused (HTTP {status}): {message}")]
    InvalidInput {
        status: u16,
        message: String,
        index: Option<usize>,
    },
    /// 401, 403, 404 and other 4xx: a wrong key, model name or URL. Retrying cannot help.
    #[error("request refused (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// A 2xx answer that is not the documented shape, or vectors of the wrong count or length.
    #[error("unexpected response: {0}")]
    Protocol(String),
    /// The in-process model failed.
    #[error("local model: {0}")]
    Local(String),
}

impl EmbedError {
    /// Worth sending the same request again (after a pause).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient { .. })
    }

    /// The pause the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Transient { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Transient { status: None, .. } => "network",
            Self::Transient { .. } => "server_error",
            Self::InvalidInput { .. } => "invalid_input",
            Self::Rejected { .. } => "rejected",
            Self::Protocol(_) => "protocol",
            Self::Local(_) => "local",
        }
    }
}
