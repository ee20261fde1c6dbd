//! The in-process model against sentence-transformers itself: vectors for the sentences of
//! `tests/fixtures/minilm_reference.json` (made by `scripts/embed-reference.py` with the real
//! sentence-transformers package) must agree to a cosine of at least 0.999, for long (truncated),
//! empty-ish, non-English, emoji and code inputs alike.
//!
//! Needs the model files (`scripts/fetch-model.sh`; `scripts/test.sh` fetches them and sets
//! KASS_MODEL_DIR). Without them this test fails, naming the directory: it never skips.

use std::path::PathBuf;

use kass_pipeline::tokenizer::default_model_dir;
use kass_stages::embed::providers::local::CpuPath;
use kass_stages::embed::providers::{LocalModel, Precision};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    embedding: Vec<f32>,
}

fn reference() -> Reference {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/minilm_reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn matches_sentence_transformers_for_every_reference_sentence() {
    let reference = reference();
    assert!(reference.items.len() >= 20);
    assert_eq!(reference.max_seq_length, 256);
    let model = LocalModel::load(&default_model_dir(), 8, 2, Precision::F32)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.model().dimension, 384);
    let texts: Vec<&str> = reference.items.iter().map(|i| i.text.as_str()).collect();
    // All at once (sorted, padded per micro-batch) and one by one must both match.
    let batched = model.embed_blocking(&texts).unwrap();
    let mut worst = (1.0f32, "");
    for (item, vector) in reference.items.iter().zip(&batched) {
        let single = model
            .embed_blocking(&[item.text.as_str()])
            .unwrap()
            .remove(0);
        for v in [vector, &single] {
            let c = cosine(v, &item.embedding);
            if c < worst.0 {
                worst = (c, &item.text);
            }
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "not normalised: {norm}");
        }
    }
    eprintln!(
        "lowest cosine against sentence-transformers: {:.6}",
        worst.0
    );
    assert!(
        worst.0 >= 0.999,
        "cosine {} for {:?}",
        worst.0,
        worst.1.chars().take(80).collect::<String>()
    );
}

#[test]
fn a_text_longer_than_max_seq_length_is_truncated_like_sentence_transformers() {
    let reference = reference();
    let model = LocalModel::load(&default_model_dir(), 8, 2, Precision::F32)
        .unwrap_or_else(|e| panic!("{e}"));
    let long = reference
        .items
        .iter()
        .max_by_key(|i| i.text.len())
        .expect("items");
    assert!(
        long.text.split_whitespace().count() > 300,
        "the reference set must hold a text beyond 256 tokens"
    );
    // Appending text after the cut changes nothing.
    let extended = format!("{} and a tail that lies beyond the cut", long.text);
    let v = model
        .embed_blocking(&[long.text.as_str(), extended.as_str()])
        .unwrap();
    assert!(cosine(&v[0], &v[1]) > 0.99999);
    assert!(cosine(&v[0], &long.embedding) >= 0.999);
}

/// The int8 precision stays close to sentence-transformers' fp32 vectors on every reference
/// sentence, and ranks like it: for each sentence, its nearest other sentence is the same as
/// fp32's whenever fp32's nearest is clearly ahead of its second.
#[test]
fn int8_precision_stays_close_to_sentence_transformers() {
    let reference = reference();
    let model = LocalModel::load(&default_model_dir(), 8, 2, Precision::Int8)
        .unwrap_or_else(|e| panic!("{e}"));
    let texts: Vec<&str> = reference.items.iter().map(|i| i.text.as_str()).collect();
    let vectors = model.embed_blocking(&texts).unwrap();
    let mut cosines: Vec<f32> = reference
        .items
        .iter()
        .zip(&vectors)
        .map(|(item, v)| cosine(v, &item.embedding))
        .collect();
    cosines.sort_by(f32::total_cmp);
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    eprintln!(
        "int8 against sentence-transformers: lowest cosine {:.4}, mean {:.4}",
        cosines[0], mean
    );
    // Measured: lowest 0.991, mean 0.998 (a range symmetric around zero gave 0.980 / 0.995).
    assert!(cosines[0] >= 0.985, "lowest cosine {}", cosines[0]);
    assert!(mean >= 0.996, "mean cosine {mean}");
    let nearest = |vs: &dyn Fn(usize) -> Vec<f32>, i: usize| {
        let mut sims: Vec<(f32, usize)> = (0..texts.len())
            .filter(|&j| j != i)
            .map(|j| (cosine(&vs(i), &vs(j)), j))
            .collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0));
        (sims[0].1, sims[0].0 - sims[1].0)
    };
    let fp32 = |i: usize| reference.items[i].embedding.clone();
    let int8 = |i: usize| vectors[i].clone();
    for (i, text) in texts.iter().enumerate() {
        let (want, margin) = nearest(&fp32, i);
        if margin > 0.02 {
            assert_eq!(nearest(&int8, i).0, want, "nearest neighbour of {text:?}");
        }
    }
}

/// `precision` is read from `[embed.provider]`: `"int8"` reaches the local model (its vectors
/// differ from f32's in the last digits, yet stay close), none means `auto` (int8 exactly
/// where the CPU path has a fast int8 kernel), an unknown value is refused, and a remote
/// provider refuses the key, naming it.
#[tokio::test]
async fn precision_is_configured_in_embed_provider_and_only_for_the_local_model() {
    use kass_stages::embed::EmbedConfig;
    let config = |provider: serde_json::Value| -> Result<EmbedConfig, String> {
        serde_json::from_value(serde_json::json!({ "provider": provider }))
            .map_err(|e| e.to_string())
    };
    let dir = default_model_dir();
    let build = |precision: Option<&str>| {
        let mut provider = serde_json::json!({"kind": "local", "model_dir": dir});
        if let Some(p) = precision {
            provider["precision"] = p.into();
        }
        config(provider)
            .unwrap()
            .build_embedder()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let text = "How do I run only the chunker tests?";
    let a = build(Some("f32")).embed_query(text).await.unwrap();
    let b = build(Some("int8")).embed_query(text).await.unwrap();
    assert_ne!(a, b, "int8 was not used");
    assert!(cosine(&a, &b) > 0.98, "cosine {}", cosine(&a, &b));
    // No precision is `auto`: int8 where this CPU path has a fast int8 kernel, else f32;
    // the same path and input give the same bits, so the vector says which ran.
    let auto = build(None).embed_query(text).await.unwrap();
    let path = CpuPath::selected();
    if path.int8_is_fast() {
        assert_eq!(auto, b, "auto must run int8 on the {path} path");
    } else {
        assert_eq!(auto, a, "auto must run f32 on the {path} path");
    }

    let unknown = config(serde_json::json!({"kind": "local", "precision": "fp8"})).unwrap_err();
    assert!(unknown.contains("fp8"), "{unknown}");
    let remote = config(serde_json::json!({
        "kind": "openai", "model": "text-embedding-3-small", "precision": "int8"
    }))
    .unwrap()
    .build_embedder()
    .err()
    .expect("a remote provider must refuse precision")
    .to_string();
    assert!(remote.contains("precision"), "{remote}");
}
