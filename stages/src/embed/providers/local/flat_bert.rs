//! BERT's forward pass over the tokens of several inputs laid end to end, with no padding: the
//! dense layers see one `[tokens, hidden]` matrix (f32 through `gemm`, or [`Int8Matrix`] for
//! the `int8` precision), attention runs per input over its own length, and the element-wise
//! steps (layer norms, softmax, GELU, pooling) are f32 vectorised for AVX-512 or AVX2 on the
//! CPUs that have them ([`CpuPath`]), and for NEON on every arm64 CPU.
//!
//! Why not candle's BertModel, which kass ran before: it pads a micro-batch to its longest
//! input and runs every layer over the padding, its element-wise steps ran in scalar or 4-wide
//! code, and its dense layers cannot be swapped for int8. This pass is 1.7x faster in f32 on the
//! same texts (29.7 against 17.7 long texts/s, 191 against 108 short, 2 cores) with vectors
//! equal to a cosine of 0.999999.

use serde::Deserialize;

#[cfg(target_arch = "x86_64")]
use super::bf16_attention::Bf16Attention;
use super::cpu_features::CpuPath;
use super::int8_matmul::{Int8Matrix, QuantizedRows};
use super::safetensors_file::SafetensorsFile;
use super::vector_math::{gelu, layer_norm, softmax};

#[derive(Deserialize)]
pub(super) struct BertShape {
    pub(super) hidden_size: usize,
    pub(super) max_position_embeddings: usize,
    num_attention_heads: usize,
    num_hidden_layers: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
}

fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// A dense layer with its bias.
struct Dense {
    weights: Weights,
    bias: Vec<f32>,
}

/// A dense layer's weight matrix `[out, inner]`, in the precision chosen.
enum Weights {
    F32 {
        values: Vec<f32>,
        out: usize,
        inner: usize,
    },
    Int8(Int8Matrix),
}

impl Weights {
    fn out(&self) -> usize {
        match self {
            Self::F32 { out, .. } => *out,
            Self::Int8(m) => m.out(),
        }
    }

    /// `y[tokens, out] = x[tokens, inner] · wᵀ`.
    #[inline(always)]
    fn matmul(&self, x: &[f32], tokens: usize, y: &mut [f32], q: &mut QuantizedRows) {
        match self {
            Self::Int8(m) => m.matmul(x, tokens, y, q),
            Self::F32 { values, out, inner } => {
                // SAFETY: x is [tokens, inner], values [out, inner] read transposed, y
                // [tokens, out]; every index gemm forms lies inside them.
                unsafe {
                    product(
                        (tokens, *out, *inner),
                        (y.as_mut_ptr(), *out),
                        Strided(x.as_ptr(), *inner, 1),
                        Strided(values.as_ptr(), 1, *inner),
                        1.0,
                    );
                }
            }
        }
    }
}

struct Layer {
    /// Query, key and value in one product: `[3 * hidden, hidden]`.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    up: Dense,
    down: Dense,
    output_norm: Norm,
}

pub(super) struct FlatBert {
    hidden: usize,
    heads: usize,
    eps: f32,
    words: Vec<f32>,
    positions: Vec<f32>,
    /// Token type 0's embedding: sentence encoders give every token type 0.
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    /// Attention's products in bf16 (the `int8` precision, on a CPU with AVX-512 BF16).
    #[cfg(target_arch = "x86_64")]
    bf16_attention: bool,
    /// The SIMD code this model runs (its int8 matrices are packed for it).
    path: CpuPath,
}

