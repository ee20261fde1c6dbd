//! `[[sources]]` in kass.toml: which sources to read, each configured by its own struct.

use serde::Deserialize;

use kass_pipeline::{FatalError, RawRecord, Source};

use kass_sources::{files, jsonl, slack_export, BuildSource, SourceDeps};

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
            SourceConfig::Files(c) => c.name(),
            SourceConfig::Jsonl(c) => c.name(),
            SourceConfig::SlackExport(c) => c.name(),
        }
    }

    /// The source, reading everything.
    pub fn build(self) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
        self.build_with(SourceDeps::default())
    }

    /// The source; with a cursor in `deps` it reads only what changed since the cursor's run.
    pub fn build_with(
        self,
        deps: SourceDeps,
    ) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
        match self {
            SourceConfig::Files(c) => boxed(c, deps),
            SourceConfig::Jsonl(c) => boxed(c, deps),
            SourceConfig::SlackExport(c) => boxed(c, deps),
        }
    }
}

fn boxed(
    config: impl BuildSource,
    deps: SourceDeps,
) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
    Ok(Box::new(config.build_with(deps)?))
}
