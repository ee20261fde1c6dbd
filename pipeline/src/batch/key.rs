use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use super::Compression;

/// `YYYYMMDD_HHMMSS_xxxx`. The 4 hex digits come from the chunk ids and `salt` (a writer bumps
/// the salt if it already used the id within the same second), so identical content written in
/// the same second yields the same id.
pub fn batch_id<'a>(
    timestamp: DateTime<Utc>,
    chunk_ids: impl IntoIterator<Item = &'a str>,
    salt: u32,
) -> String {
    let mut h = Sha256::new();
    for id in chunk_ids {
        h.update(id.as_bytes());
        h.update([0u8]);
    }
    h.update(salt.to_le_bytes());
    format!(
        "{}_{}",
        timestamp.format("%Y%m%d_%H%M%S"),
        &hex::encode(h.finalize())[..4]
    )
}

/// The one place the batch-key grammar lives: what the writer names, what a reader, an event
/// filter, a trigger rule or a replay listing takes for a batch file.
///
/// `{source}/chunked/year=YYYY/month=MM/day=DD/batch_{batch_id}.json[.gz]`, partitioned by the
/// batch's write date so that replays can list a date range cheaply.
pub fn batch_key(
    source: &str,
    timestamp: DateTime<Utc>,
    batch_id: &str,
    compression: Compression,
) -> String {
    format!(
        "{}batch_{batch_id}{}",
        day_prefix(source, timestamp.date_naive()),
        compression.extension()
    )
}

/// Every batch of a source lies under this prefix: `{source}/chunked/`.
pub fn source_prefix(source: &str) -> String {
    format!("{source}/chunked/")
}

/// The batches a source wrote on one day (UTC): `{source}/chunked/year=YYYY/month=MM/day=DD/`.
pub fn day_prefix(source: &str, day: NaiveDate) -> String {
    format!(
        "{}year={:04}/month={:02}/day={:02}/",
        source_prefix(source),
        day.year(),
        day.month(),
        day.day()
    )
}

/// The suffixes a batch file ends in, one per [`Compression`].
pub const BATCH_SUFFIXES: [Compression; 2] = [Compression::None, Compression::Gzip];

/// The source a batch file belongs to, for any object kass may take for a batch: under
/// `{source}/chunked/` (one path segment of source) and ending in `.json` or `.json.gz`. Looser
/// than [`parse_batch_key`] on purpose: a producer (the seed's fetcher, an operator's copy) may
/// lay files out below `chunked/` otherwise; the reader checks the rest.
pub fn batch_source(key: &str) -> Option<&str> {
    let (source, rest) = key.split_once("/chunked/")?;
    let is_json = BATCH_SUFFIXES.iter().any(|c| rest.ends_with(c.extension()));
    (!source.is_empty() && !source.contains('/') && !rest.is_empty() && is_json).then_some(source)
}

/// What a batch key says about its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchKeyParts {
    pub source: String,
    pub date: NaiveDate,
    pub batch_id: String,
    pub compression: Compression,
}

/// Parses a key written by [`batch_key`]; `None` for anything else (other files in the bucket).
pub fn parse_batch_key(key: &str) -> Option<BatchKeyParts> {
    let (source, rest) = key.split_once("/chunked/")?;
    if source.is_empty() || source.contains('/') {
        return None;
    }
    let mut parts = rest.split('/');
    let year: i32 = parts.next()?.strip_prefix("year=")?.parse().ok()?;
    let month: u32 = parts.next()?.strip_prefix("month=")?.parse().ok()?;
    let day: u32 = parts.next()?.strip_prefix("day=")?.parse().ok()?;
    let file = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let (stem, compression) = if let Some(stem) = file.strip_suffix(".json.gz") {
        (stem, Compression::Gzip)
    } else {
        (file.strip_suffix(".json")?, Compression::None)
    };
    let batch_id = stem.strip_prefix("batch_")?;
    if batch_id.is_empty() {
        return None;
    }
    Some(BatchKeyParts {
        source: source.to_string(),
        date: NaiveDate::from_ymd_opt(year, month, day)?,
        batch_id: batch_id.to_string(),
        compression,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn key_round_trips_through_parse() {
        let t = Utc.with_ymd_and_hms(2025, 3, 7, 9, 5, 1).unwrap();
        let id = batch_id(t, ["a", "b"], 0);
        assert!(id.starts_with("20250307_090501_") && id.len() == 20, "{id}");
        let key = batch_key("slack", t, &id, Compression::Gzip);
        assert_eq!(
            key,
            format!("slack/chunked/year=2025/month=03/day=07/batch_{id}.json.gz")
        );
        let parts = parse_batch_key(&key).unwrap();
        assert_eq!(parts.source, "slack");
        assert_eq!(parts.date, NaiveDate::from_ymd_opt(2025, 3, 7).unwrap());
        assert_eq!(parts.batch_id, id);
        assert_eq!(parts.compression, Compression::Gzip);
    }

    #[test]
    fn other_keys_are_not_batches() {
        for key in [
            "_dead_letter/x/2025-01-01/a.json",
            "slack/chunked/year=2025/month=01/day=01/batch_x.txt",
            "slack/raw/year=2025/month=01/day=01/batch_x.json",
            "a/b/chunked/year=2025/month=01/day=01/batch_x.json",
            "slack/chunked/year=2025/month=13/day=01/batch_x.json",
        ] {
            assert_eq!(parse_batch_key(key), None, "{key}");
        }
    }

    #[test]
    fn prefixes_and_sources_follow_the_key() {
        let t = Utc.with_ymd_and_hms(2025, 3, 7, 9, 5, 1).unwrap();
        let key = batch_key("slack", t, "x", Compression::None);
        assert!(key.starts_with(&day_prefix("slack", t.date_naive())));
        assert!(key.starts_with(&source_prefix("slack")));
        assert_eq!(batch_source(&key), Some("slack"));
        assert_eq!(
            batch_source("gitlab/chunked/x/batch_2.json.gz"),
            Some("gitlab")
        );
        for other in [
            "slack/raw/b.json",
            "a/b/chunked/x.json",
            "/chunked/x.json",
            "s/chunked/x.txt",
        ] {
            assert_eq!(batch_source(other), None, "{other}");
        }
    }

    #[test]
    fn salt_changes_the_id() {
        let t = Utc.with_ymd_and_hms(2025, 3, 7, 9, 5, 1).unwrap();
        assert_ne!(batch_id(t, ["a"], 0), batch_id(t, ["a"], 1));
        assert_eq!(batch_id(t, ["a"], 0), batch_id(t, ["a"], 0));
    }
}
