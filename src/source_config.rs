//! `[[sources]]` in kass.toml: which sources to read, each configured by its own struct.

use serde::Deserialize;

use kass_pipeline::{FatalError, RawRecord, Source};

use kass_sources::{
    backlog, files, gitlab_api, gitlab_export, jsonl, slack_api, slack_export, BuildSource,
    SourceDeps,
};

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
    /// A live Slack workspace through the Web API, synced incrementally.
    SlackApi(slack_api::SlackApiConfig),
    /// GitLab projects' issues and merge requests with their notes, through the REST API v4.
    Gitlab(gitlab_api::GitlabApiConfig),
    /// A GitLab project export (offline): the same documents and chunk ids as `gitlab`.
    GitlabExport(gitlab_export::GitlabExportConfig),
    /// A Backlog space's issues with their comments, wiki pages and documents (API v2).
    Backlog(backlog::BacklogConfig),
}

impl SourceConfig {
    /// The `source` label: first segment of batch keys, metric label, part of chunk ids.
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Files(c) => c.name(),
            SourceConfig::Jsonl(c) => c.name(),
            SourceConfig::SlackExport(c) => c.name(),
            SourceConfig::SlackApi(c) => c.name(),
            SourceConfig::Gitlab(c) => c.name(),
            SourceConfig::GitlabExport(c) => c.name(),
            SourceConfig::Backlog(c) => c.name(),
        }
    }

    /// The source's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Files(_) => "files",
            SourceConfig::Jsonl(_) => "jsonl",
            SourceConfig::SlackExport(_) => "slack_export",
            SourceConfig::SlackApi(_) => "slack_api",
            SourceConfig::Gitlab(_) => "gitlab",
            SourceConfig::GitlabExport(_) => "gitlab_export",
            SourceConfig::Backlog(_) => "backlog",
        }
    }

    /// Whether the source keeps per-scope state that every run needs (an API source: without
    /// it each run would read the whole workspace again and could never see a deletion), so
    /// even `kass run` loads and saves its cursor.
    pub fn keeps_state(&self) -> bool {
        matches!(
            self,
            SourceConfig::SlackApi(_) | SourceConfig::Gitlab(_) | SourceConfig::Backlog(_)
        )
    }

    /// What of the source's settings its documents depend on: a cursor saved under other
    /// settings is not resumed from. For an API source only its name: selecting other
    /// channels must not forget the state that lets the source delete what it no longer reads.
    pub fn cursor_settings(&self) -> String {
        match self {
            SourceConfig::SlackApi(c) => format!("slack_api:{}", c.name()),
            SourceConfig::Gitlab(c) => format!("gitlab:{}", c.name()),
            SourceConfig::Backlog(c) => format!("backlog:{}", c.name()),
            other => format!("{other:?}"),
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
            SourceConfig::SlackApi(c) => boxed(c, deps),
            SourceConfig::Gitlab(c) => boxed(c, deps),
            SourceConfig::GitlabExport(c) => boxed(c, deps),
            SourceConfig::Backlog(c) => boxed(c, deps),
        }
    }
}

fn boxed(
    config: impl BuildSource,
    deps: SourceDeps,
) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
    Ok(Box::new(config.build_with(deps)?))
}
