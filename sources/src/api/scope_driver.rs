//! The per-scope lifecycle every incremental API source shares, once: Slack's channels now,
//! GitLab's projects, Backlog's projects and Discord's channels next.
//!
//! A source supplies only its API's specifics ([`ScopedSource`]): how to read one scope's
//! changes since its saved state (and, optionally, advance an older backfill), and which of its
//! errors mean "the credentials are refused" or "this scope is simply not readable". The
//! source lists its scopes itself (its listing decides which are selected) and hands the
//! driver the selected ones and every id the listing holds. The driver owns the rest:
//!
//! - the previous state of every scope, read from the source's cursor once;
//! - scopes the run no longer selects: every document they held becomes a tombstone
//!   (`excluded` when still listed, `channel_gone` when not);
//! - the order scopes are read in (read longest ago first, never read first), so a run cut short
//!   leaves other scopes for the next run;
//! - a failed, refused or cut-short scope: skipped (logged, counted), its state as it was,
//!   nothing of it deleted; shutdown stops the run; the credentials refused stop the source;
//! - the versions of the documents sent ([`ScopeSender`]: an unchanged document keeps the
//!   version it was sent with, see [`crate::kept_versions`]);
//! - the deletion guard, per scope and for the source, the tombstones it lets go posted to the
//!   run's outbox, the ones it withholds kept (the source reads them again next run);
//! - every scope's state recorded in the cursor (saved by the fetch once every batch is
//!   written), the source's metrics and its freshness.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kass_pipeline::batch::{Tombstone, TombstoneOutbox};
use kass_pipeline::model::DocumentVersion;
use kass_pipeline::{tally, telemetry, FatalError, Outlet, RawRecord};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::ApiError;
use crate::cursor::Cursor;
use crate::deletion_guard::{DeletionGuard, ScopeDeletions};
use crate::kept_versions::KeptVersions;

/// One scope (a channel, a project) as the run's listing selected it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub id: String,
    pub name: String,
}

/// What the driver needs of a source's per-scope state; the rest of it is the source's own
/// (how far its history is read, what it watches).
pub trait ScopeState:
    Clone + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync
{
    /// Every document of the scope the source sent and has not tombstoned since.
    fn documents(&self) -> &BTreeSet<String>;
    fn documents_mut(&mut self) -> &mut BTreeSet<String>;
    /// Documents found gone whose tombstones the guard held back: read again next run.
    fn withheld_mut(&mut self) -> &mut BTreeSet<String>;
    /// What each document was last sent as (see [`crate::kept_versions`]).
    fn kept(&self) -> &KeptVersions;
    fn kept_mut(&mut self) -> &mut KeptVersions;
    /// When the scope was last read (unix seconds); `None`: never.
    fn last_read(&self) -> Option<i64>;
    /// Whether the scope still has history to read (a backfill running, or never read).
    fn in_backlog(&self) -> bool;
}

/// Implements [`ScopeState`] for a state with the driver's usual fields: `documents`,
/// `withheld`, `kept`, and `read_until` (unix seconds of the last complete read; the scope
/// has history to read until it is set, or while `in_backlog` says so for a source with a
/// backfill of its own). One home for what would otherwise be the same accessors in every
/// source.
#[macro_export]
macro_rules! scope_state_by_fields {
    ($state:ty) => {
        $crate::scope_state_by_fields!($state, in_backlog: |state| state.read_until.is_none());
    };
    ($state:ty, in_backlog: |$s:ident| $backlog:expr) => {
        impl $crate::api::scope_driver::ScopeState for $state {
            fn documents(&self) -> &std::collections::BTreeSet<String> {
                &self.documents
            }
            fn documents_mut(&mut self) -> &mut std::collections::BTreeSet<String> {
                &mut self.documents
            }
            fn withheld_mut(&mut self) -> &mut std::collections::BTreeSet<String> {
                &mut self.withheld
            }
            fn kept(&self) -> &$crate::kept_versions::KeptVersions {
                &self.kept
            }
            fn kept_mut(&mut self) -> &mut $crate::kept_versions::KeptVersions {
                &mut self.kept
            }
            fn last_read(&self) -> Option<i64> {
                self.read_until
            }
            fn in_backlog(&self) -> bool {
                let $s = self;
                $backlog
            }
        }
    };
}

/// Why a scope's read stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// Shutdown was requested, or the pipeline is gone.
    Shutdown,
    /// The API refused or failed, after the client's retries.
    Api(ApiError),
    /// A dead letter could not be written.
    Fatal(FatalError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Api(e)
    }
}

/// A scope read again: its new state, the documents found gone, how many were sent.
pub struct Refreshed<St> {
    pub state: St,
    pub gone: Vec<Tombstone>,
    pub emitted: usize,
}

