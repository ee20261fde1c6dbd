//! The `slack_api` source: a live workspace through the Slack Web API, synced incrementally.
//!
//! It produces exactly the documents the `slack_export` source makes of the same messages
//! (one per channel-day, one per thread; same ids, texts and metadata; see `crate::slack`), so
//! a workspace backfilled from an export continues through the API without re-embedding.
//!
//! Each run lists the conversations, then for every selected channel reads its window again
//! (the last `thread_lookback_days` days and everything since the last run; threads active in
//! that window, wherever their parent is) and re-emits those documents whole, so edits and
//! shrunken days are replaced by the sink's stale-chunk cleanup; then advances the backfill of
//! channels whose older history is still unread, a day at a time (see `state.rs`).
//!
//! Documents that are no longer there become tombstones: a day or thread of the window gone,
//! or every document of a channel deleted, archived or no longer selected. They are decided
//! only from reads that completed (a channel that failed or was cut short deletes nothing; a
//! read whose paging stopped short, see `crate::api::paging`, is cut short, and an incomplete
//! listing of conversations or users reads nothing at all), pass the deletion guard per
//! channel and for the source, and travel to the batch writer through the run's
//! [`TombstoneOutbox`]. The per-channel state is recorded in the source's cursor, which the
//! fetch saves only once every batch of the run is written. What the guard withholds stays
//! known and is read again by the channel's next run, which deletes it only if it does not
//! find it (with or without `--allow-deletions`).

mod channel_sync;
mod config;
mod documents;
mod state;
mod tier;
mod web;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use globset::GlobSet;
use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::model::ChatDirectory;
use kass_pipeline::{FatalError, Outlet, RawRecord, Source, StageContext};

use crate::api::scope_driver::{Refreshed, Scope, ScopeDriver, ScopeSender, ScopedSource, Stop};
use crate::api::scope_status::ScopeStatus;
use crate::api::ApiError;
use crate::cursor::Cursor;
use crate::deletion_guard::DeletionGuard;
use crate::slack::Conversation;
use channel_sync::{ChannelSync, SlackRun, SyncContext};
pub use config::SlackApiConfig;
use state::{day_of, ChannelState};
pub use tier::RateTier;
use web::{is_auth_failure, SlackWeb};

/// The running source; build it from a [`SlackApiConfig`].
#[derive(Debug)]
pub struct SlackApi {
    config: SlackApiConfig,
    web: SlackWeb,
    include: GlobSet,
    exclude: GlobSet,
    guard: DeletionGuard,
    cursor: Option<Arc<Cursor>>,
    outbox: Option<TombstoneOutbox>,
}

#[async_trait]
impl Source for SlackApi {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "slack_api"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        let listed = match self.web.conversations(&self.config.types.join(",")).await {
            Ok(listed) => listed,
            Err(e) => return self.unreadable(e, "listing_failed"),
        };
        let users = match self.web.users().await {
            Ok(users) => users,
            Err(e) => return self.unreadable(e, "listing_failed"),
        };
        let mut directory = ChatDirectory::default();
        for user in &users {
            if let Some(shown) = user.shown_name() {
                directory.users.insert(user.id.clone(), shown.to_string());
            }
        }
        let mut selected = Vec::new();
        for channel in &listed {
            let channel_name = channel.name.clone().unwrap_or_else(|| channel.id.clone());
            directory
                .channels
                .insert(channel.id.clone(), channel_name.clone());
            let member = channel.is_member || channel.is_im || channel.is_mpim;
            if self.selects(&channel_name, member) && !channel.is_archived {
                selected.push(Scope {
                    id: channel.id.clone(),
                    name: channel_name,
                });
            }
        }
        let names = names_digest(&directory);
        let now = Utc::now().timestamp();
        let lookback = i64::from(self.config.thread_lookback_days) * 86_400;
        let run = SlackRun {
            directory: Arc::new(directory),
            ctx,
            lookback_day: day_of(now - lookback),
            now,
        };
        let live: BTreeSet<String> = listed
            .iter()
            .filter(|c| !c.is_archived)
            .map(|c| c.id.clone())
            .collect();
        self.driver(&names)
            .run(&*self, &run, &selected, &live, &out, now)
            .await
    }
}

