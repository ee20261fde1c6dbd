//! Matrix products in 8-bit integers for the `int8` precision: weights quantized once per
//! output channel (symmetric), activations quantized per row just before each product, from
//! the row's own minimum to its maximum (dynamic quantization, as ONNX Runtime's
//! `quantize_dynamic` does, but per row instead of per tensor: more precision, same speed).
//!
//! Why integers: on a CPU with AVX-512 VNNI one `vpdpbusd` does 64 multiply-adds, four times
//! the fp32 FMA rate, and the weights are a quarter of the bytes. Without VNNI the same
//! arithmetic runs in portable Rust, slowly but giving the same numbers, so a model quantized
//! here embeds identically on every machine.
//!
//! VNNI multiplies unsigned by signed bytes, which suits this: an activation is stored as its
//! distance above the row's minimum (`u8`), and the minimum comes back as
//! `min(row) * sum(w)` per channel. After GELU, whose outputs lie mostly above -0.17, this
//! gives twice the resolution of a range symmetric around zero.

use super::cpu_features::CpuPath;
use super::vector_math::{max, min};

/// Output channels handled by one pass of the VNNI kernel: four registers of 16 lanes.
const CHANNEL_BLOCK: usize = 64;
/// Rows handled by one pass of the VNNI kernel (4 rows x 4 registers = 16 accumulators).
const ROW_BLOCK: usize = 4;

/// A weight matrix `[out, in]` in int8, laid out for the kernel this machine runs.
pub(super) struct Int8Matrix {
    out: usize,
    inner: usize,
    /// Per output channel: the dequantization scale, and the sum of its dequantized weights.
    scales: Vec<f32>,
    sums: Vec<f32>,
    weights: Vec<i8>,
    vnni: bool,
}

/// Activations quantized per row, reused across products to avoid reallocating.
#[derive(Default)]
pub(super) struct QuantizedRows {
    values: Vec<u8>,
    scales: Vec<f32>,
    minimums: Vec<f32>,
}

impl Int8Matrix {
    /// Quantizes `w` (`out` rows of `inner` weights) symmetrically per output channel, laid
    /// out for the kernel of `path` (a path the CPU has).
    pub(super) fn quantize(w: &[f32], out: usize, inner: usize, path: CpuPath) -> Self {
        assert_eq!(w.len(), out * inner);
        let mut scales = Vec::with_capacity(out);
        let mut sums = Vec::with_capacity(out);
        let mut rows = vec![0i8; out * inner];
        for (o, row) in w.chunks_exact(inner).enumerate() {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            let mut sum = 0i32;
            for (q, v) in rows[o * inner..(o + 1) * inner].iter_mut().zip(row) {
                *q = weight_step(*v, scale);
                sum += *q as i32;
            }
            scales.push(scale);
            sums.push(sum as f32 * scale);
        }
        let vnni =
            path == CpuPath::Avx512 && out.is_multiple_of(CHANNEL_BLOCK) && inner.is_multiple_of(4);
        let weights = if vnni {
            pack_for_vnni(&rows, out, inner)
        } else {
            rows
        };
        Self {
            out,
            inner,
            scales,
            sums,
            weights,
            vnni,
        }
    }

    pub(super) fn out(&self) -> usize {
        self.out
    }

    /// `y[n, out] = x[n, inner] · wᵀ`, dequantized to f32 (bias not added).
    #[inline(always)]
    pub(super) fn matmul(&self, x: &[f32], n: usize, y: &mut [f32], q: &mut QuantizedRows) {
        assert_eq!(x.len(), n * self.inner);
        assert_eq!(y.len(), n * self.out);
        q.quantize(x, n, self.inner);
        #[cfg(target_arch = "x86_64")]
        if self.vnni {
            // SAFETY: `vnni` is set only when the CPU reports AVX-512 F, BW and VNNI, and the
            // shapes the kernel relies on (out % 64, inner % 4) were checked at quantization.
            unsafe { self.matmul_vnni(q, n, y) };
            return;
        }
        self.matmul_portable(q, n, y);
    }

