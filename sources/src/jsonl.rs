//! The `jsonl` source: documents one per line, from a file or a directory of `*.jsonl` files.
//!
//! A line is either
//! - a kass [`Document`] as JSON (it has `id` and `kind`; a missing `source` becomes the
//!   configured name), which is how documents from another system or an earlier run come in; or
//! - a BEIR corpus record, `{"_id": "...", "title": "...", "text": "...", ...}`, which becomes a
//!   `text` document keeping the title, with the record's other fields (and those of a
//!   nested `metadata` object) as metadata, flattened: nested maps to dotted keys, arrays to
//!   string lists, nulls dropped. This reads benchmark corpora as they are published.
//!
//! Files are read line by line, never whole. A line that is neither goes to the dead letters as
//! `file:line` with the parser's reason, and the rest of the file is read.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::cursor::{fingerprint, Resume};
use crate::{BuildSource, SourceDeps};
use kass_pipeline::{
    model::flatten_json, telemetry, Document, DocumentKind, FailureKind, FatalError, ItemError,
    ItemKind, Metadata, Outlet, RawRecord, Source, StageContext,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// Longest line read; a longer one is dead-lettered (its first 200 bytes kept).
const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads documents from JSON Lines files.
///
/// ```toml
/// [[sources]]
/// type = "jsonl"
/// name = "scifact"
/// path = "/data/beir/scifact/corpus.jsonl"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// The `source` label on documents whose line does not carry one; also names this source's
    /// batches and metrics.
    #[serde(default = "default_name")]
    pub name: String,
    /// A `.jsonl` file, or a directory whose `*.jsonl` files are read in name order (not
    /// recursively).
    pub path: PathBuf,
}

fn default_name() -> String {
    "jsonl".to_string()
}

impl JsonlConfig {
    /// A config reading `path`, named `jsonl`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            name: default_name(),
            path: path.into(),
        }
    }
}

impl BuildSource for JsonlConfig {
    type Source = JsonlSource;

    fn name(&self) -> &str {
        &self.name
    }

    /// Checks that the path exists. With a cursor, reads only files changed since its run (and
    /// records all it reads in it).
    fn build_with(self, deps: SourceDeps) -> Result<JsonlSource, FatalError> {
        if !self.path.exists() {
            return Err(FatalError::Config(format!(
                "jsonl source `{}`: {} does not exist",
                self.name,
                self.path.display()
            )));
        }
        Ok(JsonlSource {
            config: self,
            resume: deps.cursor.into(),
        })
    }
}

/// The running source; build it from a [`JsonlConfig`].
#[derive(Debug)]
pub struct JsonlSource {
    config: JsonlConfig,
    resume: Resume,
}

#[async_trait]
impl Source for JsonlSource {
    type Output = RawRecord;

    fn name(&self) -> &str {
        "jsonl"
    }

    async fn run(
        self: Box<Self>,
        out: Outlet<RawRecord>,
        ctx: StageContext,
    ) -> Result<(), FatalError> {
        for file in self.files().await? {
            let fingerprint = tokio::fs::metadata(&file)
                .await
                .map_or_else(|_| String::new(), |m| fingerprint(&m));
            let name = file
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            if self.resume.unchanged(&name, &fingerprint) {
                continue;
            }
            if !self.read_file(&file, &out, &ctx).await? {
                break;
            }
            self.resume.read(&name, fingerprint);
        }
        Ok(())
    }
}

