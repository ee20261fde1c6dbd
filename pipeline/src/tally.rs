//! The run's own totals, in the process, for the person watching it: what the progress display
//! and the final summary show. The metrics facade has them too, but only when a recorder is
//! installed (`--metrics-addr`), and it cannot be read back; the tally always can.
//!
//! It is fed where the metrics are (`telemetry`, the stage runner), so every count the summary
//! shows is the one Prometheus would show. Totals known in advance (files, channels, batch keys
//! after listing) are announced with [`expect`] and advanced with [`advance`], which gives the
//! display a fraction and an estimate of the time left.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// What [`snapshot`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Named counts: `sent:{stage}`, `dropped:{reason}`, `stored`, `skipped`, `deleted`,
    /// `dead_letters:{stage}`, `batches`, `batch_chunks`.
    pub counts: BTreeMap<String, u64>,
    /// Busy time per stage (as `kass_stage_processing_seconds` sums it).
    pub busy: BTreeMap<String, Duration>,
    /// Work known in advance: what -> (done, total).
    pub progress: BTreeMap<String, (u64, u64)>,
}

impl Snapshot {
    pub fn count(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// Every count whose key starts with `prefix`, by the rest of the key.
    pub fn counts_under(&self, prefix: &str) -> BTreeMap<&str, u64> {
        self.counts
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest, *v)))
            .collect()
    }
}

/// The counts as kept: by group (`sent`, `stored`), then name (a stage, a reason; empty for a
/// plain count), so that counting an item allocates nothing once its name was seen: the
/// runner counts every item of every stage here.
#[derive(Default)]
struct Tally {
    counts: HashMap<&'static str, HashMap<String, u64>>,
    busy: HashMap<String, Duration>,
    progress: BTreeMap<String, (u64, u64)>,
}

static TALLY: Mutex<Option<Tally>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Tally) -> R) -> R {
    f(TALLY
        .lock()
        .expect("tally lock")
        .get_or_insert_with(Tally::default))
}

/// Adds `n` to the plain count `key` (`stored`, `batches`).
pub fn add(key: &'static str, n: u64) {
    add_in(key, "", n);
}

/// Adds `n` to the count `group:name` (`sent:embed`, `dropped:channel_join`).
pub fn add_in(group: &'static str, name: &str, n: u64) {
    with(|t| {
        let names = t.counts.entry(group).or_default();
        match names.get_mut(name) {
            Some(count) => *count += n,
            None => {
                names.insert(name.to_string(), n);
            }
        }
    });
}

/// Adds busy time to `stage`.
pub fn busy(stage: &str, time: Duration) {
    with(|t| match t.busy.get_mut(stage) {
        Some(total) => *total += time,
        None => {
            t.busy.insert(stage.to_string(), time);
        }
    });
}

/// Announces `total` units of `what` (`slack: channels`): the display shows a fraction and
/// an estimate. Announcing again adds to the total.
pub fn expect(what: &str, total: u64) {
    with(|t| t.progress.entry(what.to_string()).or_default().1 += total);
}

/// `n` units of `what` done.
pub fn advance(what: &str, n: u64) {
    with(|t| t.progress.entry(what.to_string()).or_default().0 += n);
}

/// Everything counted so far.
pub fn snapshot() -> Snapshot {
    with(|t| Snapshot {
        counts: t
            .counts
            .iter()
            .flat_map(|(group, names)| {
                names.iter().map(move |(name, count)| {
                    let key = if name.is_empty() {
                        group.to_string()
                    } else {
                        format!("{group}:{name}")
                    };
                    (key, *count)
                })
            })
            .collect(),
        busy: t.busy.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        progress: t.progress.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_busy_time_and_progress_add_up() {
        add_in("tally-test", "a", 2);
        add_in("tally-test", "a", 3);
        add("tally-test-plain", 1);
        busy("tally-test-stage", Duration::from_millis(5));
        expect("tally-test: files", 10);
        advance("tally-test: files", 4);
        let s = snapshot();
        assert_eq!(s.count("tally-test:a"), 5);
        assert_eq!(s.counts_under("tally-test:")["a"], 5);
        assert_eq!(s.count("tally-test-plain"), 1);
        assert_eq!(s.busy["tally-test-stage"], Duration::from_millis(5));
        assert_eq!(s.progress["tally-test: files"], (4, 10));
    }
}
