//! S3 event notifications read as announcements of batch files. The same parsing serves the
//! three ways events arrive (a Lambda invocation, an SQS message body, a replayed list), so
//! what counts as a batch, and what is skipped and why, is decided in one place.

use std::fmt;

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use serde_json::Value;

use kass_pipeline::batch::BatchRef;

/// A batch file an event says was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub bucket: Option<String>,
    /// Decoded: as the object is named in the bucket.
    pub key: String,
    pub source: String,
    pub size: Option<u64>,
    /// S3's per-key ordering token; with the key, identifies one write of the object.
    pub sequencer: Option<String>,
}

impl Announcement {
    pub fn batch_ref(&self) -> BatchRef {
        BatchRef {
            key: self.key.clone(),
            source: self.source.clone(),
            chunk_count: 0,
            bytes: self.size.unwrap_or(0) as usize,
        }
    }
}

/// Why an event or a record of it is not embedded; each is counted under its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// `s3:TestEvent`, sent once when a notification configuration is written.
    TestEvent,
    /// Not an `ObjectCreated:*` event (removals, restores, ...).
    NotObjectCreated(String),
    /// Object outside `{source}/chunked/` or not `.json` / `.json.gz`.
    NotABatch(String),
    /// A record without an object key.
    NoKey,
}

impl Skip {
    pub fn label(&self) -> &'static str {
        match self {
            Skip::TestEvent => "test_event",
            Skip::NotObjectCreated(_) => "not_object_created",
            Skip::NotABatch(_) => "not_a_batch",
            Skip::NoKey => "no_key",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::TestEvent => write!(f, "s3:TestEvent"),
            Skip::NotObjectCreated(name) => write!(f, "event {name} is not ObjectCreated"),
            Skip::NotABatch(key) => write!(
                f,
                "key {key:?} is not a batch file ({{source}}/chunked/....json[.gz])"
            ),
            Skip::NoKey => write!(f, "record without an object key"),
        }
    }
}

/// A message that is neither an S3 event nor a test event: reported, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 event notification: {0}")]
pub struct UnknownEvent(pub String);

/// What one notification holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub batches: Vec<Announcement>,
    pub skipped: Vec<Skip>,
}

/// Parses a notification body: `{"Records": [...]}` (event version 2.x) or an S3 test event.
pub fn parse_notification(body: &str) -> Result<Parsed, UnknownEvent> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| UnknownEvent(format!("invalid JSON ({e})")))?;
    parse_value(value)
}

pub fn parse_value(mut value: Value) -> Result<Parsed, UnknownEvent> {
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Parsed {
            batches: vec![],
            skipped: vec![Skip::TestEvent],
        });
    }
    let Some(records) = value.get_mut("Records").and_then(Value::as_array_mut) else {
        return Err(UnknownEvent("no `Records` array".into()));
    };
    // S3 always sends these; some S3 APIs (moto) leave them out, and nothing here reads them.
    for record in records.iter_mut().filter_map(Value::as_object_mut) {
        for field in ["userIdentity", "requestParameters"] {
            record
                .entry(field)
                .or_insert_with(|| Value::Object(Default::default()));
        }
    }
    let event: S3Event = serde_json::from_value(value)
        .map_err(|e| UnknownEvent(format!("`Records` is not an S3 event: {e}")))?;
    Ok(parse_event(&event))
}

/// Sorts an event's records into batches to embed and skips.
pub fn parse_event(event: &S3Event) -> Parsed {
    let mut parsed = Parsed::default();
    for record in &event.records {
        match announcement(record) {
            Ok(a) => parsed.batches.push(a),
            Err(skip) => parsed.skipped.push(skip),
        }
    }
    parsed
}

fn announcement(record: &S3EventRecord) -> Result<Announcement, Skip> {
    let name = record.event_name.clone().unwrap_or_default();
    // `ObjectCreated:Put` in event version 2.x; some emitters prefix `s3:`.
    if !name.trim_start_matches("s3:").starts_with("ObjectCreated:") {
        return Err(Skip::NotObjectCreated(name));
    }
    let raw = record.s3.object.key.as_deref().ok_or(Skip::NoKey)?;
    let key = decode_key(raw);
    let source = batch_source(&key).ok_or_else(|| Skip::NotABatch(key.clone()))?;
    Ok(Announcement {
        bucket: record.s3.bucket.name.clone(),
        source: source.to_string(),
        size: record.s3.object.size.and_then(|s| u64::try_from(s).ok()),
        sequencer: record.s3.object.sequencer.clone(),
        key,
    })
}