    fn matmul_portable(&self, q: &QuantizedRows, n: usize, y: &mut [f32]) {
        for r in 0..n {
            let x = &q.values[r * self.inner..(r + 1) * self.inner];
            for o in 0..self.out {
                let w = &self.weights[o * self.inner..(o + 1) * self.inner];
                let acc: i32 = x.iter().zip(w).map(|(&a, &b)| a as i32 * b as i32).sum();
                // The same operations in the same order as the VNNI kernel (a fused
                // multiply-add), so both give equal bits.
                y[r * self.out + o] = (acc as f32)
                    .mul_add(self.scales[o] * q.scales[r], q.minimums[r] * self.sums[o]);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn matmul_vnni(&self, q: &QuantizedRows, n: usize, y: &mut [f32]) {
        use std::arch::x86_64::*;
        let steps = self.inner / 4;
        let block_bytes = steps * CHANNEL_BLOCK * 4;
        for block in 0..self.out / CHANNEL_BLOCK {
            let w = self.weights.as_ptr().add(block * block_bytes);
            let first = block * CHANNEL_BLOCK;
            let mut r = 0;
            while r < n {
                let rows = (n - r).min(ROW_BLOCK);
                // Rows past the end repeat the last one; their sums are not stored.
                let x: [*const u8; ROW_BLOCK] = std::array::from_fn(|i| {
                    q.values.as_ptr().add((r + i.min(rows - 1)) * self.inner)
                });
                let mut acc = [[_mm512_setzero_si512(); 4]; ROW_BLOCK];
                for s in 0..steps {
                    let ws = w.add(s * CHANNEL_BLOCK * 4);
                    let w0 = _mm512_loadu_si512(ws as *const _);
                    let w1 = _mm512_loadu_si512(ws.add(64) as *const _);
                    let w2 = _mm512_loadu_si512(ws.add(128) as *const _);
                    let w3 = _mm512_loadu_si512(ws.add(192) as *const _);
                    for i in 0..ROW_BLOCK {
                        let a = _mm512_set1_epi32((x[i].add(s * 4) as *const i32).read_unaligned());
                        acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], a, w0);
                        acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], a, w1);
                        acc[i][2] = _mm512_dpbusd_epi32(acc[i][2], a, w2);
                        acc[i][3] = _mm512_dpbusd_epi32(acc[i][3], a, w3);
                    }
                }
                for (i, acc) in acc.iter().enumerate().take(rows) {
                    let row_scale = _mm512_set1_ps(q.scales[r + i]);
                    let row_min = _mm512_set1_ps(q.minimums[r + i]);
                    for (z, acc) in acc.iter().enumerate() {
                        let c = first + z * 16;
                        let sums = _mm512_loadu_ps(self.sums.as_ptr().add(c));
                        let scale = _mm512_loadu_ps(self.scales.as_ptr().add(c));
                        let v = _mm512_fmadd_ps(
                            _mm512_cvtepi32_ps(*acc),
                            _mm512_mul_ps(scale, row_scale),
                            _mm512_mul_ps(row_min, sums),
                        );
                        _mm512_storeu_ps(y.as_mut_ptr().add((r + i) * self.out + c), v);
                    }
                }
                r += ROW_BLOCK;
            }
        }
    }
}

/// A weight as its nearest multiple of `scale`, ties to even, within ±127 steps.
///
/// Rounded by adding and taking away 1.5 · 2^23 (which leaves no fraction bits; exact for
/// |x| < 2^22, and |x| <= 127 here), and bounded before an unchecked cast: `round` is a libm
/// call per weight on baseline x86-64 and `as i8` a scalar saturating cast, which together
/// made quantizing a model's 10 million dense weights a visible part of start-up.
#[inline(always)]
fn weight_step(v: f32, scale: f32) -> i8 {
    const SHIFT: f32 = 12_582_912.0;
    // `max` maps NaN to -127 (the other operand), so the cast's input is always in range.
    #[allow(clippy::manual_clamp)]
    let steps = (((v / scale) + SHIFT) - SHIFT).max(-127.0).min(127.0);
    // SAFETY: finite and within -127..=127.
    unsafe { steps.to_int_unchecked::<i32>() as i8 }
}

/// Per block of 64 channels, per 4 inputs: 16 channels x 4 bytes per register, four registers.
fn pack_for_vnni(rows: &[i8], out: usize, inner: usize) -> Vec<i8> {
    let mut packed = Vec::with_capacity(rows.len());
    for block in 0..out / CHANNEL_BLOCK {
        for step in 0..inner / 4 {
            for lane in 0..CHANNEL_BLOCK {
                let o = block * CHANNEL_BLOCK + lane;
                packed.extend_from_slice(&rows[o * inner + step * 4..o * inner + step * 4 + 4]);
            }
        }
    }
    packed
}

