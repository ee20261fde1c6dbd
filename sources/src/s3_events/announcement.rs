//! S3 event notifications read as announcements of batch files. The same parsing serves the
//! three ways events arrive (a Lambda invocation, an SQS message body, a replayed list), so
//! what counts as a batch, and what is skipped and why, is decided in one place.
//!
//! Three envelopes are read, as AWS documents them:
//! - S3 event notifications, `{"Records": [...]}` with `eventVersion` 2.x (keys URL-encoded as
//!   form values); other major versions are skipped, counted, since their meaning may differ;
//! - the same wrapped by SNS (fan-out S3 -> SNS -> SQS without raw delivery):
//!   `{"Type": "Notification", "Message": "<the S3 event as JSON text>"}`;
//! - EventBridge events, `{"source": "aws.s3", "detail-type": "Object Created", "detail":
//!   {"bucket": {"name"}, "object": {"key", "size", "sequencer"}}}` (keys not encoded).

use std::fmt;

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use serde_json::Value;

use kass_pipeline::batch::{batch_source, BatchRef};

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
    /// A record of an event version this reader does not know (only 2.x is read).
    UnsupportedVersion(String),
    /// An object in another bucket than the store's: not ours to read.
    OtherBucket { bucket: String, key: String },
}

impl Skip {
    pub fn label(&self) -> &'static str {
        match self {
            Skip::TestEvent => "test_event",
            Skip::NotObjectCreated(_) => "not_object_created",
            Skip::NotABatch(_) => "not_a_batch",
            Skip::NoKey => "no_key",
            Skip::UnsupportedVersion(_) => "unsupported_event_version",
            Skip::OtherBucket { .. } => "other_bucket",
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
            Skip::UnsupportedVersion(v) => {
                write!(f, "eventVersion {v:?} is not supported (only 2.x)")
            }
            Skip::OtherBucket { bucket, key } => write!(
                f,
                "s3://{bucket}/{key} is in another bucket than the store's: refused"
            ),
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

impl Parsed {
    /// Moves announcements of objects in another bucket than `bucket` to the skipped ones.
    pub fn keep_bucket(&mut self, bucket: &str) {
        let (ours, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.batches)
            .into_iter()
            .partition(|a| a.bucket.as_deref().is_none_or(|b| b == bucket));
        self.batches = ours;
        self.skipped
            .extend(others.into_iter().map(|a| Skip::OtherBucket {
                bucket: a.bucket.unwrap_or_default(),
                key: a.key,
            }));
    }
}

/// Parses a notification body (any of the envelopes above, or an S3 test event).
pub fn parse_notification(body: &str) -> Result<Parsed, UnknownEvent> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| UnknownEvent(format!("invalid JSON ({e})")))?;
    parse_value(value)
}

pub fn parse_value(value: Value) -> Result<Parsed, UnknownEvent> {
    if value.get("Type").and_then(Value::as_str) == Some("Notification") {
        let message = value
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| UnknownEvent("SNS notification without a `Message` text".into()))?;
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| UnknownEvent(format!("the SNS `Message` is not JSON ({e})")))?;
        if inner.get("Type").is_some() {
            return Err(UnknownEvent("an SNS notification inside another".into()));
        }
        return parse_value(inner);
    }
    if value.get("detail-type").is_some() {
        return parse_eventbridge(&value);
    }
    parse_s3_notification(value)
}

/// An EventBridge event from S3.
fn parse_eventbridge(value: &Value) -> Result<Parsed, UnknownEvent> {
    if value.get("source").and_then(Value::as_str) != Some("aws.s3") {
        return Err(UnknownEvent(format!(
            "an EventBridge event from {}, not aws.s3",
            value.get("source").unwrap_or(&Value::Null)
        )));
    }
    let kind = value
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut parsed = Parsed::default();
    if kind != "Object Created" {
        parsed
            .skipped
            .push(Skip::NotObjectCreated(kind.to_string()));
        return Ok(parsed);
    }
    let detail = value
        .get("detail")
        .ok_or_else(|| UnknownEvent("EventBridge `Object Created` without `detail`".into()))?;
    let Some(key) = detail.pointer("/object/key").and_then(Value::as_str) else {
        parsed.skipped.push(Skip::NoKey);
        return Ok(parsed);
    };
    match batch_source(key) {
        Some(source) => parsed.batches.push(Announcement {
            bucket: detail
                .pointer("/bucket/name")
                .and_then(Value::as_str)
                .map(str::to_string),
            key: key.to_string(),
            source: source.to_string(),
            size: detail.pointer("/object/size").and_then(Value::as_u64),
            sequencer: detail
                .pointer("/object/sequencer")
                .and_then(Value::as_str)
                .map(str::to_string),
        }),
        None => parsed.skipped.push(Skip::NotABatch(key.to_string())),
    }
    Ok(parsed)
}

fn parse_s3_notification(mut value: Value) -> Result<Parsed, UnknownEvent> {
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
    let version = record.event_version.clone().unwrap_or_default();
    if !version.starts_with("2.") {
        return Err(Skip::UnsupportedVersion(version));
    }
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

    fn batch_key() -> &'static str {
        "slack/chunked/year=2025/month=10/day=06/batch_1.json"
    }

    #[test]
    fn an_sns_envelope_is_unwrapped() {
        let inner = json!({"Records": [record("ObjectCreated:Put", batch_key())]});
        let sns = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:x",
                         "Message": inner.to_string(), "Timestamp": "2025-10-06T09:00:00Z"});
        let parsed = parse_value(sns).unwrap();
        assert_eq!(parsed.batches.len(), 1);
        assert_eq!(parsed.batches[0].key, batch_key());
        let broken = json!({"Type": "Notification", "Message": "not json"});
        assert!(parse_value(broken).unwrap_err().0.contains("SNS"));
    }

    #[test]
    fn an_eventbridge_object_created_event_is_read() {
        let event = json!({
            "version": "0", "id": "x", "detail-type": "Object Created", "source": "aws.s3",
            "account": "1", "time": "2025-10-06T09:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::kb"],
            "detail": {"version": "0", "bucket": {"name": "kb"},
                       "object": {"key": "slack/chunked/a b+c.json", "size": 5, "sequencer": "01"},
                       "reason": "PutObject"}
        });
        let parsed = parse_value(event.clone()).unwrap();
        assert_eq!(
            parsed.batches[0].key, "slack/chunked/a b+c.json",
            "not decoded"
        );
        assert_eq!(parsed.batches[0].bucket.as_deref(), Some("kb"));
        let mut deleted = event;
        deleted["detail-type"] = json!("Object Deleted");
        assert_eq!(
            parse_value(deleted).unwrap().skipped[0].label(),
            "not_object_created"
        );
    }

    #[test]
    fn other_event_versions_and_buckets_are_skipped_with_a_reason() {
        let mut old = record("ObjectCreated:Put", batch_key());
        old["eventVersion"] = json!("1.0");
        let mut parsed =
            parse_value(json!({"Records": [old, record("ObjectCreated:Put", batch_key())]}))
                .unwrap();
        assert_eq!(parsed.skipped[0].label(), "unsupported_event_version");
        assert_eq!(parsed.batches.len(), 1);
        parsed.keep_bucket("another");
        assert!(parsed.batches.is_empty());
        assert_eq!(parsed.skipped[1].label(), "other_bucket");
        assert!(parsed.skipped[1].to_string().contains("s3://kb/"));
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
