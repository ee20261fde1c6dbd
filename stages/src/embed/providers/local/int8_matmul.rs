//! Matrix products in 8-bit integers for the `int8` precision: weights quantized once per
//! output channel (symmetric), activations quantized per row just before each product, from
//! the row's own minimum to its maximum (dynamic quantization, as ONNX Runtime's
//! `quantize_dynamic` does, but per row instead of per tensor: more precision, same speed).
//!
//! An activation is stored as its distance above the row's minimum (`u8`, 0..=255), and the
//! minimum comes back as `min(row) * sum(w)` per channel; weights lie in -127..=127. After
//! GELU, whose outputs lie mostly above -0.17, this gives twice the resolution of a range
//! symmetric around zero.
//!
//! One kernel per [`CpuPath`], all giving the same bits: each sums exact integer products in
//! i32 (at most 255 · 127 · inner, far from overflow for BERT's widths), converts the sum to
//! f32 and scales it with the same fused multiply-add as the portable loop.
//!
//! - `avx512`: `vpdpbusd` on 512 bits, 64 multiply-adds per instruction, u8 by i8 summed in
//!   i32 with no intermediate rounding or saturation.
//! - `avx-vnni`: the same instruction on 256 bits (32 per instruction).
//! - `avx2`: `vpmaddwd` on activations and weights widened to i16 (16 per instruction). Why
//!   not `vpmaddubsw` (u8 by i8, 32 per instruction): it adds each pair of products in i16
//!   with saturation, and 255 · 127 · 2 = 64,770 exceeds 32,767, so it would clip wherever an
//!   activation near its row's maximum meets a large weight, and give other numbers than the
//!   other paths. 7-bit activations would halve the resolution on every path; the sign trick
//!   (`vpsignb`, both operands within ±127) needs activations symmetric around zero; splitting
//!   into two `vpmaddubsw` costs more instructions than `vpmaddwd` saves. `vpmaddwd` multiplies
//!   i16 by i16 and adds pairs in i32: exact for any product of a u8 and an i8.
//! - `neon-dot` (arm64 with `dotprod`): `sdot`, i8 by i8 in groups of 4 summed into i32, 16
//!   per instruction. Activations are u8, so each is fed as `a - 128` (an i8) and the sum gets
//!   `128 · Σw` of its channel back, in integers: exact, the same sum as every other path.
//! - `neon` (every arm64 CPU): `smlal` on activations and weights widened to i16, 4 per
//!   instruction, as the `avx2` kernel does it with `vpmaddwd`.
//! - `portable`: a scalar loop, several times slower than f32 (`precision = "auto"` picks f32
//!   there).
//!
//! Shapes need no multiple of anything: weights are packed in blocks of channels padded with
//! zero channels, and each row of activations is padded with zeros to a multiple of 4 inputs
//! (zero weights meet zero activations there, adding nothing).

use super::cpu_features::CpuPath;
use super::vector_math::{max, min};

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(target_arch = "aarch64")]
use neon::NEON_CHANNELS;
#[cfg(target_arch = "x86_64")]
use x86::{YMM_CHANNELS, ZMM_CHANNELS};

/// Rows handled by one pass of a kernel.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const ROW_BLOCK: usize = 4;
/// Inputs per activation row are padded to a multiple of this (one `vpdpbusd` lane's bytes).
const INNER_STEP: usize = 4;
/// Per-channel vectors are padded to a multiple of this (the widest block), so that a
/// kernel's loads of a last, partial block stay inside them.
const CHANNEL_PAD: usize = 64;

/// The weights in the layout of one kernel.
enum Packed {
    /// `[out][inner]`.
    Rows(Vec<i8>),
    /// Blocks of [`YMM_CHANNELS`], per 2 inputs: 8 lanes of two i16 per register.
    #[cfg(target_arch = "x86_64")]
    Avx2(Vec<i16>),
    /// Blocks of [`YMM_CHANNELS`], per 4 inputs: 8 lanes of 4 bytes per register.
    #[cfg(target_arch = "x86_64")]
    AvxVnni(Vec<i8>),
    /// Blocks of [`ZMM_CHANNELS`], per 4 inputs: 16 lanes of 4 bytes per register.
    #[cfg(target_arch = "x86_64")]
    Avx512(Vec<i8>),
    /// Blocks of [`NEON_CHANNELS`], per input: 16 i16, two registers.
    #[cfg(target_arch = "aarch64")]
    Neon(Vec<i16>),
    /// Blocks of [`NEON_CHANNELS`], per 4 inputs: 4 registers of 4 lanes of 4 bytes; and per
    /// channel (zero past `out`) the sum of its integer weights, for the `a - 128` offset.
    #[cfg(target_arch = "aarch64")]
    NeonDot { weights: Vec<i8>, sums: Vec<i32> },
}

