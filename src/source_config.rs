//! `[[sources]]` in kass.toml: which sources to read, each configured by its own struct.

use serde::Deserialize;

use kass_pipeline::{FatalError, RawRecord, Source};
use std::sync::Arc;

use kass_sources::cursor::Cursor;
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
        self.build_resuming(None)
    }

    /// With a cursor, the source reads only what changed since the cursor's run.
    pub fn build_resuming(
        self,
        cursor: Option<Arc<Cursor>>,
    ) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
        Ok(match (self, cursor) {
            (SourceConfig::Files(c), Some(k)) => Box::new(c.build()?.resume_from(k)),
            (SourceConfig::Files(c), None) => Box::new(c.build()?),
            (SourceConfig::Jsonl(c), Some(k)) => Box::new(c.build()?.resume_from(k)),
            (SourceConfig::Jsonl(c), None) => Box::new(c.build()?),
            (SourceConfig::SlackExport(c), Some(k)) => Box::new(c.build()?.resume_from(k)),
            (SourceConfig::SlackExport(c), None) => Box::new(c.build()?),
        })
    }
}
