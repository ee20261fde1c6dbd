//! The in-process model: a sentence-transformers BERT (all-MiniLM-L6-v2 by default) run on the
//! CPU by kass's own forward pass ([`flat_bert`]), from a directory holding `config.json`, `tokenizer.json` and
//! `model.safetensors`. No network, no key, no Python: the embedded default.
//!
//! It reproduces sentence-transformers' `encode(normalize_embeddings=True)`: truncation at the
//! model's `max_seq_length` (256 for MiniLM, from `sentence_bert_config.json`, not the 128 the
//! tokenizer.json pads to), mean pooling over the attention mask, then L2 normalisation.
//!
//! Speed: inputs are sorted by token length and cut into micro-batches of a few hundred tokens,
//! which run without any padding; the micro-batches of every request in flight share one queue
//! to a standing thread per core ([`pool`]).

#[cfg(target_arch = "x86_64")]
mod bf16_attention;
mod cpu_features;
mod flat_bert;
mod int8_matmul;
mod pool;
mod safetensors_file;
mod vector_math;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use async_trait::async_trait;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use kass_pipeline::EmbeddingModel;

use crate::embed::tokens::estimate;
use crate::embed::{EmbedError, EmbeddingProvider, Embeddings, InputType, RequestLimits};

pub use cpu_features::{CpuPath, CPU_PATH_VARIABLE};
use flat_bert::{BertShape, FlatBert};
use pool::WorkerPool;

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
    tokenizer: Tokenizer,
    pool: WorkerPool,
    model: EmbeddingModel,
    micro_batch: usize,
    micro_batch_tokens: usize,
    precision: Precision,
    path: CpuPath,
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

/// The arithmetic of the forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `int8` where this CPU has an int8 kernel faster than f32 (the `avx512`, `avx-vnni` and
    /// `neon-dot` [`CpuPath`]s), else `f32`: never slower than f32.
    #[default]
    Auto,
    /// fp32 throughout: vectors equal sentence-transformers' to a cosine of 0.999+.
    F32,
    /// Dense layers in int8 (weights per channel, activations per token), unpadded: several
    /// times faster than f32 with AVX-512 VNNI, faster with AVX-VNNI or arm64 `dotprod`, about
    /// level on the AVX2 and NEON kernels, at a small cost in vector precision (cosine about
    /// 0.998 to f32's). On the `portable` path it is several times slower than f32.
    Int8,
}

impl Precision {
    /// The precision that runs on `path`: `auto` made concrete, the others as they are.
    pub fn on(self, path: CpuPath) -> Precision {
        match self {
            Precision::Auto if path.int8_is_fast() => Precision::Int8,
            Precision::Auto => Precision::F32,
            other => other,
        }
    }

    /// The name kass.toml uses.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        }
    }

    /// Most tokens in one micro-batch. Measured on 2 cores (2026-11-30, long and short texts):
    /// int8 passes ran fastest at about 256 tokens, whose working set stays in the core's
    /// cache (8 long chunks at once were 1.15x slower); f32 products gain from more rows, and
    /// 512 beat 256 by 3 to 7 %.
    fn micro_batch_tokens(self) -> usize {
        match self {
            Precision::F32 | Precision::Auto => 512,
            Precision::Int8 => 256,
        }
    }
}

impl LocalModel {
    /// Loads the model; `micro_batch` is how many inputs share one forward pass, `workers`
    /// how many passes run at once (one per core is fastest). It runs on
    /// [`CpuPath::selected`]: this CPU's best, or what `KASS_CPU_PATH` lowers it to.
    pub fn load(
        dir: &Path,
        micro_batch: usize,
        workers: usize,
        precision: Precision,
    ) -> Result<Self, LocalModelError> {
        Self::load_on(dir, micro_batch, workers, precision, CpuPath::selected())
    }

