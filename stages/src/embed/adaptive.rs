//! Adaptive pacing of one worker's requests, after Vector's adaptive request concurrency: the
//! worker's request rate rises additively while the provider answers fast and with 2xx, and
//! falls multiplicatively (x0.9) on a 429, a 503 or a round trip clearly slower than usual.
//! Several workers sharing one account (or a budget nobody knows exactly) converge on their
//! share that way, the way TCP flows share a link, instead of each living on 429s.
//!
//! The rate never goes above the configured share (`requests_per_minute / workers`): that keeps
//! the documented bound (see [`super::rate_limit`]) whatever the answers. It never goes below
//! a twentieth of it, so a worker keeps probing.
//!
//! Without a configured request rate (`requests_per_minute = 0`, or a provider with no documented
//! default; leaving the line out keeps the default, e.g. OpenAI's 100, as the ceiling) the pacer
//! lets every request through until the first back-pressure; then it starts pacing at the
//! requests the provider accepted from this worker over the last window (x0.9), the limit it
//! just showed, and adapts from there with no ceiling. If nothing was accepted in the last window
//! (a provider that is down, not full) it stays unpaced: retries and Retry-After handle that.
//! What this learning buys is fewer refused requests, not speed: three workers under a strict
//! limit of 12 per window got about the same share of it with and without (0.885 and 0.86), but
//! 3 % of the later half's requests were answered 429 with it and 47 % without, where only the
//! 429s' Retry-After held them back (`benches/adaptive_pacing.rs`, docs/scaling.md).
//!
//! `KASS_ADAPTIVE_LEARNING=off` (read once per pacer, in [`AdaptivePacer::new`], and nowhere
//! else) switches that learning off: without a configured request rate the pacer then never
//! paces, and only the 429s' Retry-After pauses hold a worker back (the behaviour before the
//! learning). It is a diagnostic and benchmark switch, to compare the two on the same build
//! (`benches/adaptive_pacing.rs --learning both`), not a setting: it changes nothing when a
//! request rate is configured.
//!
//! The increase is additive (one more request per window for every window of good answers)
//! while the rate is at least 100 per window, and 1 % per window below that: with a small
//! limit shared by several workers, one more request per window per worker would be back over
//! the limit within a window or two of each decrease, and the workers would live on 429s
//! (measured: `benches/adaptive_pacing.rs`, docs/scaling.md).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What one answer tells the pacer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// 2xx.
    Ok,
    /// 429 or 503: the provider asks for less.
    Overloaded,
    /// Anything else (a 400, a network error): says nothing about load.
    Neutral,
}

/// Multiplicative decrease on back-pressure, as Vector's `decrease_ratio`.
const DECREASE: f64 = 0.9;
/// Lowest rate, as a share of the ceiling.
const FLOOR: f64 = 0.05;
/// A round trip this many times the moving mean (and 100 ms above it) counts as rising latency.
const SLOW: f64 = 2.0;
/// Weight of a new round trip in the moving mean.
const EWMA: f64 = 0.2;
/// Growth per window of good answers below 100 requests per window (at and above: +1).
const GROWTH: f64 = 0.01;
/// Diagnostic and benchmark switch: `off` disables learning an unknown limit from the first
/// back-pressure (see the module's doc).
pub const LEARNING_ENV: &str = "KASS_ADAPTIVE_LEARNING";

