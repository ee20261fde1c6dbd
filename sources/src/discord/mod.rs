//! The `discord` source: a bot's guilds through the Discord REST API v10, synced
//! incrementally on the shared API-source driver ([`crate::api::scope_driver`]).
//!
//! A channel (text, announcement, forum, media) is a scope. Its threads, forum posts
//! included, are documents of that scope rather than scopes of their own: a thread lives and
//! dies with its channel (the channel deleted, every thread of it goes with the driver's
//! `channel_gone`), active threads come from one guild-wide listing the channel's read picks
//! from, and a busy forum would otherwise turn the cursor's order of scopes into thousands
//! of one-document scopes. A channel's day and a thread are the same documents as Slack's
//! (`crate::slack::chat_record`, ids `{channel}/{day}` and `{channel}/thread/{id}`), chunked
//! by the same chat windows.
//!
//! Each run lists every guild's channels, roles and active threads (three requests a guild),
//! then per channel ([`channel_read`]): reads its last `lookback_days` again, messages by
//! day and threads active or archived since, and reconciles (what the window held and no
//! longer holds is a tombstone, through the driver's guard); then advances its backfill down
//! to `since`, its position saved page by page. Discord lists neither edits nor deletions:
//! re-reading the window is how they are seen.
//!
//! Rate limits come from the answers (`X-RateLimit-*` per bucket and major parameter, plus
//! the global limit), in the shared [`crate::api::server_budget`]. A 401 stops the source
//! naming `token_env`, never the token; a 403 skips that channel (counted), as does a 404
//! (deleted since it was listed). A page of user messages all empty stops the source: the
//! bot lacks the Message Content intent.

mod channel_read;
mod config;
pub(crate) mod documents;
pub(crate) mod message;
mod state;
mod web;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::model::ChatDirectory;
use kass_pipeline::{FatalError, Outlet, RawRecord, Source, StageContext};

use crate::api::scope_driver::{Refreshed, Scope, ScopeDriver, ScopeSender, ScopedSource, Stop};
use crate::api::ApiError;
use crate::cursor::Cursor;
use crate::deletion_guard::DeletionGuard;
use crate::markup::discord::Names;
use crate::slack::Conversation;
use channel_read::ChannelRead;
pub use config::DiscordConfig;
use state::ChannelState;
use web::{Channel, DiscordWeb};

/// The running source; build it from a [`DiscordConfig`].
#[derive(Debug)]
pub struct Discord {
    config: DiscordConfig,
    web: DiscordWeb,
    guard: DeletionGuard,
    cursor: Option<Arc<Cursor>>,
    outbox: Option<TombstoneOutbox>,
}

/// What one run knows from its listings.
pub struct DiscordRun {
    ctx: StageContext,
    now: i64,
    names: Names,
    directory: Arc<ChatDirectory>,
    /// Every listed channel by id.
    channels: BTreeMap<String, Channel>,
    /// The guilds' active threads.
    active: Vec<Channel>,
}

#[async_trait]
impl Source for Discord {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "discord"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        let now = Utc::now().timestamp();
        let mut names = Names::default();
        let mut channels = BTreeMap::new();
        let mut active = Vec::new();
        for guild in &self.config.guilds {
            let listed = async {
                let listed = self.web.channels(guild).await?;
                let roles = self.web.roles(guild).await?;
                let threads = self.web.active_threads(guild).await?;
                Ok::<_, ApiError>((listed, roles, threads))
            };
            let (listed, roles, threads) = match listed.await {
                Ok(listed) => listed,
                // Which channels exist is unknown: none is read, none deleted.
                Err(e) => return self.driver("").unreadable(&*self, e, "listing_failed"),
            };
            for role in roles {
                names.roles.insert(role.id, role.name);
            }
            for channel in listed {
                if let Some(name) = &channel.name {
                    names.channels.insert(channel.id.clone(), name.clone());
                }
                channels.insert(channel.id.clone(), channel);
            }
            active.extend(threads);
        }
        let readable: Vec<&Channel> = channels.values().filter(|c| c.is_readable_kind()).collect();
        let selected: Vec<Scope> = readable
            .iter()
            .filter(|c| self.selects(c))
            .map(|c| Scope {
                id: c.id.clone(),
                name: c.name.clone().unwrap_or_else(|| c.id.clone()),
            })
            .collect();
        let listed: BTreeSet<String> = readable.iter().map(|c| c.id.clone()).collect();
        let directory = ChatDirectory {
            users: Default::default(),
            channels: names.channels.clone().into_iter().collect(),
        };
        let digest = names_digest(&names);
        let run = DiscordRun {
            ctx,
            now,
            names,
            directory: Arc::new(directory),
            channels,
            active,
        };
        self.driver(&digest)
            .run(&*self, &run, &selected, &listed, &out, now)
            .await
    }
}

