//! What reading one part of a project (its wiki, its repository) needs and gives back, so each
//! part is a function of its own and `refresh` only puts them together.

use kass_pipeline::batch::Tombstone;
use kass_pipeline::StageContext;

use super::state::ProjectState;
use super::web::{GitlabWeb, Project};
use crate::api::scope_driver::{tombstone, ScopeSender, Stop};

/// One project being read this run.
pub(super) struct ProjectRead<'a> {
    pub web: &'a GitlabWeb,
    /// The source's name (`[[sources]] name`): documents and metrics carry it.
    pub source: &'a str,
    pub project: &'a Project,
    /// The scope id (the configured or listed path): the prefix of every document id.
    pub path: &'a str,
    pub previous: &'a ProjectState,
    pub send: &'a ScopeSender<'a>,
    pub ctx: &'a StageContext,
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
