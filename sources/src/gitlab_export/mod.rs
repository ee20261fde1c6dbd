//! The `gitlab_export` source: a GitLab project export (the unpacked archive GitLab's
//! "Export project" writes), offline. It gives the same documents, with the same ids and chunk
//! texts, as the `gitlab` source gives through the API for the same issues and merge requests
//! (both build them with `crate::gitlab::documents`), so a team can load an export and continue
//! live with `type = "gitlab"` under the same source name without embedding anything again.
//!
//! Read: `tree/project/issues.ndjson` and `tree/project/merge_requests.ndjson`, one issue or
//! merge request a line with its `notes` inside. The export names fields its own way (`note`
//! for the API's `body`, labels under `label_links[].label.title`, the author only by id); they
//! are mapped onto the API's shape here. A line that cannot be read is dead-lettered naming
//! the file and line, and the rest is read. With a cursor, a file unchanged since the last run
//! is not read again.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kass_pipeline::{
    FailureKind, FatalError, ItemError, ItemKind, Outlet, RawRecord, Source, StageContext,
};
use serde::Deserialize;

use crate::cursor::{fingerprint, Resume};
use crate::gitlab::documents::issue_record;
use crate::gitlab::model::{Issue, Kind, Milestone, Note, Position, User};
use crate::{BuildSource, SourceDeps};

/// `[[sources]] type = "gitlab_export"`.
///
/// ```toml
/// [[sources]]
/// type = "gitlab_export"
/// name = "gitlab"            # the same name as the `gitlab` source that continues it
/// path = "exports/app"       # the unpacked export: it holds tree/project/issues.ndjson
/// project = "group/app"      # the project's path, as the `gitlab` source's `projects` names it
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabExportConfig {
    #[serde(default = "default_name")]
    pub name: String,
    pub path: PathBuf,
    /// The project's path (`group/app`): the export does not hold it, and document ids need it.
    pub project: String,
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    #[serde(default)]
    pub system_notes: bool,
}

fn default_name() -> String {
    "gitlab".to_string()
}
fn default_include() -> Vec<String> {
    vec!["issues".to_string(), "merge_requests".to_string()]
}

impl BuildSource for GitlabExportConfig {
    type Source = GitlabExport;

    fn name(&self) -> &str {
        &self.name
    }

    fn build_with(self, deps: SourceDeps) -> Result<GitlabExport, FatalError> {
        let bad = |reason: String| {
            FatalError::Config(format!("gitlab_export source `{}`: {reason}", self.name))
        };
        let tree = self.path.join("tree/project");
        if !tree.is_dir() {
            return Err(bad(format!(
                "{} is not an unpacked GitLab project export (no tree/project folder)",
                self.path.display()
            )));
        }
        let kinds = Kind::parse_include(&self.include).map_err(bad)?;
        Ok(GitlabExport {
            config: self,
            kinds,
            resume: deps.cursor.into(),
        })
    }
}

/// The running source; build it from a [`GitlabExportConfig`].
#[derive(Debug)]
pub struct GitlabExport {
    config: GitlabExportConfig,
    kinds: Vec<Kind>,
    resume: Resume,
}

/// An issue or merge request as the export writes it.
#[derive(Debug, Deserialize)]
struct ExportIssue {
    iid: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    state: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default)]
    label_links: Vec<LabelLink>,
    #[serde(default)]
    milestone: Option<Milestone>,
    #[serde(default)]
    notes: Vec<ExportNote>,
}

#[derive(Debug, Deserialize)]
struct LabelLink {
    #[serde(default)]
    label: Option<Label>,
}

#[derive(Debug, Deserialize)]
struct Label {
    #[serde(default)]
    title: String,
}

#[derive(Debug, Deserialize)]
struct ExportNote {
    id: u64,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    author: Option<ExportAuthor>,
    created_at: DateTime<Utc>,
    #[serde(default)]
    system: bool,
    #[serde(default)]
    position: Option<Position>,
}

#[derive(Debug, Deserialize)]
struct ExportAuthor {
    #[serde(default)]
    name: String,
}

impl ExportIssue {
    /// The API's shape of this issue and its notes (oldest first, as the API lists them).
    fn into_api(self) -> (Issue, Vec<Note>) {
        let mut notes: Vec<Note> = self
            .notes
            .into_iter()
            .map(|n| Note {
                id: n.id,
                body: n.note.unwrap_or_default(),
                author: n.author.map(|a| User {
                    username: String::new(),
                    name: a.name,
                }),
                created_at: n.created_at,
                system: n.system,
                position: n.position,
            })
            .collect();
        notes.sort_by_key(|n| (n.created_at, n.id));
        let issue = Issue {
            iid: self.iid,
            title: self.title,
            description: self.description,
            state: self.state,
            labels: self
                .label_links
                .into_iter()
                .filter_map(|l| l.label.map(|l| l.title))
                .collect(),
            author: None,
            assignees: Vec::new(),
            milestone: self.milestone,
            web_url: String::new(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            user_notes_count: notes.iter().filter(|n| !n.system).count() as u64,
        };
        (issue, notes)
    }
}

#[async_trait]
impl Source for GitlabExport {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "gitlab_export"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        for kind in &self.kinds {
            let file = self
                .config
                .path
                .join(format!("tree/project/{}.ndjson", kind.path()));
            let Ok(metadata) = tokio::fs::metadata(&file).await else {
                // An export of a project without issues (or merge requests) has no file.
                continue;
            };
            let input = format!("{}.ndjson", kind.path());
            let print = fingerprint(&metadata);
            if self.resume.unchanged(&input, &print) {
                continue;
            }
            let text = tokio::fs::read_to_string(&file).await.map_err(|e| {
                FatalError::Config(format!(
                    "gitlab_export source `{}`: cannot read {}: {e}",
                    self.config.name,
                    file.display()
                ))
            })?;
            for (n, line) in text.lines().enumerate() {
                if ctx.shutdown.is_triggered() {
                    return Ok(());
                }
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str::<ExportIssue>(line);
                let issue = match parsed {
                    Ok(issue) => issue,
                    Err(e) => {
                        let error = ItemError::new(
                            FailureKind::MalformedRecord,
                            format!("{} line {}: {e}", file.display(), n + 1),
                        );
                        let value = serde_json::Value::String(line.to_string());
                        ctx.dead_letter(
                            &self.config.name,
                            &format!("{input}:{}", n + 1),
                            ItemKind::Input,
                            &value,
                            &error,
                        )
                        .await?;
                        continue;
                    }
                };
                let (issue, notes) = issue.into_api();
                let record = issue_record(
                    &self.config.name,
                    &self.config.project,
                    *kind,
                    &issue,
                    &notes,
                    self.config.system_notes,
                );
                if out.send(record).await.is_err() {
                    return Ok(());
                }
            }
            self.resume.read(&input, print);
        }
        Ok(())
    }
}
