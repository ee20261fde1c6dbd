//! Reading nothing where the export promised data, said aloud.
//!
//! An export whose folders cannot be followed, or that lists channels without holding their
//! day files, would otherwise end in a quiet "0 batch files". Each such case is one
//! [`Shortfall`]: a warning naming the path, counted in
//! `kass_source_warnings_total{source, reason}`.

use std::path::Path;

use chrono::NaiveDate;
use kass_pipeline::telemetry;

/// One way the export held less than its listings (or the configuration) promised.
#[derive(Debug)]
pub(super) enum Shortfall<'a> {
    /// An entry of the export root that cannot be followed: a broken link, a link loop.
    UnreadableEntry {
        path: &'a Path,
        error: &'a std::io::Error,
    },
    /// A channel named in the source's `channels` that has no folder.
    SelectedChannelMissing { root: &'a Path, channel: &'a str },
    /// Conversations the listings name (`channels.json`, ...) that have no folder. Exports of
    /// a date range leave out quiet channels, so this is one line for all of them.
    ListedChannelsMissing {
        root: &'a Path,
        folders: &'a [&'a str],
    },
    /// A channel folder holding no day file at all.
    EmptyFolder { path: &'a Path },
    /// Conversations were listed or folders found, yet no day file was read.
    NothingRead {
        root: &'a Path,
        since: Option<NaiveDate>,
        until: Option<NaiveDate>,
    },
}

/// Folder names a warning shows before it says "and N more".
const NAMES_SHOWN: usize = 10;

impl Shortfall<'_> {
    /// The `reason` label of its count.
    pub fn reason(&self) -> &'static str {
        match self {
            Shortfall::UnreadableEntry { .. } => "unreadable_entry",
            Shortfall::SelectedChannelMissing { .. } => "selected_channel_missing",
            Shortfall::ListedChannelsMissing { .. } => "listed_channel_missing",
            Shortfall::EmptyFolder { .. } => "empty_channel_folder",
            Shortfall::NothingRead { .. } => "no_day_files",
        }
    }

    /// Logs the warning and counts it (a missing listed channel counts once per channel).
    pub fn emit(&self, source: &str) {
        let count = match self {
            Shortfall::ListedChannelsMissing { folders, .. } => folders.len(),
            _ => 1,
        };
        if count == 0 {
            return;
        }
        telemetry::source_warnings(source, self.reason(), count);
        tracing::warn!(source, reason = self.reason(), "{}", self.message());
    }

    fn message(&self) -> String {
        match self {
            Shortfall::UnreadableEntry { path, error } => {
                format!("cannot follow {}: {error}; skipped", path.display())
            }
            Shortfall::SelectedChannelMissing { root, channel } => format!(
                "channel `{channel}` listed in `channels` has no folder in {}",
                root.display()
            ),
            Shortfall::ListedChannelsMissing { root, folders } => {
                let shown = folders[..folders.len().min(NAMES_SHOWN)].join(", ");
                let more = folders.len().saturating_sub(NAMES_SHOWN);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                let (count, verb) = match folders.len() {
                    1 => ("1 conversation".to_string(), "has"),
                    n => (format!("{n} conversations"), "have"),
                };
                format!(
                    "{count} listed in the export {verb} no folder in {}: {shown}{more}",
                    root.display()
                )
            }
            Shortfall::EmptyFolder { path } => {
                format!(
                    "channel folder {} holds no day file (YYYY-MM-DD.json)",
                    path.display()
                )
            }
            Shortfall::NothingRead { root, since, until } => {
                let range = match (since, until) {
                    (None, None) => String::new(),
                    (since, until) => format!(
                        " between {} and {}",
                        since.map_or("the start".to_string(), |d| d.to_string()),
                        until.map_or("the end".to_string(), |d| d.to_string())
                    ),
                };
                format!(
                    "no day file was read{range} from {}, although it lists conversations or holds folders",
                    root.display()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_channels_missing_names_the_first_ten_and_counts_the_rest() {
        let names: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
        let folders: Vec<&str> = names.iter().map(String::as_str).collect();
        let message = Shortfall::ListedChannelsMissing {
            root: Path::new("/export"),
            folders: &folders,
        }
        .message();
        assert_eq!(
            message,
            "12 conversations listed in the export have no folder in /export: \
             c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 and 2 more"
        );
        let one = Shortfall::ListedChannelsMissing {
            root: Path::new("/export"),
            folders: &["design"],
        }
        .message();
        assert_eq!(
            one,
            "1 conversation listed in the export has no folder in /export: design"
        );
    }

    #[test]
    fn nothing_read_names_the_date_range_when_there_is_one() {
        let message = |since, until| {
            Shortfall::NothingRead {
                root: Path::new("/export"),
                since,
                until,
            }
            .message()
        };
        assert!(message(None, None).starts_with("no day file was read from /export"));
        assert!(message(NaiveDate::from_ymd_opt(2024, 1, 2), None)
            .starts_with("no day file was read between 2024-01-02 and the end from /export"));
    }
}
