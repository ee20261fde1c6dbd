//! Adaptive pacing of one worker's requests, after Vector's adaptive request concurrency: the
//! worker's request rate rises additively while the provider answers fast and with 2xx, and
//! falls multiplicatively (x0.9) on a 429, a 503 or a round trip clearly slower than usual.
//! Several workers sharing one account (or a budget nobody knows exactly) converge on their
//! share that way, the way TCP flows share a link, instead of each living on 429s.
//!
//! The rate never goes above the configured share (`requests_per_minute / workers`): that keeps
//! the documented bound (see [`super::rate_limit`]) whatever the answers. It never goes below
//! a twentieth of it, so a worker keeps probing. Without a configured request rate there is
//! nothing to scale, and the pacer lets every request through (429s still pause the endpoint
//! through Retry-After).

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

#[derive(Debug)]
struct State {
    /// Requests per window allowed now.
    rate: f64,
    /// When the next request may go.
    next: Instant,
    /// Moving mean of successful round trips, seconds.
    rtt: Option<f64>,
    /// No second decrease before this: one episode of back-pressure (the answers to requests
    /// already in flight) is one decrease.
    calm_until: Instant,
}

/// Paces requests at an adaptive rate between `ceiling * FLOOR` and `ceiling` per window.
#[derive(Debug)]
pub struct AdaptivePacer {
    ceiling: Option<f64>,
    window: Duration,
    state: Mutex<State>,
}

impl AdaptivePacer {
    /// `ceiling`: this worker's share of the request budget per `window` (`None`: unlimited).
    pub fn new(ceiling: Option<f64>, window: Duration) -> Self {
        let now = Instant::now();
        Self {
            ceiling: ceiling.filter(|c| *c > 0.0),
            window,
            state: Mutex::new(State {
                rate: ceiling.unwrap_or(0.0),
                next: now,
                rtt: None,
                calm_until: now,
            }),
        }
    }

    /// Requests per window allowed now (`None`: not paced).
    pub fn rate(&self) -> Option<f64> {
        self.ceiling
            .map(|_| self.state.lock().expect("not poisoned").rate)
    }

    /// Waits for this worker's next slot at the current rate.
    pub async fn acquire(&self) {
        if self.ceiling.is_none() {
            return;
        }
        let slot = {
            let mut state = self.state.lock().expect("not poisoned");
            let now = Instant::now();
            let slot = state.next.max(now);
            state.next = slot + self.window.div_f64(state.rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Adjusts the rate to one answer and its round trip.
    pub fn observe(&self, signal: Signal, rtt: Duration) {
        let Some(ceiling) = self.ceiling else {
            return;
        };
        let mut state = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        let rtt = rtt.as_secs_f64();
        let slow = match (signal, state.rtt) {
            (Signal::Ok, Some(mean)) => rtt > mean * SLOW && rtt - mean > 0.1,
            _ => false,
        };
        if signal == Signal::Overloaded || slow {
            if now >= state.calm_until {
                state.rate = (state.rate * DECREASE).max(ceiling * FLOOR);
                // Until the requests sent at the old rate have been answered.
                let interval = self.window.div_f64(state.rate);
                state.calm_until = now + interval.max(Duration::from_secs_f64(rtt));
            }
        } else if signal == Signal::Ok {
            // One more request per window for every window's worth of good answers.
            state.rate = (state.rate + 1.0 / state.rate.max(1.0)).min(ceiling);
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
        for _ in 0..30 {
            pacer.observe(Signal::Ok, ms(1));
        }
        assert_eq!(pacer.rate(), Some(10.0), "back to the ceiling, never above");
        pacer.observe(Signal::Neutral, ms(1));
        assert_eq!(pacer.rate(), Some(10.0));
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
        assert!(AdaptivePacer::new(None, Duration::from_secs(1))
            .rate()
            .is_none());
    }
}
