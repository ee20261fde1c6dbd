/// A Chroma call that failed, by what the caller should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChromaError {
    /// Down, 5xx or timing out after the retries: dead-letter the batch, go on with the next.
    #[error("Chroma at {url} unavailable after {attempts} attempt(s): {message}")]
    Unavailable {
        url: String,
        attempts: u32,
        message: String,
    },
    /// 4xx: this request is wrong (a value, a dimension, a missing collection).
    #[error("Chroma refused {what} (HTTP {status}): {message}")]
    Rejected {
        what: String,
        status: u16,
        message: String,
    },
    /// A 2xx answer that is not the documented shape.
    #[error("unexpected answer from Chroma to {what}: {message}")]
    Protocol { what: String, message: String },
}
