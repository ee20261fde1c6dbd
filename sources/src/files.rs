//! The `files` source: every text file under a directory, one document each.
//!
//! The walk honours `.gitignore`, `.ignore` and git's global excludes, skips hidden files, and
//! applies the configured `exclude` globs, so pointing it at a repository checkout reads what a
//! developer would see. What a file is (Markdown, code, plain text) follows its extension and
//! decides how it is chunked later.
//!
//! Binary and non-UTF-8 files are skipped and counted (`kass_records_dropped_total{reason="binary"}`);
//! files over `max_file_bytes` go to the dead letters so that an operator sees what was left out.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;

use crate::cursor::{fingerprint, Resume};
use crate::text_file;
use crate::{BuildSource, SourceDeps};
use chrono::{DateTime, Utc};
use ignore::overrides::{Override, OverrideBuilder};
use ignore::WalkBuilder;
use kass_pipeline::{
    telemetry, Document, FailureKind, FatalError, ItemError, ItemKind, MetaValue, Outlet,
    RawRecord, Source, StageContext,
};
use serde::Deserialize;
use tokio::sync::mpsc;

/// Reads every text file under a directory.
///
/// ```toml
/// [[sources]]
/// type = "files"
/// path = "./docs"
/// exclude = ["target/", "*.lock"]
/// include_extensions = ["md", "rs"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// The `source` label on every document from this directory; also names its batches and
    /// metrics.
    #[serde(default = "default_name")]
    pub name: String,
    /// The directory to walk. Document ids are paths relative to it, with `/`.
    pub path: PathBuf,
    /// Gitignore-style globs to leave out, on top of `.gitignore`/`.ignore` files and hidden
    /// files, e.g. `["target/", "*.min.js", "vendor/**"]`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Read only files with these extensions (without the dot, case-insensitive). Empty reads
    /// every text file.
    #[serde(default)]
    pub include_extensions: Vec<String>,
    /// Files larger than this many bytes go to the dead letters instead of being read.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
}

fn default_name() -> String {
    "files".to_string()
}

fn default_max_file_bytes() -> u64 {
    2 * 1024 * 1024
}

impl FilesConfig {
    /// A config reading everything under `path`, with every other field at its default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            name: default_name(),
            path: path.into(),
            exclude: Vec::new(),
            include_extensions: Vec::new(),
            max_file_bytes: default_max_file_bytes(),
        }
    }
}

impl BuildSource for FilesConfig {
    type Source = FilesSource;

    fn name(&self) -> &str {
        &self.name
    }

    /// Checks the directory and compiles the `exclude` globs. With a cursor, reads only files
    /// changed since its run (and records all it reads in it).
    fn build_with(self, deps: SourceDeps) -> Result<FilesSource, FatalError> {
        let config_error =
            |what: String| FatalError::Config(format!("files source `{}`: {what}", self.name));
        if !self.path.is_dir() {
            return Err(config_error(format!(
                "{} is not a directory",
                self.path.display()
            )));
        }
        let mut overrides = OverrideBuilder::new(&self.path);
        for glob in &self.exclude {
            overrides
                .add(&format!("!{glob}"))
                .map_err(|e| config_error(format!("exclude glob {glob:?}: {e}")))?;
        }
        let overrides = overrides
            .build()
            .map_err(|e| config_error(format!("exclude globs: {e}")))?;
        let include_extensions = self
            .include_extensions
            .iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .collect();
        Ok(FilesSource {
            config: self,
            overrides,
            include_extensions,
            resume: deps.cursor.into(),
        })
    }
}

/// The running source; build it from a [`FilesConfig`].
#[derive(Debug)]
pub struct FilesSource {
    config: FilesConfig,
    overrides: Override,
    include_extensions: Vec<String>,
    resume: Resume,
}

/// What the walker found: a file to read, or a path it could not look at.
enum Found {
    File {
        path: PathBuf,
        size: u64,
        fingerprint: crate::cursor::Fingerprint,
    },
    Unreadable {
        path: String,
        reason: String,
    },
}

