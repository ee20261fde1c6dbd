//! Progress of a long run, for a person. On a terminal, one line redrawn five times a second:
//! elapsed time, work known in advance as a fraction with an estimate of the time left
//! (`slack: channels 12/40 ETA 1m05s`), and each stage's items with their rate. Elsewhere (a
//! log file, a CI job, a container) the same as one `progress` log line per interval
//! (`KASS_PROGRESS_INTERVAL_SECS`, default 30), JSON with `--log-format json`. At the end, a
//! summary table of what the run did: read, dropped by reason, chunks and batch files,
//! embedded, skipped, deleted, dead-lettered, time per stage.
//!
//! Everything shown comes from the run's tally (`kass_pipeline::tally`), fed where the metrics
//! are, so the display and Prometheus never disagree.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use kass_pipeline::batch::BatchRef;
use kass_pipeline::tally::{self, Snapshot};

use kass::logging::{log_format, LogFormat};

/// Seconds between progress lines when stderr is not a terminal
/// (`KASS_PROGRESS_INTERVAL_SECS`, default 30; fractions allowed).
const INTERVAL_VAR: &str = "KASS_PROGRESS_INTERVAL_SECS";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// How often the terminal line is redrawn.
const REDRAW: Duration = Duration::from_millis(200);

pub struct Progress {
    bar: Option<ProgressBar>,
    done: Arc<AtomicU64>,
    ticker: tokio::task::JoinHandle<()>,
    started: Instant,
    unit: &'static str,
}

impl Progress {
    /// Starts the display; `unit` names what the run's headline count is (`batch files`,
    /// `chunks stored`).
    pub fn start(unit: &'static str) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            let ticker = tokio::spawn(redraw(bar.clone(), started));
            return Self {
                bar: Some(bar),
                done,
                ticker,
                started,
                unit,
            };
        }
        let ticker = tokio::spawn(log_lines(done.clone(), unit, interval(), started));
        Self {
            bar: None,
            done,
            ticker,
            started,
            unit,
        }
    }

    pub fn batch_written(&self, _batch: &BatchRef) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn chunk_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops the display and prints the summary (a table on stderr, or one JSON log event).
    pub fn finish(&self) {
        self.ticker.abort();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let summary = Summary::of(&tally::snapshot(), self.started.elapsed());
        match log_format() {
            LogFormat::Json => summary.log(self.unit),
            LogFormat::Text => eprint!("{}", summary.table()),
        }
    }
}

fn interval() -> Duration {
    std::env::var(INTERVAL_VAR)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_INTERVAL, Duration::from_secs_f64)
}

/// The terminal line, redrawn until the run ends.
async fn redraw(bar: ProgressBar, started: Instant) {
    let mut rates = Rates::default();
    let mut ticker = tokio::time::interval(REDRAW);
    loop {
        ticker.tick().await;
        bar.tick();
        let snapshot = tally::snapshot();
        let stages = rates.stages(&snapshot);
        let mut parts = vec![format!("{:.0?}", started.elapsed())];
        parts.extend(known_work(&snapshot, started.elapsed()));
        if !stages.is_empty() {
            parts.push(stages);
        }
        bar.set_message(parts.join(" | "));
    }
}

/// One line per interval: the headline count and its rates, the known work with its
/// estimate, each stage's items.
async fn log_lines(done: Arc<AtomicU64>, unit: &'static str, every: Duration, started: Instant) {
    let mut last = 0;
    let mut rates = Rates::default();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticker.tick().await;
        let now = done.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        let snapshot = tally::snapshot();
        tracing::info!(
            done = now,
            unit,
            per_second = format!("{:.1}", (now - last) as f64 / every.as_secs_f64()),
            overall_per_second = format!("{:.1}", now as f64 / elapsed.max(1e-9)),
            elapsed_s = format!("{elapsed:.0}"),
            known = known_work(&snapshot, started.elapsed()).join("; "),
            stages = rates.stages(&snapshot),
            "progress"
        );
        last = now;
    }
}

/// Each entry of work known in advance: `slack: channels 12/40 (30%) ETA 1m05s`.
fn known_work(snapshot: &Snapshot, elapsed: Duration) -> Vec<String> {
    snapshot
        .progress
        .iter()
        .filter(|(_, (_, total))| *total > 0)
        .map(|(what, &(done, total))| {
            let share = done as f64 / total as f64;
            let eta = (done > 0 && done < total)
                .then(|| elapsed.mul_f64((total - done) as f64 / done as f64))
                .map(|left| format!(" ETA {}", short(left)))
                .unwrap_or_default();
            format!("{what} {done}/{total} ({:.0}%){eta}", share * 100.0)
        })
        .collect()
}

/// Items each stage sent, with the rate since the previous look.
#[derive(Default)]
struct Rates {
    last: Option<(Instant, Snapshot)>,
}

impl Rates {
    fn stages(&mut self, snapshot: &Snapshot) -> String {
        let now = Instant::now();
        let parts: Vec<String> = snapshot
            .counts_under("sent:")
            .into_iter()
            .map(|(stage, count)| {
                let rate = self.last.as_ref().map(|(at, before)| {
                    let seconds = now.duration_since(*at).as_secs_f64().max(1e-9);
                    (count - before.count(&format!("sent:{stage}"))) as f64 / seconds
                });
                match rate {
                    Some(rate) if rate >= 0.05 => format!("{stage} {count} ({rate:.0}/s)"),
                    _ => format!("{stage} {count}"),
                }
            })
            .collect();
        self.last = Some((now, snapshot.clone()));
        parts.join(" · ")
    }
}

