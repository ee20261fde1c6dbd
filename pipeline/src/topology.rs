//! The topology builder: joins stages with bounded channels and runs them.
//!
//! A pipeline reads top to bottom as the data flows:
//!
//! ```ignore
//! let report = Topology::new(config, store, shutdown)
//!     .sources(sources)          // Flow<RawRecord>
//!     .then(Transform::new(..))  // Flow<Document>
//!     .then(ChunkRouter::new(..))// Flow<Chunk>
//!     .then_stream(BatchWriter::new(..)) // Flow<BatchRef>
//!     .run(|batch| println!("{}", batch.key))
//!     .await?;
//! ```
//!
//! A stage never knows who is upstream or downstream of it; the builder decides, which is what
//! lets the same stages run in one process or split across the S3 boundary.
//!
//! The runner times every stage in `kass_stage_processing_seconds{stage}`, whatever its shape:
//! an [`ItemStage`] per call of `process`; a [`StreamStage`] or a [`Source`], which run loops of
//! their own, per item sent, counting the time since its previous send spent neither waiting
//! for input nor for room downstream (`stage_clock.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::task::{JoinHandle, JoinSet};

use crate::channel::{self, Inlet};
use crate::dead_letter::{self, DeadLetterQueue};
use crate::shutdown::Shutdown;
use crate::stage_clock::StageClock;
use crate::store::ObjectStore;
use crate::{
    telemetry, FatalError, ItemStage, PipelineItem, Source, StageContext, StageError, StreamStage,
};

/// Settings shared by every channel of a topology.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyConfig {
    /// Items each inter-stage channel holds before the sender waits.
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
}

fn default_channel_capacity() -> usize {
    64
}

impl Default for TopologyConfig {
    fn default() -> Self {
        Self {
            channel_capacity: default_channel_capacity(),
        }
    }
}

/// What a finished run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Items that came out of the last stage.
    pub outputs: u64,
    /// Items sent to the dead letters.
    pub dead_letters: u64,
    /// Of which failed only because a service was down ([`crate::FailureKind::is_retryable`]).
    pub retryable_dead_letters: u64,
    /// Of which whole batch files that could not be read.
    pub failed_batches: u64,
    /// Keys of the batch files that could not be read only because the store was unavailable
    /// (counted in `retryable_dead_letters` too).
    pub retryable_batch_keys: std::collections::BTreeSet<String>,
    /// Keys of every batch file that could not be read.
    pub failed_batch_keys: std::collections::BTreeSet<String>,
}

impl RunReport {
    /// Letters that failed because a service every chunk needs was down (the embedding
    /// provider, Chroma), as opposed to one batch file the store could not give: after these
    /// the whole delivery is worth another try.
    pub fn service_outages(&self) -> u64 {
        self.retryable_dead_letters
            .saturating_sub(self.retryable_batch_keys.len() as u64)
    }
}

/// The running tasks of a pipeline under construction.
pub struct Topology {
    config: TopologyConfig,
    tasks: JoinSet<(String, Result<(), FatalError>)>,
    /// Stage name of each task, to name a stage that panicked.
    names: HashMap<tokio::task::Id, String>,
    dead_letters: DeadLetterQueue,
    dead_letter_writer: JoinHandle<Result<dead_letter::LetterCounts, FatalError>>,
    shutdown: Shutdown,
}

impl Topology {
    /// Starts the dead-letter writer on `store`; stages are added with [`Topology::sources`].
    pub fn new(config: TopologyConfig, store: Arc<dyn ObjectStore>, shutdown: Shutdown) -> Self {
        let (dead_letters, dead_letter_writer) = dead_letter::spawn_writer(store);
        Self {
            config,
            tasks: JoinSet::new(),
            names: HashMap::new(),
            dead_letters,
            dead_letter_writer,
            shutdown,
        }
    }

    fn context(&self, stage: &str) -> StageContext {
        StageContext::new(stage, self.shutdown.clone(), self.dead_letters.clone())
    }

    fn spawn<F>(&mut self, stage: &str, fut: F)
    where
        F: Future<Output = Result<(), FatalError>> + Send + 'static,
    {
        let stage = stage.to_string();
        let name = stage.clone();
        let handle = self.tasks.spawn(async move { (stage, fut.await) });
        self.names.insert(handle.id(), name);
    }

    /// Starts every source, all writing into one channel.
    pub fn sources<T: PipelineItem>(
        mut self,
        sources: Vec<Box<dyn Source<Output = T>>>,
    ) -> Flow<T> {
        let (outlet, inlet) = channel::bounded::<T>("sources", "", self.config.channel_capacity);
        for source in sources {
            let name = source.name().to_string();
            let ctx = self.context(&name);
            let clock = StageClock::new(&name);
            let out = outlet.timed(clock.clone());
            self.spawn(&name, async move {
                let result = source.run(out, ctx).await;
                clock.finish();
                result
            });
        }
        Flow {
            topology: self,
            rx: inlet,
            upstream: "sources".into(),
        }
    }

    /// Feeds a ready-made stream (keys to replay, items from a test) into the pipeline.
    pub fn from_stream<T, S>(mut self, name: &str, items: S) -> Flow<T>
    where
        T: PipelineItem,
        S: Stream<Item = T> + Send + 'static,
    {
        let (outlet, inlet) = channel::bounded::<T>(name, "", self.config.channel_capacity);
        let shutdown = self.shutdown.clone();
        self.spawn(name, async move {
            let mut items = Box::pin(items);
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.requested() => break,
                    item = items.next() => match item {
                        Some(item) => {
                            if outlet.send(item).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                }
            }
            Ok(())
        });
        Flow {
            topology: self,
            rx: inlet,
            upstream: name.into(),
        }
    }
}