#[async_trait]
impl Source for FilesSource {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "files"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        let (tx, mut rx) = mpsc::channel::<Found>(64);
        let walker = {
            let root = self.config.path.clone();
            let overrides = self.overrides.clone();
            let include = self.include_extensions.clone();
            tokio::task::spawn_blocking(move || walk(&root, overrides, &include, &tx))
        };
        while let Some(found) = rx.recv().await {
            if ctx.shutdown.is_triggered() {
                break;
            }
            let document = match found {
                Found::File {
                    path,
                    size,
                    fingerprint,
                } => {
                    let input = relative_id(&self.config.path, &path);
                    if self.resume.unchanged(&input, &fingerprint) {
                        continue;
                    }
                    let document = self.read(&path, size, &ctx).await?;
                    if document.is_some() {
                        self.resume.read(&input, fingerprint);
                    }
                    document
                }
                Found::Unreadable { path, reason } => {
                    let error =
                        ItemError::new(FailureKind::Unreadable, format!("{path}: {reason}"));
                    ctx.dead_letter(
                        &self.config.name,
                        &path,
                        ItemKind::Input,
                        &serde_json::json!({ "path": path }),
                        &error,
                    )
                    .await?;
                    None
                }
            };
            if let Some(document) = document {
                if out.send(RawRecord::Document(document)).await.is_err() {
                    break;
                }
            }
        }
        drop(rx);
        walker.await.map_err(|e| FatalError::Stage {
            stage: "files".into(),
            reason: format!("walking {}: {e}", self.config.path.display()),
        })
    }
}

/// Walks `root` on a blocking thread, sending each candidate file; stops when the receiver is
/// gone.
fn walk(root: &Path, overrides: Override, include: &[String], tx: &mpsc::Sender<Found>) {
    let walker = WalkBuilder::new(root)
        .overrides(overrides)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    for entry in walker {
        let found = match entry {
            Ok(entry) => {
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    continue;
                }
                let path = entry.into_path();
                if !include.is_empty() {
                    let extension = extension(&path);
                    if !include.contains(&extension) {
                        continue;
                    }
                }
                match std::fs::metadata(&path) {
                    Ok(meta) => Found::File {
                        size: meta.len(),
                        fingerprint: fingerprint(&meta),
                        path,
                    },
                    Err(e) => Found::Unreadable {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    },
                }
            }
            Err(e) => Found::Unreadable {
                path: root.display().to_string(),
                reason: e.to_string(),
            },
        };
        if tx.blocking_send(found).is_err() {
            return;
        }
    }
}

impl FilesSource {
    /// One file as a document; `None` when it was skipped or dead-lettered.
    async fn read(
        &self,
        path: &Path,
        size: u64,
        ctx: &StageContext,
    ) -> Result<Option<Document>, FatalError> {
        let source = &self.config.name;
        let id = relative_id(&self.config.path, path);
        let item = || serde_json::json!({ "path": path.display().to_string(), "size_bytes": size });
        if size > self.config.max_file_bytes {
            let error = ItemError::new(
                FailureKind::TooLarge,
                format!(
                    "{}: {size} bytes is over max_file_bytes ({})",
                    path.display(),
                    self.config.max_file_bytes
                ),
            );
            ctx.dead_letter(source, &id, ItemKind::Input, &item(), &error)
                .await?;
            return Ok(None);
        }
        let (bytes, modified) = match read_file(path).await {
            Ok(read) => read,
            Err(e) => {
                let error =
                    ItemError::new(FailureKind::Unreadable, format!("{}: {e}", path.display()));
                ctx.dead_letter(source, &id, ItemKind::Input, &item(), &error)
                    .await?;
                return Ok(None);
            }
        };
        telemetry::source_bytes(source, bytes.len());
        let text = match text_file::decode(bytes) {
            Some(text) => text,
            None => {
                tracing::debug!(path = %path.display(), "binary or non-UTF-8 file skipped");
                telemetry::record_dropped(source, "binary");
                return Ok(None);
            }
        };
        let extension = extension(path);
        let (kind, language) = text_file::kind_of(&extension);
        let mut document = Document::text(source.as_str(), id, kind, text);
        document.title = path.file_name().map(|n| n.to_string_lossy().into_owned());
        document.updated_at = modified.map(DateTime::<Utc>::from);
        document
            .metadata
            .insert("path".into(), path.display().to_string().into());
        document
            .metadata
            .insert("size_bytes".into(), MetaValue::Int(size as i64));
        if let Some(language) = language {
            document.metadata.insert("language".into(), language.into());
        }
        Ok(Some(document))
    }
}

async fn read_file(path: &Path) -> std::io::Result<(Vec<u8>, Option<SystemTime>)> {
    let bytes = tokio::fs::read(path).await?;
    let modified = tokio::fs::metadata(path).await?.modified().ok();
    Ok((bytes, modified))
}

/// The path below `root`, `/`-separated on every platform.
fn relative_id(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_id_uses_forward_slashes() {
        let root = Path::new("/data/docs");
        assert_eq!(
            relative_id(root, &root.join("guide").join("intro.md")),
            "guide/intro.md"
        );
    }
}
