//! The `backlog` source: a Backlog space's projects through the API v2, synced incrementally
//! on the shared API-source driver ([`crate::api::scope_driver`]): a project is a scope, and
//! this module supplies only how to read one.
//!
//! Each run lists the projects the key can read (one request), then, per project:
//!
//! - its activity feed after the last activity read ([`activity`]): issues and wiki pages
//!   deleted become tombstones, issues touched are read again;
//! - its issues updated since the day before the last complete run, each with its comments
//!   when its `updated` time is new ([`issues`]); every `reconcile_days`, all of them;
//! - its wiki pages and documents, compared by `updated` with what was sent ([`pages`]).
//!
//! The API key travels as the `apiKey` query parameter ([`kass_pipeline::http::Auth::Query`]):
//! added at send time only and masked in every message, so it is in no log line, error or
//! metric. Requests go one at a time (Nulab asks for no concurrent requests from one program),
//! paced by the `X-RateLimit-*` headers per request type; after a 429 the client waits until
//! the window's reset, never retrying in a loop. The driver applies the deletion guard.

mod activity;
mod config;
mod include;
mod issues;
mod pages;
mod project_read;
mod state;
mod web;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::{FatalError, Outlet, RawRecord, Source, StageContext};

use crate::api::scope_driver::{Refreshed, Scope, ScopeDriver, ScopeSender, ScopedSource, Stop};
use crate::api::ApiError;
use crate::cursor::Cursor;
use crate::deletion_guard::DeletionGuard;
pub use config::BacklogConfig;
use include::Include;
use pages::PageKind;
use project_read::ProjectRead;
use state::ProjectState;
use web::{BacklogWeb, Project};

/// The running source; build it from a [`BacklogConfig`].
#[derive(Debug)]
pub struct Backlog {
    config: BacklogConfig,
    web: BacklogWeb,
    include: Include,
    guard: DeletionGuard,
    cursor: Option<Arc<Cursor>>,
    outbox: Option<TombstoneOutbox>,
}

/// What one run knows: the projects the key can read, the clock.
pub struct BacklogRun {
    now: i64,
    ctx: StageContext,
    projects: Vec<Project>,
}

#[async_trait]
impl Source for Backlog {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "backlog"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        let now = Utc::now().timestamp();
        let projects = match self.web.projects().await {
            Ok(projects) => projects,
            // Which projects exist is unknown: none is read, none deleted.
            Err(e) => return self.driver().unreadable(&*self, e, "projects_unreadable"),
        };
        let selected: Vec<Scope> = if self.config.projects.is_empty() {
            projects
                .iter()
                .map(|p| Scope {
                    id: p.project_key.clone(),
                    name: p.name.clone(),
                })
                .collect()
        } else {
            let mut named = BTreeSet::new();
            self.config
                .projects
                .iter()
                .filter(|key| named.insert(key.as_str()))
                .map(|key| Scope {
                    id: key.clone(),
                    name: key.clone(),
                })
                .collect()
        };
        let listed: BTreeSet<String> = projects.iter().map(|p| p.project_key.clone()).collect();
        let run = BacklogRun { now, ctx, projects };
        self.driver()
            .run(&*self, &run, &selected, &listed, &out, now)
            .await
    }
}

#[async_trait]
impl ScopedSource for Backlog {
    type State = ProjectState;
    type Run = BacklogRun;

    async fn refresh(
        &self,
        run: &BacklogRun,
        scope: &Scope,
        previous: &ProjectState,
        send: &ScopeSender<'_>,
    ) -> Result<Refreshed<ProjectState>, Stop> {
        if run.ctx.shutdown.is_triggered() {
            return Err(Stop::Shutdown);
        }
        let key = scope.id.as_str();
        // Not among the projects the key reads: asked for alone, so Backlog's own answer
        // (403, 404) says why it is skipped.
        let project = match run.projects.iter().find(|p| p.project_key == key) {
            Some(project) => project.clone(),
            None => self.web.project(key).await?,
        };
        let feed = activity::read(&self.web, key, self.include, previous.feed_after).await?;
        let since = self.config.since.map(midnight);
        let read = ProjectRead {
            web: &self.web,
            source: &self.config.name,
            project: &project,
            key,
            previous,
            send,
            ctx: &run.ctx,
            since,
        };
        let mut state = previous.clone();
        state.name = project.name.clone();
        state.withheld.clear();
        let mut gone = Vec::new();
        let mut emitted = 0;
        if self.include.issues {
            let reconcile = previous
                .reconciled
                .is_none_or(|at| run.now - at >= i64::from(self.config.reconcile_days) * 86_400);
            let listed_since = if reconcile {
                self.config.since
            } else {
                // `updatedSince` is a date: from the day before the last complete read.
                previous
                    .read_until
                    .and_then(|at| Utc.timestamp_opt(at - 86_400, 0).single())
                    .map(|at| at.date_naive())
                    .max(self.config.since)
            };
            let listed_since = listed_since.map(|d| d.format("%Y-%m-%d").to_string());
            let part =
                issues::refresh(&read, &feed, listed_since.as_deref(), reconcile, &mut state)
                    .await?;
            emitted += part.emitted;
            gone.extend(part.gone);
            if reconcile {
                state.reconciled = Some(run.now);
            }
        } else {
            gone.extend(read.held_except(|d| issues::is_issue(key, d), |_| false, "excluded"));
        }
        for (kind, included) in [
            (PageKind::Wiki, self.include.wikis),
            (PageKind::Document, self.include.documents),
        ] {
            if included {
                let deleted = match kind {
                    PageKind::Wiki => feed.deleted_wikis.clone(),
                    PageKind::Document => BTreeSet::new(),
                };
                let part = pages::refresh(&read, kind, &deleted, &mut state).await?;
                emitted += part.emitted;
                gone.extend(part.gone);
            } else {
                gone.extend(read.held_except(|d| kind.holds(key, d), |_| false, "excluded"));
            }
        }
        for t in &gone {
            state.documents.remove(&t.document_id);
            state.seen.remove(&t.document_id);
        }
        state.feed_after = Some(feed.after);
        state.read_until = Some(run.now);
        Ok(Refreshed {
            state,
            gone,
            emitted,
        })
    }

    fn refuses_credentials(&self, error: &ApiError) -> bool {
        error.status() == Some(401)
    }

    /// A project the key cannot read (403) or that does not exist (404) is skipped.
    fn expected_skip(&self, code: &str) -> bool {
        matches!(code, "403" | "404")
    }
}

fn midnight(day: NaiveDate) -> chrono::DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

impl Backlog {
    fn driver(&self) -> ScopeDriver<'_> {
        ScopeDriver {
            source: &self.config.name,
            scope_kind: "projects",
            credentials: "the API key",
            credentials_env: &self.config.api_key_env,
            guard: self.guard,
            cursor: self.cursor.as_ref(),
            outbox: self.outbox.as_ref(),
            context: "",
        }
    }
}
