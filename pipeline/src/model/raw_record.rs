use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::{Document, DocumentKind, DocumentVersion, ItemKind, PipelineItem};

/// What a source emits before the transform stage normalises it into a [`Document`].
///
/// Structured sources (files, JSONL) already produce documents. Chat sources produce messages
/// with their platform's markup intact: resolving `<@U123>` needs the workspace directory, and
/// doing that in one transform keeps every chat source's rules (noise dropping, link rendering)
/// in one place.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum RawRecord {
    Document(Document),
    Chat(RawChat),
}

/// A run of chat messages that becomes one document: a channel's day, or one thread.
#[derive(Debug, Clone, Serialize)]
pub struct RawChat {
    pub source: String,
    pub document_id: String,
    pub kind: DocumentKind,
    pub channel_id: String,
    pub channel_name: String,
    /// Where the messages were read from (a file path, an API URL), for error messages.
    pub origin: String,
    pub messages: Vec<RawMessage>,
    #[serde(skip)]
    pub directory: Arc<ChatDirectory>,
    /// The document's version, when its source keeps one per document (an unchanged document
    /// keeps the version it was first sent with); `None`: the batch writer stamps the run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<DocumentVersion>,
}

/// A chat message as the platform stored it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RawMessage {
    pub ts: String,
    pub user_id: Option<String>,
    /// Name the platform stored with the message (Slack `user_profile`, a bot's `username`).
    pub author_name: Option<String>,
    pub subtype: Option<String>,
    pub is_bot: bool,
    pub text: String,
    pub thread_ts: Option<String>,
    pub edited: bool,
    /// File names and attachment fallbacks, rendered after the text.
    pub attachments: Vec<String>,
}

/// Users and channels of a workspace, for turning ids in markup into names.
#[derive(Debug, Default, Clone)]
pub struct ChatDirectory {
    pub users: HashMap<String, String>,
    pub channels: HashMap<String, String>,
}

impl RawRecord {
    /// Sets the version of the document this record becomes (see [`RawChat::version`]).
    pub fn set_version(&mut self, version: DocumentVersion) {
        match self {
            RawRecord::Document(d) => {
                d.metadata.insert(
                    super::chunk_keys::DOCUMENT_VERSION.into(),
                    super::MetaValue::Int(version as i64),
                );
            }
            RawRecord::Chat(c) => c.version = Some(version),
        }
    }

    /// The document id this record becomes.
    pub fn document_id(&self) -> &str {
        match self {
            RawRecord::Document(d) => &d.id,
            RawRecord::Chat(c) => &c.document_id,
        }
    }
}

impl PipelineItem for RawRecord {
    fn source(&self) -> &str {
        match self {
            RawRecord::Document(d) => &d.source,
            RawRecord::Chat(c) => &c.source,
        }
    }
    fn item_id(&self) -> String {
        match self {
            RawRecord::Document(d) => d.id.clone(),
            RawRecord::Chat(c) => c.document_id.clone(),
        }
    }
    fn item_kind(&self) -> ItemKind {
        ItemKind::Input
    }
}
