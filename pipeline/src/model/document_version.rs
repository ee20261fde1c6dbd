//! Document versions: how the embed half tells a newer state of a document from an older one
//! whatever order batch files reach it in.
//!
//! Delivery is at-least-once and unordered (S3 events, SQS, replays, dead letters, several
//! workers), so "the last write wins" would let an older batch overwrite a newer one, or bring
//! back a document its source deleted. Instead every document state (its chunks) and every
//! tombstone carries a version, set by the fetch half: the unix milliseconds of the fetch run
//! that read it, kept strictly increasing per source across runs by the source's cursor
//! ([`next_run_version`]). The embed half applies a state or a tombstone only if it is not
//! older than what it holds for that document, and remembers the tombstones it applied.
//!
//! A batch file written before versions existed (schema versions 0 to 2, the Python fetcher's
//! included) carries none: its documents take the batch's write time ([`of_instant`]), which
//! orders them correctly against each other and before any later run.

use chrono::{DateTime, Utc};

/// A version: unix milliseconds of the run (or batch write) it comes from.
pub type DocumentVersion = u64;

/// The version of an instant: its unix milliseconds (0 before 1970).
pub fn of_instant(instant: DateTime<Utc>) -> DocumentVersion {
    u64::try_from(instant.timestamp_millis()).unwrap_or(0)
}

/// The version of a run starting `now`, given the version of the source's last run: its start
/// time, or one more than the last run's version if the clock has not moved past it (a clock
/// set back, two runs in one millisecond), so versions never repeat or go back per source.
pub fn next_run_version(previous: Option<DocumentVersion>, now: DateTime<Utc>) -> DocumentVersion {
    let now = of_instant(now);
    match previous {
        Some(previous) => now.max(previous.saturating_add(1)),
        None => now,
    }
}

/// The version of each source's documents in one fetch run, as the batch writer stamps them on
/// the chunks and tombstones that carry none (a source keeping per-document state may set an
/// older one itself, for a document unchanged since an earlier run).
#[derive(Debug, Clone, PartialEq)]
pub struct RunVersions {
    by_source: std::collections::BTreeMap<String, DocumentVersion>,
    default: DocumentVersion,
}

impl RunVersions {
    /// Every source at the version of a run starting `now`, unless [`Self::set`] says otherwise.
    pub fn starting(now: DateTime<Utc>) -> Self {
        Self {
            by_source: Default::default(),
            default: of_instant(now),
        }
    }

    /// `source`'s version this run (from its cursor: see [`next_run_version`]).
    pub fn set(&mut self, source: &str, version: DocumentVersion) {
        self.by_source.insert(source.to_string(), version);
    }

    pub fn of(&self, source: &str) -> DocumentVersion {
        self.by_source.get(source).copied().unwrap_or(self.default)
    }
}

impl Default for RunVersions {
    fn default() -> Self {
        Self::starting(Utc::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_versions_increase_even_when_the_clock_goes_back() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(next_run_version(None, t), 1_700_000_000_123);
        assert_eq!(next_run_version(Some(5), t), 1_700_000_000_123);
        let earlier = DateTime::from_timestamp_millis(1_600_000_000_000).unwrap();
        assert_eq!(
            next_run_version(Some(1_700_000_000_123), earlier),
            1_700_000_000_124,
            "a clock set back still gives a newer version"
        );
        assert_eq!(of_instant(DateTime::from_timestamp_millis(-5).unwrap()), 0);
    }
}
