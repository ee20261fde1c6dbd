//! The three shapes a stage can take. Each declares its input and output item types, so the
//! topology builder only joins stages whose types match, at compile time.

use async_trait::async_trait;

use crate::{FatalError, Inlet, Outlet, PipelineItem, StageContext, StageError};

/// Produces items: reads a directory, an export, an API, a queue of batch keys.
///
/// A source polls `ctx.shutdown` between items so that Ctrl-C stops reading new data while
/// everything already sent drains through the pipeline.
#[async_trait]
pub trait Source: Send + 'static {
    type Output: PipelineItem;

    /// The source's kind, e.g. `slack_export`; used as the stage label in metrics.
    fn name(&self) -> &str;

    async fn run(
        self: Box<Self>,
        out: Outlet<Self::Output>,
        ctx: StageContext,
    ) -> Result<(), FatalError>;
}

/// Turns each input item into zero or more outputs, independently of other items, so the
/// runner can put `concurrency()` workers on the same input channel.
///
/// Returning `Err(StageError::Item)` sends the input item to the dead letters and the run
/// continues; `Err(StageError::Fatal)` stops the run. CPU-heavy work belongs in
/// `tokio::task::spawn_blocking`, so timers and I/O of other stages keep running.
#[async_trait]
pub trait ItemStage: Send + Sync + 'static {
    type Input: PipelineItem;
    type Output: PipelineItem;

    fn name(&self) -> &'static str;

    /// Workers sharing the input channel. CPU-bound stages want the core count.
    fn concurrency(&self) -> usize {
        1
    }

    async fn process(
        &self,
        item: &Self::Input,
        ctx: &StageContext,
    ) -> Result<Vec<Self::Output>, StageError>;
}

/// Consumes its whole input stream, for stages that keep state across items (batching with a
/// timer, windows spanning items). Per-item failures go to `ctx.dead_letter`; `Err` is fatal.
#[async_trait]
pub trait StreamStage: Send + 'static {
    type Input: PipelineItem;
    type Output: PipelineItem;

    fn name(&self) -> &'static str;

    async fn run(
        self: Box<Self>,
        input: Inlet<Self::Input>,
        out: Outlet<Self::Output>,
        ctx: StageContext,
    ) -> Result<(), FatalError>;
}
