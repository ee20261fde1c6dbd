//! How the runner times stages it cannot see into: a [`StreamStage`](crate::StreamStage) or a
//! [`Source`](crate::Source) runs its own loop, so the runner hands it an inlet and an outlet
//! that share one clock. The clock counts the stage busy except while it waits on them (for an
//! input, for room downstream) and records, each time the stage sends an item, the busy time
//! since its previous send in `kass_stage_processing_seconds{stage}`.
//!
//! Work a stage does in tasks of its own while it waits for input (the embed stage's requests
//! in flight) counts as busy only while the stage is not also waiting on its inlet.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::telemetry;

#[derive(Debug)]
pub(crate) struct StageClock {
    stage: Arc<str>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Busy time not yet recorded.
    busy: Duration,
    /// Start of the current busy stretch (meaningful while `waits == 0`).
    since: Instant,
    /// Waits in progress (a `select!` may wait on the inlet and the outlet at once).
    waits: u32,
}

impl StageClock {
    pub(crate) fn new(stage: &str) -> Arc<Self> {
        Arc::new(Self {
            stage: Arc::from(stage),
            state: Mutex::new(State {
                busy: Duration::ZERO,
                since: Instant::now(),
                waits: 0,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stage waits until the guard is dropped (done or cancelled).
    pub(crate) fn waiting(self: &Arc<Self>) -> Waiting {
        let mut state = self.state();
        if state.waits == 0 {
            let since = state.since;
            state.busy += since.elapsed();
        }
        state.waits += 1;
        Waiting(self.clone())
    }

    /// Records the busy time since the last record, as the time spent on one item.
    pub(crate) fn item_done(&self) {
        let busy = self.take();
        telemetry::processing_time(&self.stage, busy.as_secs_f64());
    }

    /// Records what is left when the stage ends, if it worked since its last item.
    pub(crate) fn finish(&self) {
        let busy = self.take();
        if !busy.is_zero() {
            telemetry::processing_time(&self.stage, busy.as_secs_f64());
        }
    }

    fn take(&self) -> Duration {
        let mut state = self.state();
        let mut busy = std::mem::take(&mut state.busy);
        if state.waits == 0 {
            let now = Instant::now();
            busy += now - state.since;
            state.since = now;
        }
        busy
    }
}

/// A wait on an inlet or outlet in progress; see [`StageClock::waiting`].
pub(crate) struct Waiting(Arc<StageClock>);

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.waits -= 1;
        if state.waits == 0 {
            state.since = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_not_busy_time() {
        let clock = StageClock::new("s");
        std::thread::sleep(Duration::from_millis(20));
        {
            let _outer = clock.waiting();
            let _inner = clock.waiting();
            std::thread::sleep(Duration::from_millis(60));
        }
        let busy = clock.take();
        assert!(busy >= Duration::from_millis(20), "{busy:?}");
        assert!(busy < Duration::from_millis(60), "{busy:?}");
        let _wait = clock.waiting();
        std::thread::sleep(Duration::from_millis(10));
        assert!(clock.take() < Duration::from_millis(5));
    }
}