impl QuantizedRows {
    /// Each row to 0..=255 over its own minimum to maximum.
    #[inline(always)]
    fn quantize(&mut self, x: &[f32], n: usize, inner: usize) {
        self.values.resize(n * inner, 0);
        self.scales.clear();
        self.minimums.clear();
        for (row, out) in x
            .chunks_exact(inner)
            .zip(self.values.chunks_exact_mut(inner))
        {
            let (min, max) = (min(row), max(row));
            let scale = if max > min { (max - min) / 255.0 } else { 1.0 };
            let inverse = 1.0 / scale;
            for (o, v) in out.iter_mut().zip(row) {
                // Half up by truncation (the value is not negative): `round` would be a
                // call per value. Bounded first, the cast needs no saturation: `as u8` on the
                // raw value compiled to scalar code, 12% of an int8 pass.
                #[allow(clippy::manual_clamp)] // `clamp` keeps NaN; `max` maps it to 0.
                let q = ((v - min) * inverse + 0.5).max(0.0).min(255.0);
                // SAFETY: `q` is finite and within 0..=255: `max` returns 0.0 for a NaN input
                // (the non-NaN operand), `min` keeps it below 256.
                *o = unsafe { q.to_int_unchecked::<i32>() } as u8;
            }
            self.scales.push(scale);
            self.minimums.push(min);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_to_the_nearest_step_ties_to_even_and_clamp() {
        assert_eq!(weight_step(0.26, 0.1), 3);
        assert_eq!(weight_step(-0.26, 0.1), -3);
        // Ties: 2.5 steps to 2, 3.5 to 4, -2.5 to -2.
        assert_eq!(weight_step(2.5, 1.0), 2);
        assert_eq!(weight_step(3.5, 1.0), 4);
        assert_eq!(weight_step(-2.5, 1.0), -2);
        assert_eq!(weight_step(1000.0, 1.0), 127);
        assert_eq!(weight_step(-1000.0, 1.0), -127);
        assert_eq!(weight_step(f32::NAN, 1.0), -127);
    }

    #[test]
    fn quantized_rows_span_0_to_255_round_half_up_and_survive_nan() {
        let mut q = QuantizedRows::default();
        q.quantize(&[0.0, 127.5, 255.0, 127.4, 2.0, 2.0, 2.0, f32::NAN], 2, 4);
        // 0..255 in steps of exactly 1: 127.5 rounds half up, 127.4 down.
        assert_eq!(&q.values[..4], &[0, 128, 255, 127]);
        assert_eq!((q.minimums[0], q.scales[0]), (0.0, 1.0));
        // A row with a NaN still gives bytes (the NaN one becomes 0), no undefined cast.
        assert_eq!(q.values.len(), 8);
    }

    fn product(x: &[f32], w: &[f32], n: usize, out: usize, inner: usize) -> Vec<f32> {
        let mut y = vec![0f32; n * out];
        for r in 0..n {
            for o in 0..out {
                y[r * out + o] = (0..inner)
                    .map(|k| x[r * inner + k] * w[o * inner + k])
                    .sum();
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    /// Both kernels (the one this CPU runs and the portable one) give the same integers, and
    /// the product is within int8 rounding of the f32 product; odd row counts exercise the
    /// kernel's row tail.
    #[test]
    fn int8_product_matches_f32_within_rounding_on_both_kernels() {
        let (out, inner) = (128, 96);
        for n in [1, 3, 4, 7, 13] {
            let x = values(n * inner, 7 + n as u32);
            let w = values(out * inner, 99);
            let exact = product(&x, &w, n, out, inner);
            let m = Int8Matrix::quantize(&w, out, inner, CpuPath::best());
            let mut q = QuantizedRows::default();
            let mut y = vec![0f32; n * out];
            m.matmul(&x, n, &mut y, &mut q);
            let portable = Int8Matrix {
                weights: {
                    let mut rows = vec![0i8; out * inner];
                    for (o, row) in w.chunks_exact(inner).enumerate() {
                        for (k, v) in row.iter().enumerate() {
                            rows[o * inner + k] = weight_step(*v, m.scales[o]);
                        }
                    }
                    rows
                },
                vnni: false,
                scales: m.scales.clone(),
                sums: m.sums.clone(),
                out,
                inner,
            };
            let mut y2 = vec![0f32; n * out];
            portable.matmul(&x, n, &mut y2, &mut q);
            assert_eq!(y, y2, "kernels disagree at n = {n}");
            let worst = y
                .iter()
                .zip(&exact)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            // Each of 96 terms is off by at most half a step of x (2/255) times |w| plus half a
            // step of w (1/127) times |x|: 0.0079 each, 0.76 if all erred the same way; as a
            // random walk of 96 terms, about a tenth of that.
            assert!(worst < 0.15, "int8 error {worst} at n = {n}");
            assert!(worst > 0.0, "suspiciously exact: was anything quantized?");
        }
    }
}
