use serde::{Deserialize, Serialize};

/// What every item passed between stages can tell the runner: the source it came from (a metric
/// label), a stable id (names its dead letter) and what kind of item it is (how its dead letter
/// is re-run). `Serialize` lets a failed item be written to the dead letters as it was.
pub trait PipelineItem: Serialize + Send + Sync + 'static {
    fn source(&self) -> &str;
    fn item_id(&self) -> String;
    /// What a dead letter of this item holds; items of stages outside kass are
    /// [`ItemKind::Other`].
    fn item_kind(&self) -> ItemKind {
        ItemKind::Other
    }
}

/// What a dead letter's item is, recorded in the letter (`item_kind`) so that
/// `kass dead-letters reprocess` knows what to re-run without knowing which stage wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// What a source read (a file, a line, a day file, a message) or the record made of it:
    /// needs its input fixed, then a new fetch.
    Input,
    /// A normalised document the chunker refused.
    Document,
    /// One chunk: embedded again.
    Chunk,
    /// One chunk's vectors: stored again (embedded again if of another model).
    Vectors,
    /// A batch reference (the item id is the batch key): the batch file is loaded again.
    Batch,
    /// One malformed chunk of a batch file, as the file holds it: the file needs fixing, then
    /// a new announcement; not re-run as is.
    BatchChunk,
    /// The body of an event notification that could not be read: read again.
    Event,
    /// An item of a stage outside kass.
    Other,
}
