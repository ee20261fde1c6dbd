//! What the source keeps per channel between runs (a scope of the source's cursor).
//!
//! A channel's history has three parts, as Slack's: the window (the last `lookback_days` and
//! everything since the last run), read again every run so edits and deletions reach the
//! documents (Discord lists neither); the backfill (older history down to `since`), read once,
//! newest first, its position saved after every page, across as many runs as it takes; and
//! what lies between, read completely and left alone. Threads are documents of their parent
//! channel: those active, or archived inside the window, are read again every run.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::kept_versions::KeptVersions;

/// One channel's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelState {
    /// The channel's name when last listed, for people reading the state and the logs.
    #[serde(default)]
    pub name: String,
    /// Unix seconds: the last run read the channel's window completely up to here.
    #[serde(default)]
    pub read_until: Option<i64>,
    /// Unix seconds, a day's start: messages older than this (down to `since`) are still to
    /// be read. `None`: that backfill is complete.
    #[serde(default)]
    pub backfill_before: Option<i64>,
    /// Archived threads still to be read, per listing (`public`, `private`): the archive
    /// time (ISO 8601) the next page is asked `before`. Absent: that listing is done.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub threads_before: BTreeMap<String, String>,
    /// Threads read by the last run whose deletion the next run can see: thread id -> unix
    /// seconds of its archiving (`None`: it was active).
    #[serde(default)]
    pub watched: BTreeMap<String, Option<i64>>,
    /// Unix seconds: when the archived thread listings were last read to their end.
    #[serde(default)]
    pub threads_reconciled: Option<i64>,
    /// Private threads among the documents: a run refused the private listing cannot tell
    /// whether they are gone.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub private: BTreeSet<String>,
    /// Every document of this channel the source sent and has not tombstoned since.
    #[serde(default)]
    pub documents: BTreeSet<String>,
    /// Documents found gone whose tombstones the deletion guard held back.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub withheld: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "KeptVersions::is_empty")]
    pub kept: KeptVersions,
    /// The channel was renamed: its whole history is read again (the backfill restarted at
    /// the window), threads already held included, so every stored chunk takes the new name
    /// (metadata only: nothing is embedded again). Cleared when that backfill completes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rereading: bool,
}

crate::scope_state_by_fields!(ChannelState, in_backlog: |state| state.read_until.is_none()
        || state.backfill_before.is_some()
        || !state.threads_before.is_empty());

/// The UTC day an instant (unix seconds) falls on.
pub(super) fn day_of(unix_seconds: i64) -> NaiveDate {
    DateTime::from_timestamp(unix_seconds, 0)
        .unwrap_or_default()
        .date_naive()
}

/// Unix seconds of a day's start (UTC).
pub(super) fn day_start(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp()
}
