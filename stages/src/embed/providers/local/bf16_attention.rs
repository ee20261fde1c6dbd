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

use super::vector_math::softmax;

/// Keys per pass of the score kernel: four registers of 16 lanes.
const KEY_BLOCK: usize = 64;
/// Query rows per pass of either kernel.
const ROWS: usize = 4;

/// Whether this CPU runs the kernel, for heads `d` wide.
pub(super) fn available(d: usize) -> bool {
    if !d.is_multiple_of(32) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// f32 to bf16, rounded to nearest even (NaN stays NaN: its top bits are kept).
fn bf16(x: f32) -> u32 {
    let bits = x.to_bits();
    if x.is_nan() {
        return (bits >> 16) | 0x40;
    }
    (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
}

/// Two bf16 in one 32-bit lane, the first in the low half.
fn pair(a: f32, b: f32) -> u32 {
    bf16(a) | (bf16(b) << 16)
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
    /// The CPU must have what [`available`] checks.
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
            self.pack(rows, stride, hidden, head * d, d, keys);
            self.scores.resize(len * keys, 0.0);
            self.score(len, keys, d / 2, scale);
            self.probabilities.resize(len * keys / 2, 0);
            for (row, out) in self
                .scores
                .chunks_exact_mut(keys)
                .zip(self.probabilities.chunks_exact_mut(keys / 2))
            {
                softmax(&mut row[..len]);
                row[len..].fill(0.0);
                // 32 consecutive f32 become 32 consecutive bf16: lane t holds p[2t], p[2t+1].
                for (p, o) in row.chunks_exact(32).zip(out.chunks_exact_mut(16)) {
                    let low = _mm512_loadu_ps(p.as_ptr());
                    let high = _mm512_loadu_ps(p.as_ptr().add(16));
                    let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
                    _mm512_storeu_si512(o.as_mut_ptr() as *mut _, packed);
                }
            }
            self.mix(
                &mut context[start * hidden..],
                len,
                hidden,
                head * d,
                d,
                keys,
            );
        }
    }

    /// Queries as bf16 pairs along the head's width, row after row; keys in blocks of 16 lanes
    /// with pairs along the width (`[block][step][lane]`); values in blocks of 16 channels with
    /// pairs along the keys (`[key pair][channel block][lane]`). Padding is zero.
    #[inline(always)]
    fn pack(
        &mut self,
        rows: &[f32],
        stride: usize,
        hidden: usize,
        at: usize,
        d: usize,
        keys: usize,
    ) {
        let half = d / 2;
        let blocks = d / 16;
        self.queries.clear();
        self.keys.clear();
        self.keys.resize(keys * half, 0);
        self.values.clear();
        self.values.resize(keys / 2 * d, 0);
        for (j, row) in rows.chunks_exact(stride).enumerate() {
            let (q, k) = (&row[at..at + d], &row[hidden + at..hidden + at + d]);
            self.queries
                .extend(q.chunks_exact(2).map(|p| pair(p[0], p[1])));
            let (block, lane) = (j / 16, j % 16);
            for (s, p) in k.chunks_exact(2).enumerate() {
                self.keys[(block * half + s) * 16 + lane] = pair(p[0], p[1]);
            }
        }
        for (t, two) in rows.chunks(2 * stride).enumerate() {
            let first = &two[2 * hidden + at..2 * hidden + at + d];
            let second = two.get(stride + 2 * hidden + at..stride + 2 * hidden + at + d);
            for c in 0..d {
                let next = second.map_or(0.0, |s| s[c]);
                self.values[(t * blocks + c / 16) * 16 + c % 16] = pair(first[c], next);
            }
        }
    }

    /// `scores[i, j] = scale · q_i · k_j`, four query rows and 64 keys per pass.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16")]
    unsafe fn score(&mut self, len: usize, keys: usize, half: usize, scale: f32) {
        let scale = _mm512_set1_ps(scale);
        let (q, k) = (self.queries.as_ptr(), self.keys.as_ptr());
        let mut i = 0;
        while i < len {
            let rows = (len - i).min(ROWS);
            // Rows past the end repeat the last one; their scores are not stored.
            let row: [*const u32; ROWS] =
                std::array::from_fn(|r| q.add((i + r.min(rows - 1)) * half));
            for group in (0..keys / 16).step_by(4) {
                let mut acc = [[_mm512_setzero_ps(); 4]; ROWS];
                for s in 0..half {
                    let kv: [__m512bh; 4] = std::array::from_fn(|b| {
                        _mm512_loadu_si512(k.add(((group + b) * half + s) * 16) as *const _)
                            .into_bh()
                    });
                    for r in 0..ROWS {
                        let a = _mm512_set1_epi32(*row[r].add(s) as i32).into_bh();
                        for b in 0..4 {
                            acc[r][b] = _mm512_dpbf16_ps(acc[r][b], a, kv[b]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate().take(rows) {
                    for (b, acc) in acc.iter().enumerate() {
                        let out = self
                            .scores
                            .as_mut_ptr()
                            .add((i + r) * keys + (group + b) * 16);
                        _mm512_storeu_ps(out, _mm512_mul_ps(*acc, scale));
                    }
                }
            }
            i += ROWS;
        }
    }

    /// `context[i, at..at + d] = Σ_j p[i, j] · v_j`, four rows and 32 channels per pass (eight
    /// independent sums, enough to hide the instruction's latency).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16")]
    unsafe fn mix(
        &self,
        context: &mut [f32],
        len: usize,
        hidden: usize,
        at: usize,
        d: usize,
        keys: usize,
    ) {
        let (pairs, blocks) = (keys / 2, d / 16);
        let (p, v) = (self.probabilities.as_ptr(), self.values.as_ptr());
        let mut i = 0;
        while i < len {
            let rows = (len - i).min(ROWS);
            let row: [*const u32; ROWS] =
                std::array::from_fn(|r| p.add((i + r.min(rows - 1)) * pairs));
            for block in (0..blocks).step_by(2) {
                let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
                for t in 0..pairs {
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
                    let out = context.as_mut_ptr().add((i + r) * hidden + at + block * 16);
                    _mm512_storeu_ps(out, acc[0]);
                    _mm512_storeu_ps(out.add(16), acc[1]);
                }
            }
            i += ROWS;
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

#[cfg(test)]
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

    #[test]
    fn bf16_attention_matches_f32_within_bf16_rounding_or_is_not_chosen() {
        if !available(32) {
            // FlatBert then runs its f32 attention; nothing of this kernel is used.
            assert!(!cfg!(target_arch = "x86_64") || !std::is_x86_feature_detected!("avx512bf16"));
            return;
        }
        let (hidden, heads) = (64, 2);
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        };
        // Lengths off every block size (4 rows, 16 lanes, 64 keys), an odd one, one token.
        for len in [1usize, 37, 64, 130] {
            // Two inputs end to end: the kernel must touch only its own rows.
            let tokens = len + 3;
            let qkv: Vec<f32> = (0..tokens * 3 * hidden).map(|_| next()).collect();
            let mut context = vec![f32::NAN; tokens * hidden];
            let mut attention = Bf16Attention::default();
            let scale = 1.0 / ((hidden / heads) as f32).sqrt();
            // SAFETY: available() said the CPU has the features.
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
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between two bf16: ties to the even one (1.0).
        assert_eq!(bf16(1.0 + 1.0 / 256.0), 0x3F80);
        assert_eq!(bf16(1.0 + 3.0 / 256.0), 0x3F82);
        assert_eq!(pair(1.0, -2.0), 0x3F80 | (0xC000 << 16));
    }
}
