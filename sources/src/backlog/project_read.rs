//! What reading one part of a project (its issues, wiki, documents) needs and gives back, so
//! each part is a function of its own and `refresh` only puts them together.

use kass_pipeline::batch::Tombstone;
use kass_pipeline::StageContext;

use super::state::ProjectState;
use super::web::{BacklogWeb, Project};
use crate::api::scope_driver::{tombstone, ScopeSender, Stop};
use crate::markup::backlog;

/// One project being read this run.
pub(super) struct ProjectRead<'a> {
    pub web: &'a BacklogWeb,
    /// The source's name (`[[sources]] name`): documents and metrics carry it.
    pub source: &'a str,
    pub project: &'a Project,
    /// The project key: the prefix of every document id.
    pub key: &'a str,
    pub previous: &'a ProjectState,
    pub send: &'a ScopeSender<'a>,
    pub ctx: &'a StageContext,
    /// Nothing updated before this instant is read (`since`), RFC 3339.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a part of a project read sent, and the documents it found gone.
#[derive(Default)]
pub(super) struct Part {
    pub emitted: usize,
    pub gone: Vec<Tombstone>,
}

impl ProjectRead<'_> {
    /// Stopped between documents: the project is read again next run (what was sent is sent
    /// again, harmlessly: the ids are the same).
    pub fn go_on(&self) -> Result<(), Stop> {
        if self.ctx.shutdown.is_triggered() {
            return Err(Stop::Shutdown);
        }
        Ok(())
    }

    /// A text of the project as readable text: Backlog notation rendered, Markdown as it is.
    pub fn readable(&self, text: &str) -> String {
        if backlog::is_backlog_notation(&self.project.text_formatting_rule) {
            backlog::render(text)
        } else {
            text.to_string()
        }
    }

    /// The project's page of a thing on Backlog: `{root}/{path}`.
    pub fn link(&self, path: &str) -> String {
        format!("{}/{path}", self.web.root)
    }

    /// Tombstones, with `reason`, of the documents the project held that `belongs` claims
    /// and `keep` does not.
    pub fn held_except(
        &self,
        belongs: impl Fn(&str) -> bool,
        keep: impl Fn(&str) -> bool,
        reason: &str,
    ) -> Vec<Tombstone> {
        self.previous
            .documents
            .iter()
            .filter(|d| belongs(d) && !keep(d))
            .map(|d| tombstone(d, reason))
            .collect()
    }
}

/// The number after `{key}/{kind}/` in a document id, if the id is one of that kind.
pub(super) fn id_of<'d>(key: &str, kind: &str, document_id: &'d str) -> Option<&'d str> {
    document_id
        .strip_prefix(key)?
        .strip_prefix('/')?
        .strip_prefix(kind)?
        .strip_prefix('/')
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_belong_to_their_project_and_kind_only() {
        assert_eq!(id_of("APP", "issues", "APP/issues/12"), Some("12"));
        assert_eq!(id_of("AP", "issues", "APP/issues/12"), None);
        assert_eq!(id_of("APP", "wikis", "APP/issues/12"), None);
    }
}
