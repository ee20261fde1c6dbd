//! The `discord_export` source: the JSON files DiscordChatExporter writes, one per channel or
//! thread (`guild`, `channel`, `messages`), read offline into the same documents and ids the
//! `discord` source makes of the same messages (`crate::discord::documents`), so a guild
//! backfilled from an export continues through the API without embedding anything twice.
//!
//! What an export holds, and how it maps onto the API's message:
//!
//! | export                                   | API                                     |
//! |------------------------------------------|-----------------------------------------|
//! | `channel.type` `...Thread`, `categoryId` | a thread; its parent channel (`categoryId` holds the parent for a thread) |
//! | `timestamp`, `timestampEdited`           | `timestamp`, `edited_timestamp`         |
//! | `type` `Default`, `Reply`; others        | 0, 19; a system message                 |
//! | `author.name`, `author.nickname`, `isBot`| `username`, `global_name`, `bot`        |
//! | `attachments[].fileName`, `embeds`       | `attachments[].filename`, `embeds`      |
//! | `reference.messageId`                    | `referenced_message` (found in the same file) |
//! | `mentions[]`                             | `mentions[]`                            |
//!
//! DiscordChatExporter renders the markup of `content` itself (`@name`, `#channel`, `:emoji:`):
//! the names are the exporter's, which is what a reader of the export saw.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use kass_pipeline::model::ChatDirectory;
use kass_pipeline::{
    FailureKind, FatalError, ItemError, ItemKind, Outlet, RawRecord, Source, StageContext,
};
use serde::Deserialize;

use crate::cursor::{fingerprint, Resume};
use crate::discord::documents::ChannelDocuments;
use crate::discord::message::{Attachment, Author, Embed, Message};
use crate::markup::discord::Names;
use crate::slack::Conversation;
use crate::{BuildSource, SourceDeps};

/// One `discord_export` source.
///
/// ```toml
/// [[sources]]
/// type = "discord_export"
/// name = "discord"                 # the API source's name: the same chunk ids
/// path = "./exports/my-guild"      # a folder of DiscordChatExporter JSON files
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordExportConfig {
    /// The source label; the `discord` source's, for the same chunk ids.
    #[serde(default = "default_name")]
    pub name: String,
    /// A folder of DiscordChatExporter JSON files (`*.json`, not recursive).
    pub path: PathBuf,
}

fn default_name() -> String {
    "discord".to_string()
}

impl BuildSource for DiscordExportConfig {
    type Source = DiscordExport;

    fn name(&self) -> &str {
        &self.name
    }

    fn build_with(self, deps: SourceDeps) -> Result<DiscordExport, FatalError> {
        if !self.path.is_dir() {
            return Err(FatalError::Config(format!(
                "discord_export source `{}`: {} is not a folder of DiscordChatExporter JSON files",
                self.name,
                self.path.display()
            )));
        }
        Ok(DiscordExport {
            config: self,
            resume: deps.cursor.into(),
        })
    }
}

/// The running source; build it from a [`DiscordExportConfig`].
#[derive(Debug)]
pub struct DiscordExport {
    config: DiscordExportConfig,
    resume: Resume,
}

