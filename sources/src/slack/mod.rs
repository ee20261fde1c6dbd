//! What the Slack sources share: the message object (the Web API's, which exports hold too),
//! how a user's name is chosen, and the documents messages become. Both sources build their
//! documents here, so a workspace backfilled from an export and continued through the API
//! keeps the same document ids, texts and metadata, and nothing is embedded twice.

pub(crate) mod message;
pub(crate) mod people;

use std::sync::Arc;

use chrono::NaiveDate;
use kass_pipeline::model::{ChatDirectory, RawChat, RawMessage};
use kass_pipeline::{DocumentKind, RawRecord};

/// A conversation (channel, private channel, group or direct message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conversation {
    pub id: String,
    pub name: String,
}

/// The document of a channel's day: its messages outside threads.
pub(crate) fn day_document_id(channel_id: &str, day: NaiveDate) -> String {
    format!("{channel_id}/{day}")
}

/// The document of a thread: its parent and every reply.
pub(crate) fn thread_document_id(channel_id: &str, thread_ts: &str) -> String {
    format!("{channel_id}/thread/{thread_ts}")
}

/// The record of one day or thread of `channel`, for the transform stage to render.
pub(crate) fn chat_record(
    source: &str,
    channel: &Conversation,
    document_id: String,
    kind: DocumentKind,
    origin: String,
    messages: Vec<RawMessage>,
    directory: &Arc<ChatDirectory>,
) -> RawRecord {
    RawRecord::Chat(RawChat {
        source: source.to_string(),
        document_id,
        kind,
        channel_id: channel.id.clone(),
        channel_name: channel.name.clone(),
        origin,
        messages,
        directory: directory.clone(),
        version: None,
    })
}
