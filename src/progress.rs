//! Progress of a long run, for a person: a spinner line on stderr when it is a terminal, and
//! otherwise (a log file, a CI job, a container) one log line at a steady interval, so a
//! ten-minute run is never silent until its end.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use kass_pipeline::batch::BatchRef;

/// Seconds between progress lines when stderr is not a terminal
/// (`KASS_PROGRESS_INTERVAL_SECS`, default 30; fractions allowed).
const INTERVAL_VAR: &str = "KASS_PROGRESS_INTERVAL_SECS";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

pub struct Progress {
    bar: Option<ProgressBar>,
    done: Arc<AtomicU64>,
    lines: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts the display; `unit` names what is counted (`batch files`, `chunks`).
    pub fn start(unit: &'static str) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {pos} {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            return Self {
                bar: Some(bar),
                done,
                lines: None,
            };
        }
        let lines = tokio::spawn(log_lines(done.clone(), unit, interval()));
        Self {
            bar: None,
            done,
            lines: Some(lines),
        }
    }

    pub fn batch_written(&self, batch: &BatchRef) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!(
                "batch files; last {} ({} chunks)",
                batch.key, batch.chunk_count
            ));
        }
    }

    pub fn chunk_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message("chunks");
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(lines) = &self.lines {
            lines.abort();
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

/// One line per interval: how many so far, the rate over the last interval and overall.
async fn log_lines(done: Arc<AtomicU64>, unit: &'static str, every: Duration) {
    let started = Instant::now();
    let mut last = 0;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticker.tick().await;
        let now = done.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        tracing::info!(
            done = now,
            unit,
            per_second = format!("{:.1}", (now - last) as f64 / every.as_secs_f64()),
            overall_per_second = format!("{:.1}", now as f64 / elapsed.max(1e-9)),
            elapsed_s = format!("{elapsed:.0}"),
            "progress"
        );
        last = now;
    }
}
