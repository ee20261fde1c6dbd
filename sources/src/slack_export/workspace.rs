//! Users and conversations from the export's top-level listings.

use std::collections::BTreeMap;
use std::sync::Arc;

use kass_pipeline::model::ChatDirectory;
use kass_pipeline::{telemetry, FatalError};
use serde::Deserialize;

use super::SlackExportConfig;
use crate::slack::people::SlackUser;
use crate::slack::Conversation as Channel;

/// Users and conversations from `users.json`, `channels.json` and the optional `groups.json`,
/// `mpims.json` and `dms.json`.
pub(super) struct Workspace {
    pub directory: Arc<ChatDirectory>,
    /// Folder name -> conversation: the name for channels, group DMs and private channels, the
    /// id for direct messages. Every conversation the listings name, with or without a folder.
    listed: BTreeMap<String, Channel>,
}

#[derive(Debug, Deserialize)]
struct ExportChannel {
    id: String,
    name: Option<String>,
}

impl Workspace {
    pub async fn load(config: &SlackExportConfig) -> Result<Self, FatalError> {
        let users: Vec<SlackUser> = read_listing(config, "users.json", true).await?;
        let mut directory = ChatDirectory::default();
        for user in users {
            if let Some(name) = user.shown_name() {
                directory.users.insert(user.id.clone(), name.to_string());
            }
        }
        let mut listed = BTreeMap::new();
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
                listed.insert(
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
            listed,
        })
    }

    /// The channel a folder holds; a folder no listing names is its own id and name.
    pub fn channel_for_folder(&self, folder: &str) -> Channel {
        self.listed.get(folder).cloned().unwrap_or_else(|| Channel {
            id: folder.to_string(),
            name: folder.to_string(),
        })
    }

    /// Every listed conversation as (folder name, channel), in folder order.
    pub fn listed(&self) -> impl Iterator<Item = (&str, &Channel)> {
        self.listed.iter().map(|(folder, c)| (folder.as_str(), c))
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
