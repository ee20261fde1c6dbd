//! Attention's two products in bf16 for the `int8` precision, on CPUs with AVX-512 BF16: one
//! `vdpbf16ps` does 32 multiply-adds, twice an f32 FMA, with f32 accumulation. Queries, keys,
//! probabilities and values are rounded to bf16 (8 bits of mantissa, as OpenVINO runs the
//! whole model on such CPUs); scores and the softmax stay f32.
//!
//! Why not the int8 kernel: it works in blocks of 64 channels, and attention's inner width (a
//! head's 32) left it more set-up than work; measured slower than f32 (69 against 84 long
//! texts/s). This kernel puts 16 keys (or 16 value channels) in a register's lanes and walks the
//! head's width (or the keys) in pairs, so nothing is quantized per head but a rounding.
//!
//! Keys are padded with zeros to a multiple of 64 (four registers of 16 per pass); their scores
//! are dropped before the softmax and their probabilities are zero.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::vector_math::exp_shifted_sum;

/// Keys per pass of the score kernel: four registers of 16 lanes.
const KEY_BLOCK: usize = 64;
/// Query rows per pass of either kernel.
const ROWS: usize = 4;

/// 32 consecutive f32 times `scale`, rounded to bf16 (nearest even) as 16 lanes of two: lane
/// t holds element 2t in its low half and 2t + 1 in its high half.
///
/// # Safety
/// 32 values must be readable at `p`; the CPU must have AVX-512 BF16.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16")]
unsafe fn to_pairs(p: *const f32, scale: __m512) -> __m512i {
    let low = _mm512_mul_ps(_mm512_loadu_ps(p), scale);
    let high = _mm512_mul_ps(_mm512_loadu_ps(p.add(16)), scale);
    std::mem::transmute(_mm512_cvtne2ps_pbh(high, low))
}

/// Buffers reused across heads, inputs and layers.
#[derive(Default)]
pub(super) struct Bf16Attention {
    queries: Vec<u32>,
    keys: Vec<u32>,
    values: Vec<u32>,
    probabilities: Vec<u32>,
    scores: Vec<f32>,
}

impl Bf16Attention {
    /// Scaled dot-product attention of the input at rows `start..start + len` of `qkv`
    /// (`[tokens, 3 * hidden]`: queries, keys, values), every head, into `context`
    /// (`[tokens, hidden]`).
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW, DQ, VL, AVX2, FMA and BF16
    /// ([`CpuPath::bf16_attention`](super::cpu_features::CpuPath::bf16_attention)).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16")]
    pub(super) unsafe fn run(
        &mut self,
        qkv: &[f32],
        context: &mut [f32],
        (start, len): (usize, usize),
        (hidden, heads, scale): (usize, usize, f32),
    ) {
        let d = hidden / heads;
        assert!(
            d.is_multiple_of(32),
            "head width {d} is not a multiple of 32"
        );
        let stride = 3 * hidden;
        let keys = len.next_multiple_of(KEY_BLOCK);
        let rows = &qkv[start * stride..(start + len) * stride];
        for head in 0..heads {
            self.pack(rows, stride, hidden, head * d, (d, keys, scale));
            // Four query rows at a time from scores to context: their scores (4 KB for 256
            // keys) and probabilities stay in L1, where a head's whole score matrix (240 KB)
            // went out to L2 and back on each of four passes.
            self.scores.resize(ROWS * keys, 0.0);
            self.probabilities.resize(ROWS * keys / 2, 0);
            let mut i = 0;
            while i < len {
                let rows = (len - i).min(ROWS);
                self.score(i, rows, len, keys, d / 2);
                for (row, out) in self
                    .scores
                    .chunks_exact_mut(keys)
                    .zip(self.probabilities.chunks_exact_mut(keys / 2))
                    .take(rows)
                {
                    // Normalised while rounding to bf16: one pass over the row fewer.
                    let sum = exp_shifted_sum::<true>(&mut row[..len]);
                    let inverse = _mm512_set1_ps(1.0 / sum);
                    row[len..].fill(0.0);
                    for (p, o) in row.chunks_exact(32).zip(out.chunks_exact_mut(16)) {
                        let pairs = to_pairs(p.as_ptr(), inverse);
                        _mm512_storeu_si512(o.as_mut_ptr() as *mut _, pairs);
                    }
                }
                let context = &mut context[(start + i) * hidden..];
                self.mix(context, rows, (len, keys), hidden, head * d, d);
                i += ROWS;
            }
        }
    }

