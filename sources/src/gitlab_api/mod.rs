//! The `gitlab` source: a GitLab instance's projects through the REST API v4, synced
//! incrementally on the shared API-source driver ([`crate::api::scope_driver`]): a project is
//! a scope, and this module supplies only how to read one.
//!
//! Each run, per project: every issue and merge request is listed (oldest created first, so
//! an edit during the listing moves nothing; followed by `Link: rel="next"`, never by totals);
//! those whose `updated_at` or human notes count changed since the last run, and those active
//! in the last `notes_lookback_days`, are read again with all their notes and sent whole (one
//! document each, kind `issue` / `merge_request`). A new or edited note touches its issue's
//! `updated_at`; a deleted one does not, but lowers `user_notes_count`. GitLab has no deletion
//! feed: an issue the project held that the complete listing no longer returns is asked for
//! alone, and only a 404 makes it a tombstone (an offset listing can skip a record when
//! another is deleted while it pages). The driver applies the deletion guard.
//!
//! A project's wiki ([`wiki`]) and repository files ([`code`]) are read when `include` names
//! them. The projects read are those configured and every project of the configured groups,
//! listed once per run ([`scopes`]).

mod code;
mod config;
mod include;
mod project_read;
mod scopes;
mod state;
mod web;
mod wiki;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::{FatalError, Outlet, RawRecord, Source, StageContext};

use crate::api::scope_driver::{
    tombstone, Refreshed, Scope, ScopeDriver, ScopeSender, ScopedSource, Stop,
};
use crate::api::ApiError;
use crate::cursor::Cursor;
use crate::deletion_guard::DeletionGuard;
use crate::gitlab::documents::{document_id, iid_of, issue_record};
use crate::gitlab::model::Kind;
use code::CodeSettings;
pub use config::{GitlabApiConfig, TokenKind};
use include::Include;
use project_read::ProjectRead;
use state::{ProjectState, Seen};
use web::GitlabWeb;

/// The running source; build it from a [`GitlabApiConfig`].
#[derive(Debug)]
pub struct GitlabApi {
    config: GitlabApiConfig,
    web: GitlabWeb,
    include: Include,
    guard: DeletionGuard,
    cursor: Option<Arc<Cursor>>,
    outbox: Option<TombstoneOutbox>,
}

/// What one run knows.
pub struct GitlabRun {
    now: i64,
    ctx: StageContext,
}

#[async_trait]
impl Source for GitlabApi {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "gitlab"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        let now = Utc::now().timestamp();
        let mut grouped = Vec::new();
        for group in &self.config.groups {
            match self.web.group_projects(group).await {
                Ok(projects) => grouped.extend(projects),
                // Which projects the group holds is unknown: none is read, none deleted.
                Err(e) => return self.driver().unreadable(&*self, e, "group_unreadable"),
            }
        }
        let selected = scopes::selected(&self.config.projects, &grouped);
        // A project no longer configured nor in a configured group is `excluded`: the source
        // does not ask whether it still exists.
        let listed: BTreeSet<String> = selected
            .iter()
            .map(|s| s.id.clone())
            .chain(self.cursor.iter().flat_map(|c| c.scope_names()))
            .collect();
        let run = GitlabRun { now, ctx };
        self.driver()
            .run(&*self, &run, &selected, &listed, &out, now)
            .await
    }
}

#[async_trait]
impl ScopedSource for GitlabApi {
    type State = ProjectState;
    type Run = GitlabRun;