/// Sends one scope's documents downstream, each with its version.
pub struct ScopeSender<'a> {
    out: &'a Outlet<RawRecord>,
    kept: Mutex<KeptVersions>,
    run_version: Option<DocumentVersion>,
    context: &'a str,
}

impl ScopeSender<'_> {
    /// Sends `record`: an unchanged document keeps the version it was sent with, a changed
    /// one gets this run's (without a cursor, the batch writer stamps the run's).
    pub async fn send(&self, mut record: RawRecord) -> Result<(), Stop> {
        if let Some(version) = self.run_version {
            self.kept
                .lock()
                .expect("kept versions lock")
                .stamp(&mut record, self.context, version);
        }
        self.out.send(record).await.map_err(|_| Stop::Shutdown)
    }

    /// Sends `record` unless it is exactly what was last sent of its document (see
    /// [`KeptVersions::unchanged`]); returns whether it was sent. For sources that read a
    /// complete listing every run with no change marker to compare (GitLab's wiki pages):
    /// an unchanged document costs nothing downstream. Without a cursor every record is sent.
    pub async fn send_changed(&self, record: RawRecord) -> Result<bool, Stop> {
        let unchanged = self.run_version.is_some()
            && self
                .kept
                .lock()
                .expect("kept versions lock")
                .unchanged(&record, self.context);
        if unchanged {
            return Ok(false);
        }
        self.send(record).await?;
        Ok(true)
    }

    fn into_kept(self) -> KeptVersions {
        self.kept.into_inner().expect("kept versions lock")
    }
}

/// What a source supplies to the driver: its API's specifics.
#[async_trait]
pub trait ScopedSource: Send + Sync {
    type State: ScopeState;
    /// What one run of the source knows (its listing's directory, its clock, ...).
    type Run: Send + Sync;

    /// Reads the scope's changes since `previous` and sends its documents through `send`;
    /// returns its new state and, from a complete read only, the documents found gone.
    async fn refresh(
        &self,
        run: &Self::Run,
        scope: &Scope,
        previous: &Self::State,
        send: &ScopeSender<'_>,
    ) -> Result<Refreshed<Self::State>, Stop>;

    /// Advances the scope's older history, after every scope was refreshed; `state` records
    /// how far it got, also when it stops. Returns how many documents were sent.
    async fn backfill(
        &self,
        _run: &Self::Run,
        _scope: &Scope,
        _state: &mut Self::State,
        _send: &ScopeSender<'_>,
    ) -> Result<usize, Stop> {
        Ok(0)
    }

    /// Whether `error` means the credentials are refused (the source stops).
    fn refuses_credentials(&self, error: &ApiError) -> bool;

    /// Whether an error code means the scope is not readable by design (the bot not in a
    /// channel): the run still counts as complete.
    fn expected_skip(&self, _code: &str) -> bool {
        false
    }
}

/// One run of a scoped source.
pub struct ScopeDriver<'a> {
    /// The source's name (`[[sources]] name`).
    pub source: &'a str,
    /// What the scopes are (`channels`, `projects`), for progress and logs.
    pub scope_kind: &'a str,
    /// What the credentials are (`the token`, `the API key`) and the variable they come
    /// from, named when they are refused (never the credentials themselves).
    pub credentials: &'a str,
    pub credentials_env: &'a str,
    pub guard: DeletionGuard,
    pub cursor: Option<&'a Arc<Cursor>>,
    pub outbox: Option<&'a TombstoneOutbox>,
    /// A digest of what else renders the documents (a workspace's names): its change makes
    /// every document sent this run a newer version.
    pub context: &'a str,
}

/// What one run decided, recorded only at its end.
struct RunOutcome<St> {
    states: BTreeMap<String, St>,
    gone: Vec<(String, Tombstone)>,
    /// Scopes whose documents were all tombstoned: forgotten if the guard lets them go.
    dropped: Vec<String>,
    emitted: usize,
    /// Every selected scope was read.
    complete: bool,
}