    /// Queries as bf16 pairs along the head's width, row after row; keys in blocks of 16 lanes
    /// with pairs along the width (`[block][step][lane]`); values in blocks of 16 channels with
    /// pairs along the keys (`[key pair][channel block][lane]`). Padding is zero.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16")]
    unsafe fn pack(
        &mut self,
        rows: &[f32],
        stride: usize,
        hidden: usize,
        at: usize,
        (d, keys, scale): (usize, usize, f32),
    ) {
        let half = d / 2;
        let blocks = d / 16;
        let one = _mm512_set1_ps(1.0);
        let scale = _mm512_set1_ps(scale);
        self.queries.resize(rows.len() / stride * half, 0);
        self.keys.clear();
        self.keys.resize(keys * half, 0);
        self.values.resize(keys / 2 * d, 0);
        let mut key = [0u32; 16];
        for (j, row) in rows.chunks_exact(stride).enumerate() {
            let (q, k) = (row[at..].as_ptr(), row[hidden + at..].as_ptr());
            let (block, lane) = (j / 16, j % 16);
            for w in (0..d).step_by(32) {
                let queries = self.queries.as_mut_ptr().add(j * half + w / 2);
                // Scaled here, once per query, instead of once per score.
                _mm512_storeu_si512(queries as *mut _, to_pairs(q.add(w), scale));
                _mm512_storeu_si512(key.as_mut_ptr() as *mut _, to_pairs(k.add(w), one));
                // Into the key's lane of 16 steps: a transpose, one value at a time.
                for (s, &pair) in key.iter().enumerate() {
                    self.keys[(block * half + w / 2 + s) * 16 + lane] = pair;
                }
            }
        }
        // Lane c of a value pair holds channel c of keys 2t (low half) and 2t + 1 (high).
        let interleave = _mm512_set_epi16(
            31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20,
            4, 19, 3, 18, 2, 17, 1, 16, 0,
        );
        let zero = [0f32; 16];
        for (t, two) in rows.chunks(2 * stride).enumerate() {
            let first = two[2 * hidden + at..].as_ptr();
            // An odd last key pairs with zeros.
            let (second, step) = two
                .get(stride + 2 * hidden + at..)
                .map_or((zero.as_ptr(), 0), |s| (s.as_ptr(), 16));
            for b in 0..blocks {
                let low = _mm512_loadu_ps(first.add(b * 16));
                let high = _mm512_loadu_ps(second.add(b * step));
                let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
                let out = self.values.as_mut_ptr().add((t * blocks + b) * 16);
                _mm512_storeu_si512(out as *mut _, _mm512_permutexvar_epi16(interleave, both));
            }
        }
        // Past the last key: zero, so the padded probabilities (also zero) multiply zeros.
        self.values[(rows.len() / stride).div_ceil(2) * d..].fill(0);
    }

    /// `scores[r, j] = q_{i + r} · k_j` for the `rows` (at most four) query rows from `i`
    /// (queries come scaled), 64 keys per pass.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16")]
    unsafe fn score(&mut self, i: usize, rows: usize, len: usize, keys: usize, half: usize) {
        let q = self.queries.as_ptr();
        // Only the blocks of 16 that hold a key: the padding's scores are never read.
        let blocks = len.div_ceil(16);
        // Rows past the end repeat the last one; their scores are not stored.
        let row: [*const u32; ROWS] = std::array::from_fn(|r| q.add((i + r.min(rows - 1)) * half));
        let at = (rows, keys, half);
        let mut group = 0;
        while group + 4 <= blocks {
            self.score_blocks::<4>(&row, group, at);
            group += 4;
        }
        match blocks - group {
            1 => self.score_blocks::<1>(&row, group, at),
            2 => self.score_blocks::<2>(&row, group, at),
            3 => self.score_blocks::<3>(&row, group, at),
            _ => {}
        }
    }