/// A topology whose last stage produces `T`.
pub struct Flow<T> {
    topology: Topology,
    rx: Inlet<T>,
    upstream: String,
}

impl<T: PipelineItem> Flow<T> {
    fn inlet_for(&self, stage: &str) -> Inlet<T> {
        self.rx.renamed(stage)
    }

    /// Adds a per-item stage with `stage.concurrency()` workers sharing its input channel.
    pub fn then<S>(mut self, stage: S) -> Flow<S::Output>
    where
        S: ItemStage<Input = T>,
    {
        let name = stage.name();
        let inlet = self.inlet_for(name);
        let (outlet, next) =
            channel::bounded::<S::Output>(name, "", self.topology.config.channel_capacity);
        let stage = Arc::new(stage);
        for _ in 0..stage.concurrency().max(1) {
            let (stage, inlet, outlet) = (stage.clone(), inlet.clone(), outlet.clone());
            let ctx = self.topology.context(name);
            self.topology.spawn(name, async move {
                while let Some(item) = inlet.recv().await {
                    let started = Instant::now();
                    let result = stage.process(&item, &ctx).await;
                    telemetry::processing_time(name, started.elapsed().as_secs_f64());
                    match result {
                        Ok(outputs) => {
                            for output in outputs {
                                if outlet.send(output).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                        Err(StageError::Item(error)) => ctx.dead_letter_item(&item, &error).await?,
                        Err(StageError::Fatal(error)) => return Err(error),
                    }
                }
                Ok(())
            });
        }
        Flow {
            topology: self.topology,
            rx: next,
            upstream: name.into(),
        }
    }

    /// Adds a stage that consumes the whole stream (stateful: batching, windows over items).
    pub fn then_stream<S>(mut self, stage: S) -> Flow<S::Output>
    where
        S: StreamStage<Input = T>,
    {
        let name = stage.name();
        let inlet = self.inlet_for(name);
        let (outlet, next) =
            channel::bounded::<S::Output>(name, "", self.topology.config.channel_capacity);
        let ctx = self.topology.context(name);
        let clock = StageClock::new(name);
        let (inlet, outlet) = (inlet.timed(clock.clone()), outlet.timed(clock.clone()));
        self.topology.spawn(name, async move {
            let result = Box::new(stage).run(inlet, outlet, ctx).await;
            clock.finish();
            result
        });
        Flow {
            topology: self.topology,
            rx: next,
            upstream: name.into(),
        }
    }

    /// Name of the stage whose output this flow carries.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Runs the pipeline to its end, handing each output of the last stage to `on_output`.
    ///
    /// Returns the first fatal error of any stage (after letting the others stop), or a report.
    pub async fn run<F>(self, mut on_output: F) -> Result<RunReport, FatalError>
    where
        F: FnMut(T) + Send,
    {
        let Flow { topology, rx, .. } = self;
        let Topology {
            mut tasks,
            names,
            dead_letters,
            dead_letter_writer,
            shutdown,
            ..
        } = topology;
        // Stages hold their own queue handles; the writer ends once the last stage is done.
        drop(dead_letters);
        let rx = rx.renamed("output");
        let mut outputs = 0u64;
        let drain = async {
            while let Some(item) = rx.recv().await {
                outputs += 1;
                on_output(item);
            }
        };
        let supervise = async {
            let mut first_error: Option<FatalError> = None;
            let mut writer = Some(dead_letter_writer);
            let mut written = dead_letter::LetterCounts::default();
            // The writer's own failure is the root cause: stages that then fail to hand over
            // their letters only report its consequence.
            let mut writer_error: Option<FatalError> = None;
            let fail = |error: FatalError, first_error: &mut Option<FatalError>| {
                shutdown.trigger();
                first_error.get_or_insert(error);
            };
            loop {
                tokio::select! {
                    joined = tasks.join_next_with_id() => match joined {
                        None => break,
                        Some(Ok((_, (_, Ok(()))))) => {}
                        Some(Ok((_, (stage, Err(error))))) => {
                            tracing::error!(stage, %error, "stage failed; stopping the pipeline");
                            fail(error, &mut first_error);
                        }
                        Some(Err(join_error)) => {
                            let stage = names.get(&join_error.id()).cloned().unwrap_or_default();
                            tracing::error!(stage, %join_error, "stage panicked; stopping the pipeline");
                            fail(FatalError::Panicked(stage), &mut first_error);
                        }
                    },
                    // A dead-letter writer that fails must stop the run at once: letters handed
                    // to it would otherwise be lost while the stages carry on.
                    result = async { writer.as_mut().expect("guarded").await }, if writer.is_some() => {
                        writer = None;
                        match result {
                            Ok(Ok(n)) => written = n,
                            Ok(Err(error)) => fail(error, &mut writer_error),
                            Err(e) => fail(FatalError::Panicked(format!("dead_letter_writer: {e}")), &mut writer_error),
                        }
                    }
                }
            }
            if let Some(writer) = writer {
                match writer.await {
                    Ok(Ok(n)) => written = n,
                    Ok(Err(error)) => fail(error, &mut writer_error),
                    Err(e) => fail(
                        FatalError::Panicked(format!("dead_letter_writer: {e}")),
                        &mut writer_error,
                    ),
                }
            }
            (writer_error.or(first_error), written)
        };
        let ((), (first_error, written)) = tokio::join!(drain, supervise);
        match first_error {
            Some(error) => Err(error),
            None => Ok(RunReport {
                outputs,
                dead_letters: written.written,
                retryable_dead_letters: written.retryable,
                failed_batches: written.batches,
                retryable_batch_keys: written.retryable_batch_keys,
                failed_batch_keys: written.failed_batch_keys,
            }),
        }
    }
}
