//! The threads that run forward passes: one per core, started with the model and living as long
//! as it does, fed micro-batches through one queue.
//!
//! Why a standing pool rather than threads per request: with threads per request, the core that
//! finished its share of a request idled until the other finished, and the next request only
//! started after both had; from one queue, the next request's micro-batches start the moment a
//! core frees. And a fresh thread per request got a fresh allocator arena that kept the
//! previous request's freed tensors, so the process grew with every request it served; a
//! standing thread reuses its arena.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

use super::flat_bert::FlatBert;

/// One micro-batch's work, run on a pool thread with the shared bert.
pub(super) type Job = Box<dyn FnOnce(&FlatBert) + Send>;

pub(super) struct WorkerPool {
    jobs: mpsc::Sender<Job>,
}

impl WorkerPool {
    /// Starts `threads` threads; they stop when the pool is dropped and the queue runs dry.
    pub(super) fn start(bert: Arc<FlatBert>, threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let bert = bert.clone();
            std::thread::Builder::new()
                .name(format!("kass-embed-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job, never while running it.
                    let next = queue
                        .lock()
                        .map_err(|_| ())
                        .and_then(|q| q.recv().map_err(|_| ()));
                    let Ok(job) = next else { break };
                    // A panicking pass drops its reply sender (its request sees the failure);
                    // the thread itself stays to serve the next job.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&bert)));
                })?;
        }
        Ok(Self { jobs })
    }

    /// Queues a job behind those already queued (first come, first served).
    pub(super) fn submit(&self, job: Job) -> Result<(), String> {
        self.jobs
            .send(job)
            .map_err(|_| "the local model's worker threads have stopped".to_string())
    }
}
