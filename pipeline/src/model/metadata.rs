use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Metadata values are deliberately flat: scalars and lists of strings are what JSON batch files
/// and vector stores (Chroma: strings, numbers, bools and arrays of one type) all carry without
/// loss. Nested input is flattened into dotted keys by [`flatten_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Labels, tags, assignees: filterable with Chroma's `$contains`.
    List(Vec<String>),
}

/// Adds `value` to `out` under `key` in the flat form: objects become dotted keys (`a.b.c`),
/// arrays of scalars become string lists (numbers and bools written as JSON writes them),
/// nulls, empty arrays and arrays holding objects or arrays are dropped (no flat form keeps
/// their meaning).
pub fn flatten_json(key: &str, value: Value, out: &mut Metadata) {
    match value {
        Value::Null => {}
        Value::Bool(b) => {
            out.insert(key.to_string(), MetaValue::Bool(b));
        }
        Value::Number(n) => {
            let v = match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => MetaValue::Int(i),
                (None, Some(f)) => MetaValue::Float(f),
                (None, None) => MetaValue::Str(n.to_string()),
            };
            out.insert(key.to_string(), v);
        }
        Value::String(s) => {
            out.insert(key.to_string(), MetaValue::Str(s));
        }
        Value::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Null => {}
                    Value::String(s) => list.push(s),
                    Value::Bool(_) | Value::Number(_) => list.push(item.to_string()),
                    Value::Array(_) | Value::Object(_) => return,
                }
            }
            if !list.is_empty() {
                out.insert(key.to_string(), MetaValue::List(list));
            }
        }
        Value::Object(fields) => {
            for (child, value) in fields {
                let dotted = if key.is_empty() {
                    child
                } else {
                    format!("{key}.{child}")
                };
                flatten_json(&dotted, value, out);
            }
        }
    }
}

/// Ordered so that serialised batches are byte-for-byte reproducible.
pub type Metadata = BTreeMap<String, MetaValue>;

impl From<&str> for MetaValue {
    fn from(v: &str) -> Self {
        MetaValue::Str(v.to_string())
    }
}
impl From<String> for MetaValue {
    fn from(v: String) -> Self {
        MetaValue::Str(v)
    }
}
impl From<i64> for MetaValue {
    fn from(v: i64) -> Self {
        MetaValue::Int(v)
    }
}
impl From<usize> for MetaValue {
    fn from(v: usize) -> Self {
        MetaValue::Int(v as i64)
    }
}
impl From<bool> for MetaValue {
    fn from(v: bool) -> Self {
        MetaValue::Bool(v)
    }
}
impl From<Vec<String>> for MetaValue {
    fn from(v: Vec<String>) -> Self {
        MetaValue::List(v)
    }
}
impl From<f64> for MetaValue {
    fn from(v: f64) -> Self {
        MetaValue::Float(v)
    }
}

impl MetaValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            MetaValue::Int(i) => Some(*i),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_maps_become_dotted_keys_and_arrays_string_lists() {
        let mut out = Metadata::new();
        flatten_json(
            "",
            json!({
                "author": {"name": "Ann", "id": 7, "team": {"name": "core"}},
                "labels": ["bug", "p1"],
                "numbers": [1, 2.5, true, null],
                "none": null,
                "empty": [],
                "deep": [{"a": 1}],
                "ratio": 0.25
            }),
            &mut out,
        );
        assert_eq!(out["author.name"], MetaValue::Str("Ann".into()));
        assert_eq!(out["author.id"], MetaValue::Int(7));
        assert_eq!(out["author.team.name"], MetaValue::Str("core".into()));
        assert_eq!(
            out["labels"],
            MetaValue::List(vec!["bug".into(), "p1".into()])
        );
        assert_eq!(
            out["numbers"],
            MetaValue::List(vec!["1".into(), "2.5".into(), "true".into()])
        );
        assert_eq!(out["ratio"], MetaValue::Float(0.25));
        for dropped in ["none", "empty", "deep", "author"] {
            assert!(!out.contains_key(dropped), "{dropped} kept");
        }
    }

    #[test]
    fn lists_round_trip_through_json_with_the_other_values() {
        let mut m = Metadata::new();
        m.insert("labels".into(), vec!["a".to_string()].into());
        m.insert("n".into(), MetaValue::Int(3));
        m.insert("s".into(), "x".into());
        let back: Metadata = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
