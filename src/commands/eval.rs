//! `kass eval`: runs a BEIR-format labelled set through the same pipeline (jsonl source ->
//! chunk -> embed -> Chroma) into its own collection, then scores retrieval.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use kass::assembly::{build_embedder, connect_chroma, embed_half, fetch_half};
use kass::config::KassConfig;
use kass::eval::{best_chunk_per_document, mean, parse_qrels, score};
use kass::source_config::SourceConfig;
use kass_pipeline::model::chunk_keys;
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::{LocalStore, ObjectStore};
use kass_sources::jsonl::JsonlConfig;

use crate::ConfigArg;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// BEIR corpus: one `{"_id", "title", "text"}` per line.
    #[arg(long)]
    pub corpus: PathBuf,
    /// BEIR queries: one `{"_id", "text"}` per line.
    #[arg(long)]
    pub queries: PathBuf,
    /// BEIR qrels: `query-id <tab> corpus-id <tab> score` per line.
    #[arg(long)]
    pub qrels: PathBuf,
    /// Cut-off of the metrics.
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// The labelled set's own collection, kept apart from real data. Re-running on the same
    /// corpus embeds nothing again; use another name for another corpus.
    #[arg(long, default_value = "kass-eval")]
    pub collection: String,
    /// kass.toml for the embedding, chunking and Chroma settings (its sources and store are
    /// not used); defaults apply when the file does not exist.
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Deserialize)]
struct Query {
    #[serde(rename = "_id")]
    id: serde_json::Value,
    text: String,
}

fn read_queries(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read queries {}", path.display()))?;
    let mut queries = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let q: Query = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: expected {{\"_id\": ..., \"text\": ...}}",
                path.display(),
                n + 1
            )
        })?;
        let id = match q.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        queries.push((id, q.text));
    }
    Ok(queries)
}

pub async fn eval(args: EvalArgs) -> Result<()> {
    let mut config = if args.config.config.exists() {
        KassConfig::load(&args.config.config)?
    } else {
        KassConfig::parse("")?
    };
    let qrels_text = std::fs::read_to_string(&args.qrels)
        .with_context(|| format!("cannot read qrels {}", args.qrels.display()))?;
    let qrels =
        parse_qrels(&qrels_text, &args.qrels.display().to_string()).map_err(anyhow::Error::msg)?;
    let queries = read_queries(&args.queries)?;
    config.sources = vec![SourceConfig::Jsonl(JsonlConfig {
        name: "eval".into(),
        path: args.corpus.clone(),
    })];
    config.chroma.collection = args.collection.clone();
    config.validate()?;

    // Batch files of the labelled set are scratch: a temporary store.
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let store: std::sync::Arc<dyn ObjectStore> =
        std::sync::Arc::new(LocalStore::new(scratch.path())?);
    let embedder = build_embedder(&config)?;
    let target = connect_chroma(&config, &embedder).await?;
    let batches = fetch_half(
        &config,
        store.clone(),
        Shutdown::default(),
        &Default::default(),
    )?;
    let report = embed_half(&config, batches, store, embedder.clone(), target.clone())
        .run(|_| {})
        .await?;
    if report.dead_letters > 0 {
        bail!(
            "{} corpus item(s) failed on the way into Chroma (see {}): scores would be wrong",
            report.dead_letters,
            scratch.path().display()
        );
    }

    let mut per_query = Vec::new();
    for (id, text) in &queries {
        let Some(relevant) = qrels.get(id) else {
            continue;
        };
        let vector = embedder.embed_query(text).await?;
        // Several chunks of one document may rank high: fetch more hits than k.
        let hits = target
            .client
            .query(&target.collection.id, &vector, args.k * 4, None)
            .await?;
        let metadatas = hits
            .metadatas
            .and_then(|m| m.into_iter().next())
            .unwrap_or_default();
        let documents: Vec<String> = metadatas
            .iter()
            .filter_map(|m| {
                m.as_ref()?
                    .get(chunk_keys::DOCUMENT_ID)?
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        let ranked = best_chunk_per_document(documents.iter().map(String::as_str));
        per_query.push(score(&ranked, relevant, args.k));
    }
    if per_query.is_empty() {
        bail!(
            "no query of {} has a label in {}",
            args.queries.display(),
            args.qrels.display()
        );
    }
    let m = mean(&per_query);
    let k = args.k;
    println!(
        "nDCG@{k} {:.4}  recall@{k} {:.4}  MRR@{k} {:.4}  ({} queries, collection `{}`, {})",
        m.ndcg,
        m.recall,
        m.mrr,
        per_query.len(),
        args.collection,
        embedder.model()
    );
    Ok(())
}
