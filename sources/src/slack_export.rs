//! The `slack_export` source: an official Slack workspace export, unzipped.
//!
//! An export is a directory holding `users.json`, `channels.json` (optionally `groups.json`,
//! `mpims.json`, `dms.json`) and one folder per conversation with a JSON array of messages per day:
//! `general/2021-10-27.json`.
//!
//! Two kinds of record come out, both as [`RawChat`] for the transform stage to render:
//!
//! - a channel's day: its top-level messages (including thread parents and replies also sent to
//!   the channel), id `{channel_id}/{YYYY-MM-DD}`;
//! - a thread: the parent and every reply, which may span several day files, id
//!   `{channel_id}/thread/{thread_ts}`.
//!
//! Channels are read one at a time and day files in date order, so memory holds one day file plus
//! the threads still open. A thread is emitted once `thread_grace_days` have passed since its last
//! activity (its parent's `latest_reply`, or the last reply seen), or when its channel ends. The
//! grace period exists because `reply_count`/`latest_reply` are not reliable: real exports hold
//! replies (bot posts, late answers) after the `latest_reply` the parent records. A reply that
//! still arrives after its thread was emitted becomes a continuation document,
//! `{channel_id}/thread/{thread_ts}/{first late reply ts}`.
//!
//! A malformed day file, or a malformed message in one, goes to the dead letters and the rest of
//! the export is read. A missing or malformed `users.json`/`channels.json` stops the run: without
//! them no id could be turned into a name.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::cursor::{fingerprint, Cursor};
use chrono::{DateTime, NaiveDate};
use kass_pipeline::model::{ChatDirectory, RawChat, RawMessage};
use kass_pipeline::{
    telemetry, DocumentKind, FatalError, ItemError, Outlet, RawRecord, Source, StageContext,
};
use serde::de::IgnoredAny;
use serde::Deserialize;

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

    /// Checks the export directory and the date range.
    pub fn build(self) -> Result<SlackExport, FatalError> {
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
            cursor: None,
        })
    }
}

/// The running source; build it from a [`SlackExportConfig`].
#[derive(Debug)]
pub struct SlackExport {
    config: SlackExportConfig,
    cursor: Option<Arc<Cursor>>,
}

impl SlackExport {
    /// Reads only channels with a new or changed day file since `cursor`'s run. A whole
    /// channel is re-read, not just its changed days: a thread's replies can land in a later
    /// day's file than its parent.
    pub fn resume_from(mut self, cursor: Arc<Cursor>) -> Self {
        self.cursor = Some(cursor);
        self
    }
}

/// One fingerprint for a channel folder: a digest of its files' names and fingerprints.
async fn folder_fingerprint(folder: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(folder).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            if let Ok(meta) = entry.metadata().await {
                files.push(format!(
                    "{}={}",
                    entry.file_name().to_string_lossy(),
                    fingerprint(&meta)
                ));
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in &files {
        h.update(f.as_bytes());
        h.update([0u8]);
    }
    format!("{}:{}", files.len(), hex::encode(&h.finalize()[..16]))
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
        let workspace = Workspace::load(&self.config).await?;
        let wanted: HashSet<&str> = self.config.channels.iter().map(String::as_str).collect();
        let mut seen_wanted = HashSet::new();
        for folder in channel_folders(&self.config.path).await? {
            let channel = workspace.channel_for_folder(&folder);
            if !wanted.is_empty() && !wanted.contains(channel.name.as_str()) {
                continue;
            }
            seen_wanted.insert(channel.name.clone());
            let fingerprint = match &self.cursor {
                Some(cursor) => {
                    let fingerprint = folder_fingerprint(&self.config.path.join(&folder)).await;
                    if cursor.unchanged(&folder, &fingerprint) {
                        continue;
                    }
                    Some(fingerprint)
                }
                None => None,
            };
            let reader = ChannelReader {
                config: &self.config,
                directory: &workspace.directory,
                channel,
                out: &out,
                ctx: &ctx,
            };
            if reader.run(&self.config.path.join(&folder)).await? == Flow::Stop {
                return Ok(());
            }
            if let (Some(cursor), Some(fingerprint)) = (&self.cursor, fingerprint) {
                cursor.read(&folder, fingerprint);
            }
        }
        for name in wanted.iter().filter(|n| !seen_wanted.contains(**n)) {
            tracing::warn!(source = %self.config.name, channel = name, "channel listed in `channels` has no folder in the export");
        }
        Ok(())
    }
}