/// `1h02m`, `3m05s`, `12s`.
fn short(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// What a run did, from its tally.
#[derive(Debug, PartialEq)]
struct Summary {
    read: u64,
    dropped: Vec<(String, u64)>,
    chunks: u64,
    batches: u64,
    stored: u64,
    skipped: u64,
    deleted: u64,
    dead_letters: Vec<(String, u64)>,
    busy: Vec<(String, Duration)>,
    elapsed: Duration,
}

impl Summary {
    fn of(snapshot: &Snapshot, elapsed: Duration) -> Self {
        // Every source sends into the one `sources` channel.
        let read = snapshot.count("sent:sources");
        let list = |prefix: &str| -> Vec<(String, u64)> {
            snapshot
                .counts_under(prefix)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        };
        Self {
            read,
            dropped: list("dropped:"),
            chunks: snapshot
                .count("batch_chunks")
                .max(snapshot.count("sent:batch_loader")),
            batches: snapshot.count("batches"),
            stored: snapshot.count("stored"),
            skipped: snapshot.count("skipped"),
            deleted: snapshot.count("deleted"),
            dead_letters: list("dead_letters:"),
            busy: snapshot
                .busy
                .iter()
                .map(|(stage, time)| (stage.clone(), *time))
                .collect(),
            elapsed,
        }
    }

    fn listed(items: &[(String, u64)]) -> String {
        if items.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = items.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!("  ({})", parts.join(", "))
    }

    /// The table printed on stderr.
    fn table(&self) -> String {
        let dead: u64 = self.dead_letters.iter().map(|(_, v)| v).sum();
        let dropped: u64 = self.dropped.iter().map(|(_, v)| v).sum();
        let busy: Vec<String> = self
            .busy
            .iter()
            .map(|(stage, time)| format!("{stage} {:.1}s", time.as_secs_f64()))
            .collect();
        let rows = [
            ("read", format!("{} records", self.read)),
            (
                "dropped",
                format!("{dropped}{}", Self::listed(&self.dropped)),
            ),
            (
                "chunks",
                format!("{} in {} batch files", self.chunks, self.batches),
            ),
            ("embedded", format!("{} stored", self.stored)),
            ("skipped", format!("{} already stored", self.skipped)),
            ("deleted", format!("{} (replaced or gone)", self.deleted)),
            (
                "dead letters",
                format!("{dead}{}", Self::listed(&self.dead_letters)),
            ),
            ("time per stage", busy.join(", ")),
            ("elapsed", format!("{:.1}s", self.elapsed.as_secs_f64())),
        ];
        let mut out = String::from("summary\n");
        for (name, value) in rows {
            out.push_str(&format!("  {name:<15}{value}\n"));
        }
        out
    }

    /// The same as one log event (JSON with `--log-format json`).
    fn log(&self, unit: &str) {
        let render = |items: &[(String, u64)]| {
            items
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let busy: Vec<String> = self
            .busy
            .iter()
            .map(|(stage, time)| format!("{stage}={:.3}", time.as_secs_f64()))
            .collect();
        tracing::info!(
            unit,
            read = self.read,
            dropped = render(&self.dropped),
            chunks = self.chunks,
            batches = self.batches,
            stored = self.stored,
            skipped = self.skipped,
            deleted = self.deleted,
            dead_letters = render(&self.dead_letters),
            busy_seconds = busy.join(","),
            elapsed_s = format!("{:.1}", self.elapsed.as_secs_f64()),
            "summary"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_work_shows_a_fraction_and_the_time_left() {
        let mut snapshot = Snapshot::default();
        snapshot.progress.insert("slack: channels".into(), (10, 40));
        let shown = known_work(&snapshot, Duration::from_secs(20));
        assert_eq!(shown, ["slack: channels 10/40 (25%) ETA 1m00s"]);
    }

    #[test]
    fn the_summary_table_names_every_outcome() {
        let mut snapshot = Snapshot::default();
        for (k, v) in [
            ("sent:sources", 12),
            ("dropped:channel_join", 3),
            ("batch_chunks", 20),
            ("batches", 2),
            ("stored", 18),
            ("skipped", 1),
            ("dead_letters:embed", 1),
        ] {
            snapshot.counts.insert(k.into(), v);
        }
        snapshot
            .busy
            .insert("embed".into(), Duration::from_millis(1500));
        let table = Summary::of(&snapshot, Duration::from_secs(3)).table();
        assert!(table.contains("read           12 records"), "{table}");
        assert!(
            table.contains("dropped        3  (channel_join 3)"),
            "{table}"
        );
        assert!(
            table.contains("chunks         20 in 2 batch files"),
            "{table}"
        );
        assert!(table.contains("dead letters   1  (embed 1)"), "{table}");
        assert!(table.contains("embed 1.5s"), "{table}");
        assert_eq!(short(Duration::from_secs(3725)), "1h02m");
    }
}
