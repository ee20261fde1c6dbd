//! Bounded channels between stages. A full channel makes the sender wait, so a slow stage
//! slows every stage before it and memory stays flat however large the input.
//!
//! `async-channel` is multi-producer multi-consumer: N workers of a stage share one [`Inlet`],
//! and several sources share one [`Outlet`].

use std::sync::Arc;

use futures::Stream;

use crate::model::PipelineItem;
use crate::stage_clock::StageClock;
use crate::telemetry;

/// Creates a channel carrying `producer`'s output to `consumer`.
pub fn bounded<T>(producer: &str, consumer: &str, capacity: usize) -> (Outlet<T>, Inlet<T>) {
    let (tx, rx) = async_channel::bounded(capacity.max(1));
    let channel: Arc<str> = Arc::from(producer);
    telemetry::channel_capacity(producer, capacity);
    (
        Outlet {
            tx,
            stage: channel.clone(),
            clock: None,
        },
        Inlet {
            rx,
            stage: Arc::from(consumer),
            channel,
            clock: None,
        },
    )
}

/// The sending end a stage writes its output to.
#[derive(Debug)]
pub struct Outlet<T> {
    tx: async_channel::Sender<T>,
    stage: Arc<str>,
    /// Set by the runner on the outlet of a stage it times this way.
    clock: Option<Arc<StageClock>>,
}

impl<T> Clone for Outlet<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            stage: self.stage.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<T> Outlet<T> {
    /// The same channel, each send timing `clock`'s stage.
    pub(crate) fn timed(&self, clock: Arc<StageClock>) -> Self {
        Self {
            clock: Some(clock),
            ..self.clone()
        }
    }
}

/// Returned when nobody downstream is listening any more (it stopped on a fatal error).
#[derive(Debug, thiserror::Error)]
#[error("downstream of stage `{0}` has stopped")]
pub struct DownstreamClosed(pub String);

impl<T: PipelineItem> Outlet<T> {
    /// Waits for room in the channel, then sends.
    pub async fn send(&self, item: T) -> Result<(), DownstreamClosed> {
        let source = item.source().to_string();
        let _waiting = self.clock.as_ref().map(|clock| {
            clock.item_done();
            clock.waiting()
        });
        self.tx
            .send(item)
            .await
            .map_err(|_| DownstreamClosed(self.stage.to_string()))?;
        telemetry::items_sent(&self.stage, &source);
        telemetry::channel_depth(&self.stage, self.tx.len());
        Ok(())
    }

    pub fn stage(&self) -> &str {
        &self.stage
    }
}

/// The receiving end a stage reads its input from; also a [`Stream`].
#[derive(Debug)]
pub struct Inlet<T> {
    rx: async_channel::Receiver<T>,
    stage: Arc<str>,
    channel: Arc<str>,
    /// Set by the runner on the inlet of a stage it times this way.
    clock: Option<Arc<StageClock>>,
}

impl<T> Clone for Inlet<T> {
    fn clone(&self) -> Self {
        Self {
            rx: self.rx.clone(),
            stage: self.stage.clone(),
            channel: self.channel.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<T> Inlet<T> {
    /// The same inlet, its waits not counted in `clock`'s stage busy time.
    pub(crate) fn timed(&self, clock: Arc<StageClock>) -> Self {
        Self {
            clock: Some(clock),
            ..self.clone()
        }
    }
}

impl<T: PipelineItem> Inlet<T> {
    /// The next item, or `None` once every sender is gone and the channel is empty.
    pub async fn recv(&self) -> Option<T> {
        let waiting = self.clock.as_ref().map(StageClock::waiting);
        let item = self.rx.recv().await;
        drop(waiting);
        let item = item.ok()?;
        telemetry::items_received(&self.stage, item.source());
        telemetry::channel_depth(&self.channel, self.rx.len());
        Some(item)
    }

    /// Up to `max` items: waits for the first, then takes more until `max` or until `max_wait`
    /// has passed since the first, so a trickle is not held back. `None` once the input ended.
    pub async fn recv_batch(&self, max: usize, max_wait: std::time::Duration) -> Option<Vec<T>> {
        let first = self.recv().await?;
        Some(self.fill_batch(first, max, max_wait).await)
    }

    /// A batch starting with `first` (already received): takes more until `max` or until
    /// `max_wait` has passed. For a stage that waits for its first item itself, with a timeout
    /// of its own ([`Self::recv`] is cancel-safe; a batch being filled is not).
    pub async fn fill_batch(&self, first: T, max: usize, max_wait: std::time::Duration) -> Vec<T> {
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut batch = vec![first];
        while batch.len() < max.max(1) {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        batch
    }

    /// Consumes the inlet as a stream, for stages written with stream combinators.
    pub fn into_stream(self) -> impl Stream<Item = T> + Send + Unpin {
        Box::pin(futures::stream::unfold(self, |inlet| async move {
            let item = inlet.recv().await?;
            Some((item, inlet))
        }))
    }

    /// The same channel, counted as the input of `stage`.
    pub fn renamed(&self, stage: &str) -> Self {
        Self {
            rx: self.rx.clone(),
            stage: Arc::from(stage),
            channel: self.channel.clone(),
            clock: None,
        }
    }

    /// Items waiting right now.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}
