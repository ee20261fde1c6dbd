//! The S3-event source of the split embed half: an SQS queue of the bucket's notifications,
//! consumed with end-to-end acknowledgement. Each poll's batches are handed to the embed half
//! (a callback, so this crate need not know the stages) and a message is deleted only once
//! everything it named is stored or dead-lettered for good.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kass_pipeline::batch::BatchRef;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::ObjectStore;
use kass_pipeline::topology::RunReport;

use super::sqs::{QueueMessage, SqsQueue};
use super::sqs_event::{Delivery, Message, Redeliver};

/// Wait after a failed poll or embedding before trying again.
const OUTAGE_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Makes messages visible again at once (best effort: otherwise the timeout does it).
async fn release(queue: &SqsQueue, messages: &[QueueMessage]) {
    for message in messages {
        if let Err(e) = queue.release(message).await {
            tracing::warn!(error = %e, "cannot hand a message back");
        }
    }
}

/// What a listener did before it stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListenReport {
    pub messages_deleted: u64,
    pub messages_left_for_retry: u64,
    pub chunks_stored: u64,
    pub dead_letters: u64,
    pub batches: u64,
    pub duplicates: u64,
    /// Event records not embedded, by reason label.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Polls whose work failed as a whole (their messages were handed back).
    pub failed_polls: u64,
    /// Stopped by Ctrl-C (or SIGTERM) rather than by an idle queue.
    pub interrupted: bool,
}

/// What a listener needs besides the embed half.
pub struct Listener<'a> {
    pub queue: &'a SqsQueue,
    /// Where unreadable events are dead-lettered.
    pub store: Arc<dyn ObjectStore>,
    /// The store's bucket: announcements of other buckets are refused.
    pub bucket: Option<String>,
    pub shutdown: Shutdown,
    /// Stop when a poll comes back empty.
    pub until_idle: bool,
}

/// Polls the queue and hands what its messages announce to `embed` until shut down (or, with
/// `until_idle`, until a poll comes back empty). Nothing one poll holds stops the listener:
/// an unreadable event is dead-lettered, a batch that cannot be read is dead-lettered alone,
/// and a poll whose work fails as a whole hands its messages back and is tried again later.
pub async fn listen<F, Fut, E>(listener: &Listener<'_>, embed: F) -> ListenReport
where
    F: Fn(Vec<BatchRef>) -> Fut,
    Fut: Future<Output = Result<RunReport, E>>,
    E: Display,
{
    let queue = listener.queue;
    let until_idle = listener.until_idle;
    let mut report = ListenReport::default();
    let sampler = tokio::spawn(sample_depth(queue.clone()));
    while !listener.shutdown.is_triggered() {
        let received = tokio::select! {
            received = queue.receive() => received,
            _ = listener.shutdown.requested() => break,
        };
        // A long-running consumer outlives outages: log, wait, poll again.
        let messages = match received {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "cannot receive from the queue; retrying in 5 s");
                pause(&listener.shutdown).await;
                continue;
            }
        };
        if messages.is_empty() {
            if until_idle {
                break;
            }
            continue;
        }
        let invisible: Vec<_> = messages.iter().map(|m| queue.keep_invisible(m)).collect();
        let mut poll = read_poll(listener, &messages, &mut report).await;
        let run = match embed(std::mem::take(&mut poll.announced.batches)).await {
            Ok(run) => run,
            Err(e) => {
                tracing::error!(error = %e, "this poll's work failed; its messages go back to the queue");
                drop(invisible);
                release(queue, &messages).await;
                report.failed_polls += 1;
                report.messages_left_for_retry += messages.len() as u64;
                pause(&listener.shutdown).await;
                continue;
            }
        };
        drop(invisible);
        report.chunks_stored += run.outputs;
        report.dead_letters += run.dead_letters;
        if listener.shutdown.is_triggered() {
            // Interrupted: some batches may not have been read. Hand the messages back now.
            release(queue, &messages).await;
            report.messages_left_for_retry += messages.len() as u64;
            break;
        }
        acknowledge(queue, &messages, &poll, &run, &mut report).await;
    }
    sampler.abort();
    // The last depth, so a listener that stops on an empty queue leaves it at 0.
    let _ = queue.sample_depth().await;
    report.interrupted = listener.shutdown.is_triggered();
    report
}

/// Seconds between samples of the queue's depth.
const DEPTH_SAMPLE_INTERVAL: Duration = Duration::from_secs(15);

/// Samples the queue's depth now and at every interval, for as long as the listener runs.
async fn sample_depth(queue: SqsQueue) {
    let mut ticker = tokio::time::interval(DEPTH_SAMPLE_INTERVAL);
    loop {
        ticker.tick().await;
        if let Err(e) = queue.sample_depth().await {
            tracing::debug!(error = %e, "cannot sample the queue's depth");
        }
    }
}

/// Records every message of a poll; unreadable events are dead-lettered.
async fn read_poll(
    listener: &Listener<'_>,
    messages: &[QueueMessage],
    report: &mut ListenReport,
) -> Delivery {
    let delivery = Delivery::read(
        listener.store.as_ref(),
        listener.queue.url(),
        listener.bucket.clone(),
        &messages
            .iter()
            .map(|m| Message {
                id: m.id.clone(),
                body: m.body.clone(),
            })
            .collect::<Vec<_>>(),
    )
    .await;
    report.dead_letters += delivery.dead_letters;
    report.batches += delivery.announced.batches.len() as u64;
    report.duplicates += delivery.announced.duplicates;
    for (reason, n) in &delivery.announced.skipped {
        *report.skipped.entry(reason).or_default() += n;
    }
    delivery
}

/// Deletes the messages whose work is done; leaves the others for redelivery (after the
/// visibility timeout, or to the queue's redrive DLQ after `maxReceiveCount`).
async fn acknowledge(
    queue: &SqsQueue,
    messages: &[QueueMessage],
    delivery: &Delivery,
    run: &RunReport,
    report: &mut ListenReport,
) {
    if run.service_outages() > 0 {
        tracing::warn!(
            messages = messages.len(),
            retryable = run.retryable_dead_letters,
            "a service was down for some chunks; leaving the messages for redelivery"
        );
    }
    for (i, message) in messages.iter().enumerate() {
        if !delivery.is_done(i, Some(run), Redeliver::StoreUnavailable) {
            report.messages_left_for_retry += 1;
            continue;
        }
        match queue.delete(message).await {
            Ok(()) => report.messages_deleted += 1,
            // Redelivered later; stored chunks are skipped then, so it costs little.
            Err(e) => tracing::warn!(error = %e, "cannot delete a done message"),
        }
    }
    tracing::info!(
        messages = messages.len(),
        stored = run.outputs,
        dead_letters = run.dead_letters,
        "poll done"
    );
}

/// Waits out an outage, unless asked to stop.
async fn pause(shutdown: &Shutdown) {
    tokio::select! {
        _ = tokio::time::sleep(OUTAGE_PAUSE) => {}
        _ = shutdown.requested() => {}
    }
}