#[derive(Debug, Deserialize)]
struct ExportFile {
    channel: ExportChannel,
    #[serde(default)]
    messages: Vec<ExportMessage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportChannel {
    id: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    category_id: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportMessage {
    id: String,
    #[serde(rename = "type", default)]
    kind: String,
    timestamp: String,
    #[serde(default)]
    timestamp_edited: Option<String>,
    #[serde(default)]
    content: String,
    author: ExportUser,
    #[serde(default)]
    attachments: Vec<ExportAttachment>,
    #[serde(default)]
    embeds: Vec<ExportEmbed>,
    #[serde(default)]
    mentions: Vec<ExportUser>,
    #[serde(default)]
    reference: Option<ExportReference>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportUser {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    is_bot: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportAttachment {
    #[serde(default)]
    file_name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ExportEmbed {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportReference {
    #[serde(default)]
    message_id: Option<String>,
}

impl ExportUser {
    fn into_api(self) -> Author {
        Author {
            id: self.id,
            username: self.name,
            global_name: self.nickname,
            bot: self.is_bot,
        }
    }
}

impl ExportMessage {
    /// The API's message for this one; `quoted` is the message it replies to, if exported.
    fn into_api(self, quoted: Option<Message>) -> Message {
        Message {
            id: self.id,
            kind: match self.kind.as_str() {
                "Default" | "" => 0,
                "Reply" => 19,
                _ => u8::MAX,
            },
            timestamp: self.timestamp,
            edited_timestamp: self.timestamp_edited,
            content: self.content,
            author: self.author.into_api(),
            attachments: self
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    filename: a.file_name,
                })
                .collect(),
            embeds: self
                .embeds
                .into_iter()
                .map(|e| Embed {
                    title: e.title,
                    description: e.description,
                })
                .collect(),
            mentions: self
                .mentions
                .into_iter()
                .map(ExportUser::into_api)
                .collect(),
            referenced_message: quoted.map(Box::new),
        }
    }
}

impl ExportFile {
    /// The file's messages as the API's, each reply with the message it quotes.
    fn messages(self) -> Vec<Message> {
        let by_id: HashMap<String, ExportMessage> = self
            .messages
            .iter()
            .map(|m| (m.id.clone(), m.clone()))
            .collect();
        self.messages
            .into_iter()
            .map(|m| {
                let quoted = m
                    .reference
                    .as_ref()
                    .and_then(|r| r.message_id.as_ref())
                    .and_then(|id| by_id.get(id))
                    .map(|q| q.clone().into_api(None));
                m.into_api(quoted)
            })
            .collect()
    }
}

#[async_trait]
impl Source for DiscordExport {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "discord_export"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        let name = &self.config.name;
        let unreadable = |e: std::io::Error| {
            FatalError::Config(format!(
                "discord_export source `{name}`: cannot read {}: {e}",
                self.config.path.display()
            ))
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.config.path)
            .map_err(unreadable)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let names = Names::default();
        let directory = Arc::new(ChatDirectory::default());
        for file in files {
            if ctx.shutdown.is_triggered() {
                return Ok(());
            }
            let input = file.display().to_string();
            let Ok(metadata) = tokio::fs::metadata(&file).await else {
                continue;
            };
            let print = fingerprint(&metadata);
            if self.resume.unchanged(&input, &print) {
                continue;
            }
            let text = tokio::fs::read_to_string(&file).await.map_err(unreadable)?;
            let export: ExportFile = match serde_json::from_str(&text) {
                Ok(export) => export,
                Err(e) => {
                    let error = ItemError::new(
                        FailureKind::MalformedRecord,
                        format!("{input}: not a DiscordChatExporter JSON file: {e}"),
                    );
                    let value = serde_json::Value::String(input.clone());
                    ctx.dead_letter(name, &input, ItemKind::Input, &value, &error)
                        .await?;
                    continue;
                }
            };
            let channel = &export.channel;
            let thread = channel.kind.contains("Thread");
            let conversation = match (&channel.category_id, thread) {
                (Some(parent), true) => Conversation {
                    id: parent.clone(),
                    name: channel.category.clone().unwrap_or_else(|| parent.clone()),
                },
                _ => Conversation {
                    id: channel.id.clone(),
                    name: channel.name.clone(),
                },
            };
            let thread_id = thread.then(|| channel.id.clone());
            let documents = ChannelDocuments {
                source: name,
                conversation,
                names: &names,
                directory: &directory,
            };
            let messages = export.messages();
            let records: Vec<RawRecord> = match thread_id {
                Some(id) if !messages.is_empty() => {
                    vec![documents.thread(&id, messages, input.clone()).1]
                }
                Some(_) => Vec::new(),
                None => {
                    let mut days: BTreeMap<NaiveDate, Vec<Message>> = BTreeMap::new();
                    for message in messages {
                        if let Some(day) = message.day() {
                            days.entry(day).or_default().push(message);
                        }
                    }
                    days.into_iter()
                        .map(|(day, messages)| documents.day(day, messages, input.clone()).1)
                        .collect()
                }
            };
            for record in records {
                if out.send(record).await.is_err() {
                    return Ok(());
                }
            }
            self.resume.read(&input, print);
        }
        Ok(())
    }
}
