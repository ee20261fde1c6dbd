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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use globset::GlobSet;
use kass_pipeline::batch::{Tombstone, TombstoneOutbox};
use kass_pipeline::model::ChatDirectory;
use kass_pipeline::{tally, telemetry, FatalError, Outlet, RawRecord, Source, StageContext};

use crate::api::ApiError;
use crate::cursor::Cursor;
use crate::deletion_guard::{DeletionGuard, ScopeDeletions};
use crate::slack::Conversation;
use channel_sync::{tombstone, ChannelSync, Stop, SyncContext};
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

/// Channel id -> its state as the last completed run left it.
#[derive(Default)]
struct Previous(BTreeMap<String, ChannelState>);

impl Previous {
    /// A channel's state; a channel never read starts from the default.
    fn of(&self, channel_id: &str) -> ChannelState {
        self.0.get(channel_id).cloned().unwrap_or_default()
    }
}

/// What one run decided, recorded only at its end.
#[derive(Default)]
struct RunOutcome {
    states: BTreeMap<String, ChannelState>,
    gone: Vec<(String, Tombstone)>,
    /// Channels whose documents were all tombstoned: forgotten if the guard lets them go.
    dropped: Vec<String>,
    emitted: usize,
    /// Every selected channel's window was read.
    complete: bool,
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
        let name = self.config.name.clone();
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
                selected.push(Conversation {
                    id: channel.id.clone(),
                    name: channel_name,
                });
            }
        }
        let directory = Arc::new(directory);
        let now = Utc::now().timestamp();
        let lookback = i64::from(self.config.thread_lookback_days) * 86_400;
        let run = SyncContext {
            source: &name,
            web: &self.web,
            directory: &directory,
            out: &out,
            ctx: &ctx,
            lookback_day: day_of(now - lookback),
            since: self.config.since,
            now,
            run_version: self.cursor.as_ref().map(|c| c.run_version()),
            names_digest: names_digest(&directory),
        };
        let previous = self.previous_states();
        let mut outcome = self.sync(&run, &previous, &selected, &listed).await?;
        self.record(&previous, &mut outcome, now);
        Ok(())
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

/// Where a `slack_api` source stands, from its saved cursor (for `kass status`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SyncStatus {
    /// Channels with a state.
    pub channels: usize,
    /// Channels whose backfill is not complete.
    pub in_backfill: usize,
    /// Documents the source holds.
    pub documents: usize,
    /// Threads watched for late replies.
    pub watched_threads: usize,
    /// The newest instant history was read up to (Unix seconds).
    pub read_until: Option<i64>,
    /// The oldest point a running backfill has reached (Unix seconds).
    pub backfill_reached: Option<i64>,
}

impl SyncStatus {
    pub fn of(cursor: &crate::cursor::CursorState) -> Self {
        let mut status = Self::default();
        for value in cursor.scopes.values() {
            let Ok(state) = serde_json::from_value::<ChannelState>(value.clone()) else {
                continue;
            };
            status.channels += 1;
            status.documents += state.documents.len();
            status.watched_threads += state.threads.len();
            status.read_until = status.read_until.max(state.read_until);
            if let Some(before) = state.backfill_before {
                status.in_backfill += 1;
                status.backfill_reached = Some(
                    status
                        .backfill_reached
                        .map_or(before, |b: i64| b.min(before)),
                );
            }
        }
        status
    }
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

    /// A listing failed or stopped short: the token's failure stops the source (naming it,
    /// never the token); anything else leaves this run empty and every state as it was.
    fn unreadable(&self, error: ApiError, reason: &str) -> Result<(), FatalError> {
        if is_auth_failure(&error) {
            return Err(FatalError::Config(format!(
                "{error}: the token in {} is not accepted",
                self.config.token_env
            )));
        }
        tracing::error!(source = %self.config.name, %error, "cannot list the workspace; nothing read this run, nothing deleted");
        let reason = match &error {
            ApiError::Incomplete { reason, .. } => reason.code(),
            _ => reason,
        };
        telemetry::source_scope_skipped(&self.config.name, reason);
        Ok(())
    }

