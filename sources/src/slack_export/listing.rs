//! What the export holds on disk: its channel folders and their day files.
//!
//! Symbolic links are followed, for folders and day files alike, wherever they point: an export
//! assembled from links (or mounted piecewise) is read like a plain one, and kass only ever
//! reads it. Only the root's direct sub-directories and their direct files are read, never
//! deeper, so a link pointing back up the tree cannot make the source loop; a link that cannot
//! be followed (broken, or a loop of links) is warned about and skipped.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use kass_pipeline::{telemetry, FatalError};

use super::shortfall::Shortfall;
use super::SlackExportConfig;
use crate::cursor::{fingerprint, Fingerprint};

/// Every sub-directory of the export root (links followed), sorted by name.
pub(super) async fn channel_folders(config: &SlackExportConfig) -> Result<Vec<String>, FatalError> {
    let root = &config.path;
    let unreadable =
        |e: std::io::Error| FatalError::Config(format!("cannot list {}: {e}", root.display()));
    let mut entries = tokio::fs::read_dir(root).await.map_err(unreadable)?;
    let mut folders = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(unreadable)? {
        let path = entry.path();
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_dir() => {
                folders.push(entry.file_name().to_string_lossy().into_owned());
            }
            Ok(_) => {}
            Err(error) => Shortfall::UnreadableEntry {
                path: &path,
                error: &error,
            }
            .emit(&config.name),
        }
    }
    folders.sort();
    Ok(folders)
}

/// A channel folder's day files.
#[derive(Debug)]
pub(super) struct DayFiles {
    /// Files named `YYYY-MM-DD.json` within the configured dates, oldest first.
    pub in_range: Vec<(NaiveDate, PathBuf)>,
    /// Files named like a day, in range or not: none means the folder holds no data at all.
    pub total: usize,
}

/// The day files of one channel folder; other files are skipped and counted as dropped.
pub(super) async fn day_files(
    config: &SlackExportConfig,
    folder: &Path,
) -> Result<DayFiles, FatalError> {
    let unreadable =
        |e: std::io::Error| FatalError::Config(format!("cannot list {}: {e}", folder.display()));
    let mut entries = tokio::fs::read_dir(folder).await.map_err(unreadable)?;
    let mut days = DayFiles {
        in_range: Vec::new(),
        total: 0,
    };
    while let Some(entry) = entries.next_entry().await.map_err(unreadable)? {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let day = file_name
            .strip_suffix(".json")
            .and_then(|stem| NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok());
        let Some(day) = day else {
            tracing::debug!(path = %entry.path().display(), "not a day file; skipped");
            telemetry::record_dropped(&config.name, "not_a_day_file");
            continue;
        };
        days.total += 1;
        let in_range = config.since.is_none_or(|since| day >= since)
            && config.until.is_none_or(|until| day <= until);
        if in_range {
            days.in_range.push((day, entry.path()));
        }
    }
    days.in_range.sort();
    Ok(days)
}

/// One fingerprint for a channel folder: a digest of its files' names and fingerprints (of
/// the files links point to, so an edited target counts as a change).
pub(super) async fn folder_fingerprint(folder: &Path) -> Fingerprint {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(folder).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            if let Ok(meta) = tokio::fs::metadata(entry.path()).await {
                files.push(format!(
                    "{}={}",
                    entry.file_name().to_string_lossy(),
                    fingerprint(&meta)
                ));
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in &files {
        h.update(f.as_bytes());
        h.update([0u8]);
    }
    format!("{}:{}", files.len(), hex::encode(&h.finalize()[..16]))
}
