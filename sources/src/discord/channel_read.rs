//! One channel's read: its window read again whole (messages by day, threads active or
//! archived inside it), its backfill advanced page by page with the position saved. Days
//! and threads become the documents Slack's do (`crate::slack`: same ids' shape, same
//! chat record), so the same windows chunk them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use futures::TryStreamExt;
use kass_pipeline::batch::Tombstone;
use kass_pipeline::model::ChatDirectory;
use kass_pipeline::{FailureKind, FatalError, ItemError, ItemKind, StageContext};
use serde_json::Value;

use super::documents::ChannelDocuments;
use super::message::{lacks_content_intent, Message};
use super::state::{day_of, day_start, ChannelState};
use super::web::{snowflake_at, Archived, Channel, DiscordWeb};
use crate::api::scope_driver::{tombstone, Refreshed, ScopeSender, Stop};
use crate::api::ApiError;
use crate::markup::discord::Names;
use crate::slack::{thread_document_id, Conversation};

/// What a channel's read knows of the run.
pub(super) struct ChannelRead<'a> {
    pub source: &'a str,
    pub web: &'a DiscordWeb,
    pub ctx: &'a StageContext,
    pub names: &'a Names,
    pub directory: &'a Arc<ChatDirectory>,
    pub channel: &'a Channel,
    pub conversation: Conversation,
    /// The guild's active threads whose parent is this channel.
    pub active: Vec<&'a Channel>,
    pub sender: &'a ScopeSender<'a>,
    pub since: Option<NaiveDate>,
    pub lookback_days: u32,
    /// Every this many days the archived thread listings are read whole (see `refresh`).
    pub reconcile_days: u32,
    pub now: i64,
}

/// A thread as its messages answered.
enum ThreadRead {
    Sent(String),
    /// Discord no longer knows it (404), or it holds no message.
    Gone,
    /// The bot may not read it (403): kept as it was, not deleted.
    Unreadable,
}

/// A channel's archived threads as this run listed them.
#[derive(Default)]
struct ArchivedListing {
    /// Archived inside the window: read again.
    recent: Vec<Channel>,
    /// Listed, archived before the window: still there, not read.
    older: BTreeSet<String>,
    /// The private listing was refused (no MANAGE_THREADS).
    private_refused: bool,
}

/// What a document id of this channel names.
enum DocumentRef {
    Day(NaiveDate),
    Thread(String),
    Other,
}

