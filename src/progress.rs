//! A progress line on stderr for long runs, shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use kass_pipeline::batch::BatchRef;

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn start() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {pos} {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Self { bar }
    }

    pub fn batch_written(&self, batch: &BatchRef) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!(
                "batch files; last {} ({} chunks)",
                batch.key, batch.chunk_count
            ));
        }
    }

    pub fn chunk_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message("chunks");
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