    /// Every channel's state as the last completed run left it, read from the cursor once.
    fn previous_states(&self) -> Previous {
        let Some(cursor) = &self.cursor else {
            return Previous::default();
        };
        Previous(
            cursor
                .scope_names()
                .into_iter()
                .filter_map(|id| cursor.scope(&id).map(|state| (id, state)))
                .collect(),
        )
    }

    /// Channels gone, windows read again, backfills advanced.
    async fn sync(
        &self,
        run: &SyncContext<'_>,
        previous: &Previous,
        selected: &[Conversation],
        listed: &[web::ListedChannel],
    ) -> Result<RunOutcome, FatalError> {
        let mut outcome = RunOutcome {
            complete: true,
            ..RunOutcome::default()
        };
        // Channels kept from earlier runs that this run does not select any more.
        for channel_id in previous.0.keys().cloned() {
            if selected.iter().any(|c| c.id == channel_id) {
                continue;
            }
            let reason = if listed.iter().any(|c| c.id == channel_id && !c.is_archived) {
                "excluded"
            } else {
                "channel_gone"
            };
            let state = previous.of(&channel_id);
            outcome.gone.extend(
                state
                    .documents
                    .iter()
                    .map(|d| (channel_id.clone(), tombstone(d, reason))),
            );
            outcome.dropped.push(channel_id.clone());
            outcome.states.insert(channel_id, state);
        }
        let progress = format!("{}: channels", self.config.name);
        tally::expect(&progress, selected.len() as u64);
        // The channels read longest ago first (never read: first of all), so a run cut short
        // (the Lambda's deadline) leaves the freshest ones for the next run, not always the same.
        let mut selected: Vec<&Conversation> = selected.iter().collect();
        selected.sort_by_key(|c| previous.0.get(&c.id).and_then(|s| s.read_until));
        let mut failed = std::collections::BTreeSet::new();
        for channel in selected.iter().copied() {
            let before = previous.of(&channel.id);
            let kept = Mutex::new(before.kept.clone());
            let sync = ChannelSync {
                run,
                channel,
                kept: &kept,
            };
            let result = sync.refresh(&before).await;
            tally::advance(&progress, 1);
            match result {
                Ok(mut refreshed) => {
                    refreshed.state.kept = kept.into_inner().expect("kept versions lock");
                    outcome.emitted += refreshed.emitted;
                    outcome
                        .gone
                        .extend(refreshed.gone.into_iter().map(|t| (channel.id.clone(), t)));
                    outcome.states.insert(channel.id.clone(), refreshed.state);
                }
                Err(stop) => {
                    // A channel never read keeps no state: it is not in backfill either.
                    if before != ChannelState::default() {
                        outcome.states.insert(channel.id.clone(), before);
                    }
                    failed.insert(channel.id.clone());
                    if !self.skip(channel, stop, &mut outcome)? {
                        return Ok(outcome);
                    }
                }
            }
        }
        for channel in selected {
            // A channel whose window failed this run is not backfilled either.
            if failed.contains(&channel.id) {
                continue;
            }
            let Some(state) = outcome.states.get(&channel.id).cloned() else {
                continue;
            };
            if state.backfill_before.is_none() || state.read_until.is_none() {
                continue;
            }
            let mut state = state;
            let kept = Mutex::new(std::mem::take(&mut state.kept));
            let sync = ChannelSync {
                run,
                channel,
                kept: &kept,
            };
            let result = sync.backfill(&mut state).await;
            state.kept = kept.into_inner().expect("kept versions lock");
            outcome.states.insert(channel.id.clone(), state);
            match result {
                Ok(emitted) => outcome.emitted += emitted,
                Err(stop) => {
                    if !self.skip(channel, stop, &mut outcome)? {
                        return Ok(outcome);
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// A channel's sync stopped: `Ok(false)` when the whole run stops (shutdown), `Ok(true)`
    /// when other channels go on (this one skipped, counted and logged), an error when the
    /// token is refused.
    fn skip(
        &self,
        channel: &Conversation,
        stop: Stop,
        outcome: &mut RunOutcome,
    ) -> Result<bool, FatalError> {
        let source = &self.config.name;
        match stop {
            Stop::Shutdown => {
                outcome.complete = false;
                Ok(false)
            }
            Stop::Fatal(e) => Err(e),
            Stop::Api(e) if is_auth_failure(&e) => Err(FatalError::Config(format!(
                "{e}: the token in {} is not accepted",
                self.config.token_env
            ))),
            Stop::Api(e) => {
                let code = e.code().unwrap_or_else(|| "unavailable".to_string());
                let expected = matches!(code.as_str(), "not_in_channel" | "channel_not_found");
                if !expected {
                    outcome.complete = false;
                }
                tracing::warn!(source = %source, channel = %channel.name, channel_id = %channel.id, error = %e, "channel skipped this run; nothing of it deleted");
                telemetry::source_scope_skipped(source, &code);
                Ok(true)
            }
        }
    }

    /// Applies the deletion guard, per channel and for the source, posts the tombstones it
    /// lets go and records every channel's state.
    fn record(&self, previous: &Previous, outcome: &mut RunOutcome, now: i64) {
        let source = &self.config.name;
        let gone = std::mem::take(&mut outcome.gone);
        let mut gone_by_channel: BTreeMap<&str, usize> = BTreeMap::new();
        for (channel_id, _) in &gone {
            *gone_by_channel.entry(channel_id).or_default() += 1;
        }
        let scopes: Vec<ScopeDeletions> = previous
            .0
            .keys()
            .map(String::as_str)
            .chain(gone_by_channel.keys().copied())
            .collect::<std::collections::BTreeSet<&str>>()
            .into_iter()
            .map(|scope| ScopeDeletions {
                scope,
                gone: gone_by_channel.get(scope).copied().unwrap_or(0),
                held: previous.0.get(scope).map_or(0, |s| s.documents.len()),
            })
            .collect();
        let withheld: std::collections::BTreeSet<String> = self
            .guard
            .withheld(source, &scopes)
            .into_iter()
            .map(str::to_string)
            .collect();
        let (kept, sent): (Vec<_>, Vec<_>) = gone
            .into_iter()
            .partition(|(channel_id, _)| withheld.contains(channel_id));
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for (_, t) in &sent {
            *by_reason
                .entry(t.reason.clone().unwrap_or_default())
                .or_default() += 1;
        }
        for (reason, count) in by_reason {
            telemetry::source_tombstones(source, &reason, count);
        }
        if let Some(outbox) = &self.outbox {
            outbox.post(source, sent.into_iter().map(|(_, t)| t));
        }
        if let Some(cursor) = &self.cursor {
            for channel_id in outcome.dropped.iter().filter(|c| !withheld.contains(*c)) {
                cursor.forget_scope(channel_id);
                outcome.states.remove(channel_id);
            }
        }
        // Withheld: the documents stay known, marked withheld, and the channel's next read
        // reaches down to them: deleted only if that read does not find them either.
        for (channel_id, t) in kept {
            if let Some(state) = outcome.states.get_mut(&channel_id) {
                state.documents.insert(t.document_id.clone());
                state.withheld.insert(t.document_id);
            }
        }
        telemetry::source_documents(source, outcome.emitted);
        // Every channel with a state: those this run reached, and those it did not get to.
        let unreached = previous
            .0
            .iter()
            .filter(|(id, _)| !outcome.states.contains_key(*id) && !outcome.dropped.contains(id))
            .map(|(_, state)| state);
        let backlog = outcome
            .states
            .values()
            .chain(unreached)
            .filter(|s| s.backfill_before.is_some() || s.read_until.is_none())
            .count();
        telemetry::source_backlog_scopes(source, backlog);
        if let Some(cursor) = &self.cursor {
            for (channel_id, state) in &mut outcome.states {
                // Versions are kept only for documents still held: one tombstoned and later
                // back gets a version newer than its tombstone.
                let ChannelState {
                    kept, documents, ..
                } = state;
                kept.retain(|d| documents.contains(d));
                cursor.record_scope(channel_id, state);
            }
        }
        if outcome.complete {
            telemetry::source_succeeded(source, now as f64);
        }
        tracing::info!(source = %source, documents = outcome.emitted, channels = outcome.states.len(), backlog, complete = outcome.complete, "slack_api run done");
    }
}
