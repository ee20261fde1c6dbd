//! Dynamic batching: requests filled up to the provider's input-count and token limits, and
//! cut on a timer so a trickle of chunks is not held back.

use std::time::Duration;

use tokio::time::Instant;

use kass_pipeline::Chunk;

use super::RequestLimits;

pub struct Batcher {
    limits: RequestLimits,
    max_wait: Duration,
    pending: Vec<Chunk>,
    tokens: usize,
    deadline: Option<Instant>,
}

impl Batcher {
    pub fn new(limits: RequestLimits, max_wait: Duration) -> Self {
        Self {
            limits,
            max_wait,
            pending: Vec::new(),
            tokens: 0,
            deadline: None,
        }
    }

    /// Adds a chunk of `tokens` tokens; returns the requests that are now full (none, one, or
    /// two when the chunk both overflowed the previous request and filled its own).
    pub fn push(&mut self, chunk: Chunk, tokens: usize) -> Vec<Vec<Chunk>> {
        let mut full = Vec::new();
        let overflows = self.pending.len() + 1 > self.limits.max_inputs
            || self.tokens.saturating_add(tokens) > self.limits.max_tokens;
        if overflows {
            full.extend(self.take());
        }
        if self.pending.is_empty() {
            self.deadline = Some(Instant::now() + self.max_wait);
        }
        self.pending.push(chunk);
        self.tokens = self.tokens.saturating_add(tokens);
        if self.pending.len() >= self.limits.max_inputs || self.tokens >= self.limits.max_tokens {
            full.extend(self.take());
        }
        full
    }

    /// The partial request, if any (timer fired, or input ended).
    pub fn take(&mut self) -> Option<Vec<Chunk>> {
        self.deadline = None;
        self.tokens = 0;
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// When the partial request must go out.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kass_pipeline::Metadata;

    fn chunk(i: usize) -> Chunk {
        Chunk::new("s", "d", i, format!("text {i}"), Metadata::new())
    }

    fn limits(max_inputs: usize, max_tokens: usize) -> RequestLimits {
        RequestLimits {
            max_inputs,
            max_tokens,
        }
    }

    #[test]
    fn fills_up_to_the_input_count() {
        let mut b = Batcher::new(limits(3, 1_000), Duration::from_secs(1));
        assert!(b.push(chunk(0), 10).is_empty());
        assert!(b.push(chunk(1), 10).is_empty());
        let full = b.push(chunk(2), 10);
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].len(), 3);
        assert!(b.take().is_none());
    }

    #[test]
    fn never_exceeds_the_token_limit_unless_one_chunk_does() {
        let mut b = Batcher::new(limits(100, 100), Duration::from_secs(1));
        assert!(b.push(chunk(0), 60).is_empty());
        let full = b.push(chunk(1), 60);
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].len(), 1, "the first chunk goes alone");
        // An oversized chunk gets a request of its own.
        let full = b.push(chunk(2), 500);
        assert_eq!(full.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1]);
        assert!(b.take().is_none());
    }

    #[test]
    fn deadline_starts_with_the_first_pending_chunk() {
        let mut b = Batcher::new(limits(10, 1_000), Duration::from_millis(50));
        assert!(b.deadline().is_none());
        b.push(chunk(0), 1);
        let deadline = b.deadline().unwrap();
        b.push(chunk(1), 1);
        assert_eq!(b.deadline(), Some(deadline));
        assert_eq!(b.take().unwrap().len(), 2);
        assert!(b.deadline().is_none());
    }
}
