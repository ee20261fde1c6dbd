//! `kass inspect`: what is in a batch file, validated exactly as the embed half reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use kass_pipeline::batch::{batch_source, read_batch};
use kass_pipeline::model::chunk_keys;
use kass_pipeline::store::build_store;

use kass::config::KassConfig;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A batch file on disk, or a key in the store configured by --config.
    pub target: String,
    /// Path to kass.toml (used when TARGET is a store key).
    #[arg(short, long, env = "KASS_CONFIG", default_value = "kass.toml")]
    pub config: std::path::PathBuf,
    /// Also print the first N chunks.
    #[arg(long, default_value_t = 0)]
    pub chunks: usize,
}

pub async fn inspect(args: InspectArgs) -> Result<()> {
    let (name, bytes) = if Path::new(&args.target).is_file() {
        (
            args.target.clone(),
            std::fs::read(&args.target).with_context(|| format!("cannot read {}", args.target))?,
        )
    } else {
        let config = KassConfig::load(&args.config)?;
        let store = build_store(&config.store).await?;
        (store.location(&args.target), store.get(&args.target).await?)
    };
    let key = strip_to_key(&args.target);
    let batch = read_batch(key, &bytes)?;
    let documents: BTreeSet<&str> = batch
        .chunks
        .iter()
        .filter_map(|c| {
            c.metadata
                .get(chunk_keys::DOCUMENT_ID)
                .and_then(|v| v.as_str())
        })
        .collect();
    let mut metadata_keys: BTreeMap<&str, usize> = BTreeMap::new();
    for chunk in &batch.chunks {
        for k in chunk.metadata.keys() {
            *metadata_keys.entry(k).or_default() += 1;
        }
    }
    let text_bytes: usize = batch.chunks.iter().map(|c| c.text.len()).sum();
    println!("batch         {name}");
    println!("schema        {}", batch.schema_version);
    println!("batch_id      {}", batch.batch_id);
    println!(
        "timestamp     {}",
        batch
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    println!("source        {}", batch.source);
    println!("chunk_count   {}", batch.chunk_count);
    println!("documents     {}", documents.len());
    println!("file bytes    {}", bytes.len());
    println!("text bytes    {text_bytes}");
    let keys: Vec<String> = metadata_keys
        .iter()
        .map(|(k, n)| format!("{k}({n})"))
        .collect();
    println!("metadata      {}", keys.join(" "));
    for chunk in batch.chunks.iter().take(args.chunks) {
        println!("\n--- {} ---\n{}", chunk.id, chunk.text);
    }
    Ok(())
}

/// A path like `/data/.kass-data/slack/chunked/...` names the key `slack/chunked/...`: keep the
/// part the batch-key grammar takes for a batch file.
fn strip_to_key(path: &str) -> &str {
    path.match_indices('/')
        .map(|(i, _)| &path[i + 1..])
        .find(|rest| batch_source(rest).is_some())
        .unwrap_or(path)
}
