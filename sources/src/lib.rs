//! Sources: where documents come from.
//!
//! Every source has the same anatomy: a config struct (serde, one doc comment per field, which
//! is the user documentation of its `[[sources]]` entry) that [`BuildSource::build_with`] checks
//! and turns into the running [`Source`]. What a source needs besides its config, such as the
//! cursor of the last fetch, comes in [`SourceDeps`], so no source carries its own plumbing for it.

pub mod api;
pub mod backlog;
pub mod cursor;
pub mod deletion_guard;
pub mod discord;
pub mod discord_export;
pub mod files;
mod gitlab;
pub mod gitlab_api;
pub mod gitlab_export;
pub mod jsonl;
pub mod kept_versions;
pub mod markup;
pub mod s3_events;
mod slack;
pub mod slack_api;
pub mod slack_export;
mod text_file;

use std::sync::Arc;

use kass_pipeline::batch::TombstoneOutbox;
use kass_pipeline::{FatalError, RawRecord, Source};

use crate::cursor::Cursor;

/// What a source is built with besides its config.
#[derive(Debug, Clone, Default)]
pub struct SourceDeps {
    /// Where the last completed fetch of this source left off: with one, the source reads only
    /// inputs that are new or changed since, and records what it read. `None` reads everything.
    pub cursor: Option<Arc<Cursor>>,
    /// Where a source that finds documents gone posts their tombstones, for the batch writer.
    /// `None`: nothing is deleted.
    pub tombstones: Option<TombstoneOutbox>,
    /// `--allow-deletions`: this run may delete more than the source's deletion share.
    pub allow_deletions: bool,
}

/// A source's config: validated and turned into the running source by [`build_with`].
///
/// ```no_run
/// use kass_sources::{files::FilesConfig, BuildSource};
///
/// let source = FilesConfig::new("./docs").build()?;
/// # Ok::<(), kass_pipeline::FatalError>(())
/// ```
///
/// [`build_with`]: BuildSource::build_with
pub trait BuildSource: Sized + std::fmt::Debug {
    /// The running source.
    type Source: Source<Output = RawRecord>;

    /// The `source` label: first segment of batch keys, metric label, part of chunk ids; also
    /// names the source's cursor.
    fn name(&self) -> &str;

    /// Whether the source keeps per-scope state that every run needs (an API source: without
    /// it each run would read the whole workspace again and could never see a deletion), so
    /// even `kass run` loads and saves its cursor.
    fn keeps_state(&self) -> bool {
        false
    }

    /// What of the source's settings its documents depend on: a cursor saved under other
    /// settings is not resumed from. `None`: all of them (a file source). An API source
    /// names only itself: selecting other channels must not forget the state that lets it
    /// delete what it no longer reads.
    fn cursor_settings(&self) -> Option<String> {
        None
    }

    /// The standing of the source's scopes, from its saved cursor (`kass status`); `None`
    /// for a source without scopes.
    fn scope_status(
        &self,
        _cursor: &cursor::CursorState,
    ) -> Option<api::scope_status::ScopeStatus> {
        None
    }

    /// Checks the config (paths, globs, date ranges) and builds the source; a bad config is a
    /// [`FatalError::Config`] naming the source.
    fn build_with(self, deps: SourceDeps) -> Result<Self::Source, FatalError>;

    /// Builds the source without a cursor: it reads everything.
    fn build(self) -> Result<Self::Source, FatalError> {
        self.build_with(SourceDeps::default())
    }
}