impl ScopeDriver<'_> {
    /// The credentials refused stop the source naming the variable (never the credentials);
    /// any other listing failure leaves the run empty and every state as it was.
    pub fn unreadable<S: ScopedSource>(
        &self,
        source: &S,
        error: ApiError,
        reason: &str,
    ) -> Result<(), FatalError> {
        if source.refuses_credentials(&error) {
            return Err(self.refused(&error));
        }
        tracing::error!(source = %self.source, scopes = %self.scope_kind, %error, "cannot list the source's scopes; nothing read this run, nothing deleted");
        let reason = match &error {
            ApiError::Incomplete { reason, .. } => reason.code(),
            _ => reason,
        };
        telemetry::source_scope_skipped(self.source, reason);
        Ok(())
    }

    fn refused(&self, error: &ApiError) -> FatalError {
        FatalError::Config(format!(
            "{error}: {} in {} is not accepted",
            self.credentials, self.credentials_env
        ))
    }

    /// Runs the scopes of one listing: `selected` are read, `listed` holds every scope id the
    /// listing returned live (a scope no longer selected but still listed is `excluded`, one
    /// not listed is gone).
    pub async fn run<S: ScopedSource>(
        &self,
        source: &S,
        run: &S::Run,
        selected: &[Scope],
        listed: &BTreeSet<String>,
        out: &Outlet<RawRecord>,
        now: i64,
    ) -> Result<(), FatalError> {
        let previous = self.previous_states::<S::State>();
        let mut outcome = self
            .sync(source, run, &previous, selected, listed, out)
            .await?;
        self.record(&previous, &mut outcome, now);
        Ok(())
    }

    /// Every scope's state as the last completed run left it, read from the cursor once.
    fn previous_states<St: ScopeState>(&self) -> BTreeMap<String, St> {
        let Some(cursor) = self.cursor else {
            return BTreeMap::new();
        };
        cursor
            .scope_names()
            .into_iter()
            .filter_map(|id| cursor.scope(&id).map(|state| (id, state)))
            .collect()
    }

    fn sender<'s>(&'s self, out: &'s Outlet<RawRecord>, kept: KeptVersions) -> ScopeSender<'s> {
        ScopeSender {
            out,
            kept: Mutex::new(kept),
            run_version: self.cursor.map(|c| c.run_version()),
            context: self.context,
        }
    }

    /// Scopes gone, scopes refreshed, backfills advanced.
    async fn sync<S: ScopedSource>(
        &self,
        source: &S,
        run: &S::Run,
        previous: &BTreeMap<String, S::State>,
        selected: &[Scope],
        listed: &BTreeSet<String>,
        out: &Outlet<RawRecord>,
    ) -> Result<RunOutcome<S::State>, FatalError> {
        let mut outcome = RunOutcome {
            states: BTreeMap::new(),
            gone: Vec::new(),
            dropped: Vec::new(),
            emitted: 0,
            complete: true,
        };
        let of = |id: &str| previous.get(id).cloned().unwrap_or_default();
        // Scopes kept from earlier runs that this run does not select any more.
        for scope_id in previous.keys() {
            if selected.iter().any(|s| &s.id == scope_id) {
                continue;
            }
            let reason = if listed.contains(scope_id) {
                "excluded"
            } else {
                "channel_gone"
            };
            let state = of(scope_id);
            outcome.gone.extend(
                state
                    .documents()
                    .iter()
                    .map(|d| (scope_id.clone(), tombstone(d, reason))),
            );
            outcome.dropped.push(scope_id.clone());
            outcome.states.insert(scope_id.clone(), state);
        }
        let progress = format!("{}: {}", self.source, self.scope_kind);
        tally::expect(&progress, selected.len() as u64);
        // Read longest ago first (never read: first of all), so a run cut short (the Lambda's
        // deadline) leaves the freshest ones for the next run, not always the same.
        let mut order: Vec<&Scope> = selected.iter().collect();
        order.sort_by_key(|s| previous.get(&s.id).and_then(ScopeState::last_read));
        let mut failed = BTreeSet::new();
        for scope in order.iter().copied() {
            let before = of(&scope.id);
            let send = self.sender(out, before.kept().clone());
            let result = source.refresh(run, scope, &before, &send).await;
            tally::advance(&progress, 1);
            match result {
                Ok(mut refreshed) => {
                    *refreshed.state.kept_mut() = send.into_kept();
                    outcome.emitted += refreshed.emitted;
                    outcome
                        .gone
                        .extend(refreshed.gone.into_iter().map(|t| (scope.id.clone(), t)));
                    outcome.states.insert(scope.id.clone(), refreshed.state);
                }
                Err(stop) => {
                    // A scope never read keeps no state: it is not in backfill either.
                    if before != S::State::default() {
                        outcome.states.insert(scope.id.clone(), before);
                    }
                    failed.insert(scope.id.clone());
                    if !self.skip(source, scope, stop, &mut outcome)? {
                        return Ok(outcome);
                    }
                }
            }
        }
        for scope in order {
            // A scope whose refresh failed this run is not backfilled either.
            if failed.contains(&scope.id) {
                continue;
            }
            let Some(mut state) = outcome.states.get(&scope.id).cloned() else {
                continue;
            };
            if !state.in_backlog() || state.last_read().is_none() {
                continue;
            }
            let send = self.sender(out, std::mem::take(state.kept_mut()));
            let result = source.backfill(run, scope, &mut state, &send).await;
            *state.kept_mut() = send.into_kept();
            outcome.states.insert(scope.id.clone(), state);
            match result {
                Ok(emitted) => outcome.emitted += emitted,
                Err(stop) => {
                    if !self.skip(source, scope, stop, &mut outcome)? {
                        return Ok(outcome);
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// A scope's read stopped: `Ok(false)` when the whole run stops (shutdown), `Ok(true)`
    /// when other scopes go on (this one skipped, counted and logged), an error when the
    /// credentials are refused.
    fn skip<S: ScopedSource>(
        &self,
        source: &S,
        scope: &Scope,
        stop: Stop,
        outcome: &mut RunOutcome<S::State>,
    ) -> Result<bool, FatalError> {
        match stop {
            Stop::Shutdown => {
                outcome.complete = false;
                Ok(false)
            }
            Stop::Fatal(e) => Err(e),
            Stop::Api(e) if source.refuses_credentials(&e) => Err(self.refused(&e)),
            Stop::Api(e) => {
                let code = e.code().unwrap_or_else(|| "unavailable".to_string());
                if !source.expected_skip(&code) {
                    outcome.complete = false;
                }
                tracing::warn!(source = %self.source, scope = %scope.name, scope_id = %scope.id, error = %e, "scope skipped this run; nothing of it deleted");
                telemetry::source_scope_skipped(self.source, &code);
                Ok(true)
            }
        }
    }

    /// Applies the deletion guard, per scope and for the source, posts the tombstones it lets
    /// go and records every scope's state.
    fn record<St: ScopeState>(
        &self,
        previous: &BTreeMap<String, St>,
        outcome: &mut RunOutcome<St>,
        now: i64,
    ) {
        let source = self.source;
        let gone = std::mem::take(&mut outcome.gone);
        let mut gone_by_scope: BTreeMap<&str, usize> = BTreeMap::new();
        for (scope_id, _) in &gone {
            *gone_by_scope.entry(scope_id).or_default() += 1;
        }
        let scopes: Vec<ScopeDeletions> = previous
            .keys()
            .map(String::as_str)
            .chain(gone_by_scope.keys().copied())
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .map(|scope| ScopeDeletions {
                scope,
                gone: gone_by_scope.get(scope).copied().unwrap_or(0),
                held: previous.get(scope).map_or(0, |s| s.documents().len()),
            })
            .collect();
        let withheld: BTreeSet<String> = self
            .guard
            .withheld(source, &scopes)
            .into_iter()
            .map(str::to_string)
            .collect();
        let (kept, sent): (Vec<_>, Vec<_>) = gone
            .into_iter()
            .partition(|(scope_id, _)| withheld.contains(scope_id));
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for (_, t) in &sent {
            *by_reason
                .entry(t.reason.clone().unwrap_or_default())
                .or_default() += 1;
        }
        for (reason, count) in by_reason {
            telemetry::source_tombstones(source, &reason, count);
        }
        if let Some(outbox) = self.outbox {
            outbox.post(source, sent.into_iter().map(|(_, t)| t));
        }
        if let Some(cursor) = self.cursor {
            for scope_id in outcome.dropped.iter().filter(|c| !withheld.contains(*c)) {
                cursor.forget_scope(scope_id);
                outcome.states.remove(scope_id);
            }
        }
        // Withheld: the documents stay known, marked withheld, and the scope's next read
        // covers them again: deleted only if that read does not find them either.
        for (scope_id, t) in kept {
            if let Some(state) = outcome.states.get_mut(&scope_id) {
                state.documents_mut().insert(t.document_id.clone());
                state.withheld_mut().insert(t.document_id);
            }
        }
        telemetry::source_documents(source, outcome.emitted);
        // Every scope with a state: those this run reached, and those it did not get to.
        let unreached = previous
            .iter()
            .filter(|(id, _)| !outcome.states.contains_key(*id) && !outcome.dropped.contains(id))
            .map(|(_, state)| state);
        let backlog = outcome
            .states
            .values()
            .chain(unreached)
            .filter(|s| s.in_backlog())
            .count();
        telemetry::source_backlog_scopes(source, backlog);
        if let Some(cursor) = self.cursor {
            for (scope_id, state) in &mut outcome.states {
                // Versions are kept only for documents still held: one tombstoned and later
                // back gets a version newer than its tombstone.
                let documents = state.documents().clone();
                state.kept_mut().retain(|d| documents.contains(d));
                cursor.record_scope(scope_id, state);
            }
        }
        if outcome.complete {
            telemetry::source_succeeded(source, now as f64);
        }
        tracing::info!(source = %source, documents = outcome.emitted, scopes = outcome.states.len(), backlog, complete = outcome.complete, "run done");
    }
}

/// A tombstone of `document_id`; the batch writer stamps the run's version.
pub fn tombstone(document_id: &str, reason: &str) -> Tombstone {
    Tombstone {
        document_id: document_id.to_string(),
        reason: Some(reason.to_string()),
        version: None,
    }
}