    /// Scores of the query rows `row` (`rows` of them are stored) against `B` blocks of 16 keys
    /// from block `group`.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn score_blocks<const B: usize>(
        &mut self,
        row: &[*const u32; ROWS],
        group: usize,
        (rows, keys, half): (usize, usize, usize),
    ) {
        let k = self.keys.as_ptr();
        let mut acc = [[_mm512_setzero_ps(); B]; ROWS];
        for s in 0..half {
            let kv: [__m512bh; B] = std::array::from_fn(|b| {
                _mm512_loadu_si512(k.add(((group + b) * half + s) * 16) as *const _).into_bh()
            });
            for r in 0..ROWS {
                let a = _mm512_set1_epi32(*row[r].add(s) as i32).into_bh();
                for b in 0..B {
                    acc[r][b] = _mm512_dpbf16_ps(acc[r][b], a, kv[b]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for (b, acc) in acc.iter().enumerate() {
                let out = self.scores.as_mut_ptr().add(r * keys + (group + b) * 16);
                _mm512_storeu_ps(out, *acc);
            }
        }
    }

    /// `context[r, at..at + d] = Σ_j p[r, j] · v_j` for the `rows` (at most four) rows of
    /// probabilities, 32 channels per pass (eight independent sums, enough to hide the
    /// instruction's latency).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16")]
    unsafe fn mix(
        &self,
        context: &mut [f32],
        rows: usize,
        (len, keys): (usize, usize),
        hidden: usize,
        at: usize,
        d: usize,
    ) {
        let (pairs, blocks) = (keys / 2, d / 16);
        // Only the key pairs that hold a key: the padding's probabilities are zero.
        let used = len.div_ceil(2);
        let (p, v) = (self.probabilities.as_ptr(), self.values.as_ptr());
        let row: [*const u32; ROWS] = std::array::from_fn(|r| p.add(r.min(rows - 1) * pairs));
        for block in (0..blocks).step_by(2) {
            let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
            for t in 0..used {
                let at_t = v.add((t * blocks + block) * 16);
                let vv = [
                    _mm512_loadu_si512(at_t as *const _).into_bh(),
                    _mm512_loadu_si512(at_t.add(16) as *const _).into_bh(),
                ];
                for r in 0..ROWS {
                    let a = _mm512_set1_epi32(*row[r].add(t) as i32).into_bh();
                    acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, vv[0]);
                    acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, vv[1]);
                }
            }
            for (r, acc) in acc.iter().enumerate().take(rows) {
                debug_assert!(r * hidden + at + (block + 2) * 16 <= context.len());
                let out = context.as_mut_ptr().add(r * hidden + at + block * 16);
                _mm512_storeu_ps(out, acc[0]);
                _mm512_storeu_ps(out.add(16), acc[1]);
            }
        }
    }
}

/// Reinterprets 16 lanes of two packed bf16 each.
#[cfg(target_arch = "x86_64")]
trait IntoBh {
    fn into_bh(self) -> __m512bh;
}

