use std::borrow::Cow;
use std::io::Read;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::lenient_json::replace_lone_surrogates;
use super::{
    parse_batch_key, Batch, BatchChunk, Tombstone, NEWEST_SCHEMA_VERSION, TOMBSTONES_SCHEMA_VERSION,
};
use crate::model::{chunk_keys, flatten_json, Chunk, MetaValue, Metadata};

/// Why a batch file (or one chunk of it) was rejected, naming the key and, where there is one,
/// the field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("batch {key}: {}{reason}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct BatchFormatError {
    pub key: String,
    pub field: Option<String>,
    pub reason: String,
}

/// Largest decompressed batch accepted: far above what the writer produces (`max_bytes`,
/// default 4 MiB), small enough that a hostile `.json.gz` cannot exhaust memory.
pub const MAX_BATCH_BYTES: u64 = 256 * 1024 * 1024;

/// A batch as the embed half reads it: the chunks it can use, and the ones it cannot, each
/// with its reason, so that one bad chunk costs only itself.
#[derive(Debug, Clone)]
pub struct LoadedBatch {
    pub batch: Batch,
    pub rejected: Vec<RejectedChunk>,
}

/// One chunk of a batch that cannot be embedded (blank or missing text, no id in a versioned
/// batch), kept as it was in the file for its dead letter.
#[derive(Debug, Clone)]
pub struct RejectedChunk {
    pub index: usize,
    pub error: BatchFormatError,
    pub chunk: Value,
}

/// The file's shape before validation: loose where the seed's Python producers are loose.
#[derive(Deserialize)]
struct WireBatch {
    #[serde(default)]
    schema_version: u32,
    batch_id: String,
    timestamp: String,
    source: String,
    chunk_count: usize,
    chunks: Vec<Value>,
    #[serde(default)]
    tombstones: Vec<Value>,
}

/// Decodes and validates a batch file, strictly: any chunk the loader would reject fails the
/// whole file. For tools that check files ([`load_batch`] is what the embed half uses).
pub fn read_batch(key: &str, bytes: &[u8]) -> Result<Batch, BatchFormatError> {
    let loaded = load_batch(key, bytes)?;
    match loaded.rejected.into_iter().next() {
        Some(rejected) => Err(rejected.error),
        None => Ok(loaded.batch),
    }
}

/// Decodes and validates a batch file of any schema version up to [`NEWEST_SCHEMA_VERSION`].
///
/// What the seed's Python producers write by default is read, not refused: a timestamp without
/// a zone in a version-0 file is UTC (`datetime.utcnow().isoformat()`), metadata may hold nulls,
/// nested objects and lists of numbers (flattened as sources flatten them), and lone UTF-16
/// surrogates (what `json.dumps` writes for a broken emoji) become U+FFFD. Every chunk gets its
/// identity from [`Chunk::from_batch`].
///
/// The whole file is refused only when nothing in it can be trusted (not JSON, wrong shape,
/// `chunk_count` disagreeing, a newer schema, a source other than its key's); a bad chunk is
/// returned in [`LoadedBatch::rejected`] and the others are kept.
pub fn load_batch(key: &str, bytes: &[u8]) -> Result<LoadedBatch, BatchFormatError> {
    let err = |field: Option<&str>, reason: String| BatchFormatError {
        key: key.to_string(),
        field: field.map(str::to_string),
        reason,
    };
    let json = decompress(bytes).map_err(|reason| err(None, reason))?;
    let json = replace_lone_surrogates(&json);
    let de = &mut serde_json::Deserializer::from_slice(&json);
    let wire: WireBatch = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        err(field.as_deref(), e.into_inner().to_string())
    })?;
    if wire.schema_version > NEWEST_SCHEMA_VERSION {
        return Err(err(
            Some("schema_version"),
            format!(
                "version {} is newer than this kass understands ({NEWEST_SCHEMA_VERSION})",
                wire.schema_version
            ),
        ));
    }
    let timestamp = parse_timestamp(&wire.timestamp, wire.schema_version)
        .map_err(|reason| err(Some("timestamp"), reason))?;
    if wire.chunk_count != wire.chunks.len() {
        return Err(err(
            Some("chunk_count"),
            format!(
                "says {} but the file holds {} chunks",
                wire.chunk_count,
                wire.chunks.len()
            ),
        ));
    }
    if wire.source.trim().is_empty() {
        return Err(err(Some("source"), "is empty".into()));
    }
    if let Some(parts) = parse_batch_key(key) {
        if parts.source != wire.source {
            return Err(err(
                Some("source"),
                format!(
                    "is {:?} but the key is under {:?}",
                    wire.source, parts.source
                ),
            ));
        }
    }
    let tombstones = read_tombstones(wire.schema_version, wire.tombstones)
        .map_err(|(field, reason)| err(Some(&field), reason))?;
    let mut chunks = Vec::with_capacity(wire.chunks.len());
    let mut rejected = Vec::new();
    for (index, value) in wire.chunks.into_iter().enumerate() {
        match read_chunk(&wire.source, wire.schema_version, &value) {
            Ok(chunk) => chunks.push(chunk),
            Err((field, reason)) => rejected.push(RejectedChunk {
                index,
                error: err(Some(&format!("chunks[{index}]{field}")), reason),
                chunk: value,
            }),
        }
    }
    let batch = Batch {
        schema_version: wire.schema_version,
        batch_id: wire.batch_id,
        timestamp,
        source: wire.source,
        chunk_count: wire.chunk_count,
        chunks,
        tombstones,
    };
    Ok(LoadedBatch { batch, rejected })
}