/// Whether the no-rate learning is on: unless [`LEARNING_ENV`] says `off` (the one place the
/// variable is read).
fn learning_from_env() -> bool {
    !std::env::var(LEARNING_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"))
}

#[derive(Debug)]
struct State {
    /// Requests per window allowed now.
    rate: f64,
    /// Whether requests are paced (always with a ceiling; after the first back-pressure
    /// without one).
    paced: bool,
    /// The lowest rate.
    floor: f64,
    /// Good answers in the last window (without a ceiling, until paced): the limit a first
    /// 429 reveals.
    ok: VecDeque<Instant>,
    /// When the next request may go.
    next: Instant,
    /// Moving mean of successful round trips, seconds.
    rtt: Option<f64>,
    /// No second decrease before this: one episode of back-pressure (the answers to requests
    /// already in flight) is one decrease.
    calm_until: Instant,
}

/// Paces requests at an adaptive rate between `ceiling * FLOOR` and `ceiling` per window, or
/// without a ceiling from the first back-pressure on.
#[derive(Debug)]
pub struct AdaptivePacer {
    ceiling: Option<f64>,
    window: Duration,
    /// Without a ceiling: whether the first back-pressure starts pacing (see the module's doc).
    learning: bool,
    state: Mutex<State>,
}

impl AdaptivePacer {
    /// `ceiling`: this worker's share of the request budget per `window` (`None`: unknown).
    /// Learns an unknown limit unless `KASS_ADAPTIVE_LEARNING=off`.
    pub fn new(ceiling: Option<f64>, window: Duration) -> Self {
        Self::with_learning(ceiling, window, learning_from_env())
    }

    /// As [`Self::new`], with the no-rate learning on or off whatever the environment.
    pub fn with_learning(ceiling: Option<f64>, window: Duration, learning: bool) -> Self {
        let now = Instant::now();
        Self {
            ceiling: ceiling.filter(|c| *c > 0.0),
            window,
            learning,
            state: Mutex::new(State {
                rate: ceiling.unwrap_or(0.0),
                paced: ceiling.is_some_and(|c| c > 0.0),
                floor: ceiling.unwrap_or(0.0) * FLOOR,
                ok: VecDeque::new(),
                next: now,
                rtt: None,
                calm_until: now,
            }),
        }
    }

    /// Requests per window allowed now (`None`: not paced).
    pub fn rate(&self) -> Option<f64> {
        let state = self.state.lock().expect("not poisoned");
        state.paced.then_some(state.rate)
    }

    /// Waits for this worker's next slot at the current rate.
    pub async fn acquire(&self) {
        let slot = {
            let mut state = self.state.lock().expect("not poisoned");
            if !state.paced {
                return;
            }
            let now = Instant::now();
            let slot = state.next.max(now);
            state.next = slot + self.window.div_f64(state.rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Adjusts the rate to one answer and its round trip.
    pub fn observe(&self, signal: Signal, rtt: Duration) {
        let ceiling = self.ceiling.unwrap_or(f64::INFINITY);
        let mut state = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        if !state.paced {
            // No ceiling: count good answers until the provider shows its limit.
            while state
                .ok
                .front()
                .is_some_and(|at| now.duration_since(*at) >= self.window)
            {
                state.ok.pop_front();
            }
            match signal {
                Signal::Ok => state.ok.push_back(now),
                Signal::Overloaded if self.learning && !state.ok.is_empty() => {
                    let accepted = state.ok.len() as f64;
                    state.ok.clear();
                    state.paced = true;
                    state.rate = accepted * DECREASE;
                    state.floor = state.rate * FLOOR;
                    state.next = now;
                    let interval = self.window.div_f64(state.rate);
                    state.calm_until = now + interval.max(rtt);
                }
                _ => {}
            }
            return;
        }
        let rtt = rtt.as_secs_f64();
        let slow = match (signal, state.rtt) {
            (Signal::Ok, Some(mean)) => rtt > mean * SLOW && rtt - mean > 0.1,
            _ => false,
        };
        if signal == Signal::Overloaded || slow {
            if now >= state.calm_until {
                state.rate = (state.rate * DECREASE).max(state.floor);
                // Until the requests sent at the old rate have been answered.
                let interval = self.window.div_f64(state.rate);
                state.calm_until = now + interval.max(Duration::from_secs_f64(rtt));
            }
        } else if signal == Signal::Ok {
            // One more request (1 % below 100) per window for every window of good answers.
            let step = (state.rate * GROWTH).min(1.0);
            state.rate = (state.rate + step / state.rate.max(1e-9)).min(ceiling);
        }
        if signal == Signal::Ok {
            state.rtt = Some(match state.rtt {
                Some(mean) if !slow => mean + EWMA * (rtt - mean),
                Some(mean) => mean,
                None => rtt,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn back_pressure_cuts_the_rate_once_per_episode_and_good_answers_restore_it() {
        let pacer = AdaptivePacer::new(Some(10.0), Duration::from_millis(100));
        let ms = Duration::from_millis;
        pacer.observe(Signal::Overloaded, ms(1));
        pacer.observe(Signal::Overloaded, ms(1));
        assert!((pacer.rate().unwrap() - 9.0).abs() < 1e-9, "one decrease");
        tokio::time::sleep(ms(20)).await;
        pacer.observe(Signal::Overloaded, ms(1));
        assert!((pacer.rate().unwrap() - 8.1).abs() < 1e-9);
        // 1 % per window of good answers below 100 per window: 0.01 per answer.
        for _ in 0..100 {
            pacer.observe(Signal::Ok, ms(1));
        }
        assert!(
            (pacer.rate().unwrap() - 9.1).abs() < 1e-6,
            "{:?}",
            pacer.rate()
        );
        for _ in 0..100 {
            pacer.observe(Signal::Ok, ms(1));
        }
        assert_eq!(pacer.rate(), Some(10.0), "back to the ceiling, never above");
        pacer.observe(Signal::Neutral, ms(1));
        assert_eq!(pacer.rate(), Some(10.0));
    }

    #[tokio::test]
    async fn large_rates_grow_by_one_request_per_window() {
        let pacer = AdaptivePacer::new(Some(1000.0), Duration::from_millis(100));
        pacer.observe(Signal::Overloaded, Duration::from_millis(1));
        assert!((pacer.rate().unwrap() - 900.0).abs() < 1e-9);
        for _ in 0..900 {
            pacer.observe(Signal::Ok, Duration::from_millis(1));
        }
        let rate = pacer.rate().unwrap();
        assert!((rate - 901.0).abs() < 0.01, "{rate}");
    }

    #[tokio::test]
    async fn without_a_ceiling_the_first_429_sets_the_rate_to_what_was_accepted() {
        let ms = Duration::from_millis;
        let pacer = AdaptivePacer::with_learning(None, Duration::from_millis(600), true);
        // A provider that is down (503s, nothing accepted) is not a limit: still unpaced.
        pacer.observe(Signal::Overloaded, ms(1));
        assert_eq!(pacer.rate(), None);
        for _ in 0..20 {
            pacer.observe(Signal::Ok, ms(1));
        }
        assert_eq!(pacer.rate(), None, "unpaced until back-pressure");
        pacer.observe(Signal::Overloaded, ms(1));
        assert!(
            (pacer.rate().unwrap() - 18.0).abs() < 1e-9,
            "{:?}",
            pacer.rate()
        );
        // No ceiling: good answers raise it past what was accepted.
        for _ in 0..300 {
            pacer.observe(Signal::Ok, ms(1));
        }
        assert!(pacer.rate().unwrap() > 20.0, "{:?}", pacer.rate());
        // And it paces: at ~21 per 600 ms, three requests take two intervals (~57 ms).
        let started = Instant::now();
        for _ in 0..3 {
            pacer.acquire().await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    }

    #[tokio::test]
    async fn with_the_learning_off_a_429_leaves_an_unknown_limit_unpaced() {
        let ms = Duration::from_millis;
        let pacer = AdaptivePacer::with_learning(None, Duration::from_millis(600), false);
        for _ in 0..20 {
            pacer.observe(Signal::Ok, ms(1));
        }
        pacer.observe(Signal::Overloaded, ms(1));
        assert_eq!(pacer.rate(), None, "Retry-After alone holds it back");
        // A configured rate is paced and adapted either way.
        let paced = AdaptivePacer::with_learning(Some(10.0), ms(100), false);
        paced.observe(Signal::Overloaded, ms(1));
        assert!((paced.rate().unwrap() - 9.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn a_round_trip_far_above_the_mean_counts_as_back_pressure() {
        let pacer = AdaptivePacer::new(Some(10.0), Duration::from_millis(100));
        for _ in 0..5 {
            pacer.observe(Signal::Ok, Duration::from_millis(20));
        }
        pacer.observe(Signal::Ok, Duration::from_millis(60));
        assert_eq!(pacer.rate(), Some(10.0), "jitter is not back-pressure");
        pacer.observe(Signal::Ok, Duration::from_millis(400));
        assert!(pacer.rate().unwrap() < 10.0);
    }

    #[tokio::test]
    async fn requests_are_spaced_at_the_current_rate() {
        let pacer = AdaptivePacer::new(Some(20.0), Duration::from_millis(200));
        let started = Instant::now();
        for _ in 0..5 {
            pacer.acquire().await;
        }
        // First at once, then one per 10 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(38), "{elapsed:?}");
        let unknown = AdaptivePacer::new(None, Duration::from_secs(1));
        assert!(unknown.rate().is_none());
        let started = Instant::now();
        for _ in 0..5 {
            unknown.acquire().await;
        }
        assert!(started.elapsed() < Duration::from_millis(30), "unpaced");
    }
}