#[async_trait]
impl ScopedSource for Discord {
    type State = ChannelState;
    type Run = DiscordRun;

    async fn refresh(
        &self,
        run: &DiscordRun,
        scope: &Scope,
        previous: &ChannelState,
        send: &ScopeSender<'_>,
    ) -> Result<Refreshed<ChannelState>, Stop> {
        self.read(run, scope, send)?.refresh(previous).await
    }

    async fn backfill(
        &self,
        run: &DiscordRun,
        scope: &Scope,
        state: &mut ChannelState,
        send: &ScopeSender<'_>,
    ) -> Result<usize, Stop> {
        self.read(run, scope, send)?.backfill(state).await
    }

    fn refuses_credentials(&self, error: &ApiError) -> bool {
        error.status() == Some(401)
    }

    /// A channel the bot may not read (403) or deleted since it was listed (404).
    fn expected_skip(&self, code: &str) -> bool {
        matches!(code, "403" | "404")
    }
}

impl Discord {
    /// Whether a channel is read: `channels` names it (by name or id), or names none.
    fn selects(&self, channel: &Channel) -> bool {
        self.config.channels.is_empty()
            || self
                .config
                .channels
                .iter()
                .any(|c| *c == channel.id || Some(c) == channel.name.as_ref())
    }

    fn read<'a>(
        &'a self,
        run: &'a DiscordRun,
        scope: &Scope,
        send: &'a ScopeSender<'a>,
    ) -> Result<ChannelRead<'a>, Stop> {
        if run.ctx.shutdown.is_triggered() {
            return Err(Stop::Shutdown);
        }
        let channel = run
            .channels
            .get(&scope.id)
            .expect("the driver reads only listed channels");
        Ok(ChannelRead {
            source: &self.config.name,
            web: &self.web,
            ctx: &run.ctx,
            names: &run.names,
            directory: &run.directory,
            channel,
            conversation: Conversation {
                id: scope.id.clone(),
                name: scope.name.clone(),
            },
            active: run
                .active
                .iter()
                .filter(|t| t.parent_id.as_deref() == Some(scope.id.as_str()))
                .collect(),
            sender: send,
            since: self.config.since,
            lookback_days: self.config.lookback_days,
            reconcile_days: self.config.reconcile_days,
            now: run.now,
        })
    }

    fn driver<'a>(&'a self, names: &'a str) -> ScopeDriver<'a> {
        ScopeDriver {
            source: &self.config.name,
            scope_kind: "channels",
            credentials: "the bot token",
            credentials_env: &self.config.token_env,
            guard: self.guard,
            cursor: self.cursor.as_ref(),
            outbox: self.outbox.as_ref(),
            context: names,
        }
    }
}

/// A digest of the names documents are rendered with (channels and roles): a rename makes
/// every document sent this run a newer version.
fn names_digest(names: &Names) -> String {
    use sha2::{Digest, Sha256};
    let channels: BTreeMap<&String, &String> = names.channels.iter().collect();
    let roles: BTreeMap<&String, &String> = names.roles.iter().collect();
    let json = serde_json::to_vec(&(channels, roles)).expect("plain data");
    hex::encode(&Sha256::digest(json)[..8])
}
