//! Chroma upsert throughput of kass's client (`sinks/src/chroma/client.rs`), timed the same way
//! as `scripts/bench_chroma_upsert.py` times the Python `chromadb` client, so that
//! `scripts/bench-chroma-upsert.sh` can put both side by side from one run.
//!
//! ```text
//! cargo bench --bench chroma_upsert -- --url http://127.0.0.1:8000 --records FILE [--batch 500]
//! ```
//! `FILE` is JSON `{"ids", "embeddings", "documents", "metadatas"}`. The records go into a new
//! collection (`--collection`, default `bench-rust`), one upsert per batch, one after another; prints one JSON line.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};

use kass_sinks::chroma::{ChromaClient, ChromaConfig};

#[derive(Deserialize)]
struct Records {
    ids: Vec<String>,
    embeddings: Vec<Vec<f32>>,
    documents: Vec<String>,
    metadatas: Vec<Map<String, Value>>,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(file)) = (arg(&args, "--url"), arg(&args, "--records")) else {
        eprintln!("chroma_upsert: pass --url and --records (see scripts/bench-chroma-upsert.sh); nothing to do");
        return;
    };
    let batch: usize = arg(&args, "--batch").map_or(500, |v| v.parse().unwrap());
    let name = arg(&args, "--collection").unwrap_or_else(|| "bench-rust".into());
    let records: Records = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let config = ChromaConfig {
        url,
        ..Default::default()
    };
    let mut client = ChromaClient::new(&config).unwrap();
    client.pre_flight().await.unwrap();
    let mut metadata = Map::new();
    metadata.insert("hnsw:space".into(), "cosine".into());
    let collection = client
        .get_or_create_collection(&name, metadata, None)
        .await
        .unwrap();
    let started = Instant::now();
    for start in (0..records.ids.len()).step_by(batch) {
        let end = (start + batch).min(records.ids.len());
        let ids: Vec<&str> = records.ids[start..end].iter().map(String::as_str).collect();
        let embeddings: Vec<&[f32]> = records.embeddings[start..end]
            .iter()
            .map(Vec::as_slice)
            .collect();
        let documents: Vec<&str> = records.documents[start..end]
            .iter()
            .map(String::as_str)
            .collect();
        client
            .upsert(
                &collection.id,
                &ids,
                &embeddings,
                &documents,
                &records.metadatas[start..end],
            )
            .await
            .unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let count = client.count(&collection.id).await.unwrap();
    assert_eq!(count as usize, records.ids.len());
    println!(
        "{}",
        serde_json::json!({
            "client": "kass (Rust)",
            "records": records.ids.len(),
            "batch": batch,
            "seconds": seconds,
            "vectors_per_s": records.ids.len() as f64 / seconds,
        })
    );
}