/// Buffers a forward pass reuses between layers, and a worker thread between passes: the
/// `[tokens, width]` matrices were allocated and zeroed per product before (a `memset` took 3%
/// of an int8 pass). Each grows to the largest micro-batch a thread has run (a few MB).
#[derive(Default)]
struct Scratch {
    quantized: QuantizedRows,
    scores: Vec<f32>,
    #[cfg(target_arch = "x86_64")]
    bf16: Bf16Attention,
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    up: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

impl FlatBert {
    pub(super) fn load(
        weights: &std::path::Path,
        shape: &BertShape,
        int8: bool,
        path: CpuPath,
    ) -> Result<Self, String> {
        if shape.hidden_act != "gelu" {
            return Err(format!(
                "config.json: hidden_act `{}` is not supported by the int8 precision (only gelu)",
                shape.hidden_act
            ));
        }
        if !shape.hidden_size.is_multiple_of(shape.num_attention_heads) {
            return Err("config.json: hidden_size is not a multiple of num_attention_heads".into());
        }
        let file = SafetensorsFile::open(weights)?;
        let tensors = file.tensors()?;
        let tensor = |name: &str| tensors.get(name);
        let norm = |prefix: &str| -> Result<Norm, String> {
            Ok(Norm {
                gamma: tensor(&format!("{prefix}.LayerNorm.weight"))?.0,
                beta: tensor(&format!("{prefix}.LayerNorm.bias"))?.0,
            })
        };
        let dense = |names: &[String]| -> Result<Dense, String> {
            let mut weights = Vec::new();
            let mut bias = Vec::new();
            let mut inner = 0;
            for name in names {
                let (w, dims) = tensor(&format!("{name}.weight"))?;
                inner = dims[1];
                weights.extend(w);
                bias.extend(tensor(&format!("{name}.bias"))?.0);
            }
            let out = bias.len();
            Ok(Dense {
                weights: if int8 {
                    Weights::Int8(Int8Matrix::quantize(&weights, out, inner, path))
                } else {
                    Weights::F32 {
                        values: weights,
                        out,
                        inner,
                    }
                },
                bias,
            })
        };
        let mut layers = Vec::new();
        for i in 0..shape.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                qkv: dense(&["query", "key", "value"].map(|n| format!("{p}.attention.self.{n}")))?,
                attention_out: dense(&[format!("{p}.attention.output.dense")])?,
                attention_norm: norm(&format!("{p}.attention.output"))?,
                up: dense(&[format!("{p}.intermediate.dense")])?,
                down: dense(&[format!("{p}.output.dense")])?,
                output_norm: norm(&format!("{p}.output"))?,
            });
        }
        let token_types = tensor("embeddings.token_type_embeddings.weight")?.0;
        Ok(Self {
            hidden: shape.hidden_size,
            heads: shape.num_attention_heads,
            eps: shape.layer_norm_eps as f32,
            words: tensor("embeddings.word_embeddings.weight")?.0,
            positions: tensor("embeddings.position_embeddings.weight")?.0,
            token_type: token_types[..shape.hidden_size].to_vec(),
            embedding_norm: norm("embeddings")?,
            layers,
            #[cfg(target_arch = "x86_64")]
            bf16_attention: int8
                && path.bf16_attention(shape.hidden_size / shape.num_attention_heads),
            path,
        })
    }

    /// Mean-pooled, L2-normalised sentence vectors for `ids`, in order.
    pub(super) fn embed(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, String> {
        let h = self.hidden;
        let tokens: usize = ids.iter().map(Vec::len).sum();
        let vocabulary = self.words.len() / h;
        let mut x = vec![0f32; tokens * h];
        let mut row = 0;
        for input in ids {
            if input.len() * h > self.positions.len() {
                return Err(format!(
                    "an input of {} tokens exceeds the model's positions",
                    input.len()
                ));
            }
            for (p, &id) in input.iter().enumerate() {
                let id = id as usize;
                if id >= vocabulary {
                    return Err(format!("token id {id} is outside the vocabulary"));
                }
                let out = &mut x[row * h..(row + 1) * h];
                let (w, pos) = (&self.words[id * h..][..h], &self.positions[p * h..][..h]);
                for j in 0..h {
                    out[j] = w[j] + pos[j] + self.token_type[j];
                }
                row += 1;
            }
        }
        layer_norm(
            &mut x,
            &self.embedding_norm.gamma,
            &self.embedding_norm.beta,
            h,
            self.eps,
        );
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        x = match self.path {
            // SAFETY: `path` is one the CPU has (`CpuPath::lowered_to` at load), and each
            // path's CPU has every feature its function is compiled for.
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx512 => unsafe { self.layers_avx512(x, tokens, &lengths) },
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx2 | CpuPath::AvxVnni => unsafe { self.layers_avx2(x, tokens, &lengths) },
            // NEON and FMA are arm64's baseline: `mul_add` is one `fmadd` on every path.
            #[cfg(target_arch = "aarch64")]
            _ => self.layers::<true>(x, tokens, &lengths),
            #[cfg(not(target_arch = "aarch64"))]
            _ => self.layers::<false>(x, tokens, &lengths),
        };
        Ok(pool(&x, &lengths, h))
    }

    /// The layers compiled for AVX-512: the element-wise code inlined here is vectorised 16
    /// wide instead of the 4 of the baseline x86-64 the crate is built for.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW, DQ, VL, AVX2 and FMA (the `avx512` [`CpuPath`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn layers_avx512(&self, x: Vec<f32>, tokens: usize, lengths: &[usize]) -> Vec<f32> {
        self.layers::<true>(x, tokens, lengths)
    }

    /// The layers compiled for AVX2 and FMA: element-wise code 8 wide, with fused
    /// multiply-adds.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA (the `avx2` [`CpuPath`] and above).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn layers_avx2(&self, x: Vec<f32>, tokens: usize, lengths: &[usize]) -> Vec<f32> {
        self.layers::<true>(x, tokens, lengths)
    }

    #[inline(always)]
    /// `FMA`: see [`super::vector_math`]; true only where compiled with the `fma` feature.
    fn layers<const FMA: bool>(
        &self,
        mut x: Vec<f32>,
        tokens: usize,
        lengths: &[usize],
    ) -> Vec<f32> {
        // The buffers are taken out of the thread-local and put back, not borrowed in a
        // closure: a closure is a function of its own, compiled once for the baseline CPU
        // whatever the target features of the callers it could be inlined into. With two such
        // callers (the avx512 and avx2 passes) it was no longer inlined, and the whole pass ran
        // baseline code with `mul_add` as a libm call: f32 3.4x slower than before.
        let mut scratch = SCRATCH.take();
        for layer in &self.layers {
            self.layer::<FMA>(layer, &mut x, tokens, lengths, &mut scratch);
        }
        SCRATCH.set(scratch);
        x
    }

    /// One encoder layer, `x` in and out; every intermediate matrix is a [`Scratch`] buffer.
    #[inline(always)]
    fn layer<const FMA: bool>(
        &self,
        layer: &Layer,
        x: &mut Vec<f32>,
        tokens: usize,
        lengths: &[usize],
        s: &mut Scratch,
    ) {
        let h = self.hidden;
        let q = &mut s.quantized;
        dense(&layer.qkv, x, tokens, &mut s.qkv, q);
        // Every value is written by attention below: no need to clear.
        s.context.resize(tokens * h, 0.0);
        let mut start = 0;
        for &len in lengths {
            #[cfg(target_arch = "x86_64")]
            if self.bf16_attention {
                let scale = 1.0 / ((h / self.heads) as f32).sqrt();
                // SAFETY: set only when the CPU has what the kernel needs.
                unsafe {
                    s.bf16
                        .run(&s.qkv, &mut s.context, (start, len), (h, self.heads, scale))
                };
                start += len;
                continue;
            }
            self.attention::<FMA>(&s.qkv, &mut s.context, start, len, &mut s.scores);
            start += len;
        }
        dense(&layer.attention_out, &s.context, tokens, &mut s.attended, q);
        add(&mut s.attended, x);
        let norm = &layer.attention_norm;
        layer_norm(&mut s.attended, &norm.gamma, &norm.beta, h, self.eps);
        dense(&layer.up, &s.attended, tokens, &mut s.up, q);
        gelu::<FMA>(&mut s.up);
        // The layer's output replaces its input, which nothing reads any more.
        dense(&layer.down, &s.up, tokens, x, q);
        add(x, &s.attended);
        let norm = &layer.output_norm;
        layer_norm(x, &norm.gamma, &norm.beta, h, self.eps);
    }

    #[inline(always)]
    /// Scaled dot-product attention of one input (rows `start..start + len`), every head.
    fn attention<const FMA: bool>(
        &self,
        qkv: &[f32],
        context: &mut [f32],
        start: usize,
        len: usize,
        scores: &mut Vec<f32>,
    ) {
        let h = self.hidden;
        let d = h / self.heads;
        let stride = 3 * h;
        scores.resize(len * len, 0.0);
        let scale = 1.0 / (d as f32).sqrt();
        for head in 0..self.heads {
            let q = qkv[start * stride + head * d..].as_ptr();
            let k = qkv[start * stride + h + head * d..].as_ptr();
            let v = qkv[start * stride + 2 * h + head * d..].as_ptr();
            // SAFETY: every index gemm forms stays inside `qkv`, `scores` and `context`: rows
            // start..start+len of a [tokens, 3h] and a [tokens, h] matrix, columns of one head.
            unsafe {
                product(
                    (len, len, d),
                    (scores.as_mut_ptr(), len),
                    Strided(q, stride, 1),
                    Strided(k, 1, stride),
                    scale,
                );
            }
            for row in scores.chunks_exact_mut(len) {
                softmax::<FMA>(row);
            }
            // SAFETY: as above.
            unsafe {
                product(
                    (len, d, len),
                    (context[start * h + head * d..].as_mut_ptr(), h),
                    Strided(scores.as_ptr(), len, 1),
                    Strided(v, stride, 1),
                    1.0,
                );
            }
        }
    }
}

