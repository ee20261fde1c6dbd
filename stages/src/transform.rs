//! The transform stage: raw records -> documents.
//!
//! Structured records (files, JSONL) are already documents and pass through unchanged. Chat records
//! (a channel's day, a thread) become one document each: messages in time order, markup rendered
//! as text (see [`crate::markup`]), noise such as joins and empty bot posts dropped and counted.
//! Doing this once here, rather than in each chat source, keeps every platform's rules alike.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kass_pipeline::model::{chunk_keys, ChatDirectory, RawChat, RawMessage};
use kass_pipeline::{
    telemetry, Document, DocumentKind, FailureKind, FatalError, ItemError, ItemStage, Message,
    MetaValue, Metadata, RawRecord, StageContext, StageError,
};
use serde::Deserialize;

use crate::markup;

/// How chat messages are cleaned up on their way to documents.
///
/// ```toml
/// [transform]
/// drop_subtypes = ["channel_join", "channel_leave"]
/// drop_empty_bot_messages = true
/// keep_attachments = true
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Message subtypes that are noise rather than conversation, dropped and counted under
    /// `kass_records_dropped_total{reason="<subtype>"}`. The default drops membership, topic,
    /// rename, pin and welcome notices, and `tombstone` (a deleted thread parent: the placeholder
    /// goes, the thread's replies stay).
    #[serde(default = "default_drop_subtypes")]
    pub drop_subtypes: Vec<String>,
    /// Drop bot messages with no text and no attachments (after markup is rendered), counted as
    /// `empty_bot_message`.
    #[serde(default = "default_true")]
    pub drop_empty_bot_messages: bool,
    /// Render file names and link previews after a message's text, e.g. `[file: plot.png]`.
    #[serde(default = "default_true")]
    pub keep_attachments: bool,
}

fn default_drop_subtypes() -> Vec<String> {
    [
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "group_join",
        "group_leave",
        "bot_add",
        "bot_remove",
        "pinned_item",
        "welcome_party",
        "tombstone",
    ]
    .map(String::from)
    .to_vec()
}

fn default_true() -> bool {
    true
}

impl Default for TransformConfig {
    fn default() -> Self {
        Self {
            drop_subtypes: default_drop_subtypes(),
            drop_empty_bot_messages: default_true(),
            keep_attachments: default_true(),
        }
    }
}

impl TransformConfig {
    pub fn build(self) -> Result<Transform, FatalError> {
        Ok(Transform {
            drop_subtypes: self.drop_subtypes.into_iter().collect(),
            drop_empty_bot_messages: self.drop_empty_bot_messages,
            keep_attachments: self.keep_attachments,
        })
    }
}

/// Turns [`RawRecord`]s into [`Document`]s; build it from a [`TransformConfig`].
#[derive(Debug)]
pub struct Transform {
    drop_subtypes: HashSet<String>,
    drop_empty_bot_messages: bool,
    keep_attachments: bool,
}

/// Characters of the parent message a thread's title shows.
const THREAD_TITLE_CHARS: usize = 60;

#[async_trait]
impl ItemStage for Transform {
    type Input = RawRecord;
    type Output = Document;

    fn name(&self) -> &'static str {
        "transform"
    }

    fn concurrency(&self) -> usize {
        2
    }

    async fn process(
        &self,
        item: &RawRecord,
        _ctx: &StageContext,
    ) -> Result<Vec<Document>, StageError> {
        let documents: Vec<Document> = match item {
            RawRecord::Document(document) => vec![document.clone()],
            RawRecord::Chat(chat) => self.chat_document(chat)?.into_iter().collect(),
        };
        for document in &documents {
            if let Some(at) = document.updated_at.or(document.created_at) {
                telemetry::source_item_time(&document.source, at.timestamp() as f64);
            }
        }
        Ok(documents)
    }
}

