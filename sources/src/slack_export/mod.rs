//! The `slack_export` source: an official Slack workspace export, unzipped.
//!
//! An export is a directory holding `users.json`, `channels.json` (optionally `groups.json`,
//! `mpims.json`, `dms.json`) and one folder per conversation with a JSON array of messages per day:
//! `general/2021-10-27.json`.
//!
//! Two kinds of record come out, both as [`RawChat`] for the transform stage to render, and
//! every message goes into exactly one of them, so no passage is stored (and found) twice:
//!
//! - a thread: the parent and every reply, which may span several day files, id
//!   `{channel_id}/thread/{thread_ts}`. Replies also sent to the channel (`thread_broadcast`)
//!   belong here only: the channel shows them out of their context, the thread in it.
//! - a channel's day: its other messages (not in a thread; a "parent" without replies), id
//!   `{channel_id}/{YYYY-MM-DD}`. A day whose messages all belong to threads has none.
//!
//! Channels are read one at a time and day files in date order, so memory holds one day file plus
//! the threads still open. A thread is emitted once `thread_grace_days` have passed since its last
//! activity (its parent's `latest_reply`, or the last reply seen), or when its channel ends. The
//! grace period exists because `reply_count`/`latest_reply` are not reliable: real exports hold
//! replies (bot posts, late answers) after the `latest_reply` the parent records. A reply that
//! still arrives after its thread was emitted becomes a continuation document,
//! `{channel_id}/thread/{thread_ts}/{first late reply ts}`.
//!
//! Folders and day files may be symbolic links (see `listing.rs`). Where the export holds less
//! than it promises (a listed channel without a folder, a folder without day files, nothing read
//! at all) the source warns, naming the path (see `shortfall.rs`).
//!
//! A malformed day file, or a malformed message in one, goes to the dead letters and the rest of
//! the export is read. A missing or malformed `users.json`/`channels.json` stops the run: without
//! them no id could be turned into a name.

mod channel;
mod listing;
mod shortfall;
mod workspace;

use std::collections::HashSet;
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::NaiveDate;
use kass_pipeline::{tally, FatalError, Outlet, RawRecord, Source, StageContext};
use serde::Deserialize;

use crate::cursor::Resume;
use crate::{BuildSource, SourceDeps};
use channel::ChannelReader;
use shortfall::Shortfall;
use workspace::Workspace;

#[cfg(doc)]
use kass_pipeline::model::RawChat;

/// Reads a Slack workspace export directory.
///
/// ```toml
/// [[sources]]
/// type = "slack_export"
/// path = "/data/slack-export"
/// channels = ["general", "core-dev-help"]
/// since = "2023-01-01"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackExportConfig {
    /// The `source` label on every document from this export; also names its batches and
    /// metrics. Give two exports different names.
    #[serde(default = "default_name")]
    pub name: String,
    /// The unzipped export: the directory holding `users.json` and `channels.json`.
    pub path: PathBuf,
    /// Only these channels, by name (as in the export's folder names, without `#`). Empty reads
    /// every channel folder in the export.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Skip day files before this date (`YYYY-MM-DD`, inclusive).
    #[serde(default)]
    pub since: Option<NaiveDate>,
    /// Skip day files after this date (`YYYY-MM-DD`, inclusive).
    #[serde(default)]
    pub until: Option<NaiveDate>,
    /// Days a thread is kept open after its last known activity, waiting for late replies before
    /// it is emitted. Larger values make fewer split threads and hold more threads in memory.
    #[serde(default = "default_thread_grace_days")]
    pub thread_grace_days: u32,
}

fn default_name() -> String {
    "slack".to_string()
}

fn default_thread_grace_days() -> u32 {
    7
}

impl SlackExportConfig {
    /// A config reading everything in `path`, with every other field at its default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            name: default_name(),
            path: path.into(),
            channels: Vec::new(),
            since: None,
            until: None,
            thread_grace_days: default_thread_grace_days(),
        }
    }
}

impl BuildSource for SlackExportConfig {
    type Source = SlackExport;