/// A matrix operand: its first element, and the distance between rows and between columns.
struct Strided(*const f32, usize, usize);

/// `dst[m, n] = scale · lhs[m, k] · rhs[k, n]` on this thread, `dst` row-major with rows
/// `dst.1` apart.
///
/// # Safety
/// Every element the shapes and strides address must lie inside its buffer.
#[inline(always)]
unsafe fn product(
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, usize),
    lhs: Strided,
    rhs: Strided,
    scale: f32,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst.0,
        1,
        dst.1 as isize,
        false,
        lhs.0,
        lhs.2 as isize,
        lhs.1 as isize,
        rhs.0,
        rhs.2 as isize,
        rhs.1 as isize,
        0.0,
        scale,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

#[inline(always)]
/// `y = x · wᵀ + bias`, into `y`'s memory: every value is written by the product, so a buffer
/// of the right size is reused as it is (growing zeroes only its new part).
fn dense(layer: &Dense, x: &[f32], tokens: usize, y: &mut Vec<f32>, q: &mut QuantizedRows) {
    let out = layer.weights.out();
    y.resize(tokens * out, 0.0);
    layer.weights.matmul(x, tokens, y, q);
    for row in y.chunks_exact_mut(out) {
        for (v, b) in row.iter_mut().zip(&layer.bias) {
            *v += b;
        }
    }
}

#[inline(always)]
fn add(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

fn pool(x: &[f32], lengths: &[usize], h: usize) -> Vec<Vec<f32>> {
    let mut start = 0;
    lengths
        .iter()
        .map(|&len| {
            let mut mean = vec![0f32; h];
            for row in x[start * h..(start + len) * h].chunks_exact(h) {
                add(&mut mean, row);
            }
            start += len;
            let n = len.max(1) as f32;
            mean.iter_mut().for_each(|v| *v /= n);
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            mean.iter_mut().for_each(|v| *v /= norm);
            mean
        })
        .collect()
}
