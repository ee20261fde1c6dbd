//! One channel's day files in, its day and thread records out.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use kass_pipeline::model::{ChatDirectory, RawMessage};
use kass_pipeline::{
    telemetry, DocumentKind, FailureKind, FatalError, ItemError, ItemKind, Outlet, RawRecord,
    StageContext,
};

use super::{Flow, SlackExportConfig};
use crate::slack::message::{Home, SlackMessage};
use crate::slack::{chat_record, day_document_id, thread_document_id, Conversation as Channel};

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

/// Threads of one channel: those still gathering replies, and those already emitted.
#[derive(Default)]
struct Threads {
    open: BTreeMap<String, OpenThread>,
    emitted: HashSet<String>,
}

/// Reads one channel folder's day files and emits its days and threads.
pub(super) struct ChannelReader<'a> {
    pub config: &'a SlackExportConfig,
    pub directory: &'a Arc<ChatDirectory>,
    pub channel: Channel,
    pub out: &'a Outlet<RawRecord>,
    pub ctx: &'a StageContext,
}

impl ChannelReader<'_> {
    /// Reads `days` (oldest first) and emits every day and thread they hold.
    pub async fn run(&self, days: Vec<(NaiveDate, PathBuf)>) -> Result<Flow, FatalError> {
        let mut threads = Threads::default();
        for (day, path) in days {
            if self.ctx.shutdown.is_triggered() {
                return Ok(Flow::Stop);
            }
            for (thread_ts, thread) in threads.quiet_since(day, self.config.thread_grace_days) {
                if self.send_thread(&thread_ts, thread).await == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            let Some(messages) = self.read_day(day, &path).await? else {
                continue;
            };
            let mut day_messages = Vec::new();
            for message in messages {
                match message.home(|ts| threads.open.contains_key(ts)) {
                    Home::Day => day_messages.push(message.into_raw(self.directory)),
                    Home::Thread(thread_ts) => {
                        threads.add(thread_ts, message, day, &path, self.directory)
                    }
                }
            }
            // A day whose messages all went to threads has no document of its own.
            if !day_messages.is_empty() {
                let chat = self.chat(
                    day_document_id(&self.channel.id, day),
                    DocumentKind::ChatConversation,
                    path.display().to_string(),
                    day_messages,
                );
                if self.send(chat).await == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
        }
        for (thread_ts, thread) in std::mem::take(&mut threads.open) {
            if self.send_thread(&thread_ts, thread).await == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// One day file's messages; a malformed file or message is dead-lettered instead.
    async fn read_day(
        &self,
        day: NaiveDate,
        path: &Path,
    ) -> Result<Option<Vec<SlackMessage>>, FatalError> {
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
                let (item, error) =
                    failed(FailureKind::Unreadable, format!("{}: {e}", path.display()));
                self.dead_letter(&item_id, &item, &error).await?;
                return Ok(None);
            }
        };
        telemetry::source_bytes(&self.config.name, body.len());
        let values: Vec<serde_json::Value> = match serde_json::from_slice(&body) {
            Ok(values) => values,
            Err(e) => {
                let (item, error) = failed(
                    FailureKind::MalformedJson,
                    format!("{}: {e}", path.display()),
                );
                self.dead_letter(&item_id, &item, &error).await?;
                return Ok(None);
            }
        };
        let mut messages = Vec::with_capacity(values.len());
        for (index, value) in values.into_iter().enumerate() {
            match serde_json::from_value::<SlackMessage>(value.clone()) {
                Ok(message) => messages.push(message),
                Err(e) => {
                    let error = ItemError::new(
                        FailureKind::MalformedMessage,
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
            .dead_letter(&self.config.name, item_id, ItemKind::Input, item, error)
            .await
    }

    async fn send_thread(&self, thread_ts: &str, thread: OpenThread) -> Flow {
        let mut document_id = thread_document_id(&self.channel.id, thread_ts);
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
        chat_record(
            &self.config.name,
            &self.channel,
            document_id,
            kind,
            origin,
            messages,
            self.directory,
        )
    }

    async fn send(&self, record: RawRecord) -> Flow {
        match self.out.send(record).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }
}

impl Threads {
    /// Takes out the threads quiet for more than `grace_days` before `day`: their replies are
    /// taken to be complete.
    fn quiet_since(&mut self, day: NaiveDate, grace_days: u32) -> Vec<(String, OpenThread)> {
        let grace = chrono::Days::new(u64::from(grace_days));
        let done: Vec<String> = self
            .open
            .iter()
            .filter(|(_, t)| {
                t.last_activity
                    .checked_add_days(grace)
                    .is_some_and(|d| d < day)
            })
            .map(|(ts, _)| ts.clone())
            .collect();
        done.into_iter()
            .map(|ts| {
                let thread = self.open.remove(&ts).expect("listed above");
                self.emitted.insert(ts.clone());
                (ts, thread)
            })
            .collect()
    }

    /// Adds a parent or reply to its thread, opening it (as a continuation if the thread was
    /// emitted already).
    fn add(
        &mut self,
        thread_ts: String,
        message: SlackMessage,
        day: NaiveDate,
        path: &Path,
        directory: &ChatDirectory,
    ) {
        let latest_reply = message.latest_reply_date();
        let parent = message.is_thread_parent();
        let raw = message.into_raw(directory);
        let continued = self.emitted.contains(&thread_ts);
        let thread = self.open.entry(thread_ts).or_insert_with(|| {
            let mut thread = OpenThread::new(day, path);
            if continued {
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
}
