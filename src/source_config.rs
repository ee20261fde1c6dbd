//! `[[sources]]` in kass.toml: which sources to read, each configured by its own struct.
//!
//! The list below is the one place a new source is added: its `type`, its config struct, a
//! line of documentation. Everything else the binaries ask of a source (its label, whether it
//! keeps state, what its cursor depends on, its standing for `kass status`, the running
//! source) comes from the config's [`BuildSource`] implementation.

use serde::Deserialize;

use kass_pipeline::{FatalError, RawRecord, Source};

use kass_sources::api::scope_status::ScopeStatus;
use kass_sources::cursor::CursorState;
use kass_sources::{
    backlog, discord, discord_export, files, gitlab_api, gitlab_export, jsonl, slack_api,
    slack_export, BuildSource, SourceDeps,
};

/// Declares [`SourceConfig`] from the list of sources: one variant per source, tagged by its
/// `type`, and the methods that hand each call to the variant's config.
macro_rules! source_list {
    ($( $(#[$doc:meta])* $kind:literal => $variant:ident($config:ty), )*) => {
        /// One `[[sources]]` entry; `type` picks the source.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(tag = "type")]
        pub enum SourceConfig {
            $( $(#[$doc])* #[serde(rename = $kind)] $variant($config), )*
        }

        impl SourceConfig {
            /// The `source` label: first segment of batch keys, metric label, part of chunk
            /// ids.
            pub fn name(&self) -> &str {
                match self { $( Self::$variant(c) => c.name(), )* }
            }

            /// The source's `type`.
            pub fn kind(&self) -> &'static str {
                match self { $( Self::$variant(_) => $kind, )* }
            }

            /// Whether the source keeps per-scope state that every run needs
            /// ([`BuildSource::keeps_state`]), so even `kass run` loads and saves its cursor.
            pub fn keeps_state(&self) -> bool {
                match self { $( Self::$variant(c) => c.keeps_state(), )* }
            }

            /// What of the source's settings its documents depend on: a cursor saved under
            /// other settings is not resumed from ([`BuildSource::cursor_settings`]; all of
            /// the config where the source names nothing narrower).
            pub fn cursor_settings(&self) -> String {
                match self {
                    $( Self::$variant(c) => c.cursor_settings().unwrap_or_else(|| {
                        format!("{}({c:?})", stringify!($variant))
                    }), )*
                }
            }

            /// The standing of the source's scopes for `kass status` (an API source), from
            /// its saved cursor (`None`: never fetched).
            pub fn scope_status(&self, cursor: Option<&CursorState>) -> Option<ScopeStatus> {
                let empty = CursorState::default();
                let cursor = cursor.unwrap_or(&empty);
                match self { $( Self::$variant(c) => c.scope_status(cursor), )* }
            }

            /// The source; with a cursor in `deps` it reads only what changed since the
            /// cursor's run.
            pub fn build_with(
                self,
                deps: SourceDeps,
            ) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
                match self { $( Self::$variant(c) => boxed(c, deps), )* }
            }
        }
    };
}

source_list! {
    /// A directory of text, markdown and code files.
    "files" => Files(files::FilesConfig),
    /// One document (or BEIR `{"_id","title","text"}` record) per line.
    "jsonl" => Jsonl(jsonl::JsonlConfig),
    /// An official Slack workspace export directory.
    "slack_export" => SlackExport(slack_export::SlackExportConfig),
    /// A live Slack workspace through the Web API, synced incrementally.
    "slack_api" => SlackApi(slack_api::SlackApiConfig),
    /// GitLab projects and groups (issues and merge requests with their notes, wikis, code)
    /// through the REST API v4.
    "gitlab" => Gitlab(gitlab_api::GitlabApiConfig),
    /// A GitLab project export (offline): the same documents and chunk ids as `gitlab`.
    "gitlab_export" => GitlabExport(gitlab_export::GitlabExportConfig),
    /// A Backlog space's issues with their comments, wiki pages and documents (API v2).
    "backlog" => Backlog(backlog::BacklogConfig),
    /// A bot's Discord guilds: channels, threads and forum posts (REST API v10).
    "discord" => Discord(discord::DiscordConfig),
    /// DiscordChatExporter JSON files (offline): the same documents and ids as `discord`.
    "discord_export" => DiscordExport(discord_export::DiscordExportConfig),
}

impl SourceConfig {
    /// The source, reading everything.
    pub fn build(self) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
        self.build_with(SourceDeps::default())
    }
}

fn boxed(
    config: impl BuildSource,
    deps: SourceDeps,
) -> Result<Box<dyn Source<Output = RawRecord>>, FatalError> {
    Ok(Box::new(config.build_with(deps)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cursor settings of a file source are what they were before the list: a cursor
    /// saved by an earlier build resumes (a changed string would read every file again).
    #[test]
    fn a_file_source_s_cursor_settings_name_its_variant_and_config() {
        let config: SourceConfig =
            toml::from_str("type = \"jsonl\"\nname = \"wiki\"\npath = \"wiki.jsonl\"\n").unwrap();
        let SourceConfig::Jsonl(inner) = &config else {
            panic!("{config:?}")
        };
        assert_eq!(config.cursor_settings(), format!("Jsonl({inner:?})"));
        assert_eq!(config.kind(), "jsonl");
        assert!(!config.keeps_state());
        assert!(config.scope_status(None).is_none());
    }

    #[test]
    fn an_api_source_names_only_itself_and_has_a_standing_before_any_fetch() {
        let config: SourceConfig =
            toml::from_str("type = \"gitlab\"\nname = \"gl\"\nprojects = [\"group/app\"]\n")
                .unwrap();
        assert_eq!(config.cursor_settings(), "gitlab:gl");
        assert!(config.keeps_state());
        let status = config.scope_status(None).unwrap();
        assert_eq!((status.kind, status.scopes), ("projects", 0));
    }
}
