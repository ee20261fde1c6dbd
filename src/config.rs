//! `kass.toml`: one file configures every stage. Each section is the owning component's own
//! config struct, so its doc comments are the reference for its keys.
//!
//! Environment variables override what a deployment changes without editing the file (and keep
//! secrets out of it): see [`KassConfig::apply_env`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use kass_pipeline::store::{S3StoreConfig, StoreConfig};
use kass_pipeline::TopologyConfig;
use kass_sinks::batch_writer::BatchWriterConfig;
use kass_sinks::chroma::ChromaConfig;
use kass_stages::chunking::ChunkingConfig;
use kass_stages::embed::EmbedConfig;
use kass_stages::transform::TransformConfig;

use crate::source_config::SourceConfig;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KassConfig {
    #[serde(default)]
    pub pipeline: TopologyConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
    #[serde(default)]
    pub transform: TransformConfig,
    #[serde(default)]
    pub chunking: ChunkingConfig,
    #[serde(default)]
    pub batch: BatchWriterConfig,
    #[serde(default)]
    pub embed: EmbedConfig,
    #[serde(default)]
    pub chroma: ChromaConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

/// `[tokenizer]`: the tokenizer.json that counts tokens for the chunk bound; it must be the
/// embedding model's.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// Defaults to the local model fetched by `scripts/fetch-model.sh`.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl TokenizerConfig {
    pub fn resolved_path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(kass_pipeline::tokenizer::default_tokenizer_path)
    }
}

impl KassConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut config: KassConfig = toml::from_str(text)?;
        config.apply_env(|k| std::env::var(k).ok());
        config.validate()?;
        Ok(config)
    }

    /// Source names become key prefixes (`{name}/chunked/...`) and chunk-id inputs: they must be
    /// safe path segments, and unique, or two sources would mix their batches and ids.
    pub fn validate(&self) -> Result<()> {
        self.embed.validate()?;
        self.chroma.validate().map_err(anyhow::Error::msg)?;
        self.batch.validate()?;
        anyhow::ensure!(
            self.pipeline.channel_capacity >= 1,
            "[pipeline] channel_capacity must be at least 1"
        );
        let mut seen = std::collections::HashSet::new();
        for source in &self.sources {
            let name = source.name();
            let valid = !name.is_empty()
                && !name.starts_with('_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            anyhow::ensure!(
                valid,
                "[[sources]] name {name:?}: use letters, digits, `-` and `_`, not starting with `_`"
            );
            anyhow::ensure!(
                seen.insert(name),
                "[[sources]] name {name:?} is used twice: give each source its own name"
            );
        }
        Ok(())
    }

    /// Overrides from the environment:
    /// - `KASS_STORE_PATH`: use a local store at this directory;
    /// - `KASS_S3_BUCKET` (or `S3_BUCKET_NAME`, the Lambda's variable): use an S3 store;
    /// - `KASS_S3_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`), `KASS_S3_FORCE_PATH_STYLE`, `AWS_REGION`;
    /// - `KASS_TOKENIZER`: tokenizer.json path.
    ///
    /// AWS credentials are never read here: the AWS SDK's own chain finds them.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        self.chroma.apply_env(&var);
        if let Some(path) = var("KASS_STORE_PATH") {
            self.store = StoreConfig::Local { path: path.into() };
        }
        if let Some(bucket) = var("KASS_S3_BUCKET").or_else(|| var("S3_BUCKET_NAME")) {
            let previous = match &self.store {
                StoreConfig::S3(s3) => s3.clone(),
                StoreConfig::Local { .. } => S3StoreConfig {
                    max_attempts: 5,
                    ..Default::default()
                },
            };
            self.store = StoreConfig::S3(S3StoreConfig { bucket, ..previous });
        }
        if let StoreConfig::S3(s3) = &mut self.store {
            if let Some(endpoint) =
                var("KASS_S3_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT_URL_S3"))
            {
                s3.endpoint_url = Some(endpoint);
            }
            if let Some(v) = var("KASS_S3_FORCE_PATH_STYLE") {
                s3.force_path_style = matches!(v.as_str(), "1" | "true" | "yes");
            }
            if let Some(region) = var("AWS_REGION") {
                s3.region.get_or_insert(region);
            }
        }
        if let Some(path) = var("KASS_TOKENIZER") {
            self.tokenizer.path = Some(path.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_switches_the_store_to_s3_and_keeps_file_settings() {
        let mut config: KassConfig = toml::from_str(
            "[store]\ntype = \"s3\"\nbucket = \"from-file\"\nforce_path_style = true\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "S3_BUCKET_NAME" => Some("from-env".to_string()),
            "KASS_S3_ENDPOINT_URL" => Some("http://127.0.0.1:5000".to_string()),
            _ => None,
        };
        config.apply_env(env);
        let StoreConfig::S3(s3) = &config.store else {
            panic!("expected s3")
        };
        assert_eq!(s3.bucket, "from-env");
        assert_eq!(s3.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(s3.force_path_style);
    }

    #[test]
    fn source_names_must_be_safe_and_unique() {
        let two = "[[sources]]\ntype = \"files\"\npath = \".\"\n[[sources]]\ntype = \"files\"\npath = \"src\"\n";
        let err = KassConfig::parse(two).unwrap_err().to_string();
        assert!(err.contains("\"files\" is used twice"), "{err}");
        let bad = "[[sources]]\ntype = \"files\"\nname = \"a/b\"\npath = \".\"\n";
        let err = KassConfig::parse(bad).unwrap_err().to_string();
        assert!(err.contains("\"a/b\""), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = toml::from_str::<KassConfig>("[batch]\nmax_chunk = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_chunk"), "{err}");
    }

    #[test]
    fn shipped_example_config_parses() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kass.toml"))
                .unwrap();
        let config: KassConfig = toml::from_str(&text).unwrap();
        assert!(!config.sources.is_empty());
    }
}
