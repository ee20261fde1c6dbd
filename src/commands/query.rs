//! `kass query` and `kass stats`: what a user asks of the collection a run filled.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use kass::assembly::build_embedder;
use kass::config::KassConfig;
use kass_pipeline::model::chunk_keys;
use kass_sinks::chroma::target::all_of;
use kass_sinks::chroma::ChromaTarget;

use crate::ConfigArg;

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// What to search for.
    pub text: String,
    /// How many chunks to show.
    #[arg(short, default_value_t = 5)]
    pub k: usize,
    /// Only chunks whose metadata has this value (repeatable; numbers and true/false are
    /// matched as such), e.g. `--where source=slack --where channel=general`.
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Only chunks whose list metadata (labels, tags) holds this value (repeatable), e.g.
    /// `--contains labels=bug`.
    #[arg(long = "contains", value_name = "KEY=VALUE")]
    pub contains: Vec<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

fn filter(filters: &[String], contains: &[String]) -> Result<Option<Value>> {
    let mut conditions = Vec::new();
    for f in contains {
        let Some((key, value)) = f.split_once('=') else {
            bail!("--contains {f}: expected KEY=VALUE");
        };
        conditions.push(json!({ key: {"$contains": value} }));
    }
    for f in filters {
        let Some((key, value)) = f.split_once('=') else {
            bail!("--where {f}: expected KEY=VALUE");
        };
        let value = if let Ok(i) = value.parse::<i64>() {
            json!(i)
        } else if let Ok(x) = value.parse::<f64>() {
            json!(x)
        } else if let Ok(b) = value.parse::<bool>() {
            json!(b)
        } else {
            json!(value)
        };
        conditions.push(json!({ key: value }));
    }
    Ok((!conditions.is_empty()).then(|| all_of(conditions)))
}

fn text_of(metadata: &Map<String, Value>, key: &str) -> String {
    match metadata.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

pub async fn query(args: QueryArgs) -> Result<()> {
    let config = KassConfig::load(&args.config.config)?;
    let target = ChromaTarget::open(&config.chroma).await?;
    let embedder = build_embedder(&config)?;
    if let Some(held) = target.model() {
        if &held != embedder.model().as_ref() {
            bail!(
                "collection `{}` holds vectors of {held}, but [embed] is configured for {}: a query must be embedded with the collection's model",
                config.chroma.collection,
                embedder.model()
            );
        }
    }
    let vector = embedder.embed_query(&args.text).await?;
    let result = target
        .client
        .query(
            &target.collection.id,
            &vector,
            args.k.max(1),
            filter(&args.filters, &args.contains)?.as_ref(),
        )
        .await
        .context("query failed")?;
    let ids = result.ids.into_iter().next().unwrap_or_default();
    let documents = result
        .documents
        .and_then(|d| d.into_iter().next())
        .unwrap_or_default();
    let metadatas = result
        .metadatas
        .and_then(|m| m.into_iter().next())
        .unwrap_or_default();
    let distances = result
        .distances
        .and_then(|d| d.into_iter().next())
        .unwrap_or_default();
    if ids.is_empty() && !args.json {
        println!(
            "no matching chunks in collection `{}`",
            config.chroma.collection
        );
    }
    for (rank, id) in ids.iter().enumerate() {
        let metadata = metadatas.get(rank).cloned().flatten().unwrap_or_default();
        let document = documents.get(rank).cloned().flatten().unwrap_or_default();
        // Cosine distance in [0, 2]; 1 - distance is the cosine similarity.
        let score = distances.get(rank).copied().flatten().map(|d| 1.0 - d);
        if args.json {
            println!(
                "{}",
                json!({"rank": rank + 1, "id": id, "score": score, "text": document, "metadata": metadata})
            );
            continue;
        }
        let place = ["channel", "path", "title"]
            .iter()
            .map(|k| text_of(&metadata, k))
            .find(|v| !v.is_empty())
            .unwrap_or_else(|| text_of(&metadata, chunk_keys::DOCUMENT_ID));
        let time = text_of(&metadata, "start_time");
        let excerpt: String = document.split_whitespace().collect::<Vec<_>>().join(" ");
        let excerpt: String = excerpt.chars().take(240).collect();
        println!(
            "{}. {:.3}  {} · {}{}\n   {}\n",
            rank + 1,
            score.unwrap_or(f32::NAN),
            text_of(&metadata, "source"),
            place,
            if time.is_empty() {
                String::new()
            } else {
                format!(" · {time}")
            },
            excerpt
        );
    }
    Ok(())
}

/// What a collection holds: where it is, its model, and its chunks per source.
pub struct CollectionCounts {
    pub url: String,
    pub model: String,
    pub total: u64,
    pub per_source: std::collections::BTreeMap<String, u64>,
}

/// Counts the collection `[chroma]` names, per source (read page by page).
pub async fn collection_counts(config: &KassConfig) -> Result<CollectionCounts> {
    let target = ChromaTarget::open(&config.chroma).await?;
    let id = &target.collection.id;
    let total = target.client.count(id).await?;
    let mut per_source = std::collections::BTreeMap::<String, u64>::new();
    let page = 1000;
    let mut offset = 0;
    loop {
        let got = target
            .client
            .get(id, None, None, &["metadatas"], Some(page), Some(offset))
            .await?;
        let n = got.ids.len();
        for m in got.metadatas.unwrap_or_default().into_iter().flatten() {
            *per_source.entry(text_of(&m, "source")).or_default() += 1;
        }
        if n < page {
            break;
        }
        offset += n;
    }
    let model = target
        .model()
        .map_or("unknown (not written by kass)".to_string(), |m| {
            m.to_string()
        });
    Ok(CollectionCounts {
        url: target.client.url().to_string(),
        model,
        total,
        per_source,
    })
}

pub async fn stats(args: StatsArgs) -> Result<()> {
    let config = KassConfig::load(&args.config.config)?;
    let counts = collection_counts(&config).await?;
    println!("collection  {} ({})", config.chroma.collection, counts.url);
    println!("model       {}", counts.model);
    println!("chunks      {}", counts.total);
    for (source, count) in counts.per_source {
        println!("  {source:<12} {count}");
    }
    Ok(())
}
