//! What the source keeps per channel between runs (a scope of the source's cursor), and the
//! instants it reasons with.
//!
//! A channel's history has three parts: the window (the last `thread_lookback_days` days, and
//! everything since the last run), read again every run so that edits, deletions and new
//! messages reach the documents; the backfill (older history, down to `since`), read once,
//! newest first, a day at a time, across as many runs as it takes; and what lies between,
//! read completely and left alone. Threads whose parent is older than the window but whose
//! replies are recent are re-read every run while their last activity is in the window: a new
//! reply does not change the parent's `ts`, so reading history alone would miss it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::kept_versions::KeptVersions;

/// One channel's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelState {
    /// The channel's name when last listed, for people reading the state and the logs.
    #[serde(default)]
    pub name: String,
    /// Unix seconds: the last run read this channel's history completely up to here.
    #[serde(default)]
    pub read_until: Option<i64>,
    /// Unix seconds, a day's start: history older than this (down to `since`) is still to be
    /// read. `None`: the backfill is complete.
    #[serde(default)]
    pub backfill_before: Option<i64>,
    /// Threads still watched for late replies: parent `ts` -> `ts` of its last activity.
    #[serde(default)]
    pub threads: BTreeMap<String, String>,
    /// Every document of this channel the source emitted and has not tombstoned since.
    #[serde(default)]
    pub documents: BTreeSet<String>,
    /// Documents found gone whose tombstones the deletion guard held back: sent by the next
    /// run allowed to delete, unless they came back.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub withheld: BTreeSet<String>,
    /// What each document of `documents` was last sent as, so one read again unchanged keeps
    /// its version (see `crate::kept_versions`).
    #[serde(default, skip_serializing_if = "KeptVersions::is_empty")]
    pub kept: KeptVersions,
    /// The channel was renamed: its whole history is read again (the backfill restarted at
    /// the window), every document sent again, threads already held included, so that every
    /// stored chunk's metadata carries the new name (their texts are unchanged: nothing is
    /// embedded again). Cleared when that backfill completes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rereading: bool,
}

crate::scope_state_by_fields!(ChannelState, in_backlog: |state| state.backfill_before.is_some() || state.read_until.is_none());

/// A Slack `ts` as a number that orders like time: microseconds since the epoch.
pub(super) fn ts_micros(ts: &str) -> Option<i64> {
    let (secs, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = fraction.chars().chain("000000".chars()).take(6).collect();
    let micros: i64 = digits.parse().ok()?;
    Some(secs * 1_000_000 + micros)
}

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

/// The day after `day`.
pub(super) fn next_day(day: NaiveDate) -> NaiveDate {
    day.checked_add_days(Days::new(1)).unwrap_or(day)
}

/// Unix seconds as the `oldest`/`latest` argument of history.
pub(super) fn as_ts(unix_seconds: i64) -> String {
    format!("{unix_seconds}.000000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_orders_like_time_whatever_its_digits() {
        assert_eq!(ts_micros("1700000000.000100"), Some(1_700_000_000_000_100));
        assert_eq!(ts_micros("1700000000.1"), Some(1_700_000_000_100_000));
        assert_eq!(ts_micros("1700000000"), Some(1_700_000_000_000_000));
        assert!(ts_micros("1700000000.9").unwrap() > ts_micros("1700000000.10").unwrap());
        assert_eq!(ts_micros("x.1"), None);
    }

    #[test]
    fn days_are_utc() {
        let day = day_of(1_635_356_172);
        assert_eq!(day, NaiveDate::from_ymd_opt(2021, 10, 27).unwrap());
        assert_eq!(day_start(day), 1_635_292_800);
        assert_eq!(as_ts(1), "1.000000");
    }
}
