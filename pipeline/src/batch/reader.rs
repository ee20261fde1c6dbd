use std::io::Read;

use super::{parse_batch_key, Batch, SCHEMA_VERSION};
use crate::model::{content_hash, Chunk};

/// Why a batch file was rejected, naming the key and, where there is one, the field.
#[derive(Debug, thiserror::Error)]
#[error("batch {key}: {}{reason}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct BatchFormatError {
    pub key: String,
    pub field: Option<String>,
    pub reason: String,
}

/// Largest decompressed batch accepted: far above what the writer produces (`max_bytes`,
/// default 4 MiB), small enough that a hostile `.json.gz` cannot exhaust memory.
pub const MAX_BATCH_BYTES: u64 = 256 * 1024 * 1024;

/// Decodes and validates a batch file. Accepts every schema version up to [`SCHEMA_VERSION`];
/// version-0 chunks without an `id` get the id the writer would have given them.
pub fn read_batch(key: &str, bytes: &[u8]) -> Result<Batch, BatchFormatError> {
    let err = |field: Option<String>, reason: String| BatchFormatError {
        key: key.to_string(),
        field,
        reason,
    };
    let mut json = Vec::new();
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_BATCH_BYTES + 1)
            .read_to_end(&mut json)
            .map_err(|e| err(None, format!("bad gzip: {e}")))?;
        if json.len() as u64 > MAX_BATCH_BYTES {
            return Err(err(
                None,
                format!("decompresses to more than {MAX_BATCH_BYTES} bytes"),
            ));
        }
        &json[..]
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let mut batch: Batch = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        err(field, e.into_inner().to_string())
    })?;
    if batch.schema_version > SCHEMA_VERSION {
        return Err(err(
            Some("schema_version".into()),
            format!(
                "version {} is newer than this kass understands ({SCHEMA_VERSION})",
                batch.schema_version
            ),
        ));
    }
    if batch.chunk_count != batch.chunks.len() {
        return Err(err(
            Some("chunk_count".into()),
            format!(
                "says {} but the file holds {} chunks",
                batch.chunk_count,
                batch.chunks.len()
            ),
        ));
    }
    if batch.source.is_empty() {
        return Err(err(Some("source".into()), "is empty".into()));
    }
    if let Some(parts) = parse_batch_key(key) {
        if parts.source != batch.source {
            return Err(err(
                Some("source".into()),
                format!(
                    "is {:?} but the key is under {:?}",
                    batch.source, parts.source
                ),
            ));
        }
    }
    for (i, chunk) in batch.chunks.iter_mut().enumerate() {
        if chunk.text.trim().is_empty() {
            return Err(err(Some(format!("chunks[{i}].text")), "is empty".into()));
        }
        if chunk.id.is_empty() {
            if batch.schema_version >= 1 {
                return Err(err(Some(format!("chunks[{i}].id")), "is missing".into()));
            }
            let document_id = chunk
                .metadata
                .get("document_id")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}#{i}", batch.batch_id));
            let ordinal = chunk
                .metadata
                .get("chunk_index")
                .and_then(|v| v.as_i64())
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(i);
            chunk.id = Chunk::derive_id(
                &batch.source,
                &document_id,
                ordinal,
                &content_hash(&chunk.text),
            );
        }
    }
    Ok(batch)
}
