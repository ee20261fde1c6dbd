//! Where batch files, dead letters and cursors live: a local directory (the embedded default)
//! or an S3 bucket (AWS, or any S3 API: moto, MinIO, LocalStack).

mod aws;
mod config;
mod local;
mod s3;

use async_trait::async_trait;

pub use aws::AwsEndpoint;
pub use config::{build_store, S3StoreConfig, StoreConfig};
pub use local::LocalStore;
pub use s3::S3Store;

/// A flat key/value store of byte objects with `/`-separated keys.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Where an object would be, for messages: `file:///data/slack/...`, `s3://bucket/slack/...`.
    fn location(&self, key: &str) -> String;

    /// Writes the whole object; readers never see a partial one.
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError>;

    /// Writes the object only if no object has the key, atomically; `Ok(false)` if one had.
    /// Writers that pick keys themselves (batch files) use it so that two writers can never
    /// silently overwrite each other's data.
    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError>;

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;

    /// Every key starting with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{location}: not found")]
    NotFound { location: String },
    #[error("cannot {op} {location}: {reason}")]
    Io {
        op: &'static str,
        location: String,
        reason: String,
    },
    /// The store answered and refused this object (access denied by a bucket policy or a KMS
    /// key, a permission on disk): asking again will not help until someone changes it.
    #[error("cannot {op} {location}: refused: {reason}")]
    Refused {
        op: &'static str,
        location: String,
        reason: String,
    },
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
}

impl StoreError {
    /// Whether the same request may succeed later on its own (`Io`: the store was slow,
    /// throttling or unreachable past the retries).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Io { .. })
    }
}

/// Keys are relative, `/`-separated, and never escape the store root.
pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') || key.contains('\\') {
        return bad("must be relative and use `/`");
    }
    if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return bad("empty, `.` or `..` path segment");
    }
    Ok(())
}