    async fn refresh(
        &self,
        run: &GitlabRun,
        scope: &Scope,
        previous: &ProjectState,
        send: &ScopeSender<'_>,
    ) -> Result<Refreshed<ProjectState>, Stop> {
        if run.ctx.shutdown.is_triggered() {
            return Err(Stop::Shutdown);
        }
        let Some(project) = self.web.project(&scope.id).await? else {
            return Err(Stop::Api(not_found(&self.config.name, &scope.id)));
        };
        let path = scope.id.as_str();
        let lookback = run.now - i64::from(self.config.notes_lookback_days) * 86_400;
        let since = self.config.since.map(|d| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .to_rfc3339()
        });
        let mut state = previous.clone();
        state.name = project.path_with_namespace.clone();
        state.withheld.clear();
        let mut gone = Vec::new();
        let mut emitted = 0;
        for kind in [Kind::Issues, Kind::MergeRequests] {
            if !self.include.kinds.contains(&kind) {
                // No longer read: what the project held of it goes.
                for d in previous
                    .documents
                    .iter()
                    .filter(|d| iid_of(path, kind, d).is_some())
                {
                    gone.push(tombstone(d, "excluded"));
                }
                continue;
            }
            let listing = self.web.listing(project.id, kind, since.as_deref()).await?;
            let mut listed = BTreeSet::new();
            for issue in &listing {
                // Stopped between documents: the project is read again next run (what was
                // sent is sent again, harmlessly: the ids are the same).
                if run.ctx.shutdown.is_triggered() {
                    return Err(Stop::Shutdown);
                }
                let id = document_id(path, kind, issue.iid);
                listed.insert(id.clone());
                let seen = Seen {
                    updated_at: issue.updated_at.to_rfc3339(),
                    notes: issue.user_notes_count,
                };
                let recent = issue.updated_at.timestamp() >= lookback;
                if !recent
                    && previous.seen.get(&id) == Some(&seen)
                    && previous.documents.contains(&id)
                {
                    continue;
                }
                let notes = self.web.notes(project.id, kind, issue.iid).await?;
                let record = issue_record(
                    &self.config.name,
                    path,
                    kind,
                    issue,
                    &notes,
                    self.config.system_notes,
                );
                send.send(record).await?;
                emitted += 1;
                state.documents.insert(id.clone());
                state.seen.insert(id, seen);
            }
            // Held but not listed: asked for alone; only GitLab's 404 is a deletion.
            for d in previous.documents.iter().filter(|d| !listed.contains(*d)) {
                let Some(iid) = iid_of(path, kind, d) else {
                    continue;
                };
                if self.web.one(project.id, kind, iid).await?.is_none() {
                    gone.push(tombstone(d, "deleted"));
                }
            }
        }
        let read = ProjectRead {
            web: &self.web,
            source: &self.config.name,
            project: &project,
            path,
            previous,
            send,
            ctx: &run.ctx,
        };
        if self.include.wiki {
            let part = wiki::refresh(&read, &mut state).await?;
            emitted += part.emitted;
            gone.extend(part.gone);
        } else {
            gone.extend(read.held_except(|d| wiki::is_page(path, d), |_| false, "excluded"));
        }
        if self.include.code {
            let settings = CodeSettings {
                git_ref: self.config.code_ref.as_deref(),
                max_bytes: self.config.max_code_file_bytes,
            };
            let part = code::refresh(&read, &settings, &mut state).await?;
            emitted += part.emitted;
            gone.extend(part.gone);
        } else {
            state.code = None;
            gone.extend(read.held_except(
                |d| code::file_of(path, d).is_some(),
                |_| false,
                "excluded",
            ));
        }
        for t in &gone {
            state.documents.remove(&t.document_id);
            state.seen.remove(&t.document_id);
        }
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

    /// A project the token cannot see (403) or that does not exist (404) is skipped.
    fn expected_skip(&self, code: &str) -> bool {
        matches!(code, "403" | "404" | "project_not_found")
    }
}

/// A project GitLab does not know, as the error that skips it.
fn not_found(source: &str, project: &str) -> ApiError {
    ApiError::Refused {
        source_name: source.to_string(),
        method: format!("project {project}"),
        error: "project_not_found".to_string(),
    }
}

impl GitlabApi {
    fn driver(&self) -> ScopeDriver<'_> {
        ScopeDriver {
            source: &self.config.name,
            scope_kind: "projects",
            credentials: "the token",
            credentials_env: &self.config.token_env,
            guard: self.guard,
            cursor: self.cursor.as_ref(),
            outbox: self.outbox.as_ref(),
            context: "",
        }
    }
}
