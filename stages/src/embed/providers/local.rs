//! The in-process model: a sentence-transformers BERT (all-MiniLM-L6-v2 by default) run with
//! candle on the CPU, from a directory holding `config.json`, `tokenizer.json` and
//! `model.safetensors`. No network, no key, no Python: the embedded default.
//!
//! It reproduces sentence-transformers' `encode(normalize_embeddings=True)`: truncation at the
//! model's `max_seq_length` (256 for MiniLM, from `sentence_bert_config.json`, not the 128 the
//! tokenizer.json pads to), mean pooling over the attention mask, then L2 normalisation.
//!
//! Speed: inputs are sorted by token length and cut into micro-batches padded only to their own
//! longest input, so a batch of mixed chunk sizes does not pay for padding.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use kass_pipeline::EmbeddingModel;

use crate::embed::tokens::estimate;
use crate::embed::{EmbedError, EmbeddingProvider, Embeddings, InputType, RequestLimits};

#[derive(Debug, thiserror::Error)]
#[error("cannot load the local model from {dir}: {reason} (run scripts/fetch-model.sh, or set [embed.provider] model_dir / KASS_MODEL_DIR)")]
pub struct LocalModelError {
    pub dir: PathBuf,
    pub reason: String,
}

/// A vector and the position of its input.
type Indexed = (usize, Vec<f32>);

/// The loaded weights and tokenizer; shared by every request.
pub struct LocalModel {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    model: EmbeddingModel,
    micro_batch: usize,
    workers: usize,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// Keeps the forward pass's large temporary tensors (tens of MB each) in the heap instead of
/// fresh mappings: with glibc's default, every one is an mmap, page-faulted in and unmapped
/// again, which took a fifth of the CPU time of a forward pass. The memory stays with the
/// process for the next batch instead.
fn keep_large_allocations_in_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator tuning parameters; it is thread-safe.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 512 * 1024 * 1024);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
            }
        });
    }
}

/// Makes candle run each forward pass on the thread that asks for it, instead of spreading
/// matrix products over every core: with one pass per core (the `workers` setting) that is
/// 1.2x faster, because the rest of a pass (softmax, layer norm, GELU) runs on one thread
/// anyway and workers would otherwise contend for the same pool.
///
/// Candle reads these variables, so this must run at the start of `main`, before any other
/// thread exists. Values the user set are kept.
pub fn one_thread_per_forward_pass() {
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "1");
        }
    }
}

