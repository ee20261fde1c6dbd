//! Chunk metadata in the form Chroma stores: strings, numbers, booleans and string arrays, flat.
//! kass's metadata is already flat (sources flatten nested input into dotted keys); non-finite
//! floats (which JSON cannot carry) and empty lists (Chroma cannot type them) are dropped, and
//! the chunk's own identity fields are always present so that stale chunks can be found later.

use serde_json::{Map, Number, Value};

use kass_pipeline::model::chunk_keys;
use kass_pipeline::{Chunk, MetaValue};

pub fn to_chroma(chunk: &Chunk) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in &chunk.metadata {
        let v = match value {
            MetaValue::Bool(b) => Value::Bool(*b),
            MetaValue::Int(i) => Value::Number((*i).into()),
            MetaValue::Float(f) => match Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => continue,
            },
            MetaValue::Str(s) => Value::String(s.clone()),
            MetaValue::List(items) if items.is_empty() => continue,
            MetaValue::List(items) => Value::from(items.clone()),
        };
        out.insert(key.clone(), v);
    }
    out.insert(chunk_keys::SOURCE.into(), chunk.source.clone().into());
    out.insert(
        chunk_keys::DOCUMENT_ID.into(),
        chunk.document_id.clone().into(),
    );
    out.insert(
        chunk_keys::CHUNK_INDEX.into(),
        (chunk.ordinal as u64).into(),
    );
    out
}

/// The metadata key a refusal of one record is about, for a report a user can act on.
/// Chroma names a key of the wrong type in its 422 (`metadatas[0].key: data did not match ...`)
/// but answers a reserved key with a bare 400 (`Invalid metadata at index 0`); those rules
/// (empty keys, keys starting with `#`) are checked here.
pub fn refused_key(message: &str, metadata: &Map<String, Value>) -> Option<String> {
    if let Some(start) = message.find("metadatas[") {
        let rest = &message[start..];
        if let Some(dot) = rest.find("].") {
            let key = &rest[dot + 2..];
            let end = key.find(": ").unwrap_or(key.len());
            let key = &key[..end];
            if metadata.contains_key(key) {
                return Some(key.to_string());
            }
        }
    }
    metadata
        .keys()
        .find(|k| k.is_empty() || k.starts_with('#'))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kass_pipeline::Metadata;

    #[test]
    fn values_keep_their_types_and_bad_floats_are_dropped() {
        let mut m = Metadata::new();
        m.insert("channel".into(), "general".into());
        m.insert("message_count".into(), MetaValue::Int(3));
        m.insert("score".into(), MetaValue::Float(0.5));
        m.insert("nan".into(), MetaValue::Float(f64::NAN));
        m.insert("edited".into(), MetaValue::Bool(true));
        m.insert("labels".into(), vec!["bug".to_string(), "p1".into()].into());
        m.insert("no_labels".into(), MetaValue::List(vec![]));
        let chunk = Chunk::new("slack", "C1/2025-01-01", 2, "hi".into(), m);
        let out = to_chroma(&chunk);
        assert_eq!(out["channel"], "general");
        assert_eq!(out["message_count"], 3);
        assert_eq!(out["score"], 0.5);
        assert_eq!(out["edited"], true);
        assert!(!out.contains_key("nan"));
        assert_eq!(out["labels"], serde_json::json!(["bug", "p1"]));
        assert!(!out.contains_key("no_labels"));
        assert_eq!(out["chunk_index"], 2);
        assert_eq!(out["document_id"], "C1/2025-01-01");
        assert_eq!(
            out["content_hash"],
            Value::String(kass_pipeline::model::content_hash("hi"))
        );
    }

    #[test]
    fn the_refused_key_is_found_from_the_message_or_the_reserved_rules() {
        let mut m = Map::new();
        m.insert("fine".into(), "x".into());
        m.insert("tags".into(), serde_json::json!(["a", 1]));
        let typed = "Failed to deserialize the JSON body into the target type: metadatas[0].tags: \
                     data did not match any variant of untagged enum UpdateMetadataValue";
        assert_eq!(refused_key(typed, &m).as_deref(), Some("tags"));
        m.insert("#channel".into(), "x".into());
        let bare = "Validation error: metadatas: Invalid metadata at index 0";
        assert_eq!(refused_key(bare, &m).as_deref(), Some("#channel"));
        m.remove("#channel");
        assert_eq!(refused_key(bare, &m), None);
    }
}
