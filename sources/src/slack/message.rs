//! One Slack message, as the Web API answers it and an export stores it (the export is made of
//! the same message objects), and the one document it belongs in.

use chrono::{DateTime, NaiveDate};
use kass_pipeline::model::{ChatDirectory, RawMessage};
use serde::de::IgnoredAny;
use serde::Deserialize;

/// A message as the Web API and exports hold it; only the fields kass uses.
#[derive(Debug, Deserialize)]
pub(crate) struct SlackMessage {
    pub ts: String,
    #[serde(default)]
    text: Option<String>,
    user: Option<String>,
    subtype: Option<String>,
    username: Option<String>,
    bot_id: Option<String>,
    pub thread_ts: Option<String>,
    #[serde(default)]
    pub reply_count: u64,
    pub latest_reply: Option<String>,
    edited: Option<IgnoredAny>,
    user_profile: Option<Profile>,
    #[serde(default)]
    files: Vec<SlackFile>,
    #[serde(default)]
    attachments: Vec<SlackAttachment>,
}

/// A user's names, in `users.json` and in a message's `user_profile`.
#[derive(Debug, Deserialize)]
pub(crate) struct Profile {
    pub display_name: Option<String>,
    pub real_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SlackFile {
    name: Option<String>,
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SlackAttachment {
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

/// The one document a message goes into.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Home {
    /// Its channel's day.
    Day,
    /// The thread with this `thread_ts`.
    Thread(String),
}

impl SlackMessage {
    pub fn is_thread_parent(&self) -> bool {
        self.thread_ts.as_deref() == Some(self.ts.as_str())
    }

    /// Where the message goes; each message goes to exactly one document, so no passage is
    /// stored twice. A thread parent goes with its replies, as does a reply also sent to the
    /// channel (`thread_broadcast`): the thread is where either makes sense. A message marked
    /// as a parent that has no replies (`reply_count` 0, none seen) is an ordinary channel
    /// message. `thread_open` says whether replies of a thread were seen already.
    pub fn home(&self, thread_open: impl Fn(&str) -> bool) -> Home {
        match &self.thread_ts {
            None => Home::Day,
            Some(thread_ts)
                if self.is_thread_parent() && self.reply_count == 0 && !thread_open(thread_ts) =>
            {
                Home::Day
            }
            Some(thread_ts) => Home::Thread(thread_ts.clone()),
        }
    }

    /// The day of the parent's `latest_reply`, which a thread waits for before it is emitted.
    pub fn latest_reply_date(&self) -> Option<NaiveDate> {
        self.latest_reply.as_deref().and_then(ts_date)
    }

    pub fn into_raw(self, directory: &ChatDirectory) -> RawMessage {
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
        attachments.extend(self.attachments.iter().filter_map(SlackAttachment::render));
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

impl SlackAttachment {
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
pub(crate) fn first_name<const N: usize>(candidates: [Option<&str>; N]) -> Option<&str> {
    candidates
        .into_iter()
        .flatten()
        .find(|s| !s.trim().is_empty())
}

/// The UTC date of a Slack `ts`, if it is one.
pub(crate) fn ts_date(ts: &str) -> Option<NaiveDate> {
    let secs: i64 = ts.split('.').next()?.parse().ok()?;
    Some(DateTime::from_timestamp(secs, 0)?.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: &str) -> SlackMessage {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_message_has_one_home() {
        let none_open = |_: &str| false;
        let plain = message(r#"{"ts": "1.0"}"#);
        assert_eq!(plain.home(none_open), Home::Day);
        let parent = message(r#"{"ts": "1.0", "thread_ts": "1.0", "reply_count": 2}"#);
        assert_eq!(parent.home(none_open), Home::Thread("1.0".into()));
        let reply = message(r#"{"ts": "2.0", "thread_ts": "1.0"}"#);
        assert_eq!(reply.home(none_open), Home::Thread("1.0".into()));
        let broadcast =
            message(r#"{"ts": "3.0", "thread_ts": "1.0", "subtype": "thread_broadcast"}"#);
        assert_eq!(broadcast.home(none_open), Home::Thread("1.0".into()));
        // A parent whose replies were all deleted is a channel message...
        let lone = message(r#"{"ts": "1.0", "thread_ts": "1.0", "reply_count": 0}"#);
        assert_eq!(lone.home(none_open), Home::Day);
        // ...unless replies were seen anyway (`reply_count` is not reliable).
        assert_eq!(lone.home(|ts| ts == "1.0"), Home::Thread("1.0".into()));
    }

    #[test]
    fn attachment_renders_fallback_then_title_and_text_then_fields() {
        let a = |fallback: Option<&str>, title: Option<&str>, text: Option<&str>| SlackAttachment {
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