/// A weight matrix `[out, in]` in int8, laid out for the kernel of one [`CpuPath`].
pub(super) struct Int8Matrix {
    out: usize,
    inner: usize,
    /// Per output channel (zero past `out`): the dequantization scale, and the sum of its
    /// dequantized weights.
    scales: Vec<f32>,
    sums: Vec<f32>,
    weights: Packed,
}

/// Activations quantized per row, reused across products to avoid reallocating.
#[derive(Default)]
pub(super) struct QuantizedRows {
    /// Rows `stride` apart, zero from `inner` to `stride`.
    values: Vec<u8>,
    stride: usize,
    scales: Vec<f32>,
    minimums: Vec<f32>,
    /// `values` widened to i16, for the `avx2` and `neon` kernels.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    wide: Vec<i16>,
}

impl Int8Matrix {
    /// Quantizes `w` (`out` rows of `inner` weights) symmetrically per output channel, laid
    /// out for the kernel of `path`, which must be one this CPU has (checked: the kernel's
    /// instructions would fault otherwise).
    pub(super) fn quantize(w: &[f32], out: usize, inner: usize, path: CpuPath) -> Self {
        assert!(inner > 0, "a matrix needs at least one input");
        assert_eq!(w.len(), out * inner);
        assert!(
            path.supported(),
            "the {path} CPU path needs {}",
            path.needs()
        );
        let padded = out.next_multiple_of(CHANNEL_PAD);
        let mut scales = vec![0f32; padded];
        let mut sums = vec![0f32; padded];
        let mut rows = vec![0i8; out * inner];
        let mut int_sums = vec![0i32; padded];
        for (o, row) in w.chunks_exact(inner).enumerate() {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            let mut sum = 0i32;
            for (q, v) in rows[o * inner..(o + 1) * inner].iter_mut().zip(row) {
                *q = weight_step(*v, scale);
                sum += *q as i32;
            }
            scales[o] = scale;
            sums[o] = sum as f32 * scale;
            int_sums[o] = sum;
        }
        let weights = match path {
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx512 => Packed::Avx512(pack(&rows, out, inner, ZMM_CHANNELS, 4)),
            #[cfg(target_arch = "x86_64")]
            CpuPath::AvxVnni => Packed::AvxVnni(pack(&rows, out, inner, YMM_CHANNELS, 4)),
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx2 => Packed::Avx2(pack(&rows, out, inner, YMM_CHANNELS, 2)),
            #[cfg(target_arch = "aarch64")]
            CpuPath::Neon => Packed::Neon(pack(&rows, out, inner, NEON_CHANNELS, 1)),
            #[cfg(target_arch = "aarch64")]
            CpuPath::NeonDot => Packed::NeonDot {
                weights: pack(&rows, out, inner, NEON_CHANNELS, 4),
                sums: int_sums,
            },
            _ => Packed::Rows(rows),
        };
        Self {
            out,
            inner,
            scales,
            sums,
            weights,
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
        match &self.weights {
            Packed::Rows(w) => self.matmul_portable(w, q, n, y),
            // SAFETY: a matrix is packed for a path only when the CPU has it (asserted in
            // `quantize`); each kernel asserts the shapes it relies on.
            #[cfg(target_arch = "x86_64")]
            Packed::Avx512(w) => unsafe { self.matmul_avx512(w, q, n, y) },
            #[cfg(target_arch = "x86_64")]
            Packed::AvxVnni(w) => unsafe { self.matmul_avx_vnni(w, q, n, y) },
            #[cfg(target_arch = "x86_64")]
            Packed::Avx2(w) => unsafe { self.matmul_avx2(w, q, n, y) },
            #[cfg(target_arch = "aarch64")]
            Packed::Neon(w) => unsafe { self.matmul_neon(w, q, n, y) },
            #[cfg(target_arch = "aarch64")]
            Packed::NeonDot { weights, sums } => unsafe {
                self.matmul_neon_dot(weights, sums, q, n, y)
            },
        }
    }

    fn matmul_portable(&self, w: &[i8], q: &QuantizedRows, n: usize, y: &mut [f32]) {
        for r in 0..n {
            let x = &q.values[r * q.stride..r * q.stride + self.inner];
            for o in 0..self.out {
                let w = &w[o * self.inner..(o + 1) * self.inner];
                let acc: i32 = x.iter().zip(w).map(|(&a, &b)| a as i32 * b as i32).sum();
                // The same operations in the same order as the SIMD kernels (a fused
                // multiply-add), so all give equal bits.
                y[r * self.out + o] = (acc as f32)
                    .mul_add(self.scales[o] * q.scales[r], q.minimums[r] * self.sums[o]);
            }
        }
    }

    /// The bounds every SIMD kernel reads and writes within, for `channels`-wide blocks of
    /// `group` inputs per lane and `len` packed weights; real asserts, once per product.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn check(&self, q: &QuantizedRows, n: usize, y: &[f32], (channels, len): (usize, usize)) {
        let blocks = self.out.div_ceil(channels);
        assert_eq!(q.stride, self.inner.next_multiple_of(INNER_STEP));
        assert!(q.values.len() >= n * q.stride && q.scales.len() >= n);
        assert!(q.minimums.len() >= n && y.len() >= n * self.out);
        assert!(self.scales.len() >= blocks * channels && self.sums.len() >= blocks * channels);
        assert_eq!(len, blocks * channels * q.stride);
    }
}

