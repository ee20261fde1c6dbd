//! The versions a stateful source keeps per document, so that a document read again unchanged
//! keeps the version it was first sent with.
//!
//! Every document state carries a version (see `kass_pipeline::model::document_version`); the
//! batch writer stamps the run's on whatever carries none. A source that re-reads a window
//! every run (Slack's lookback days) would then give every re-read document a new version, and
//! the embed half would rewrite the stored metadata of each on every run for nothing. So such a
//! source keeps, per document, a fingerprint of what it sent and the version it sent it with:
//! the same fingerprint keeps the version (nothing to update downstream), another gets this
//! run's. The fingerprint covers everything the document is made from (the record, and what
//! the record is rendered with, such as a workspace's names), so a change anywhere makes a
//! newer version.

use std::collections::BTreeMap;

use kass_pipeline::model::DocumentVersion;
use kass_pipeline::RawRecord;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a document was last sent as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// 16 hex digits of SHA-256 over the record and its rendering context.
    #[serde(rename = "f")]
    pub fingerprint: String,
    /// The version it was sent with.
    #[serde(rename = "v")]
    pub version: DocumentVersion,
}

/// Document id -> what it was last sent as, for the documents a scope holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeptVersions(BTreeMap<String, Kept>);

impl KeptVersions {
    /// Gives `record` its version: the kept one if it is unchanged since then, else
    /// `run_version` (and remembers it). `context` is what else renders the record (a digest
    /// of the names its ids resolve to).
    pub fn stamp(&mut self, record: &mut RawRecord, context: &str, run_version: DocumentVersion) {
        let fingerprint = fingerprint(record, context);
        let id = record.document_id().to_string();
        let version = match self.0.get(&id) {
            Some(kept) if kept.fingerprint == fingerprint => kept.version,
            _ => {
                self.0.insert(
                    id,
                    Kept {
                        fingerprint,
                        version: run_version,
                    },
                );
                run_version
            }
        };
        record.set_version(version);
    }

    /// Whether `record` is exactly what was last sent of its document (its fingerprint
    /// unchanged): a source reading a complete listing every run (a wiki) sends only the rest.
    pub fn unchanged(&self, record: &RawRecord, context: &str) -> bool {
        self.0
            .get(record.document_id())
            .is_some_and(|kept| kept.fingerprint == fingerprint(record, context))
    }

    /// Keeps only the documents `holds` says the scope still holds: a document tombstoned
    /// and later back must get a version newer than its tombstone, never its old one.
    pub fn retain(&mut self, mut holds: impl FnMut(&str) -> bool) {
        self.0.retain(|id, _| holds(id));
    }

    pub fn get(&self, document_id: &str) -> Option<&Kept> {
        self.0.get(document_id)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn fingerprint(record: &RawRecord, context: &str) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(record).expect("records are plain data"));
    h.update([0u8]);
    h.update(context.as_bytes());
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use kass_pipeline::{Document, DocumentKind};

    fn record(text: &str) -> RawRecord {
        RawRecord::Document(Document::text("s", "d1", DocumentKind::Text, text))
    }

    fn version_of(record: &RawRecord) -> Option<i64> {
        match record {
            RawRecord::Document(d) => d.metadata.get("document_version").and_then(|v| v.as_i64()),
            RawRecord::Chat(c) => c.version.map(|v| v as i64),
        }
    }

    #[test]
    fn unchanged_keeps_its_version_and_any_change_takes_the_run_s() {
        let mut kept = KeptVersions::default();
        let mut first = record("a");
        kept.stamp(&mut first, "names v1", 10);
        assert_eq!(version_of(&first), Some(10));
        let mut again = record("a");
        kept.stamp(&mut again, "names v1", 20);
        assert_eq!(version_of(&again), Some(10), "unchanged: same version");
        let mut renamed = record("a");
        kept.stamp(&mut renamed, "names v2", 30);
        assert_eq!(version_of(&renamed), Some(30), "its rendering changed");
        assert!(kept.unchanged(&record("a"), "names v2"));
        assert!(!kept.unchanged(&record("a"), "names v1"));
        assert!(!kept.unchanged(&record("b"), "names v2"));
        let mut edited = record("b");
        kept.stamp(&mut edited, "names v2", 40);
        assert_eq!(version_of(&edited), Some(40));
        let mut reverted = record("a");
        kept.stamp(&mut reverted, "names v2", 50);
        assert_eq!(
            version_of(&reverted),
            Some(50),
            "back to an earlier text is newer"
        );
        kept.retain(|_| false);
        let mut back = record("a");
        kept.stamp(&mut back, "names v2", 60);
        assert_eq!(
            version_of(&back),
            Some(60),
            "forgotten (tombstoned): a new version, newer than the tombstone"
        );
    }
}
