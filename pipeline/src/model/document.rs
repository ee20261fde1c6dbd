use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ItemKind, Metadata, PipelineItem};

/// What a document is decides how it is chunked (see the chunk router).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    ChatConversation,
    Thread,
    Issue,
    MergeRequest,
    Comment,
    Wiki,
    CodeFile,
    Markdown,
    Text,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::ChatConversation => "chat_conversation",
            DocumentKind::Thread => "thread",
            DocumentKind::Issue => "issue",
            DocumentKind::MergeRequest => "merge_request",
            DocumentKind::Comment => "comment",
            DocumentKind::Wiki => "wiki",
            DocumentKind::CodeFile => "code_file",
            DocumentKind::Markdown => "markdown",
            DocumentKind::Text => "text",
        }
    }
}

/// One message of a conversation, or one comment of an issue, with markup already normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Stable within the document (Slack: the message `ts`).
    pub id: String,
    /// Display name, never a raw user id where the source knows the name.
    pub author: String,
    pub ts: DateTime<Utc>,
    pub text: String,
    /// The thread this message belongs to (Slack: the parent's `ts`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
}

/// The one format every source is turned into. A document carries either a `text` body, a list of
/// `messages` (chat, issue comments), or both (an issue: description plus comments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub source: String,
    pub kind: DocumentKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl Document {
    /// A document with only a text body; the common case for files and JSONL records.
    pub fn text(
        source: impl Into<String>,
        id: impl Into<String>,
        kind: DocumentKind,
        text: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            kind,
            title: None,
            text: Some(text.into()),
            messages: Vec::new(),
            url: None,
            created_at: None,
            updated_at: None,
            metadata: Metadata::new(),
        }
    }
}

impl PipelineItem for Document {
    fn source(&self) -> &str {
        &self.source
    }
    fn item_id(&self) -> String {
        self.id.clone()
    }
    fn item_kind(&self) -> ItemKind {
        ItemKind::Document
    }
}