/// The JSON of a file, gzip or not; a plain file is not copied.
fn decompress(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_BATCH_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("bad gzip: {e}"))?;
    if json.len() as u64 > MAX_BATCH_BYTES {
        return Err(format!("decompresses to more than {MAX_BATCH_BYTES} bytes"));
    }
    Ok(Cow::Owned(json))
}

/// RFC 3339 with a zone; in a version-0 file also an ISO 8601 time without one, read as UTC
/// (what Python's `datetime.utcnow().isoformat()` writes).
fn parse_timestamp(text: &str, schema_version: u32) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok());
    match naive {
        Some(t) if schema_version == 0 => Ok(t.and_utc()),
        Some(_) => Err(format!(
            "{text:?} has no time zone (schema version {schema_version} requires RFC 3339, \
             such as 2025-10-06T12:00:00Z)"
        )),
        None => Err(format!(
            "{text:?} is not a date-time (expected RFC 3339, such as 2025-10-06T12:00:00Z)"
        )),
    }
}

/// The documents a batch says are gone. A malformed tombstone refuses the whole file: half
/// a list of deletions is worse than none, since a retry after the fix would redo it all.
fn read_tombstones(
    schema_version: u32,
    values: Vec<Value>,
) -> Result<Vec<Tombstone>, (String, String)> {
    if !values.is_empty() && schema_version < TOMBSTONES_SCHEMA_VERSION {
        return Err((
            "tombstones".into(),
            format!(
                "need schema_version {TOMBSTONES_SCHEMA_VERSION} (this file says {schema_version})"
            ),
        ));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let tombstone: Tombstone = serde_json::from_value(value)
                .map_err(|e| (format!("tombstones[{i}]"), e.to_string()))?;
            if tombstone.document_id.trim().is_empty() {
                return Err((
                    format!("tombstones[{i}].document_id"),
                    "is empty".to_string(),
                ));
            }
            Ok(tombstone)
        })
        .collect()
}