#[cfg(target_arch = "x86_64")]
impl IntoBh for __m512i {
    #[inline(always)]
    fn into_bh(self) -> __m512bh {
        // SAFETY: both are 512 bits of plain data.
        unsafe { std::mem::transmute(self) }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Plain f32 attention, one head at a time.
    fn reference(qkv: &[f32], len: usize, hidden: usize, heads: usize) -> Vec<f32> {
        let d = hidden / heads;
        let at = |row: usize, part: usize, head: usize, c: usize| {
            qkv[row * 3 * hidden + part * hidden + head * d + c]
        };
        let mut out = vec![0f32; len * hidden];
        for head in 0..heads {
            for i in 0..len {
                let scores: Vec<f32> = (0..len)
                    .map(|j| {
                        (0..d)
                            .map(|c| at(i, 0, head, c) * at(j, 1, head, c))
                            .sum::<f32>()
                    })
                    .map(|s| s / (d as f32).sqrt())
                    .collect();
                let top = scores.iter().cloned().fold(f32::MIN, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - top).exp()).collect();
                let total: f32 = e.iter().sum();
                for c in 0..d {
                    out[i * hidden + head * d + c] =
                        (0..len).map(|j| e[j] / total * at(j, 2, head, c)).sum();
                }
            }
        }
        out
    }

    /// Whether the kernel runs on this CPU. When it does not, FlatBert runs its f32 attention
    /// and nothing of this kernel is used; that is said loudly. Detection lives in
    /// `cpu_features`, whose own tests check it against the ladder.
    fn kernel_runs_here(test: &str) -> bool {
        if super::super::cpu_features::avx512_bf16() {
            return true;
        }
        eprintln!("!! {test}: SKIPPED (CPU lacks AVX-512 BF16; f32 attention runs instead)");
        false
    }

    #[test]
    fn bf16_attention_matches_f32_within_bf16_rounding_or_is_not_chosen() {
        if !kernel_runs_here("bf16_attention_matches_f32") {
            return;
        }
        let (hidden, heads) = (64, 2);
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        };
        // Lengths off every block size (4 rows, 16 lanes, 64 keys), an odd one, one token;
        // 1, 20, 37 and 130 end in passes of 1, 2, 3 and 1 blocks of 16 keys.
        for len in [1usize, 20, 37, 64, 130] {
            // Two inputs end to end: the kernel must touch only its own rows.
            let tokens = len + 3;
            let qkv: Vec<f32> = (0..tokens * 3 * hidden).map(|_| next()).collect();
            let mut context = vec![f32::NAN; tokens * hidden];
            let mut attention = Bf16Attention::default();
            let scale = 1.0 / ((hidden / heads) as f32).sqrt();
            // SAFETY: kernel_runs_here() found AVX-512 BF16 (and with it the avx512 path).
            unsafe { attention.run(&qkv, &mut context, (3, len), (hidden, heads, scale)) };
            assert!(
                context[..3 * hidden].iter().all(|v| v.is_nan()),
                "rows of another input written"
            );
            let want = reference(&qkv[3 * 3 * hidden..], len, hidden, heads);
            let worst = want
                .iter()
                .zip(&context[3 * hidden..])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 0.03, "len {len}: largest difference {worst}");
        }
    }

    #[test]
    fn pairs_round_to_nearest_even_after_scaling() {
        if !kernel_runs_here("pairs_round_to_nearest_even") {
            return;
        }
        let mut x = [0.5f32; 32];
        // 1 + 2^-8 is halfway between two bf16: ties to the even one (1.0); 1 + 3·2^-8 to 1 + 2^-6.
        x[..4].copy_from_slice(&[1.0, 1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, -2.0]);
        let mut lanes = [0u32; 16];
        // SAFETY: kernel_runs_here() found AVX-512 BF16 (and with it the avx512 path). 32 values are readable.
        unsafe {
            let pairs = to_pairs(x.as_ptr(), _mm512_set1_ps(2.0));
            _mm512_storeu_si512(lanes.as_mut_ptr() as *mut _, pairs);
        }
        // Doubled: 2.0 is 0x4000, 2 + 2^-7 ties to 2.0, 2 + 3·2^-7 rounds up to 0x4002.
        assert_eq!(lanes[0], 0x4000 | (0x4000 << 16));
        assert_eq!(lanes[1], 0x4002 | (0xC080 << 16));
        assert!(lanes[2..].iter().all(|&l| l == 0x3F80 | (0x3F80 << 16)));
    }
}
