//! Notifications gathered into the batches they name, each once, with what was skipped and
//! why: the unit one delivery (a poll, a Lambda invocation, a replay) embeds.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use kass_pipeline::batch::BatchRef;
use kass_pipeline::telemetry::{self, EventRecordSkipped};

use super::announcement::{self, Parsed, Skip, UnknownEvent};

/// Batches named by a set of notifications, each once.
#[derive(Debug, Default)]
pub struct Announced {
    /// The store's bucket: announcements of objects elsewhere are refused.
    bucket: Option<String>,
    pub batches: Vec<BatchRef>,
    keys: HashSet<String>,
    /// Records skipped, by reason label.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Batches announced again within this set.
    pub duplicates: u64,
}

impl Announced {
    /// Announcements for the store's bucket only (`None`: a local store, any bucket).
    pub fn for_bucket(bucket: Option<String>) -> Self {
        Self {
            bucket,
            ..Self::default()
        }
    }

    /// Adds what one notification names; an unparseable one is returned for the caller to
    /// dead-letter. Returns the batch keys it named (repeats included).
    pub fn add(&mut self, notification: Value) -> Result<Vec<String>, UnknownEvent> {
        self.record(announcement::parse_value(notification))
    }

    /// [`Announced::add`] for a message body (JSON text).
    pub fn add_body(&mut self, body: &str) -> Result<Vec<String>, UnknownEvent> {
        self.record(announcement::parse_notification(body))
    }

    fn record(
        &mut self,
        parsed: Result<Parsed, UnknownEvent>,
    ) -> Result<Vec<String>, UnknownEvent> {
        let mut parsed = parsed.inspect_err(|e| {
            EventRecordSkipped {
                reason: "unknown_event",
                detail: e,
                // Its dead letter says it at warning level.
                refused: false,
            }
            .emit();
            *self.skipped.entry("unknown_event").or_default() += 1;
        })?;
        if let Some(bucket) = &self.bucket {
            parsed.keep_bucket(bucket);
        }
        for skip in &parsed.skipped {
            EventRecordSkipped {
                reason: skip.label(),
                detail: skip,
                refused: matches!(skip, Skip::OtherBucket { .. } | Skip::UnsupportedVersion(_)),
            }
            .emit();
            *self.skipped.entry(skip.label()).or_default() += 1;
        }
        let mut named = Vec::with_capacity(parsed.batches.len());
        for batch in parsed.batches {
            telemetry::events_batch(&batch.source);
            named.push(batch.key.clone());
            // A multipart upload announces twice; S3 delivers at least once.
            if self.keys.insert(batch.key.clone()) {
                self.batches.push(batch.batch_ref());
            } else {
                telemetry::events_duplicate();
                self.duplicates += 1;
            }
        }
        Ok(named)
    }
}