#[async_trait]
impl ScopedSource for SlackApi {
    type State = ChannelState;
    type Run = SlackRun;

    async fn refresh(
        &self,
        run: &SlackRun,
        scope: &Scope,
        previous: &ChannelState,
        send: &ScopeSender<'_>,
    ) -> Result<Refreshed<ChannelState>, Stop> {
        let channel = conversation(scope);
        let context = self.context(run);
        ChannelSync {
            run: &context,
            channel: &channel,
            sender: send,
        }
        .refresh(previous)
        .await
    }

    async fn backfill(
        &self,
        run: &SlackRun,
        scope: &Scope,
        state: &mut ChannelState,
        send: &ScopeSender<'_>,
    ) -> Result<usize, Stop> {
        let channel = conversation(scope);
        let context = self.context(run);
        ChannelSync {
            run: &context,
            channel: &channel,
            sender: send,
        }
        .backfill(state)
        .await
    }

    fn refuses_credentials(&self, error: &ApiError) -> bool {
        is_auth_failure(error)
    }

    fn expected_skip(&self, code: &str) -> bool {
        matches!(code, "not_in_channel" | "channel_not_found")
    }
}

fn conversation(scope: &Scope) -> Conversation {
    Conversation {
        id: scope.id.clone(),
        name: scope.name.clone(),
    }
}

/// A digest of every name documents are rendered with: users' shown names and channel names.
fn names_digest(directory: &ChatDirectory) -> String {
    use sha2::{Digest, Sha256};
    let users: BTreeMap<&String, &String> = directory.users.iter().collect();
    let channels: BTreeMap<&String, &String> = directory.channels.iter().collect();
    let json = serde_json::to_vec(&(users, channels)).expect("plain data");
    hex::encode(&Sha256::digest(json)[..8])
}

/// Where a `slack_api` source stands, from its saved cursor (for `kass status`): the driver's
/// counts, the threads watched for late replies and the oldest point a running backfill
/// reached.
pub(crate) fn status(cursor: &crate::cursor::CursorState) -> ScopeStatus {
    let (mut threads, mut reached) = (0, None::<i64>);
    let mut status = ScopeStatus::of_each("channels", cursor, |state: &ChannelState| {
        threads += state.threads.len();
        if let Some(before) = state.backfill_before {
            reached = Some(reached.map_or(before, |r| r.min(before)));
        }
    });
    status.details.insert("watched_threads", threads.into());
    if let Some(at) = reached.and_then(|t| chrono::DateTime::from_timestamp(t, 0)) {
        status
            .details
            .insert("backfill_reached", at.to_rfc3339().into());
    }
    status
}

impl SlackApi {
    /// Whether a channel is read: it matches `channels` (or, with none, the bot is in it)
    /// and no `exclude_channels`.
    fn selects(&self, channel_name: &str, is_member: bool) -> bool {
        let included = if self.config.channels.is_empty() {
            is_member
        } else {
            self.include.is_match(channel_name)
        };
        included && !self.exclude.is_match(channel_name)
    }

    /// The driver of one run: this source's name, guard, cursor and outbox.
    fn driver<'a>(&'a self, names: &'a str) -> ScopeDriver<'a> {
        ScopeDriver {
            source: &self.config.name,
            scope_kind: "channels",
            credentials: "the token",
            credentials_env: &self.config.token_env,
            guard: self.guard,
            cursor: self.cursor.as_ref(),
            outbox: self.outbox.as_ref(),
            context: names,
        }
    }

    /// A listing failed or stopped short: the token's failure stops the source (naming it,
    /// never the token); anything else leaves this run empty and every state as it was.
    fn unreadable(&self, error: ApiError, reason: &str) -> Result<(), FatalError> {
        self.driver("").unreadable(self, error, reason)
    }

    /// What a channel's sync knows of this run.
    fn context<'a>(&'a self, run: &'a SlackRun) -> SyncContext<'a> {
        SyncContext {
            source: &self.config.name,
            web: &self.web,
            directory: &run.directory,
            ctx: &run.ctx,
            lookback_day: run.lookback_day,
            since: self.config.since,
            now: run.now,
        }
    }
}
