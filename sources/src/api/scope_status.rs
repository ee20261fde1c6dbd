//! Where a source on the [`super::scope_driver`] stands, read from its saved cursor alone
//! (for `kass status`): the same counts for every API source, since every one keeps its
//! scopes' state the same way.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::scope_driver::ScopeState;
use crate::cursor::CursorState;

/// The standing of one source's scopes (channels, projects, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScopeStatus {
    /// What the source's scopes are (`channels`, `projects`).
    pub kind: &'static str,
    /// Scopes with a saved state.
    pub scopes: usize,
    /// Scopes with history still to read (never read, or a backfill running).
    pub in_backlog: usize,
    /// Documents the source holds (sent and not tombstoned since).
    pub documents: usize,
    /// The latest instant a scope was read up to (Unix seconds).
    pub read_until: Option<i64>,
    /// Saved scopes this build cannot read (a state of another version): counted, not
    /// silently left out.
    pub unreadable: usize,
    /// What only this source tells (Slack: the threads it watches, where a backfill reached).
    #[serde(flatten)]
    pub details: BTreeMap<&'static str, Value>,
}

impl ScopeStatus {
    /// The standing of every scope in `cursor`, each read as an `S` (`kind`: what a scope
    /// is called).
    pub fn of<S: ScopeState>(kind: &'static str, cursor: &CursorState) -> Self {
        Self::of_each::<S>(kind, cursor, |_: &S| ())
    }

    /// As [`Self::of`], handing each readable scope's state to `each` as well, for what only
    /// its source tells.
    pub fn of_each<S: ScopeState>(
        kind: &'static str,
        cursor: &CursorState,
        mut each: impl FnMut(&S),
    ) -> Self {
        let mut status = Self {
            kind,
            ..Self::default()
        };
        for value in cursor.scopes.values() {
            let Ok(state) = serde_json::from_value::<S>(value.clone()) else {
                status.unreadable += 1;
                continue;
            };
            each(&state);
            status.scopes += 1;
            status.in_backlog += usize::from(state.in_backlog());
            status.documents += state.documents().len();
            status.read_until = status.read_until.max(state.last_read());
        }
        status
    }
}
