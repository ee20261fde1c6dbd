//! Tombstones on their way from the sources to the batch writer.
//!
//! A tombstone has no text, so it has nothing to do in the transform and the chunk router;
//! and a source may only decide one once a scope's listing completed, often at the end of its
//! run. So tombstones bypass the item stream: a source posts them here, and the batch writer,
//! once its input is drained (every document of the run written), writes them into batch
//! files of their own (schema version 2). The embed half then applies them after, or
//! alongside, the documents the same run wrote.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::Tombstone;

/// Shared by every source of a fetch and its batch writer; clones share one outbox.
#[derive(Debug, Clone, Default)]
pub struct TombstoneOutbox(Arc<Mutex<BTreeMap<String, Vec<Tombstone>>>>);

impl TombstoneOutbox {
    /// Queues `tombstones` of `source` for the batch writer.
    pub fn post(&self, source: &str, tombstones: impl IntoIterator<Item = Tombstone>) {
        let mut queued = self.0.lock().expect("outbox lock");
        queued
            .entry(source.to_string())
            .or_default()
            .extend(tombstones);
    }

    /// Everything posted so far, by source, emptying the outbox.
    pub fn take(&self) -> BTreeMap<String, Vec<Tombstone>> {
        std::mem::take(&mut *self.0.lock().expect("outbox lock"))
    }

    /// How many tombstones wait.
    pub fn len(&self) -> usize {
        self.0
            .lock()
            .expect("outbox lock")
            .values()
            .map(Vec::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
