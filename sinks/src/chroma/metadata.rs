//! Chunk metadata in the form Chroma stores: strings, numbers and booleans, flat. kass's
//! metadata is already flat; non-finite floats (which JSON cannot carry) are dropped, and the
//! chunk's own identity fields are always present so that stale chunks can be found later.

use serde_json::{Map, Number, Value};

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
        };
        out.insert(key.clone(), v);
    }
    out.insert("source".into(), chunk.source.clone().into());
    out.insert("document_id".into(), chunk.document_id.clone().into());
    out.insert("chunk_index".into(), (chunk.ordinal as u64).into());
    out
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
        let chunk = Chunk::new("slack", "C1/2025-01-01", 2, "hi".into(), m);
        let out = to_chroma(&chunk);
        assert_eq!(out["channel"], "general");
        assert_eq!(out["message_count"], 3);
        assert_eq!(out["score"], 0.5);
        assert_eq!(out["edited"], true);
        assert!(!out.contains_key("nan"));
        assert_eq!(out["chunk_index"], 2);
        assert_eq!(out["document_id"], "C1/2025-01-01");
        assert_eq!(
            out["content_hash"],
            Value::String(kass_pipeline::model::content_hash("hi"))
        );
    }
}
