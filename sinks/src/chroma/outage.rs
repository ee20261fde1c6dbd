//! Waiting out a Chroma outage. Chunks embedded while Chroma is down cannot be stored, and a
//! redelivery would pay for them again, so both Chroma stages hold their work and ask again
//! with a growing pause, for at most `[chroma] outage_hold_secs`; past that, or on shutdown,
//! the caller gets the outage error and dead-letters its items as `chroma_unavailable`.

use std::future::Future;
use std::time::{Duration, Instant};

use kass_pipeline::telemetry::ChromaOutageHeld;
use kass_pipeline::StageContext;

use super::target::ChromaTarget;
use super::ChromaError;

/// Longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(15);

/// Runs `call` until it gives anything but [`ChromaError::Unavailable`], or the hold is over.
pub async fn hold<T, F, Fut>(
    target: &ChromaTarget,
    ctx: &StageContext,
    mut call: F,
) -> Result<T, ChromaError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ChromaError>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        let error = match call().await {
            Err(e @ ChromaError::Unavailable { .. }) => e,
            other => return other,
        };
        let held = started.elapsed();
        if held >= target.outage_hold || ctx.shutdown.is_triggered() {
            return Err(error);
        }
        ChromaOutageHeld {
            stage: &ctx.stage,
            held,
            pause,
            error: &error,
        }
        .emit();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = ctx.shutdown.requested() => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