/// Whether to carry on after sending: downstream gone or shutdown requested means stop.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Users and channels from the export's top-level files.
struct Workspace {
    directory: Arc<ChatDirectory>,
    /// Folder name -> channel: the name for channels, group DMs and private channels, the id for
    /// direct messages.
    folders: HashMap<String, Channel>,
}

#[derive(Debug, Clone)]
struct Channel {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct ExportUser {
    id: String,
    name: Option<String>,
    real_name: Option<String>,
    profile: Option<Profile>,
}

#[derive(Debug, Deserialize)]
struct Profile {
    display_name: Option<String>,
    real_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ExportChannel {
    id: String,
    name: Option<String>,
}

impl Workspace {
    async fn load(config: &SlackExportConfig) -> Result<Self, FatalError> {
        let users: Vec<ExportUser> = read_listing(config, "users.json", true).await?;
        let mut directory = ChatDirectory::default();
        for user in users {
            let name = first_name([
                user.profile
                    .as_ref()
                    .and_then(|p| p.display_name.as_deref()),
                user.profile.as_ref().and_then(|p| p.real_name.as_deref()),
                user.real_name.as_deref(),
                user.name.as_deref(),
            ]);
            if let Some(name) = name {
                directory.users.insert(user.id, name.to_string());
            }
        }
        let mut folders = HashMap::new();
        for (file, required) in [
            ("channels.json", true),
            ("groups.json", false),
            ("mpims.json", false),
            ("dms.json", false),
        ] {
            let listing: Vec<ExportChannel> = read_listing(config, file, required).await?;
            for channel in listing {
                let name = channel.name.unwrap_or_else(|| channel.id.clone());
                directory.channels.insert(channel.id.clone(), name.clone());
                let folder = if file == "dms.json" {
                    &channel.id
                } else {
                    &name
                };
                folders.insert(
                    folder.clone(),
                    Channel {
                        id: channel.id,
                        name,
                    },
                );
            }
        }
        Ok(Self {
            directory: Arc::new(directory),
            folders,
        })
    }

