//! The element-wise parts of a forward pass (GELU, softmax, layer norm), written so the
//! compiler turns them into AVX-512 code: no calls into libm, no branches, and reductions kept
//! in 16 independent lanes (a plain `.sum()` of f32 must add in order, one value at a time).
//!
//! Every function is `#[inline(always)]` so that, inlined into the forward pass that
//! [`super::flat_bert`] compiles a second time for AVX-512, it becomes AVX-512 code too.
//!
//! Why it matters: with the dense layers in int8, these took most of a pass (erf and exp alone
//! a third) before they were vectorised.
//!
//! `FMA`: the polynomials' steps as fused multiply-adds, half the instructions. Only for code
//! compiled with the `fma` feature (the AVX-512 pass): elsewhere `mul_add` is a libm call per
//! value, so the baseline pass keeps a multiply and an add.

const LANES: usize = 16;

/// The sum, accumulated in 16 lanes.
#[inline(always)]
pub(super) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest value (of finite inputs), in 16 lanes.
#[inline(always)]
pub(super) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

/// The smallest value (of finite inputs), in 16 lanes.
#[inline(always)]
pub(super) fn min(x: &[f32]) -> f32 {
    let mut acc = [f32::INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::INFINITY, |m, &v| if v < m { v } else { m });
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v < *a { v } else { *a };
        }
    }
    acc.iter().fold(tail, |m, &v| if v < m { v } else { m })
}

/// `a · b + c`, fused when `FMA`.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `e^x`, to about 2 ulp for x in [-87, 88] (Cephes' polynomial after a split by ln 2).
#[inline(always)]
pub(super) fn exp<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x / ln 2 to the nearest integer n with the 1.5 * 2^23 trick: the sum's low
    // mantissa bits then hold n, read as bits below (a float-to-int cast would be scalarised).
    let shifted = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let n = shifted - 12_582_912.0;
    let r = madd::<FMA>(n, 2.121_944_4e-4, madd::<FMA>(n, -0.693_359_4, x));
    let r2 = r * r;
    let mut p = 1.987_569_1e-4f32;
    p = madd::<FMA>(p, r, 1.398_199_9e-3);
    p = madd::<FMA>(p, r, 8.333_452e-3);
    p = madd::<FMA>(p, r, 4.166_579_6e-2);
    p = madd::<FMA>(p, r, 1.666_666_5e-1);
    p = madd::<FMA>(p, r, 0.5);
    let y = madd::<FMA>(p, r2, r + 1.0);
    let n_bits = shifted.to_bits().wrapping_sub(12_582_912f32.to_bits());
    f32::from_bits(y.to_bits().wrapping_add(n_bits << 23))
}

/// `erf(x)` as a rational polynomial on [-4, 4] (Eigen's and XLA's f32 erf; a few ulp).
#[inline(always)]
fn erf<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = madd::<FMA>(p, x2, 2.770_681_4e-8);
    p = madd::<FMA>(p, x2, -2.101_024e-6);
    p = madd::<FMA>(p, x2, -5.692_506_4e-5);
    p = madd::<FMA>(p, x2, -7.349_906_3e-4);
    p = madd::<FMA>(p, x2, -2.954_600_1e-3);
    p = madd::<FMA>(p, x2, -1.609_603_3e-2);
    let p = p * x;
    let mut q = -1.456_607_2e-5f32;
    q = madd::<FMA>(q, x2, -2.133_740_6e-4);
    q = madd::<FMA>(q, x2, -1.682_827e-3);
    q = madd::<FMA>(q, x2, -7.373_329e-3);
    q = madd::<FMA>(q, x2, -1.426_474e-2);
    p / q
}

/// BERT's exact GELU, `x·Φ(x)`, in place.
#[inline(always)]
pub(super) fn gelu<const FMA: bool>(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf::<FMA>(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Softmax of one row, in place.
#[inline(always)]
pub(super) fn softmax<const FMA: bool>(row: &mut [f32]) {
    let inverse = 1.0 / exp_shifted_sum::<FMA>(row);
    row.iter_mut().for_each(|v| *v *= inverse);
}

/// `e^(v - max)` for each value of `row`, in place, returning their sum: a softmax without
/// its division, which a caller can fold into its next pass over the row. The sum is taken
/// while the values are in registers (16 lanes), not in a second pass.
#[inline(always)]
pub(super) fn exp_shifted_sum<const FMA: bool>(row: &mut [f32]) -> f32 {
    let m = max(row);
    let mut acc = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
            *v = exp::<FMA>(*v - m);
            *a += *v;
        }
    }
    let mut tail = 0f32;
    for v in chunks.into_remainder() {
        *v = exp::<FMA>(*v - m);
        tail += *v;
    }
    acc.iter().sum::<f32>() + tail
}

/// Layer norm of each `width`-wide row, in place.
#[inline(always)]
pub(super) fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], width: usize, eps: f32) {
    for row in x.chunks_exact_mut(width) {
        let mean = sum(row) / width as f32;
        row.iter_mut().for_each(|v| *v -= mean);
        let mut squares = [0f32; LANES];
        for c in row.chunks_exact(LANES) {
            for (a, v) in squares.iter_mut().zip(c) {
                *a += v * v;
            }
        }
        let tail: f32 = row
            .chunks_exact(LANES)
            .remainder()
            .iter()
            .map(|v| v * v)
            .sum();
        let variance = (squares.iter().sum::<f32>() + tail) / width as f32;
        let inverse = 1.0 / (variance + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = *v * inverse * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_erf_match_libm() {
        let mut worst_exp = 0f32;
        let mut worst_erf = 0f32;
        for i in -8000..=8000 {
            let x = i as f32 / 100.0;
            if x > -80.0 {
                for e in [exp::<false>(x), exp::<true>(x)] {
                    worst_exp = worst_exp.max((e - x.exp()).abs() / x.exp());
                }
            }
            for e in [erf::<false>(x), erf::<true>(x)] {
                worst_erf = worst_erf.max((e - libm::erff(x)).abs());
            }
        }
        assert!(worst_exp < 1e-6, "exp relative error {worst_exp}");
        assert!(worst_erf < 1e-6, "erf error {worst_erf}");
    }

    #[test]
    fn reductions_match_plain_loops_on_odd_lengths() {
        let x: Vec<f32> = (0..37).map(|i| ((i * 7919) % 23) as f32 - 11.5).collect();
        assert!((sum(&x) - x.iter().sum::<f32>()).abs() < 1e-4);
        assert_eq!(max(&x), x.iter().copied().fold(f32::MIN, f32::max));
        assert_eq!(min(&x), x.iter().copied().fold(f32::MAX, f32::min));
        let mut row = x.clone();
        softmax::<false>(&mut row);
        assert!((sum(&row) - 1.0).abs() < 1e-5);
    }
}
