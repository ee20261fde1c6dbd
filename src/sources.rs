//! `[[sources]]` in kass.toml: which sources to read, each configured by its own struct.

use serde::Deserialize;

use kass_pipeline::{FatalError, RawRecord, Source};
use kass_sources::{files, jsonl, slack_export};

/// One `[[sources]]` entry; `type` picks the source.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A directory of text, markdown and code files.
    Files(files::FilesConfig),
    /// One document (or BEIR `{"_id","title","text"}` record) per line.
    Jsonl(jsonl::JsonlConfig),
    /// An official Slack workspace export directory.
    SlackExport(slack_export::SlackExportConfig),
}

impl SourceConfig {
    /// The `source` label: first segment of batch keys, metric label, part of chunk ids.
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Files(c) => &c.name,
            SourceConfig::Jsonl(c) => &c.name,
            SourceConfig::SlackExport(c) => &c.name,
        }
    }

    pub fn build(self) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
        Ok(match self {
            SourceConfig::Files(c) => Box::new(c.build()?),
            SourceConfig::Jsonl(c) => Box::new(c.build()?),
            SourceConfig::SlackExport(c) => Box::new(c.build()?),
        })
    }
}