/// One chunk, or the field (after `chunks[i]`) and reason it cannot be used.
fn read_chunk(
    source: &str,
    schema_version: u32,
    value: &Value,
) -> Result<BatchChunk, (String, String)> {
    let fail = |field: &str, reason: &str| (field.to_string(), reason.to_string());
    let object = value
        .as_object()
        .ok_or_else(|| fail("", "is not an object"))?;
    let text = match object.get("text") {
        None | Some(Value::Null) => return Err(fail(".text", "is missing")),
        Some(Value::String(text)) if text.trim().is_empty() => {
            return Err(fail(".text", "is blank: nothing to embed"))
        }
        Some(Value::String(text)) => text.clone(),
        Some(other) => {
            return Err(fail(
                ".text",
                &format!("is a {}, not a string", json_type(other)),
            ))
        }
    };
    let id = match object.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) if schema_version == 0 => String::new(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(fail(
                ".id",
                &format!("is missing (schema version {schema_version} requires a chunk id)"),
            ))
        }
        Some(other) => {
            return Err(fail(
                ".id",
                &format!("is a {}, not a string", json_type(other)),
            ))
        }
    };
    let mut metadata = Metadata::new();
    match object.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            flatten_json("", Value::Object(fields.clone()), &mut metadata)
        }
        Some(other) => {
            return Err(fail(
                ".metadata",
                &format!("is a {}, not an object", json_type(other)),
            ))
        }
    }
    match metadata.get(chunk_keys::DOCUMENT_VERSION) {
        None => {}
        Some(MetaValue::Int(v)) if *v >= 0 => {}
        Some(other) => {
            return Err(fail(
                &format!(".metadata.{}", chunk_keys::DOCUMENT_VERSION),
                &format!("is {other:?}, not a version (unix milliseconds, a whole number >= 0)"),
            ))
        }
    }
    let chunk = Chunk::from_batch(source, id, text, metadata);
    Ok(BatchChunk {
        id: chunk.id,
        text: chunk.text,
        metadata: chunk.metadata,
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "slack/chunked/year=2025/month=10/day=06/batch_x.json";

    fn seed(chunks: Value, timestamp: &str) -> Vec<u8> {
        let n = chunks.as_array().unwrap().len();
        serde_json::to_vec(&json!({
            "batch_id": "x", "timestamp": timestamp, "source": "slack",
            "chunk_count": n, "chunks": chunks
        }))
        .unwrap()
    }

    #[test]
    fn what_python_writes_by_default_is_read() {
        let bytes = seed(
            json!([{"text": "hi", "metadata": {
                "channel": "general", "thread": null, "author": {"name": "Ann"},
                "scores": [1, 2.5], "start_time": "2025-10-06T09:01:00"
            }}]),
            "2025-10-06T12:00:00.123456",
        );
        let batch = read_batch(KEY, &bytes).unwrap();
        assert_eq!(
            batch.timestamp.to_rfc3339(),
            "2025-10-06T12:00:00.123456+00:00"
        );
        let meta = &batch.chunks[0].metadata;
        assert_eq!(meta["author.name"].as_str(), Some("Ann"));
        assert!(!meta.contains_key("thread"));
        assert!(matches!(&meta["scores"], crate::MetaValue::List(l) if l.len() == 2));
        assert!(meta["document_id"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(meta["content_hash"].as_str().is_some());
    }

    #[test]
    fn tombstones_are_read_from_version_2_only() {
        let with = |version: u32, tombstones: Value| {
            serde_json::to_vec(&json!({"schema_version": version, "batch_id": "x",
                "timestamp": "2025-10-06T12:00:00Z", "source": "slack", "chunk_count": 0,
                "chunks": [], "tombstones": tombstones}))
            .unwrap()
        };
        let batch = read_batch(
            KEY,
            &with(
                2,
                json!([{"document_id": "C1/2025-10-06", "reason": "deleted"}]),
            ),
        )
        .unwrap();
        assert_eq!(batch.tombstones[0].document_id, "C1/2025-10-06");
        let old = read_batch(KEY, &with(1, json!([{"document_id": "C1"}])))
            .unwrap_err()
            .to_string();
        assert!(
            old.contains("tombstones") && old.contains("schema_version 2"),
            "{old}"
        );
        let blank = read_batch(KEY, &with(2, json!([{"document_id": " "}])))
            .unwrap_err()
            .to_string();
        assert!(blank.contains("tombstones[0].document_id"), "{blank}");
    }

    #[test]
    fn a_lone_surrogate_becomes_a_replacement_character() {
        let bytes = br#"{"batch_id":"x","timestamp":"2025-10-06T12:00:00Z","source":"slack","chunk_count":1,"chunks":[{"text":"broken \ud83d emoji \\ud83d kept"}]}"#;
        let batch = read_batch(KEY, bytes).unwrap();
        assert_eq!(batch.chunks[0].text, "broken \u{fffd} emoji \\ud83d kept");
    }

    #[test]
    fn a_blank_chunk_is_rejected_alone() {
        let bytes = seed(
            json!([{"text": "one"}, {"text": "  \n"}, {"text": null}, {"text": "four"}]),
            "2025-10-06T12:00:00Z",
        );
        let loaded = load_batch(KEY, &bytes).unwrap();
        assert_eq!(loaded.batch.chunks.len(), 2);
        let fields: Vec<_> = loaded
            .rejected
            .iter()
            .map(|r| r.error.field.clone().unwrap())
            .collect();
        assert_eq!(fields, ["chunks[1].text", "chunks[2].text"]);
        assert!(loaded.rejected[0].error.to_string().contains("blank"));
        assert!(
            read_batch(KEY, &bytes).is_err(),
            "the strict reader refuses the file"
        );
    }

    #[test]
    fn a_versioned_batch_needs_a_zone_and_says_so() {
        let mut value: Value = serde_json::from_slice(&seed(
            json!([{"id": "a", "text": "one"}]),
            "2025-10-06T12:00:00",
        ))
        .unwrap();
        value["schema_version"] = json!(1);
        let err = read_batch(KEY, &serde_json::to_vec(&value).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timestamp") && err.contains("has no time zone"),
            "{err}"
        );
    }
}