impl Transform {
    /// One chat record as a document, or `None` when every message was dropped.
    pub fn chat_document(&self, chat: &RawChat) -> Result<Option<Document>, ItemError> {
        let mut timed = chat
            .messages
            .iter()
            .map(|raw| Ok((parse_ts(&raw.ts, &chat.origin)?, raw)))
            .collect::<Result<Vec<_>, ItemError>>()?;
        timed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.ts.cmp(&b.1.ts)));

        let messages: Vec<Message> = timed
            .into_iter()
            .filter_map(|(ts, raw)| self.message(chat, ts, raw))
            .collect();
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            return Ok(None);
        };

        let mut metadata = Metadata::new();
        metadata.insert("channel".into(), chat.channel_name.as_str().into());
        metadata.insert("channel_id".into(), chat.channel_id.as_str().into());
        if let Some(version) = chat.version {
            metadata.insert(
                chunk_keys::DOCUMENT_VERSION.into(),
                MetaValue::Int(version as i64),
            );
        }
        let title = match chat.kind {
            DocumentKind::Thread => {
                let thread_ts = chat
                    .messages
                    .iter()
                    .find_map(|m| m.thread_ts.as_deref())
                    .unwrap_or(&first.id);
                metadata.insert("thread_ts".into(), thread_ts.into());
                format!(
                    "#{} thread: {}",
                    chat.channel_name,
                    title_excerpt(&first.text)
                )
            }
            _ => {
                let day = chat
                    .document_id
                    .rsplit('/')
                    .next()
                    .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
                    .map(str::to_string)
                    .unwrap_or_else(|| first.ts.format("%Y-%m-%d").to_string());
                format!("#{} {day}", chat.channel_name)
            }
        };

        Ok(Some(Document {
            id: chat.document_id.clone(),
            source: chat.source.clone(),
            kind: chat.kind,
            title: Some(title),
            text: None,
            created_at: Some(first.ts),
            updated_at: Some(last.ts),
            url: None,
            metadata,
            messages,
        }))
    }

    /// A message as it goes into the document, or `None` (counted) when it is dropped.
    fn message(&self, chat: &RawChat, ts: DateTime<Utc>, raw: &RawMessage) -> Option<Message> {
        if let Some(subtype) = raw.subtype.as_deref() {
            if self.drop_subtypes.contains(subtype) {
                telemetry::record_dropped(&chat.source, subtype);
                return None;
            }
        }
        let mut text = markup::normalize(raw.text.trim(), &chat.directory)
            .trim()
            .to_string();
        let has_attachments = self.keep_attachments && !raw.attachments.is_empty();
        // An empty bot post kept on request still says that the bot posted.
        let keep_empty = raw.is_bot && !self.drop_empty_bot_messages;
        if text.is_empty() && !has_attachments && !keep_empty {
            let reason = if raw.is_bot {
                "empty_bot_message"
            } else {
                "empty_message"
            };
            telemetry::record_dropped(&chat.source, reason);
            return None;
        }
        if has_attachments {
            for attachment in &raw.attachments {
                let rendered = markup::normalize(attachment.trim(), &chat.directory);
                let rendered = rendered.trim();
                if rendered.is_empty() {
                    continue;
                }
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push('[');
                text.push_str(rendered);
                text.push(']');
            }
        }
        Some(Message {
            id: raw.ts.clone(),
            author: author(raw, &chat.directory),
            ts,
            text,
            thread_id: raw.thread_ts.clone(),
            edited: raw.edited,
        })
    }
}

/// The name the platform stored with the message, else the directory's name for its user, else
/// the user id; never empty.
fn author(raw: &RawMessage, directory: &ChatDirectory) -> String {
    raw.author_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            raw.user_id
                .as_deref()
                .and_then(|id| directory.users.get(id).map(String::as_str))
        })
        .or(raw.user_id.as_deref())
        .unwrap_or("unknown")
        .to_string()
}

/// A Slack-style timestamp (`"1635356172.001900"`: seconds, then a fraction) as a UTC time.
pub fn parse_ts(ts: &str, origin: &str) -> Result<DateTime<Utc>, ItemError> {
    let invalid = || {
        ItemError::new(
            FailureKind::InvalidTimestamp,
            format!("{origin}: message ts {ts:?} is not a `seconds.fraction` timestamp"),
        )
    };
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let secs: i64 = secs.parse().map_err(|_| invalid())?;
    let digits = &frac[..frac.len().min(9)];
    let nanos: u32 = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().map_err(|_| invalid())? * 10u32.pow(9 - digits.len() as u32)
    };
    DateTime::from_timestamp(secs, nanos).ok_or_else(invalid)
}

/// The start of a thread's first message, on one line, for its title.
fn title_excerpt(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = one_line.chars();
    let excerpt: String = chars.by_ref().take(THREAD_TITLE_CHARS).collect();
    if chars.next().is_some() {
        format!("{excerpt}…")
    } else {
        excerpt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_ts_parses_to_utc_with_microseconds() {
        let t = parse_ts("1635356172.001900", "x").unwrap();
        assert_eq!(t.timestamp(), 1_635_356_172);
        assert_eq!(t.timestamp_subsec_micros(), 1_900);
        assert_eq!(
            parse_ts("1635356172", "x").unwrap().timestamp(),
            1_635_356_172
        );
    }

    #[test]
    fn malformed_ts_is_an_item_error_naming_origin_and_ts() {
        for bad in ["", "abc", "12.3x", "-5.0", ".5"] {
            let e = parse_ts(bad, "general/2021-10-27.json").unwrap_err();
            assert_eq!(e.error_type, "invalid_timestamp");
            assert!(e.reason.contains("general/2021-10-27.json"), "{}", e.reason);
            assert!(e.reason.contains(&format!("{bad:?}")), "{}", e.reason);
        }
    }

    #[test]
    fn long_parent_is_cut_to_sixty_chars_on_one_line() {
        let t = title_excerpt(&format!("line one\nline two {}", "x".repeat(100)));
        assert!(t.starts_with("line one line two x"));
        assert_eq!(t.chars().count(), THREAD_TITLE_CHARS + 1);
        assert_eq!(title_excerpt("short"), "short");
    }
}