    fn name(&self) -> &str {
        &self.name
    }

    /// Checks the export directory and the date range. With a cursor, reads only channels with
    /// a new or changed day file since its run. A whole channel is re-read, not just its changed
    /// days: a thread's replies can land in a later day's file than its parent.
    fn build_with(self, deps: SourceDeps) -> Result<SlackExport, FatalError> {
        if !self.path.is_dir() {
            return Err(FatalError::Config(format!(
                "slack_export source `{}`: {} is not a directory",
                self.name,
                self.path.display()
            )));
        }
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if since > until {
                return Err(FatalError::Config(format!(
                    "slack_export source `{}`: since ({since}) is after until ({until})",
                    self.name
                )));
            }
        }
        Ok(SlackExport {
            config: self,
            resume: deps.cursor.into(),
        })
    }
}

/// The running source; build it from a [`SlackExportConfig`].
#[derive(Debug)]
pub struct SlackExport {
    config: SlackExportConfig,
    resume: Resume,
}

#[async_trait]
impl Source for SlackExport {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "slack_export"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        let config = &self.config;
        let workspace = Workspace::load(config).await?;
        let folders = listing::channel_folders(config).await?;
        let wanted: HashSet<&str> = config.channels.iter().map(String::as_str).collect();
        let selected = |name: &str| wanted.is_empty() || wanted.contains(name);
        // Day files read, plus folders skipped as unchanged since the cursor's run.
        let mut found = 0;
        let progress = format!("{}: channels", config.name);
        let chosen = folders
            .iter()
            .filter(|f| selected(&workspace.channel_for_folder(f).name))
            .count();
        tally::expect(&progress, chosen as u64);
        for folder in &folders {
            let channel = workspace.channel_for_folder(folder);
            if !selected(&channel.name) {
                continue;
            }
            tally::advance(&progress, 1);
            let path = config.path.join(folder);
            // Without a cursor nothing is compared, so the folder is not read for it.
            let fingerprint = if self.resume.is_resuming() {
                listing::folder_fingerprint(&path).await
            } else {
                String::new()
            };
            if self.resume.unchanged(folder, &fingerprint) {
                found += 1;
                continue;
            }
            let days = listing::day_files(config, &path).await?;
            if days.total == 0 {
                Shortfall::EmptyFolder { path: &path }.emit(&config.name);
            }
            found += days.in_range.len();
            let reader = ChannelReader {
                config,
                directory: &workspace.directory,
                channel,
                out: &out,
                ctx: &ctx,
            };
            if reader.run(days.in_range).await? == Flow::Stop {
                return Ok(());
            }
            self.resume.read(folder, fingerprint);
        }
        self.report_missing(&workspace, &folders, found);
        Ok(())
    }
}

impl SlackExport {
    /// Warns about what the listings and the configuration promised but the export lacks.
    fn report_missing(&self, workspace: &Workspace, folders: &[String], found: usize) {
        let config = &self.config;
        let root = config.path.as_path();
        if config.channels.is_empty() {
            let folder_set: HashSet<&str> = folders.iter().map(String::as_str).collect();
            let missing: Vec<&str> = workspace
                .listed()
                .map(|(folder, _)| folder)
                .filter(|folder| !folder_set.contains(folder))
                .collect();
            Shortfall::ListedChannelsMissing {
                root,
                folders: &missing,
            }
            .emit(&config.name);
        } else {
            let present: HashSet<String> = folders
                .iter()
                .map(|f| workspace.channel_for_folder(f).name)
                .collect();
            for channel in config.channels.iter().filter(|c| !present.contains(*c)) {
                Shortfall::SelectedChannelMissing { root, channel }.emit(&config.name);
            }
        }
        let promised = !folders.is_empty() || workspace.listed().next().is_some();
        if promised && found == 0 {
            Shortfall::NothingRead {
                root,
                since: config.since,
                until: config.until,
            }
            .emit(&config.name);
        }
    }
}

/// Whether to carry on after sending: downstream gone or shutdown requested means stop.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}
