//! One channel's sync: its window read again whole, its backfill advanced a day at a time.
//! Documents go downstream as soon as they are complete; what the channel's state becomes,
//! and which of its documents are gone, go back to the source, which records them only once
//! the whole run is decided (see the deletion guard in `mod.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use kass_pipeline::batch::Tombstone;
use kass_pipeline::model::ChatDirectory;
use kass_pipeline::{DocumentKind, FailureKind, ItemError, ItemKind, RawRecord, StageContext};
use serde_json::Value;

use super::documents::{sort_by_time, DocumentRef, Gathered};
use super::state::{as_ts, day_of, day_start, next_day, ts_micros, ChannelState};
use super::web::SlackWeb;
use crate::api::scope_driver::{tombstone, Refreshed, ScopeSender, Stop};
use crate::api::ApiError;
use crate::slack::message::{ts_date, SlackMessage};
use crate::slack::{chat_record, day_document_id, thread_document_id, Conversation};

/// Threads whose replies are read at once; the method's limiter paces them.
const THREADS_IN_FLIGHT: usize = 4;

/// What one run of the source knows, from its listings (unreachable outside `slack_api`).
pub struct SlackRun {
    pub directory: Arc<ChatDirectory>,
    pub ctx: StageContext,
    pub lookback_day: NaiveDate,
    pub now: i64,
}

/// What a run knows while it syncs channels.
pub(super) struct SyncContext<'a> {
    pub source: &'a str,
    pub web: &'a SlackWeb,
    pub directory: &'a Arc<ChatDirectory>,
    pub ctx: &'a StageContext,
    /// Threads last active before this day are no longer watched; the window starts here at
    /// the latest.
    pub lookback_day: NaiveDate,
    /// Nothing before this day is read.
    pub since: Option<NaiveDate>,
    /// The run's start, unix seconds.
    pub now: i64,
}

/// A thread as its replies answered.
enum ThreadRead {
    /// Still a thread: its document, and the `ts` of its last activity.
    Thread(RawRecord, String, String),
    /// Only the parent is left: it is a day's message now.
    Lone(SlackMessage),
    /// Slack no longer knows it.
    Gone,
}

/// One channel being synced.
pub(super) struct ChannelSync<'a> {
    pub run: &'a SyncContext<'a>,
    pub channel: &'a Conversation,
    /// Sends the channel's documents, each with its version.
    pub sender: &'a ScopeSender<'a>,
}

