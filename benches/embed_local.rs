//! Local embedding throughput: the in-process model on a file of texts, timed the same way as
//! `scripts/bench_st_encode.py` times sentence-transformers, so that
//! `scripts/bench-local-embed.sh` can put both side by side from one run.
//!
//! ```text
//! [KASS_CPU_PATH=portable|avx2|avx-vnni|avx512] cargo bench --bench embed_local -- --texts long.jsonl [--batch-size 32] [--micro-batch 8] [--workers N] [--repeat 3] [--precision auto|f32|int8]
//! ```
//! Prints one JSON line: `{"runtime": "kass-f32" or "kass-int8" (the precision that ran: `auto`
//! resolved), "cpu_path": "avx512", "texts": N, "seconds": S, "texts_per_s": R, ...}`
//! where `seconds` is the median of `--repeat` passes after one untimed warm-up batch. A pass
//! embeds all texts in requests of `--batch-size` (as the embed stage sends them), each sorted
//! by length and cut into micro-batches.

use std::path::PathBuf;
use std::time::Instant;

use kass_pipeline::tokenizer::default_model_dir;
use kass_stages::embed::providers::{LocalModel, Precision};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `--agreement`: how close this precision's vectors are to fp32's on the same texts (cosine
/// of each pair: lowest, 1st percentile, mean), one JSON line.
fn print_agreement(
    model: &LocalModel,
    model_dir: &std::path::Path,
    texts: &[String],
    batch: usize,
) {
    let reference =
        LocalModel::load(model_dir, 8, 2, Precision::F32).unwrap_or_else(|e| panic!("{e}"));
    let mut cosines = Vec::new();
    for request in texts.chunks(batch) {
        let a = model.embed_blocking(request).unwrap();
        let b = reference.embed_blocking(request).unwrap();
        cosines.extend(a.iter().zip(&b).map(|(x, y)| cosine(x, y)));
    }
    let worst = texts
        .iter()
        .zip(&cosines)
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(t, c)| (t.chars().take(120).collect::<String>(), *c));
    let mut sorted = cosines.clone();
    sorted.sort_by(f32::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "texts": cosines.len(),
            "lowest": sorted[0],
            "p01": sorted[sorted.len() / 100],
            "mean": cosines.iter().sum::<f32>() / cosines.len() as f32,
            "worst_text": worst,
        })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; a bare run (as in `cargo test --benches`) has no texts.
    let Some(texts_path) = arg(&args, "--texts") else {
        eprintln!(
            "embed_local: pass --texts FILE (see scripts/bench-local-embed.sh); nothing to do"
        );
        return;
    };
    let batch_size: usize = arg(&args, "--batch-size").map_or(32, |v| v.parse().unwrap());
    let micro_batch: usize = arg(&args, "--micro-batch").map_or(8, |v| v.parse().unwrap());
    let workers: usize = arg(&args, "--workers").map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |v| v.parse().unwrap(),
    );
    let repeat: usize = arg(&args, "--repeat").map_or(3, |v| v.parse().unwrap());
    let model_dir = arg(&args, "--model-dir").map_or_else(default_model_dir, PathBuf::from);
    let texts: Vec<String> = std::fs::read_to_string(&texts_path)
        .unwrap_or_else(|e| panic!("{texts_path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_string))
                .unwrap_or_else(|| l.to_string())
        })
        .collect();
    // f32 unless asked (not `auto`): scripts/bench-local-embed.sh labels this run f32.
    let precision: Precision = arg(&args, "--precision").map_or(Precision::F32, |v| {
        serde_json::from_value(serde_json::Value::String(v)).expect("--precision auto|f32|int8")
    });
    let model = LocalModel::load(&model_dir, micro_batch, workers, precision)
        .unwrap_or_else(|e| panic!("{e}"));
    if args.iter().any(|a| a == "--agreement") {
        print_agreement(&model, &model_dir, &texts, batch_size);
        return;
    }
    let warm = &texts[..texts.len().min(batch_size)];
    model.embed_blocking(warm).unwrap();
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        for request in texts.chunks(batch_size) {
            let vectors = model.embed_blocking(request).unwrap();
            assert_eq!(vectors.len(), request.len());
        }
        runs.push(started.elapsed().as_secs_f64());
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let seconds = sorted[sorted.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "runtime": format!("kass-{}", model.precision().name()),
            "cpu_path": model.cpu_path().name(),
            "texts": texts.len(),
            "seconds": seconds,
            "texts_per_s": texts.len() as f64 / seconds,
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "batch_size": batch_size,
            "micro_batch": micro_batch,
            "workers": workers,
            "repeat": repeat,
            "runs_s": runs,
            "file": texts_path,
        })
    );
}