impl ChannelRead<'_> {
    fn document_ref(&self, document_id: &str) -> DocumentRef {
        let Some(rest) = document_id
            .strip_prefix(self.channel.id.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return DocumentRef::Other;
        };
        if let Some(id) = rest.strip_prefix("thread/") {
            return DocumentRef::Thread(id.to_string());
        }
        rest.parse().map_or(DocumentRef::Other, DocumentRef::Day)
    }

    /// Reads the window again (the lookback days and everything since the last run) and
    /// sends every day and thread in it whole; what the window held and no longer does is
    /// returned gone. The first run sets the backfill below the window.
    pub async fn refresh(&self, previous: &ChannelState) -> Result<Refreshed<ChannelState>, Stop> {
        let lookback = i64::from(self.lookback_days) * 86_400;
        let mut window_day = day_of(self.now - lookback);
        if let Some(read_until) = previous.read_until {
            window_day = window_day.min(day_of(read_until));
        }
        // Days an earlier run found gone and the guard held back are read again here.
        for withheld in &previous.withheld {
            if let DocumentRef::Day(day) = self.document_ref(withheld) {
                window_day = window_day.min(day);
            }
        }
        if let Some(since) = self.since {
            window_day = window_day.max(since);
        }
        let window_start = day_start(window_day);
        let mut emitted = BTreeSet::new();
        if !self.channel.holds_only_threads() {
            let floor = snowflake_at(window_start).parse().ok();
            let mut days: BTreeMap<NaiveDate, Vec<Message>> = BTreeMap::new();
            let pages = self.web.messages(&self.channel.id, None, floor);
            futures::pin_mut!(pages);
            while let Some(page) = self.unless_stopped(pages.try_next()).await? {
                for message in self.parse(page.items).await? {
                    if let Some(day) = message.day().filter(|d| *d >= window_day) {
                        days.entry(day).or_default().push(message);
                    }
                }
            }
            for (day, messages) in days {
                emitted.insert(self.send_day(day, messages).await?);
            }
        }

        // Every `reconcile_days`, the archived listings are read to their end: a thread
        // archived before the window and deleted since is seen gone there.
        let reconcile = previous.read_until.is_some()
            && previous.threads_before.is_empty()
            && previous
                .threads_reconciled
                .is_none_or(|at| self.now - at >= i64::from(self.reconcile_days) * 86_400);
        let mut listed: BTreeMap<String, &Channel> =
            self.active.iter().map(|t| (t.id.clone(), *t)).collect();
        let archived = self.archived_since(window_start, reconcile).await?;
        for thread in &archived.recent {
            listed.insert(thread.id.clone(), thread);
        }
        let mut watched = BTreeMap::new();
        let mut unreadable = BTreeSet::new();
        let mut private = BTreeSet::new();
        for thread in listed.values() {
            match self.send_thread(thread).await? {
                ThreadRead::Sent(document_id) => {
                    emitted.insert(document_id);
                    watched.insert(thread.id.clone(), thread.archived_at());
                    if thread.is_private() {
                        private.insert(thread.id.clone());
                    }
                }
                ThreadRead::Unreadable => {
                    unreadable.insert(thread_document_id(&self.channel.id, &thread.id));
                }
                ThreadRead::Gone => {}
            }
        }

        // Covered by this complete read: the window's days; threads the last run watched
        // that this listing would show again (active then, or archived inside the window),
        // threads an earlier run found gone and the guard held back, and, when the archived
        // listings were read whole, every thread. A private thread is never covered by a run
        // refused the private listing (no MANAGE_THREADS): its absence proves nothing.
        let covered = |document_id: &String| match self.document_ref(document_id) {
            DocumentRef::Day(day) => day >= window_day,
            DocumentRef::Thread(id)
                if archived.private_refused && previous.private.contains(&id) =>
            {
                false
            }
            DocumentRef::Thread(id) => {
                reconcile
                    || previous.withheld.contains(document_id)
                    || previous
                        .watched
                        .get(&id)
                        .is_some_and(|archived| archived.is_none_or(|at| at >= window_start))
            }
            DocumentRef::Other => false,
        };
        let listed_older = |document_id: &String| match self.document_ref(document_id) {
            DocumentRef::Thread(id) => archived.older.contains(&id),
            _ => false,
        };
        let gone: Vec<Tombstone> = previous
            .documents
            .iter()
            .filter(|d| {
                covered(d) && !emitted.contains(*d) && !unreadable.contains(*d) && !listed_older(d)
            })
            .map(|d| tombstone(d, "deleted"))
            .collect();
        let renamed = !previous.name.is_empty() && previous.name != self.conversation.name;
        let mut state = previous.clone();
        state.name = self.conversation.name.clone();
        state.withheld.clear();
        for t in &gone {
            state.documents.remove(&t.document_id);
            if let DocumentRef::Thread(id) = self.document_ref(&t.document_id) {
                state.private.remove(&id);
            }
        }
        let count = emitted.len();
        state.documents.extend(emitted);
        state.watched = watched;
        state.private.extend(private);
        if reconcile {
            state.threads_reconciled = Some(self.now);
        }
        if renamed && previous.read_until.is_some() {
            tracing::info!(channel_id = %self.channel.id, from = %previous.name, to = %self.conversation.name, "channel renamed: its history is read again so every stored chunk carries the new name (metadata only, nothing embedded again)");
            state.rereading = true;
        }
        if previous.read_until.is_none() || renamed {
            let floor = self.since.map(day_start);
            if floor < Some(window_start) {
                if !self.channel.holds_only_threads() {
                    state.backfill_before = Some(window_start);
                }
                let before = chrono::DateTime::from_timestamp(window_start, 0)
                    .unwrap_or_default()
                    .to_rfc3339();
                for which in Archived::BOTH {
                    state
                        .threads_before
                        .insert(which.key().to_string(), before.clone());
                }
            }
        }
        state.read_until = Some(self.now);
        Ok(Refreshed {
            state,
            gone,
            emitted: count,
        })
    }

    /// Advances the backfill: older messages a page at a time, each day sent once the
    /// listing has gone past it, then older archived threads; `state` records after every
    /// page how far it got, so a run cut short resumes there and sends nothing twice.
    pub async fn backfill(&self, state: &mut ChannelState) -> Result<usize, Stop> {
        let mut sent = 0;
        if let Some(before) = state.backfill_before {
            let floor_day = self.since;
            let floor = floor_day.and_then(|d| snowflake_at(day_start(d)).parse().ok());
            let pages = self
                .web
                .messages(&self.channel.id, Some(snowflake_at(before)), floor);
            futures::pin_mut!(pages);
            let mut days: BTreeMap<NaiveDate, Vec<Message>> = BTreeMap::new();
            loop {
                let Some(page) = self.unless_stopped(pages.try_next()).await? else {
                    break;
                };
                let last = page.next.is_none();
                let mut oldest: Option<NaiveDate> = None;
                for message in self.parse(page.items).await? {
                    let Some(day) = message.day() else { continue };
                    oldest = Some(oldest.map_or(day, |o| o.min(day)));
                    if floor_day.is_none_or(|f| day >= f) {
                        days.entry(day).or_default().push(message);
                    }
                }
                // The listing has gone past every day after the oldest it reached.
                let complete = match (last, oldest) {
                    (true, _) | (false, None) => std::mem::take(&mut days),
                    (false, Some(oldest)) => days.split_off(&next_day(oldest)),
                };
                for (day, messages) in complete.into_iter().rev() {
                    state.documents.insert(self.send_day(day, messages).await?);
                    sent += 1;
                    state.backfill_before = state.backfill_before.map(|b| b.min(day_start(day)));
                }
                if let Some(oldest) = oldest.filter(|_| !last) {
                    let reached = day_start(next_day(oldest));
                    state.backfill_before = state.backfill_before.map(|b| b.min(reached));
                }
                if last {
                    break;
                }
            }
            state.backfill_before = None;
        }
        for which in Archived::BOTH {
            let Some(before) = state.threads_before.get(which.key()).cloned() else {
                continue;
            };
            let floor = self.since.map(day_start);
            let pages = self
                .web
                .archived_threads(&self.channel.id, which, Some(before));
            futures::pin_mut!(pages);
            loop {
                let page = match self.unless_stopped(pages.try_next()).await {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(Stop::Api(e)) if which == Archived::Private && e.status() == Some(403) => {
                        self.no_private_threads(&e);
                        break;
                    }
                    Err(stop) => return Err(stop),
                };
                let mut below_floor = false;
                for thread in &page.items {
                    if floor.is_some_and(|f| thread.archived_at().is_some_and(|at| at < f)) {
                        below_floor = true;
                        continue;
                    }
                    let document_id = thread_document_id(&self.channel.id, &thread.id);
                    // Sent by a run stopped inside this page: not sent twice (but read again
                    // for a rename, which changes what it says).
                    if !state.rereading && state.documents.contains(&document_id) {
                        continue;
                    }
                    if let ThreadRead::Sent(document_id) = self.send_thread(thread).await? {
                        state.documents.insert(document_id);
                        if thread.is_private() {
                            state.private.insert(thread.id.clone());
                        }
                        sent += 1;
                    }
                }
                match page.next.filter(|_| !below_floor) {
                    Some(next) => {
                        state.threads_before.insert(which.key().to_string(), next);
                    }
                    None => break,
                }
            }
            state.threads_before.remove(which.key());
            // The backfill has just listed every archived thread down to `since`.
            if state.threads_before.is_empty() {
                state.threads_reconciled = Some(self.now);
            }
        }
        if state.backfill_before.is_none() && state.threads_before.is_empty() {
            state.rereading = false;
        }
        Ok(sent)
    }

    /// The channel's threads archived at or after `window_start` (unix seconds), public and
    /// private; private ones only where the bot has MANAGE_THREADS (a 403 there is not the
    /// channel's). With `whole`, the listings are read to their end and the ids of the older
    /// threads kept too.
    async fn archived_since(
        &self,
        window_start: i64,
        whole: bool,
    ) -> Result<ArchivedListing, Stop> {
        let mut listing = ArchivedListing::default();
        for which in Archived::BOTH {
            let pages = self.web.archived_threads(&self.channel.id, which, None);
            futures::pin_mut!(pages);
            loop {
                let page = match self.unless_stopped(pages.try_next()).await {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(Stop::Api(e)) if which == Archived::Private && e.status() == Some(403) => {
                        self.no_private_threads(&e);
                        listing.private_refused = true;
                        break;
                    }
                    Err(stop) => return Err(stop),
                };
                let mut reached = false;
                for thread in page.items {
                    match thread.archived_at() {
                        Some(at) if at < window_start => {
                            reached = true;
                            listing.older.insert(thread.id);
                        }
                        _ => listing.recent.push(thread),
                    }
                }
                // Newest archived first: past the window, older pages hold nothing new
                // (archived threads change only by being deleted).
                if reached && !whole {
                    break;
                }
            }
        }
        Ok(listing)
    }

    fn no_private_threads(&self, error: &ApiError) {
        tracing::info!(source = %self.source, channel_id = %self.channel.id, %error, "private archived threads not listed: the bot lacks MANAGE_THREADS in this channel");
    }

    /// Reads a thread's messages and sends it as one document.
    async fn send_thread(&self, thread: &Channel) -> Result<ThreadRead, Stop> {
        let mut messages = Vec::new();
        let pages = self.web.messages(&thread.id, None, None);
        futures::pin_mut!(pages);
        loop {
            match self.unless_stopped(pages.try_next()).await {
                Ok(Some(page)) => messages.extend(self.parse(page.items).await?),
                Ok(None) => break,
                Err(Stop::Api(e)) if e.status() == Some(404) => return Ok(ThreadRead::Gone),
                Err(Stop::Api(e)) if e.status() == Some(403) => {
                    tracing::info!(source = %self.source, thread_id = %thread.id, error = %e, "thread not readable by the bot; kept as it was");
                    return Ok(ThreadRead::Unreadable);
                }
                Err(stop) => return Err(stop),
            }
        }
        if messages.is_empty() {
            return Ok(ThreadRead::Gone);
        }
        let origin = format!("channels/{}/messages", thread.id);
        let (document_id, record) = self.documents().thread(&thread.id, messages, origin);
        self.sender.send(record).await?;
        Ok(ThreadRead::Sent(document_id))
    }

    async fn send_day(&self, day: NaiveDate, messages: Vec<Message>) -> Result<String, Stop> {
        let origin = format!("channels/{}/messages#{day}", self.channel.id);
        let (document_id, record) = self.documents().day(day, messages, origin);
        self.sender.send(record).await?;
        Ok(document_id)
    }

    fn documents(&self) -> ChannelDocuments<'_> {
        ChannelDocuments {
            source: self.source,
            conversation: self.conversation.clone(),
            names: self.names,
            directory: self.directory,
        }
    }

    /// A call given up as soon as shutdown is requested: a rate-limit wait must not outlast
    /// the time the run has left.
    async fn unless_stopped<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, Stop> {
        if self.ctx.shutdown.is_triggered() {
            return Err(Stop::Shutdown);
        }
        tokio::select! {
            result = call => result.map_err(Stop::Api),
            () = self.ctx.shutdown.requested() => Err(Stop::Shutdown),
        }
    }

    /// The messages of a page; one kass cannot read goes to the dead letters. A page of user
    /// messages all empty stops the source: the bot lacks the Message Content intent, and
    /// storing those empty messages would pass for a channel nobody wrote in.
    async fn parse(&self, values: Vec<Value>) -> Result<Vec<Message>, Stop> {
        let mut messages = Vec::with_capacity(values.len());
        for value in values {
            match serde_json::from_value::<Message>(value.clone()) {
                Ok(message) => messages.push(message),
                Err(e) => {
                    let id = value["id"].as_str().unwrap_or("?").to_string();
                    let error = ItemError::new(
                        FailureKind::MalformedMessage,
                        format!("channel {} message {id}: {e}", self.channel.id),
                    );
                    self.ctx
                        .dead_letter(
                            self.source,
                            &format!("{}/{id}", self.channel.id),
                            ItemKind::Input,
                            &value,
                            &error,
                        )
                        .await
                        .map_err(Stop::Fatal)?;
                }
            }
        }
        if lacks_content_intent(&messages) {
            return Err(Stop::Fatal(FatalError::Config(format!(
                "discord source `{}`: messages of users in channel {} came back without content, embeds or attachments: the bot lacks the Message Content intent (enable MESSAGE_CONTENT under Privileged Gateway Intents in the Developer Portal); nothing of it stored",
                self.source, self.channel.id
            ))));
        }
        Ok(messages)
    }
}

fn next_day(day: NaiveDate) -> NaiveDate {
    day.checked_add_days(Days::new(1)).unwrap_or(day)
}
