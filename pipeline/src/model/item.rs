use serde::Serialize;

/// What every item passed between stages can tell the runner: the source it came from (a metric
/// label) and a stable id (names its dead letter). `Serialize` lets a failed item be written to the
/// dead letters as it was.
pub trait PipelineItem: Serialize + Send + Sync + 'static {
    fn source(&self) -> &str;
    fn item_id(&self) -> String;
}