/// Keys arrive URL-encoded as a form value: `+` for a space, `%2F` for `/` (some servers),
/// `%C3%A9` for `é`.
pub fn decode_key(raw: &str) -> String {
    form_urlencoded::parse(format!("k={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| raw.to_string())
}

/// The source a batch key belongs to: `{source}/chunked/...` ending in `.json` or `.json.gz`.
pub fn batch_source(key: &str) -> Option<&str> {
    let (source, rest) = key.split_once("/chunked/")?;
    let is_json = rest.ends_with(".json") || rest.ends_with(".json.gz");
    (!source.is_empty() && !source.contains('/') && !rest.is_empty() && is_json).then_some(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(name: &str, key: &str) -> Value {
        json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2025-10-06T09:00:00.000Z", "eventName": name,
            "userIdentity": {"principalId": "AWS:X"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "r", "x-amz-id-2": "i"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "kass-slack",
                   "bucket": {"name": "kb", "ownerIdentity": {"principalId": "X"}, "arn": "arn:aws:s3:::kb"},
                   "object": {"key": key, "size": 120, "eTag": "e", "sequencer": "0A1B"}}
        })
    }

    #[test]
    fn keys_are_decoded_as_form_values() {
        assert_eq!(
            decode_key("slack/chunked/a+b.json"),
            "slack/chunked/a b.json"
        );
        assert_eq!(
            decode_key("slack%2Fchunked%2Fx.json"),
            "slack/chunked/x.json"
        );
        assert_eq!(
            decode_key("caf%C3%A9/chunked/x.json"),
            "café/chunked/x.json"
        );
        assert_eq!(decode_key("a%2Bb"), "a+b");
    }

    #[test]
    fn batches_are_told_from_other_objects() {
        assert_eq!(
            batch_source("slack/chunked/year=2025/month=10/day=06/batch_1.json"),
            Some("slack")
        );
        assert_eq!(
            batch_source("gitlab/chunked/x/batch_2.json.gz"),
            Some("gitlab")
        );
        for other in [
            "slack/raw/batch_1.json",
            "_state/slack.json",
            "slack/chunked/batch.txt",
            "a/b/chunked/x.json",
            "/chunked/x.json",
            "slack/chunked/",
        ] {
            assert_eq!(batch_source(other), None, "{other}");
        }
    }

    #[test]
    fn records_are_sorted_into_batches_and_counted_skips() {
        let body = json!({"Records": [
            record("ObjectCreated:Put", "slack/chunked/year=2025/month=10/day=06/batch+%C3%A9.json"),
            record("ObjectRemoved:Delete", "slack/chunked/year=2025/month=10/day=06/batch_2.json"),
            record("ObjectCreated:CompleteMultipartUpload", "notes/readme.md"),
        ]});
        let parsed = parse_notification(&body.to_string()).unwrap();
        assert_eq!(parsed.batches.len(), 1);
        let a = &parsed.batches[0];
        assert_eq!(
            a.key,
            "slack/chunked/year=2025/month=10/day=06/batch é.json"
        );
        assert_eq!(a.source, "slack");
        assert_eq!(a.bucket.as_deref(), Some("kb"));
        assert_eq!(a.size, Some(120));
        let labels: Vec<_> = parsed.skipped.iter().map(Skip::label).collect();
        assert_eq!(labels, ["not_object_created", "not_a_batch"]);
    }

    #[test]
    fn a_test_event_is_skipped_and_garbage_is_an_unknown_event() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-10-06T09:00:00.000Z","Bucket":"kb","RequestId":"r","HostId":"h"}"#;
        assert_eq!(
            parse_notification(test).unwrap().skipped,
            vec![Skip::TestEvent]
        );
        assert!(parse_notification("{not json")
            .unwrap_err()
            .0
            .contains("invalid JSON"));
        assert!(parse_notification(r#"{"hello": 1}"#)
            .unwrap_err()
            .0
            .contains("Records"));
    }

    #[test]
    fn the_shipped_sample_event_parses() {
        let sample = include_str!("../../../examples/events/s3-object-created.json");
        let parsed = parse_notification(sample).unwrap();
        assert_eq!(parsed.batches.len(), 1, "{parsed:?}");
        assert!(parsed.skipped.is_empty());
    }
}
