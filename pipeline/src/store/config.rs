use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{LocalStore, ObjectStore, S3Store, StoreError};

/// `[store]` in kass.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    /// A directory on this machine; the embedded default.
    Local {
        /// Root directory; created if missing.
        path: PathBuf,
    },
    S3(S3StoreConfig),
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Local {
            path: PathBuf::from(".kass-data"),
        }
    }
}

/// An S3 bucket. Credentials come from the standard AWS chain (environment, profile, role),
/// never from this file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct S3StoreConfig {
    pub bucket: String,
    /// e.g. `http://127.0.0.1:5000` for moto or MinIO; unset for AWS.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which local S3 servers need.
    #[serde(default)]
    pub force_path_style: bool,
    /// Attempts per request, including the first, before the store counts as unreachable.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl S3StoreConfig {
    /// The endpoint and region, for the other AWS clients next to this bucket (SQS, Secrets
    /// Manager).
    pub fn endpoint(&self) -> super::AwsEndpoint {
        super::AwsEndpoint {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
        }
    }
}

fn default_max_attempts() -> u32 {
    5
}

/// Builds the configured store.
pub async fn build_store(config: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Ok(match config {
        StoreConfig::Local { path } => Arc::new(LocalStore::new(path)?),
        StoreConfig::S3(s3) => Arc::new(S3Store::connect(s3).await),
    })
}