/// `rows` (`[out][inner]`) in blocks of `channels`, each lane holding `group` consecutive
/// inputs of its channel (`[block][step][lane][group]`); zero past `out` and past `inner` up
/// to the activations' padded width.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn pack<T: Copy + Default + From<i8>>(
    rows: &[i8],
    out: usize,
    inner: usize,
    channels: usize,
    group: usize,
) -> Vec<T> {
    let stride = inner.next_multiple_of(INNER_STEP);
    let blocks = out.div_ceil(channels);
    let mut packed = Vec::with_capacity(blocks * channels * stride);
    for block in 0..blocks {
        for step in 0..stride / group {
            for lane in 0..channels {
                let o = block * channels + lane;
                for k in step * group..(step + 1) * group {
                    let inside = o < out && k < inner;
                    packed.push(if inside {
                        T::from(rows[o * inner + k])
                    } else {
                        T::default()
                    });
                }
            }
        }
    }
    packed
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

impl QuantizedRows {
    /// Each row to 0..=255 over its own minimum to maximum, rows padded with zeros to a
    /// multiple of 4 inputs.
    #[inline(always)]
    fn quantize(&mut self, x: &[f32], n: usize, inner: usize) {
        self.stride = inner.next_multiple_of(INNER_STEP);
        self.values.resize(n * self.stride, 0);
        self.scales.clear();
        self.minimums.clear();
        for (row, padded) in x
            .chunks_exact(inner)
            .zip(self.values.chunks_exact_mut(self.stride))
        {
            let (out, padding) = padded.split_at_mut(inner);
            padding.fill(0);
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

    /// The paths this CPU runs, each announced; a path it lacks says so loudly.
    fn paths_here(test: &str) -> Vec<CpuPath> {
        CpuPath::ladder()
            .iter()
            .copied()
            .filter(|path| {
                let here = path.supported();
                if !here {
                    eprintln!("!! {test} on {path}: SKIPPED (CPU lacks {})", path.needs());
                }
                here
            })
            .collect()
    }

    fn product_on(
        path: CpuPath,
        m: &Int8Matrix,
        x: &[f32],
        n: usize,
        q: &mut QuantizedRows,
    ) -> Vec<f32> {
        // NaN first: a value the kernel did not write would fail the comparison.
        let mut y = vec![f32::NAN; n * m.out];
        m.matmul(x, n, &mut y, q);
        assert!(
            y.iter().all(|v| v.is_finite()),
            "{path}: a product left unwritten"
        );
        y
    }

    /// Every kernel this CPU runs gives the portable loop's products bit for bit, on shapes
    /// off every block: odd and tiny `inner` (the padding to 4), `out` below, at and past the
    /// 16- and 64-channel blocks, row counts around the 4-row block. One scratch is shared by
    /// all products, so padding left by a wider product must not leak into a narrower one.
    #[test]
    fn every_kernel_gives_the_portable_products_bit_for_bit() {
        let paths = paths_here("every_kernel_gives_the_portable_products_bit_for_bit");
        assert!(
            paths.contains(&CpuPath::best()),
            "the CPU's best path must run"
        );
        let mut q = QuantizedRows::default();
        let mut seed = 1u32;
        for (inner, out) in [
            (1, 1),
            (3, 17),
            (5, 64),
            (17, 15),
            (63, 65),
            (96, 130),
            (385, 48),
            (7, 200),
        ] {
            for n in [1, 2, 3, 4, 5, 9] {
                seed += 1;
                let w = values(out * inner, seed);
                let x = values(n * inner, seed * 31);
                let portable = Int8Matrix::quantize(&w, out, inner, CpuPath::Portable);
                let want = product_on(CpuPath::Portable, &portable, &x, n, &mut q);
                for &path in &paths {
                    let m = Int8Matrix::quantize(&w, out, inner, path);
                    let got = product_on(path, &m, &x, n, &mut q);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{path} differs from portable at n {n}, inner {inner}, out {out}"
                    );
                }
            }
        }
    }

    /// The worst case for 16-bit pair sums: every activation at 255 (its row's maximum), every
    /// weight at +127 or -127, so each pair of products is ±64,770, beyond i16. Every kernel must
    /// sum it exactly (`vpmaddubsw` would clip each pair at 32,767).
    #[test]
    fn largest_activations_times_largest_weights_do_not_saturate() {
        let paths = paths_here("largest_activations_times_largest_weights_do_not_saturate");
        let (n, inner, out) = (5, 64, 24);
        // Rows of one 0.0 then 1.0s: the 1.0s quantize to 255, the row's scale is 1/255.
        let mut x = vec![1.0f32; n * inner];
        for row in x.chunks_exact_mut(inner) {
            row[0] = 0.0;
        }
        // Channel o: all +1 or all -1 (127 steps of 1/127).
        let w: Vec<f32> = (0..out * inner)
            .map(|i| if (i / inner) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let mut q = QuantizedRows::default();
        for path in paths {
            let m = Int8Matrix::quantize(&w, out, inner, path);
            let y = product_on(path, &m, &x, n, &mut q);
            for (i, v) in y.iter().enumerate() {
                let want = if (i % out) % 2 == 0 { 63.0 } else { -63.0 };
                assert!((v - want).abs() < 1e-3, "{path}: {v} for {want} at {i}");
            }
        }
    }

    /// Every kernel this CPU runs gives the same integers as the portable loop (checked above)
    /// and the product is within int8 rounding of the f32 product; odd row counts exercise the
    /// kernels' row tail.
    #[test]
    fn int8_product_matches_f32_within_rounding_on_every_kernel() {
        let paths = paths_here("int8_product_matches_f32_within_rounding_on_every_kernel");
        let (out, inner) = (128, 96);
        for n in [1, 3, 4, 7, 13] {
            let x = values(n * inner, 7 + n as u32);
            let w = values(out * inner, 99);
            let exact = product(&x, &w, n, out, inner);
            let mut q = QuantizedRows::default();
            for &path in &paths {
                let m = Int8Matrix::quantize(&w, out, inner, path);
                let y = product_on(path, &m, &x, n, &mut q);
                let worst = y
                    .iter()
                    .zip(&exact)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                // Each of 96 terms is off by at most half a step of x (2/255) times |w| plus half
                // a step of w (1/127) times |x|: 0.0079 each, 0.76 if all erred the same way; as
                // a random walk of 96 terms, about a tenth of that.
                assert!(worst < 0.15, "{path}: int8 error {worst} at n = {n}");
                assert!(
                    worst > 0.0,
                    "{path}: suspiciously exact: was anything quantized?"
                );
            }
        }
    }
}