    /// [`LocalModel::load`] on a chosen CPU path (one this CPU lacks falls back to the best
    /// below it, with a warning): for tests and benchmarks that compare paths in one process.
    pub fn load_on(
        dir: &Path,
        micro_batch: usize,
        workers: usize,
        precision: Precision,
        path: CpuPath,
    ) -> Result<Self, LocalModelError> {
        let path = CpuPath::lowered_to(path);
        let asked = precision;
        let precision = precision.on(path);
        if asked == Precision::Int8 && !path.int8_is_fast() {
            tracing::warn!(
                "precision = \"int8\" on the {path} CPU path (no AVX-VNNI, AVX-512 VNNI or \
                 arm64 dotprod): int8 is not faster than f32 here (the portable loop is several \
                 times slower, the AVX2 and NEON kernels about level); precision = \"auto\" \
                 would pick f32"
            );
        }
        tracing::info!(
            "local model: {} on the {path} CPU path (precision = \"{}\")",
            precision.name(),
            asked.name()
        );
        let err = |reason: String| LocalModelError {
            dir: dir.to_path_buf(),
            reason,
        };
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| err(format!("{name}: {e}")))
        };
        let shape: BertShape = serde_json::from_str(&read("config.json")?)
            .map_err(|e| err(format!("config.json: {e}")))?;
        // sentence-transformers' own limit; without the file, BERT's position limit.
        let max_seq_length = match std::fs::read_to_string(dir.join("sentence_bert_config.json")) {
            Ok(text) => {
                serde_json::from_str::<SentenceBertConfig>(&text)
                    .map_err(|e| err(format!("sentence_bert_config.json: {e}")))?
                    .max_seq_length
            }
            Err(_) => shape.max_position_embeddings,
        }
        .min(shape.max_position_embeddings);
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
        let weights = dir.join("model.safetensors");
        let bert =
            FlatBert::load(&weights, &shape, precision == Precision::Int8, path).map_err(err)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".into());
        let pool = WorkerPool::start(Arc::new(bert), workers.max(1))
            .map_err(|e| err(format!("cannot start worker threads: {e}")))?;
        Ok(Self {
            tokenizer,
            pool,
            model: EmbeddingModel {
                name,
                dimension: shape.hidden_size,
            },
            micro_batch: micro_batch.max(1),
            micro_batch_tokens: precision.micro_batch_tokens(),
            precision,
            path,
        })
    }

    pub fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    /// The precision that runs (`auto` resolved: `f32` or `int8`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The CPU path that runs.
    pub fn cpu_path(&self) -> CpuPath {
        self.path
    }

    /// Embeds `texts` (blocking: waits for the pool): vectors in input order.
    ///
    /// Inputs are sorted by token length and cut into micro-batches padded only to their own
    /// longest input, longest first so that the short tail evens out the cores' finish.
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
        let (done, results) = mpsc::channel::<Result<Vec<Indexed>, String>>();
        let mut groups = 0;
        let lengths: Vec<usize> = order.iter().map(|&i| encodings[i].len()).collect();
        for group in micro_batches(&order, &lengths, self.micro_batch, self.micro_batch_tokens) {
            let ids: Vec<Vec<u32>> = group
                .iter()
                .map(|&i| encodings[i].get_ids().to_vec())
                .collect();
            let positions = group.to_vec();
            let done = done.clone();
            self.pool.submit(Box::new(move |bert: &FlatBert| {
                let pooled = bert
                    .embed(&ids)
                    .map(|vectors| positions.into_iter().zip(vectors).collect());
                let _ = done.send(pooled);
            }))?;
            groups += 1;
        }
        drop(done);
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); encodings.len()];
        for _ in 0..groups {
            let indexed = results
                .recv()
                .map_err(|_| "a local model worker failed (panicked) mid-pass".to_string())??;
            for (i, v) in indexed {
                vectors[i] = v;
            }
        }
        Ok(vectors)
    }
}

/// Cuts `order` (inputs sorted longest first) into runs of at most `max_inputs` inputs and,
/// beyond the first input, `max_tokens` tokens.
fn micro_batches<'a>(
    order: &'a [usize],
    lengths: &[usize],
    max_inputs: usize,
    max_tokens: usize,
) -> Vec<&'a [usize]> {
    let mut groups = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (at, &len) in lengths.iter().enumerate() {
        if at > start && (at - start == max_inputs || tokens + len > max_tokens) {
            groups.push(&order[start..at]);
            (start, tokens) = (at, 0);
        }
        tokens += len;
    }
    if start < order.len() {
        groups.push(&order[start..]);
    }
    groups
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

#[cfg(test)]
mod tests {
    use super::{micro_batches, CpuPath, Precision};

    #[test]
    fn auto_precision_is_int8_only_where_an_int8_kernel_beats_f32() {
        assert_eq!(Precision::default(), Precision::Auto);
        for path in [CpuPath::Portable, CpuPath::Avx2, CpuPath::Neon] {
            assert_eq!(Precision::Auto.on(path), Precision::F32, "{path}");
        }
        for path in [CpuPath::AvxVnni, CpuPath::Avx512, CpuPath::NeonDot] {
            assert_eq!(Precision::Auto.on(path), Precision::Int8, "{path}");
        }
        for path in CpuPath::ALL {
            assert_eq!(Precision::F32.on(path), Precision::F32);
            assert_eq!(
                Precision::Int8.on(path),
                Precision::Int8,
                "int8 asked is int8 run"
            );
        }
    }

    #[test]
    fn micro_batches_respect_both_caps_and_keep_every_input() {
        let order: Vec<usize> = (0..7).collect();
        let lengths = [300, 200, 100, 100, 50, 50, 10];
        let groups = micro_batches(&order, &lengths, 3, 256);
        assert_eq!(
            groups,
            vec![&[0][..], &[1][..], &[2, 3, 4][..], &[5, 6][..]],
            "an input over the budget goes alone; others fill up to 3 inputs or 256 tokens"
        );
        let by_count = micro_batches(&order, &lengths, 3, usize::MAX);
        assert_eq!(by_count, vec![&[0, 1, 2][..], &[3, 4, 5][..], &[6][..]]);
        assert!(micro_batches(&[], &[], 3, 256).is_empty());
    }
}