    /// The channel a folder holds; a folder no listing names is its own id and name.
    fn channel_for_folder(&self, folder: &str) -> Channel {
        self.folders
            .get(folder)
            .cloned()
            .unwrap_or_else(|| Channel {
                id: folder.to_string(),
                name: folder.to_string(),
            })
    }
}

/// Reads one top-level listing; a missing optional one is empty.
async fn read_listing<T: serde::de::DeserializeOwned>(
    config: &SlackExportConfig,
    file: &str,
    required: bool,
) -> Result<Vec<T>, FatalError> {
    let path = config.path.join(file);
    let body = match tokio::fs::read(&path).await {
        Ok(body) => body,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Vec::new()),
        Err(e) => {
            return Err(FatalError::Config(format!(
                "slack_export source `{}`: cannot read {}: {e} (is this an unzipped Slack export?)",
                config.name,
                path.display()
            )))
        }
    };
    telemetry::source_bytes(&config.name, body.len());
    serde_json::from_slice(&body).map_err(|e| {
        FatalError::Config(format!(
            "slack_export source `{}`: {}: {e}",
            config.name,
            path.display()
        ))
    })
}

/// Every sub-directory of the export, sorted by name.
async fn channel_folders(root: &Path) -> Result<Vec<String>, FatalError> {
    let unreadable =
        |e: std::io::Error| FatalError::Config(format!("cannot list {}: {e}", root.display()));
    let mut entries = tokio::fs::read_dir(root).await.map_err(unreadable)?;
    let mut folders = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(unreadable)? {
        if entry.file_type().await.map_err(unreadable)?.is_dir() {
            folders.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    folders.sort();
    Ok(folders)
}

/// A message as the export stores it; only the fields kass uses.
#[derive(Debug, Deserialize)]
struct ExportMessage {
    ts: String,
    #[serde(default)]
    text: Option<String>,
    user: Option<String>,
    subtype: Option<String>,
    username: Option<String>,
    bot_id: Option<String>,
    thread_ts: Option<String>,
    #[serde(default)]
    reply_count: u64,
    latest_reply: Option<String>,
    edited: Option<IgnoredAny>,
    user_profile: Option<Profile>,
    #[serde(default)]
    files: Vec<ExportFile>,
    #[serde(default)]
    attachments: Vec<ExportAttachment>,
}

#[derive(Debug, Deserialize)]
struct ExportFile {
    name: Option<String>,
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ExportAttachment {
    fallback: Option<String>,
    title: Option<String>,
    text: Option<String>,
    #[serde(default)]
    fields: Vec<AttachmentField>,
}

#[derive(Debug, Deserialize)]
struct AttachmentField {
    title: Option<String>,
    value: Option<String>,
}

impl ExportMessage {
    fn is_thread_parent(&self) -> bool {
        self.thread_ts.as_deref() == Some(self.ts.as_str())
    }

    /// Shown in the channel itself: not in a thread, a thread parent, or a reply also sent to
    /// the channel.
    fn is_top_level(&self) -> bool {
        self.thread_ts.is_none()
            || self.is_thread_parent()
            || self.subtype.as_deref() == Some("thread_broadcast")
    }

    fn into_raw(self, directory: &ChatDirectory) -> RawMessage {
        let profile_name = self
            .user_profile
            .as_ref()
            .and_then(|p| first_name([p.display_name.as_deref(), p.real_name.as_deref()]));
        let directory_name = self
            .user
            .as_deref()
            .and_then(|id| directory.users.get(id))
            .map(String::as_str);
        let author_name = first_name([
            profile_name,
            directory_name,
            self.username.as_deref(),
            self.bot_id.as_deref(),
        ])
        .map(str::to_string);
        let mut attachments: Vec<String> = self
            .files
            .iter()
            .map(
                |f| match first_name([f.name.as_deref(), f.title.as_deref()]) {
                    Some(name) => format!("file: {name}"),
                    None => "file".to_string(),
                },
            )
            .collect();
        attachments.extend(self.attachments.iter().filter_map(ExportAttachment::render));
        RawMessage {
            is_bot: self.subtype.as_deref() == Some("bot_message") || self.bot_id.is_some(),
            ts: self.ts,
            user_id: self.user,
            author_name,
            subtype: self.subtype,
            text: self.text.unwrap_or_default(),
            thread_ts: self.thread_ts,
            edited: self.edited.is_some(),
            attachments,
        }
    }
}

impl ExportAttachment {
    /// The attachment's own summary (`fallback`), else its title and text, else its fields.
    fn render(&self) -> Option<String> {
        if let Some(fallback) = first_name([self.fallback.as_deref()]) {
            return Some(fallback.to_string());
        }
        let parts: Vec<&str> = [self.title.as_deref(), self.text.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return Some(parts.join(": "));
        }
        let fields: Vec<String> = self
            .fields
            .iter()
            .filter_map(|f| match (f.title.as_deref(), f.value.as_deref()) {
                (Some(t), Some(v)) if !t.is_empty() && !v.is_empty() => Some(format!("{t}: {v}")),
                (_, Some(v)) if !v.trim().is_empty() => Some(v.to_string()),
                (Some(t), _) if !t.trim().is_empty() => Some(t.to_string()),
                _ => None,
            })
            .collect();
        (!fields.is_empty()).then(|| fields.join("; "))
    }
}

/// The first non-blank candidate.
fn first_name<const N: usize>(candidates: [Option<&str>; N]) -> Option<&str> {
    candidates
        .into_iter()
        .flatten()
        .find(|s| !s.trim().is_empty())
}

/// The UTC date of a Slack `ts`, if it is one.
fn ts_date(ts: &str) -> Option<NaiveDate> {
    let secs: i64 = ts.split('.').next()?.parse().ok()?;
    Some(DateTime::from_timestamp(secs, 0)?.date_naive())
}

/// A thread being gathered.
struct OpenThread {
    parent: Option<RawMessage>,
    replies: Vec<RawMessage>,
    /// The later of the parent's `latest_reply` date and the last day a reply was seen.
    last_activity: NaiveDate,
    /// Where the thread started, for error messages.
    origin: String,
    /// Set for replies that arrived after the thread was emitted: the first such reply's ts.
    continuation_of: Option<String>,
}

impl OpenThread {
    fn new(day: NaiveDate, origin: &Path) -> Self {
        Self {
            parent: None,
            replies: Vec::new(),
            last_activity: day,
            origin: origin.display().to_string(),
            continuation_of: None,
        }
    }
}

/// Reads one channel folder's day files and emits its days and threads.
struct ChannelReader<'a> {
    config: &'a SlackExportConfig,
    directory: &'a Arc<ChatDirectory>,
    channel: Channel,
    out: &'a Outlet<RawRecord>,
    ctx: &'a StageContext,
}

impl ChannelReader<'_> {
    async fn run(&self, folder: &Path) -> Result<Flow, FatalError> {
        let days = self.day_files(folder).await?;
        let mut open: BTreeMap<String, OpenThread> = BTreeMap::new();
        let mut emitted: HashSet<String> = HashSet::new();
        for (day, path) in days {
            if self.ctx.shutdown.is_triggered() {
                return Ok(Flow::Stop);
            }
            let grace = chrono::Days::new(u64::from(self.config.thread_grace_days));
            let done: Vec<String> = open
                .iter()
                .filter(|(_, t)| {
                    t.last_activity
                        .checked_add_days(grace)
                        .is_some_and(|d| d < day)
                })
                .map(|(ts, _)| ts.clone())
                .collect();
            for thread_ts in done {
                let thread = open.remove(&thread_ts).expect("listed above");
                emitted.insert(thread_ts.clone());
                if self.send_thread(&thread_ts, thread).await == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            let Some(messages) = self.read_day(day, &path).await? else {
                continue;
            };
            let mut top_level = Vec::new();
            for message in messages {
                self.place(message, day, &path, &mut top_level, &mut open, &emitted);
            }
            if !top_level.is_empty() {
                let chat = self.chat(
                    format!("{}/{day}", self.channel.id),
                    DocumentKind::ChatConversation,
                    path.display().to_string(),
                    top_level,
                );
                if self.send(chat).await == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
        }
        for (thread_ts, thread) in std::mem::take(&mut open) {
            if self.send_thread(&thread_ts, thread).await == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// Files named `YYYY-MM-DD.json` within the configured dates, oldest first.
    async fn day_files(&self, folder: &Path) -> Result<Vec<(NaiveDate, PathBuf)>, FatalError> {
        let unreadable = |e: std::io::Error| {
            FatalError::Config(format!("cannot list {}: {e}", folder.display()))
        };
        let mut entries = tokio::fs::read_dir(folder).await.map_err(unreadable)?;
        let mut days = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(unreadable)? {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            let day = file_name
                .strip_suffix(".json")
                .and_then(|stem| NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok());
            let Some(day) = day else {
                tracing::debug!(path = %entry.path().display(), "not a day file; skipped");
                telemetry::record_dropped(&self.config.name, "not_a_day_file");
                continue;
            };
            let in_range = self.config.since.is_none_or(|since| day >= since)
                && self.config.until.is_none_or(|until| day <= until);
            if in_range {
                days.push((day, entry.path()));
            }
        }
        days.sort();
        Ok(days)
    }

    /// One day file's messages; a malformed file or message is dead-lettered instead.
    async fn read_day(
        &self,
        day: NaiveDate,
        path: &Path,
    ) -> Result<Option<Vec<ExportMessage>>, FatalError> {
        let item_id = format!("{}/{day}", self.channel.id);
        let failed = |error_type, reason: String| {
            let item = serde_json::json!({
                "path": path.display().to_string(),
                "channel": self.channel.name,
                "channel_id": self.channel.id,
            });
            (item, ItemError::new(error_type, reason))
        };
        let body = match tokio::fs::read(path).await {
            Ok(body) => body,
            Err(e) => {
                let (item, error) = failed("unreadable", format!("{}: {e}", path.display()));
                self.dead_letter(&item_id, &item, &error).await?;
                return Ok(None);
            }
        };
        telemetry::source_bytes(&self.config.name, body.len());
        let values: Vec<serde_json::Value> = match serde_json::from_slice(&body) {
            Ok(values) => values,
            Err(e) => {
                let (item, error) = failed("malformed_json", format!("{}: {e}", path.display()));
                self.dead_letter(&item_id, &item, &error).await?;
                return Ok(None);
            }
        };
        let mut messages = Vec::with_capacity(values.len());
        for (index, value) in values.into_iter().enumerate() {
            match serde_json::from_value::<ExportMessage>(value.clone()) {
                Ok(message) => messages.push(message),
                Err(e) => {
                    let error = ItemError::new(
                        "malformed_message",
                        format!("{}: message {index}: {e}", path.display()),
                    );
                    self.dead_letter(&format!("{item_id}#{index}"), &value, &error)
                        .await?;
                }
            }
        }
        Ok(Some(messages))
    }

    async fn dead_letter(
        &self,
        item_id: &str,
        item: &serde_json::Value,
        error: &ItemError,
    ) -> Result<(), FatalError> {
        self.ctx
            .dead_letter(&self.config.name, item_id, item, error)
            .await
    }

    /// Puts one message in its day, its thread, or both.
    fn place(
        &self,
        message: ExportMessage,
        day: NaiveDate,
        path: &Path,
        top_level: &mut Vec<RawMessage>,
        open: &mut BTreeMap<String, OpenThread>,
        emitted: &HashSet<String>,
    ) {
        let top = message.is_top_level();
        let parent = message.is_thread_parent();
        let Some(thread_ts) = message.thread_ts.clone() else {
            top_level.push(message.into_raw(self.directory));
            return;
        };
        let latest_reply = message.latest_reply.as_deref().and_then(ts_date);
        let starts_thread = parent && message.reply_count > 0;
        if parent && !starts_thread && !open.contains_key(&thread_ts) {
            top_level.push(message.into_raw(self.directory));
            return;
        }
        let raw = message.into_raw(self.directory);
        if top {
            top_level.push(raw.clone());
        }
        if parent && emitted.contains(&thread_ts) {
            return;
        }
        let thread = open.entry(thread_ts.clone()).or_insert_with(|| {
            let mut thread = OpenThread::new(day, path);
            if emitted.contains(&thread_ts) {
                thread.continuation_of = Some(raw.ts.clone());
            }
            thread
        });
        thread.last_activity = thread.last_activity.max(day);
        if let Some(latest) = latest_reply {
            thread.last_activity = thread.last_activity.max(latest);
        }
        if parent {
            thread.parent = Some(raw);
        } else {
            thread.replies.push(raw);
        }
    }

    async fn send_thread(&self, thread_ts: &str, thread: OpenThread) -> Flow {
        let mut document_id = format!("{}/thread/{thread_ts}", self.channel.id);
        if let Some(first_late) = &thread.continuation_of {
            tracing::info!(source = %self.config.name, channel = %self.channel.name, thread_ts, "replies arrived after their thread was emitted; emitting them as a continuation");
            document_id = format!("{document_id}/{first_late}");
        }
        let messages = thread.parent.into_iter().chain(thread.replies).collect();
        let chat = self.chat(document_id, DocumentKind::Thread, thread.origin, messages);
        self.send(chat).await
    }

    fn chat(
        &self,
        document_id: String,
        kind: DocumentKind,
        origin: String,
        messages: Vec<RawMessage>,
    ) -> RawRecord {
        RawRecord::Chat(RawChat {
            source: self.config.name.clone(),
            document_id,
            kind,
            channel_id: self.channel.id.clone(),
            channel_name: self.channel.name.clone(),
            origin,
            messages,
            directory: self.directory.clone(),
        })
    }

    async fn send(&self, record: RawRecord) -> Flow {
        match self.out.send(record).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_renders_fallback_then_title_and_text_then_fields() {
        let a =
            |fallback: Option<&str>, title: Option<&str>, text: Option<&str>| ExportAttachment {
                fallback: fallback.map(String::from),
                title: title.map(String::from),
                text: text.map(String::from),
                fields: vec![AttachmentField {
                    title: Some("Status".into()),
                    value: Some("open".into()),
                }],
            };
        assert_eq!(
            a(Some("fb"), Some("t"), None).render().as_deref(),
            Some("fb")
        );
        assert_eq!(
            a(None, Some("t"), Some("x")).render().as_deref(),
            Some("t: x")
        );
        assert_eq!(
            a(Some(" "), None, None).render().as_deref(),
            Some("Status: open")
        );
    }

    #[test]
    fn ts_date_is_the_utc_day() {
        assert_eq!(
            ts_date("1635356172.001900"),
            NaiveDate::from_ymd_opt(2021, 10, 27)
        );
        assert_eq!(ts_date("nope"), None);
    }
}
