//! The documents Discord messages become, for the API source and the DiscordChatExporter
//! files alike, so a guild backfilled from an export and continued through the API keeps
//! the same document ids: a channel's day (`{channel}/{YYYY-MM-DD}`) and a thread
//! (`{channel}/thread/{thread}`), built as Slack's are (`crate::slack::chat_record`).

use std::sync::Arc;

use chrono::NaiveDate;
use kass_pipeline::model::ChatDirectory;
use kass_pipeline::{DocumentKind, RawRecord};

use super::message::Message;
use crate::markup::discord::Names;
use crate::slack::{chat_record, day_document_id, thread_document_id, Conversation};

/// What the documents of one channel are rendered with.
pub(crate) struct ChannelDocuments<'a> {
    pub source: &'a str,
    /// The channel (a thread's parent channel, for a thread).
    pub conversation: Conversation,
    pub names: &'a Names,
    pub directory: &'a Arc<ChatDirectory>,
}

impl ChannelDocuments<'_> {
    /// A day of the channel: its id and record.
    pub fn day(
        &self,
        day: NaiveDate,
        messages: Vec<Message>,
        origin: String,
    ) -> (String, RawRecord) {
        let id = day_document_id(&self.conversation.id, day);
        let record = self.record(
            id.clone(),
            DocumentKind::ChatConversation,
            origin,
            messages,
            None,
        );
        (id, record)
    }

    /// A thread (a forum post) of the channel: its id and record.
    pub fn thread(
        &self,
        thread: &str,
        messages: Vec<Message>,
        origin: String,
    ) -> (String, RawRecord) {
        let id = thread_document_id(&self.conversation.id, thread);
        let record = self.record(
            id.clone(),
            DocumentKind::Thread,
            origin,
            messages,
            Some(thread),
        );
        (id, record)
    }

    fn record(
        &self,
        document_id: String,
        kind: DocumentKind,
        origin: String,
        mut messages: Vec<Message>,
        thread: Option<&str>,
    ) -> RawRecord {
        messages.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.id.cmp(&b.id)));
        let messages = messages
            .into_iter()
            .filter_map(|m| m.into_raw(self.names, thread))
            .collect();
        chat_record(
            self.source,
            &self.conversation,
            document_id,
            kind,
            origin,
            messages,
            self.directory,
        )
    }
}