impl LocalModel {
    /// Loads the model; `micro_batch` is how many inputs share one forward pass, `workers`
    /// how many passes run at once (one per core is fastest).
    pub fn load(dir: &Path, micro_batch: usize, workers: usize) -> Result<Self, LocalModelError> {
        let err = |reason: String| LocalModelError {
            dir: dir.to_path_buf(),
            reason,
        };
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| err(format!("{name}: {e}")))
        };
        let config: Config = serde_json::from_str(&read("config.json")?)
            .map_err(|e| err(format!("config.json: {e}")))?;
        // sentence-transformers' own limit; without the file, BERT's position limit.
        let max_seq_length = match std::fs::read_to_string(dir.join("sentence_bert_config.json")) {
            Ok(text) => {
                serde_json::from_str::<SentenceBertConfig>(&text)
                    .map_err(|e| err(format!("sentence_bert_config.json: {e}")))?
                    .max_seq_length
            }
            Err(_) => config.max_position_embeddings,
        }
        .min(config.max_position_embeddings);
        if let Ok(text) = std::fs::read_to_string(dir.join("1_Pooling/config.json")) {
            let pooling: PoolingConfig = serde_json::from_str(&text)
                .map_err(|e| err(format!("1_Pooling/config.json: {e}")))?;
            if !pooling.pooling_mode_mean_tokens {
                return Err(err(
                    "1_Pooling/config.json asks for a pooling other than mean, which is not supported"
                        .into(),
                ));
            }
        }
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| err(format!("tokenizer.json: {e}")))?;
        // The file's own settings pad every input to 128 and cut there; replace them.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_length,
                ..Default::default()
            }))
            .map_err(|e| err(format!("tokenizer.json: {e}")))?;
        keep_large_allocations_in_the_heap();
        if workers > 1 && std::env::var("CANDLE_NUM_THREADS").as_deref() != Ok("1") {
            tracing::warn!(
                "local model: {workers} workers without CANDLE_NUM_THREADS=1 and RAYON_NUM_THREADS=1 \
                 compete for candle's thread pool (kass sets both at start-up)"
            );
        }
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        // SAFETY: the file is memory-mapped read-only; kass never writes model files, and a
        // concurrent writer replacing it (rename) leaves this mapping intact.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }
            .map_err(|e| err(format!("model.safetensors: {e}")))?;
        let bert = BertModel::load(vb, &config).map_err(|e| err(format!("weights: {e}")))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".into());
        Ok(Self {
            bert,
            tokenizer,
            device,
            model: EmbeddingModel {
                name,
                dimension: config.hidden_size,
            },
            micro_batch: micro_batch.max(1),
            workers: workers.max(1),
        })
    }

    pub fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    /// Embeds `texts` (blocking, CPU-bound): vectors in input order.
    pub fn embed_blocking<S: AsRef<str> + Send + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<f32>>, String> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| format!("tokenizer: {e}"))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
        let groups: Vec<&[usize]> = order.chunks(self.micro_batch).collect();
        // Micro-batches are shared out to one worker per core, each a whole forward pass on
        // one thread: candle would run only the matrix products on every core and the rest
        // (softmax, layer norm, GELU, copies) on one, leaving a core idle most of the time.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = self.workers.min(groups.len()).max(1);
        let results: Vec<Result<Vec<Indexed>, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let g = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(group) = groups.get(g) else { break };
                            let ids: Vec<&[u32]> =
                                group.iter().map(|&i| encodings[i].get_ids()).collect();
                            let pooled = self
                                .forward(&ids)
                                .map_err(|e| format!("forward pass: {e}"))?;
                            done.extend(group.iter().copied().zip(pooled));
                        }
                        Ok(done)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err("worker panicked".into())))
                .collect()
        });
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); encodings.len()];
        for result in results {
            for (i, v) in result? {
                vectors[i] = v;
            }
        }
        Ok(vectors)
    }

    /// One padded forward pass, then mean pooling over real tokens and L2 normalisation.
    fn forward(&self, ids: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = ids.len();
        let width = ids.iter().map(|i| i.len()).max().unwrap_or(0).max(1);
        let mut flat_ids = vec![0u32; rows * width];
        let mut flat_mask = vec![0u32; rows * width];
        for (r, row) in ids.iter().enumerate() {
            flat_ids[r * width..r * width + row.len()].copy_from_slice(row);
            flat_mask[r * width..r * width + row.len()].fill(1);
        }
        let input_ids = Tensor::from_vec(flat_ids, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(flat_mask, (rows, width), &self.device)?;
        let token_types = input_ids.zeros_like()?;
        let hidden = self.bert.forward(&input_ids, &token_types, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2()
    }
}

/// [`LocalModel`] as an [`EmbeddingProvider`]: forward passes run on the blocking pool so the
/// runtime's other tasks (timers, I/O) keep going.
pub struct LocalProvider {
    model: Arc<LocalModel>,
    max_inputs: usize,
}

impl LocalProvider {
    pub fn new(model: Arc<LocalModel>, max_inputs: usize) -> Self {
        Self {
            model,
            max_inputs: max_inputs.max(1),
        }
    }
}

#[async_trait]
impl EmbeddingProvider for LocalProvider {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn model(&self) -> &EmbeddingModel {
        self.model.model()
    }

    fn limits(&self) -> RequestLimits {
        RequestLimits {
            max_inputs: self.max_inputs,
            max_tokens: usize::MAX,
        }
    }

    /// No budget to keep for an in-process model; the estimate only feeds the tokens metric.
    fn count_tokens(&self, text: &str) -> usize {
        estimate(text)
    }

    async fn embed(&self, texts: &[&str], _: InputType) -> Result<Embeddings, EmbedError> {
        let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let model = self.model.clone();
        let vectors = tokio::task::spawn_blocking(move || model.embed_blocking(&owned))
            .await
            .map_err(|e| EmbedError::Local(format!("worker failed: {e}")))?
            .map_err(EmbedError::Local)?;
        Ok(Embeddings {
            vectors,
            billed_tokens: None,
        })
    }
}
