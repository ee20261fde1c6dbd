//! One Discord message as the API answers it, and what it becomes in a chat document (the
//! same [`RawMessage`] Slack's messages become, so both are chunked by the same windows).

use chrono::{DateTime, NaiveDate};
use kass_pipeline::model::RawMessage;
use serde::Deserialize;

use crate::markup::discord::{render, Names};

/// A message; only the fields kass uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Message {
    pub id: String,
    /// 0 default, 19 reply; others are system messages (joins, pins, a thread's starter).
    #[serde(rename = "type", default)]
    pub kind: u8,
    pub timestamp: String,
    #[serde(default)]
    pub edited_timestamp: Option<String>,
    #[serde(default)]
    pub content: String,
    pub author: Author,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub embeds: Vec<Embed>,
    #[serde(default)]
    pub mentions: Vec<Author>,
    /// The message replied to, with its author (Discord sends it with a reply).
    #[serde(default)]
    pub referenced_message: Option<Box<Message>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Author {
    pub id: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
    #[serde(default)]
    pub bot: bool,
}

impl Author {
    /// The name people see: the display name, else the username.
    pub fn shown(&self) -> &str {
        self.global_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&self.username)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Attachment {
    #[serde(default)]
    pub filename: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Embed {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl Message {
    /// The instant as a `seconds.micros` string, the form chat documents order by.
    pub fn ts(&self) -> Option<String> {
        let at = DateTime::parse_from_rfc3339(&self.timestamp).ok()?;
        Some(format!(
            "{}.{:06}",
            at.timestamp(),
            at.timestamp_subsec_micros()
        ))
    }

    /// The UTC day it was posted on.
    pub fn day(&self) -> Option<NaiveDate> {
        let at = DateTime::parse_from_rfc3339(&self.timestamp).ok()?;
        Some(at.naive_utc().date())
    }

    /// A user's own message (not a bot's, not a system message): what the Message Content
    /// intent hides the text of.
    fn is_users(&self) -> bool {
        !self.author.bot && matches!(self.kind, 0 | 19)
    }

    fn is_blank(&self) -> bool {
        self.content.is_empty() && self.embeds.is_empty() && self.attachments.is_empty()
    }

    /// The message as a chat document holds it: markup rendered with `names` and the users
    /// it mentions, a reply naming whom it answers, attachments and embeds as for Slack.
    pub fn into_raw(self, names: &Names, thread: Option<&str>) -> Option<RawMessage> {
        let ts = self.ts()?;
        let mut names = names.clone();
        for user in &self.mentions {
            names
                .users
                .insert(user.id.clone(), user.shown().to_string());
        }
        let mut text = render(&self.content, &names);
        if let Some(quoted) = &self.referenced_message {
            text = format!("(replying to @{}) {text}", quoted.author.shown());
        }
        let mut attachments: Vec<String> = self
            .attachments
            .iter()
            .map(|a| format!("file: {}", a.filename))
            .collect();
        attachments.extend(self.embeds.iter().filter_map(|e| {
            let parts: Vec<String> = [e.title.as_deref(), e.description.as_deref()]
                .into_iter()
                .flatten()
                .filter(|s| !s.trim().is_empty())
                .map(|s| render(s, &names))
                .collect();
            (!parts.is_empty()).then(|| parts.join(": "))
        }));
        Some(RawMessage {
            ts,
            user_id: Some(self.author.id.clone()),
            author_name: Some(self.author.shown().to_string()),
            subtype: (!matches!(self.kind, 0 | 19)).then(|| format!("discord_type_{}", self.kind)),
            is_bot: self.author.bot,
            text,
            thread_ts: thread.map(str::to_string),
            edited: self.edited_timestamp.is_some(),
            attachments,
        })
    }
}

/// Whether a page of messages shows the Message Content intent missing: at least two
/// messages written by users, every one of them without content, embeds and attachments
/// (one such message alone is a sticker or a deleted attachment, not proof).
pub(crate) fn lacks_content_intent(page: &[Message]) -> bool {
    let users: Vec<&Message> = page.iter().filter(|m| m.is_users()).collect();
    users.len() >= 2 && users.iter().all(|m| m.is_blank())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: &str) -> Message {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_reply_names_whom_it_answers_and_mentions_resolve() {
        let m = message(
            r#"{"id": "2", "type": 19, "timestamp": "2025-01-02T03:04:05.123456+00:00",
                "content": "yes <@7> & no", "author": {"id": "1", "username": "ann"},
                "mentions": [{"id": "7", "username": "bo", "global_name": "Bo"}],
                "attachments": [{"filename": "a.png"}], "embeds": [{"title": "T", "description": "D"}],
                "referenced_message": {"id": "1", "timestamp": "2025-01-02T03:00:00+00:00",
                    "content": "?", "author": {"id": "7", "username": "bo", "global_name": "Bo"}}}"#,
        );
        let raw = m.into_raw(&Names::default(), Some("9")).unwrap();
        assert_eq!(raw.ts, "1735787045.123456");
        assert_eq!(raw.text, "(replying to @Bo) yes @Bo &amp; no");
        assert_eq!(raw.attachments, ["file: a.png", "T: D"]);
        assert_eq!(raw.thread_ts.as_deref(), Some("9"));
        assert!(!raw.edited);
    }

    #[test]
    fn a_page_of_blank_user_messages_means_the_intent_is_missing() {
        let blank = r#"{"id": "1", "timestamp": "2025-01-02T03:04:05+00:00", "content": "", "author": {"id": "1", "username": "a"}}"#;
        let bot = r#"{"id": "3", "timestamp": "2025-01-02T03:04:05+00:00", "content": "hi", "author": {"id": "2", "username": "b", "bot": true}}"#;
        let said = r#"{"id": "4", "timestamp": "2025-01-02T03:04:05+00:00", "content": "hi", "author": {"id": "1", "username": "a"}}"#;
        assert!(lacks_content_intent(&[
            message(blank),
            message(blank),
            message(bot)
        ]));
        assert!(!lacks_content_intent(&[message(blank)]));
        assert!(!lacks_content_intent(&[message(blank), message(said)]));
    }
}