impl JsonlSource {
    async fn files(&self) -> Result<Vec<PathBuf>, FatalError> {
        let path = &self.config.path;
        let unreadable = |e: std::io::Error| {
            FatalError::Config(format!(
                "jsonl source `{}`: cannot read {}: {e}",
                self.config.name,
                path.display()
            ))
        };
        if !tokio::fs::metadata(path)
            .await
            .map_err(unreadable)?
            .is_dir()
        {
            return Ok(vec![path.clone()]);
        }
        let mut entries = tokio::fs::read_dir(path).await.map_err(unreadable)?;
        let mut files = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(unreadable)? {
            let file = entry.path();
            if file.extension().is_some_and(|e| e == "jsonl") && file.is_file() {
                files.push(file);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Sends every good line of `file`; `false` once the run should stop.
    async fn read_file(
        &self,
        file: &Path,
        out: &kass_pipeline::Outlet<RawRecord>,
        ctx: &StageContext,
    ) -> Result<bool, FatalError> {
        let source = &self.config.name;
        let opened = tokio::fs::File::open(file).await.map_err(|e| {
            FatalError::Config(format!(
                "jsonl source `{source}`: cannot open {}: {e}",
                file.display()
            ))
        })?;
        let mut reader = BufReader::new(opened);
        let mut line = Vec::new();
        let mut number = 0usize;
        loop {
            if ctx.shutdown.is_triggered() {
                return Ok(false);
            }
            line.clear();
            let read_error = |e: std::io::Error| {
                FatalError::Config(format!(
                    "jsonl source `{source}`: reading {}: {e}",
                    file.display()
                ))
            };
            // Bounded: one runaway line must not take all memory.
            let read = (&mut reader)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut line)
                .await
                .map_err(read_error)?;
            if read == 0 {
                return Ok(true);
            }
            number += 1;
            telemetry::source_bytes(source, read);
            let at = format!("{}:{number}", file.display());
            let too_long = line.len() as u64 > MAX_LINE_BYTES;
            if too_long {
                // Skip the rest of the line, still bounded, then report it.
                let mut rest = Vec::new();
                while !line.ends_with(b"\n") && !rest.ends_with(b"\n") {
                    rest.clear();
                    let n = (&mut reader)
                        .take(MAX_LINE_BYTES)
                        .read_until(b'\n', &mut rest)
                        .await
                        .map_err(read_error)?;
                    if n == 0 {
                        break;
                    }
                }
                line.truncate(200);
            }
            let parsed = if too_long {
                Err(ItemError::new(
                    FailureKind::LineTooLong,
                    format!("line longer than {MAX_LINE_BYTES} bytes"),
                ))
            } else {
                parse_line(&line, source)
            };
            match parsed {
                Ok(None) => {}
                Ok(Some(document)) => {
                    if out.send(RawRecord::Document(document)).await.is_err() {
                        return Ok(false);
                    }
                }
                Err(error) => {
                    let error = ItemError::new(error.error_type, format!("{at}: {}", error.reason));
                    let item = serde_json::json!({
                        "path": file.display().to_string(),
                        "line": number,
                        "text": String::from_utf8_lossy(&line).trim_end(),
                    });
                    ctx.dead_letter(source, &at, ItemKind::Input, &item, &error)
                        .await?;
                }
            }
        }
    }
}

/// One line as a document; `None` for a blank line.
fn parse_line(line: &[u8], source: &str) -> Result<Option<Document>, ItemError> {
    let text = std::str::from_utf8(line)
        .map_err(|e| ItemError::new(FailureKind::InvalidUtf8, e.to_string()))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ItemError::new(FailureKind::MalformedJson, e.to_string()))?;
    let Value::Object(mut record) = value else {
        return Err(ItemError::new(
            FailureKind::MalformedRecord,
            "not a JSON object".to_string(),
        ));
    };
    if record.contains_key("id") && record.contains_key("kind") {
        record
            .entry("source")
            .or_insert_with(|| Value::String(source.to_string()));
        if let Some(metadata) = record.remove("metadata") {
            let mut flat = Metadata::new();
            flatten_json("", metadata, &mut flat);
            let flat = serde_json::to_value(flat).map_err(|e| {
                ItemError::new(FailureKind::MalformedDocument, format!("metadata: {e}"))
            })?;
            record.insert("metadata".into(), flat);
        }
        return serde_json::from_value(Value::Object(record))
            .map(Some)
            .map_err(|e| ItemError::new(FailureKind::MalformedDocument, format!("document: {e}")));
    }
    if record.contains_key("_id") {
        return beir_document(record, source).map(Some);
    }
    Err(ItemError::new(
        FailureKind::MalformedRecord,
        "neither a document (`id`, `kind`) nor a BEIR record (`_id`, `text`)",
    ))
}

/// A BEIR corpus record as a text document.
fn beir_document(mut record: Map<String, Value>, source: &str) -> Result<Document, ItemError> {
    let id = match record.remove("_id") {
        Some(Value::String(id)) => id,
        Some(Value::Number(id)) => id.to_string(),
        _ => {
            return Err(ItemError::new(
                FailureKind::MalformedRecord,
                "BEIR record: field `_id` must be a string or number",
            ))
        }
    };
    let Some(Value::String(text)) = record.remove("text") else {
        return Err(ItemError::new(
            FailureKind::MalformedRecord,
            format!("BEIR record {id:?}: field `text` must be a string"),
        ));
    };
    let title = match record.remove("title") {
        Some(Value::String(title)) if !title.trim().is_empty() => Some(title),
        _ => None,
    };
    let mut document = Document::text(source, id, DocumentKind::Text, text);
    document.title = title;
    // BEIR corpora put extra fields in a top-level `metadata` object; they are the record's
    // own metadata, so they are not prefixed.
    if let Some(Value::Object(nested)) = record.remove("metadata") {
        record.extend(nested);
    }
    flatten_json("", Value::Object(record), &mut document.metadata);
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kass_pipeline::MetaValue;

    #[test]
    fn blank_lines_are_skipped() {
        assert!(parse_line(b"  \n", "s").unwrap().is_none());
    }

    #[test]
    fn beir_numeric_id_and_nested_metadata_are_kept() {
        let d = parse_line(
            br#"{"_id": 42, "title": "", "text": "t", "metadata": {"year": 2020, "tags": ["x"]}}"#,
            "s",
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.id, "42");
        assert_eq!(d.title, None);
        assert_eq!(d.metadata.get("year"), Some(&MetaValue::Int(2020)));
        assert_eq!(
            d.metadata.get("tags"),
            Some(&MetaValue::List(vec!["x".into()]))
        );
    }

    #[test]
    fn document_metadata_is_flattened_to_dotted_keys() {
        let d = parse_line(
            br#"{"id": "d", "kind": "text", "text": "t", "metadata": {"author": {"name": "Ann"}, "labels": ["a", "b"], "gone": null}}"#,
            "s",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            d.metadata.get("author.name"),
            Some(&MetaValue::Str("Ann".into()))
        );
        assert_eq!(
            d.metadata.get("labels"),
            Some(&MetaValue::List(vec!["a".into(), "b".into()]))
        );
        assert!(!d.metadata.contains_key("gone"));
    }

    #[test]
    fn beir_record_without_text_names_the_field() {
        let e = parse_line(br#"{"_id": "a", "title": "t"}"#, "s").unwrap_err();
        assert!(e.reason.contains("`text`"), "{}", e.reason);
    }
}