impl ChannelSync<'_> {
    /// Reads the window again (the lookback days, and everything since the last run) and
    /// re-emits every day and thread in it whole; documents of the window that are no longer
    /// there are returned as gone. On the first run the backfill starts below the window.
    pub async fn refresh(&self, previous: &ChannelState) -> Result<Refreshed<ChannelState>, Stop> {
        let run = self.run;
        let mut window_day = run.lookback_day;
        if let Some(read_until) = previous.read_until {
            window_day = window_day.min(day_of(read_until));
        }
        // What an earlier run found gone and the deletion guard held back is read again here
        // (the window reaches down to it): it is deleted only if this read does not find it.
        if let Some(oldest_withheld) = previous
            .withheld
            .iter()
            .filter_map(|d| match DocumentRef::parse(&self.channel.id, d) {
                DocumentRef::Day(day) => Some(day),
                DocumentRef::Thread(ts) => ts_date(&ts),
                DocumentRef::Other => None,
            })
            .min()
        {
            window_day = window_day.min(oldest_withheld);
        }
        if let Some(since) = run.since {
            window_day = window_day.max(since);
        }
        let oldest = as_ts(day_start(window_day));
        let mut gathered = Gathered::default();
        self.read_history(Some(&oldest), None, &mut gathered)
            .await?;

        // Threads started in the window, and older threads still watched for late replies.
        let oldest_micros = day_start(window_day) * 1_000_000;
        let in_window = |ts: &str| ts_micros(ts).is_some_and(|t| t >= oldest_micros);
        let mut threads: BTreeSet<String> = gathered.parents.keys().cloned().collect();
        threads.extend(previous.threads.keys().filter(|ts| !in_window(ts)).cloned());
        // A reply also sent to the channel shows in history: its thread has news, even when
        // its parent is older than the window and no longer watched.
        threads.extend(
            gathered
                .broadcast_threads
                .iter()
                .filter(|ts| !in_window(ts))
                .cloned(),
        );
        gathered.parents.clear();
        let mut watched = BTreeMap::new();
        let mut reread_days = BTreeSet::new();
        let mut emitted = BTreeSet::new();
        let mut lone = Vec::new();
        self.send_threads(
            threads.iter().cloned().collect(),
            &mut watched,
            &mut emitted,
            &mut lone,
        )
        .await?;
        for parent in lone {
            if in_window(&parent.ts) {
                gathered.add_to_day(parent);
            } else {
                reread_days.extend(ts_date(&parent.ts));
            }
        }
        // A watched thread older than the window lost its replies: its parent is back in its
        // day, which is read again.
        for day in &reread_days {
            let (from, to) = (as_ts(day_start(*day)), as_ts(day_start(next_day(*day))));
            let mut again = Gathered::default();
            self.read_history(Some(&from), Some(&to), &mut again)
                .await?;
            gathered.days.extend(again.days);
        }
        for (day, messages) in gathered.take_days_after(None) {
            emitted.insert(self.send_day(day, messages).await?);
        }

        let covered = |document_id: &String| match DocumentRef::parse(&self.channel.id, document_id)
        {
            DocumentRef::Day(day) => day >= window_day || reread_days.contains(&day),
            DocumentRef::Thread(ts) => in_window(&ts) || threads.contains(&ts),
            DocumentRef::Other => false,
        };
        // Gone: what this complete read covers and no longer holds. A document withheld by an
        // earlier run is covered (the window reached down to it) or, if this source cannot
        // read it again (not a day or thread of its own), kept.
        let gone: Vec<Tombstone> = previous
            .documents
            .iter()
            .filter(|d| covered(d) && !emitted.contains(*d))
            .map(|d| tombstone(d, "deleted"))
            .collect();
        let mut state = previous.clone();
        state.name = self.channel.name.clone();
        state.withheld.clear();
        for tombstone in &gone {
            state.documents.remove(&tombstone.document_id);
        }
        let count = emitted.len();
        state.documents.extend(emitted);
        state.threads = watched;
        let renamed = !previous.name.is_empty() && previous.name != self.channel.name;
        if previous.read_until.is_none() || renamed {
            // First run, or a renamed channel: older history is (again) the backfill's, down
            // to `since`.
            let floor = run.since.map(day_start);
            state.backfill_before = Some(day_start(window_day)).filter(|b| floor < Some(*b));
        }
        if renamed && previous.read_until.is_some() {
            tracing::info!(source = %run.source, channel_id = %self.channel.id, from = %previous.name, to = %self.channel.name, "channel renamed: its history is read again so every stored chunk carries the new name (metadata only, nothing embedded again)");
            state.rereading = state.backfill_before.is_some();
        }
        state.read_until = Some(run.now);
        Ok(Refreshed {
            state,
            gone,
            emitted: count,
        })
    }

    /// Reads older history, newest first, emitting each day once history has gone past it,
    /// and records in `state` how far it got, so an interrupted backfill resumes at the day
    /// it was in. The next page is asked for while the threads of the current one are read,
    /// so both methods' budgets are used at once. Returns the documents emitted.
    pub async fn backfill(&self, state: &mut ChannelState) -> Result<usize, Stop> {
        let Some(before) = state.backfill_before else {
            return Ok(0);
        };
        let floor = self.run.since.map(|d| as_ts(day_start(d)));
        let latest = as_ts(before);
        let fetch = |cursor: Option<String>| {
            let floor = floor.clone();
            let latest = latest.clone();
            async move {
                self.unless_stopped(self.run.web.history_page(
                    &self.channel.id,
                    floor.as_deref(),
                    Some(&latest),
                    cursor.as_deref(),
                ))
                .await
            }
        };
        let mut gathered = Gathered::default();
        let mut emitted = 0;
        let mut trail = self.run.web.trail();
        let mut page = fetch(None).await?;
        loop {
            if self.run.ctx.shutdown.is_triggered() {
                return Err(Stop::Shutdown);
            }
            let mut oldest_day: Option<NaiveDate> = None;
            for message in self.parse(page.items).await? {
                let day = ts_date(&message.ts);
                oldest_day = oldest_day.min(day).or(day);
                gathered.add(message);
            }
            // History has reached `oldest_day`: later days are complete. After the last
            // page, every day is. A read that stops short (a cursor handed out again, the
            // page cap) emits what it has reached, then stops.
            let followed = self.run.web.follow(&mut trail, page.next.clone());
            let next_cursor = followed.as_ref().ok().cloned().flatten();
            let reached = page.next.as_ref().and(oldest_day);
            let last = page.next.is_none();
            let emit = async {
                if last || reached.is_some() {
                    self.emit_complete(&mut gathered, reached, state).await
                } else {
                    Ok(0)
                }
            };
            let next = async {
                match next_cursor {
                    Some(cursor) => fetch(Some(cursor)).await.map(Some),
                    None => Ok(None),
                }
            };
            let (sent, next) = tokio::join!(emit, next);
            emitted += sent?;
            if let Some(day) = reached {
                let resume = day_start(next_day(day));
                state.backfill_before = state.backfill_before.map(|b| b.min(resume));
            }
            followed?;
            match next? {
                Some(next) => page = next,
                None => {
                    state.backfill_before = None;
                    state.rereading = false;
                    return Ok(emitted);
                }
            }
        }
    }

    /// Emits the days after `reached` and the threads started on them, newest day first,
    /// moving `backfill_before` past each day once its documents are sent. A run stopped
    /// inside a day resumes at that day, and does not read again a thread it already sent.
    async fn emit_complete(
        &self,
        gathered: &mut Gathered,
        reached: Option<NaiveDate>,
        state: &mut ChannelState,
    ) -> Result<usize, Stop> {
        let mut parents_by_day: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
        for parent in gathered.take_parents_after(reached) {
            if let Some(day) = ts_date(&parent.ts) {
                parents_by_day.entry(day).or_default().push(parent.ts);
            }
        }
        let mut days: BTreeMap<NaiveDate, Vec<SlackMessage>> =
            gathered.take_days_after(reached).into_iter().collect();
        let all_days: BTreeSet<NaiveDate> =
            days.keys().chain(parents_by_day.keys()).copied().collect();
        let mut emitted = 0;
        for day in all_days.into_iter().rev() {
            let parents: Vec<String> = parents_by_day
                .remove(&day)
                .unwrap_or_default()
                .into_iter()
                .filter(|ts| {
                    state.rereading
                        || !state
                            .documents
                            .contains(&thread_document_id(&self.channel.id, ts))
                })
                .collect();
            let mut messages = days.remove(&day).unwrap_or_default();
            // Each thread is recorded as it is sent: a run stopped inside this day does not
            // send it again.
            emitted += self
                .send_threads(
                    parents,
                    &mut state.threads,
                    &mut state.documents,
                    &mut messages,
                )
                .await?;
            if !messages.is_empty() {
                sort_by_time(&mut messages);
                state.documents.insert(self.send_day(day, messages).await?);
                emitted += 1;
            }
            let done = day_start(day);
            state.backfill_before = state.backfill_before.map(|b| b.min(done));
        }
        Ok(emitted)
    }

    /// Reads the threads of `parents` and sends each that still is one, recording it in
    /// `documents` as soon as it is sent and watching it while active in the lookback window;
    /// parents left without replies (day messages now) go to `lone`, threads Slack no longer
    /// knows are left out. Returns how many were sent.
    async fn send_threads(
        &self,
        parents: Vec<String>,
        watched: &mut BTreeMap<String, String>,
        documents: &mut BTreeSet<String>,
        lone: &mut Vec<SlackMessage>,
    ) -> Result<usize, Stop> {
        let mut sent = 0;
        let reads = self.read_threads(parents);
        futures::pin_mut!(reads);
        while let Some(read) = reads.next().await {
            let (ts, read) = read?;
            match read {
                ThreadRead::Thread(record, document_id, last) => {
                    self.send(record).await?;
                    documents.insert(document_id);
                    self.watch(watched, ts, last);
                    sent += 1;
                }
                ThreadRead::Lone(parent) => lone.push(parent),
                ThreadRead::Gone => {}
            }
        }
        Ok(sent)
    }

    /// A call to the API, given up as soon as shutdown is requested: a rate-limit wait or a
    /// Retry-After must not outlast the time the run has left to drain (the Lambda's deadline).
    async fn unless_stopped<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, Stop> {
        tokio::select! {
            result = call => result.map_err(Stop::Api),
            () = self.run.ctx.shutdown.requested() => Err(Stop::Shutdown),
        }
    }

    /// Keeps watching a thread while its last activity is in the lookback window.
    fn watch(&self, watched: &mut BTreeMap<String, String>, ts: String, last: String) {
        let lookback = day_start(self.run.lookback_day) * 1_000_000;
        if ts_micros(&last).is_some_and(|t| t >= lookback) {
            watched.insert(ts, last);
        }
    }

    /// Every page of history between the bounds, sorted into `gathered`.
    async fn read_history(
        &self,
        oldest: Option<&str>,
        latest: Option<&str>,
        gathered: &mut Gathered,
    ) -> Result<(), Stop> {
        let mut cursor: Option<String> = None;
        let mut trail = self.run.web.trail();
        loop {
            if self.run.ctx.shutdown.is_triggered() {
                return Err(Stop::Shutdown);
            }
            let page = self
                .unless_stopped(self.run.web.history_page(
                    &self.channel.id,
                    oldest,
                    latest,
                    cursor.as_deref(),
                ))
                .await?;
            for message in self.parse(page.items).await? {
                gathered.add(message);
            }
            match self.run.web.follow(&mut trail, page.next)? {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// The threads of `parents`, read a few at a time, in order.
    fn read_threads(
        &self,
        parents: Vec<String>,
    ) -> impl futures::Stream<Item = Result<(String, ThreadRead), Stop>> + '_ {
        futures::stream::iter(parents)
            .map(move |ts| async move {
                let read = self.read_thread(&ts).await?;
                Ok::<_, Stop>((ts, read))
            })
            .buffered(THREADS_IN_FLIGHT)
            .into_stream()
    }

    async fn read_thread(&self, ts: &str) -> Result<ThreadRead, Stop> {
        if self.run.ctx.shutdown.is_triggered() {
            return Err(Stop::Shutdown);
        }
        let Some(values) = self
            .unless_stopped(self.run.web.replies(&self.channel.id, ts))
            .await?
        else {
            return Ok(ThreadRead::Gone);
        };
        let mut messages = self.parse(values).await?;
        let Some(position) = messages.iter().position(|m| m.ts == ts) else {
            // Replies without their parent: Slack answers so while a parent is being deleted.
            return Ok(ThreadRead::Gone);
        };
        let parent = messages.remove(position);
        if messages.is_empty() && parent.reply_count == 0 {
            return Ok(ThreadRead::Lone(parent));
        }
        sort_by_time(&mut messages);
        let last = messages
            .last()
            .map_or_else(|| parent.ts.clone(), |m| m.ts.clone());
        let document_id = thread_document_id(&self.channel.id, ts);
        let record = self.record(
            document_id.clone(),
            DocumentKind::Thread,
            format!("conversations.replies?channel={}&ts={ts}", self.channel.id),
            std::iter::once(parent).chain(messages),
        );
        Ok(ThreadRead::Thread(record, document_id, last))
    }

    async fn send_day(&self, day: NaiveDate, messages: Vec<SlackMessage>) -> Result<String, Stop> {
        let document_id = day_document_id(&self.channel.id, day);
        let record = self.record(
            document_id.clone(),
            DocumentKind::ChatConversation,
            format!("conversations.history?channel={}#{day}", self.channel.id),
            messages,
        );
        self.send(record).await?;
        Ok(document_id)
    }

    fn record(
        &self,
        document_id: String,
        kind: DocumentKind,
        origin: String,
        messages: impl IntoIterator<Item = SlackMessage>,
    ) -> RawRecord {
        let messages = messages
            .into_iter()
            .map(|m| m.into_raw(self.run.directory))
            .collect();
        chat_record(
            self.run.source,
            self.channel,
            document_id,
            kind,
            origin,
            messages,
            self.run.directory,
        )
    }

    async fn send(&self, record: RawRecord) -> Result<(), Stop> {
        self.sender.send(record).await
    }

    /// The messages of an answer; one Slack answers in a shape kass cannot read goes to the
    /// dead letters, naming the channel and its `ts`, and the rest are kept.
    async fn parse(&self, values: Vec<Value>) -> Result<Vec<SlackMessage>, Stop> {
        let mut messages = Vec::with_capacity(values.len());
        for value in values {
            match serde_json::from_value::<SlackMessage>(value.clone()) {
                Ok(message) => messages.push(message),
                Err(e) => {
                    let ts = value["ts"].as_str().unwrap_or("?").to_string();
                    let error = ItemError::new(
                        FailureKind::MalformedMessage,
                        format!("channel {} message {ts}: {e}", self.channel.id),
                    );
                    self.run
                        .ctx
                        .dead_letter(
                            self.run.source,
                            &format!("{}/{ts}", self.channel.id),
                            ItemKind::Input,
                            &value,
                            &error,
                        )
                        .await
                        .map_err(Stop::Fatal)?;
                }
            }
        }
        Ok(messages)
    }
}
