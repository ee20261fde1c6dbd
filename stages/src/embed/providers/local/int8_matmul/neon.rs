//! The arm64 int8 kernels of [`Int8Matrix`]: `neon-dot` (`sdot`) and `neon` (`smlal`); the
//! parent module says why each is built the way it is.

use std::arch::aarch64::*;

use super::{Int8Matrix, QuantizedRows, ROW_BLOCK};

/// Output channels per pass of the NEON kernels: four registers of 4 lanes (with 4 rows, 16
/// accumulators of NEON's 32 registers).
pub(super) const NEON_CHANNELS: usize = 16;

/// `sdot acc.4s, w.16b, x.4b[lane]`: each of `acc`'s 4 lanes gains the sum of its 4 bytes of
/// `w` times bytes `4·lane..4·lane + 4` of `x` (signed). Inline assembly: the intrinsic
/// (`vdotq_laneq_s32`) is not stable Rust yet. Only inside functions compiled with `dotprod`.
macro_rules! sdot_lane {
    ($acc:expr, $w:expr, $x:expr, $lane:literal) => {{
        let mut acc: int32x4_t = $acc;
        std::arch::asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            w = in(vreg) $w,
            x = in(vreg) $x,
            lane = const $lane,
            options(pure, nomem, nostack, preserves_flags),
        );
        acc
    }};
}

impl Int8Matrix {
    /// # Safety
    /// The CPU must have NEON (the `neon` path: every aarch64 CPU). Shapes are asserted.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn matmul_neon(
        &self,
        w: &[i16],
        q: &mut QuantizedRows,
        n: usize,
        y: &mut [f32],
    ) {
        self.check(q, n, y, (NEON_CHANNELS, w.len()));
        q.wide.clear();
        q.wide
            .extend(q.values[..n * q.stride].iter().map(|&v| v as i16));
        let block_len = q.stride * NEON_CHANNELS;
        for block in 0..self.out.div_ceil(NEON_CHANNELS) {
            let w = w.as_ptr().add(block * block_len);
            let mut r = 0;
            while r < n {
                let rows = (n - r).min(ROW_BLOCK);
                let x: [*const i16; ROW_BLOCK] =
                    std::array::from_fn(|i| q.wide.as_ptr().add((r + i.min(rows - 1)) * q.stride));
                let mut acc = [[vdupq_n_s32(0); 4]; ROW_BLOCK];
                // Four inputs per step: one 64-bit register of activations per row, each
                // input's 16 weights in two registers.
                for s in 0..q.stride / 4 {
                    let a: [int16x4_t; ROW_BLOCK] =
                        std::array::from_fn(|i| vld1_s16(x[i].add(s * 4)));
                    macro_rules! input {
                        ($lane:literal) => {{
                            let ws = w.add((s * 4 + $lane) * NEON_CHANNELS);
                            let (w0, w1) = (vld1q_s16(ws), vld1q_s16(ws.add(8)));
                            for i in 0..ROW_BLOCK {
                                let acc = &mut acc[i];
                                acc[0] = vmlal_lane_s16::<$lane>(acc[0], vget_low_s16(w0), a[i]);
                                acc[1] = vmlal_high_lane_s16::<$lane>(acc[1], w0, a[i]);
                                acc[2] = vmlal_lane_s16::<$lane>(acc[2], vget_low_s16(w1), a[i]);
                                acc[3] = vmlal_high_lane_s16::<$lane>(acc[3], w1, a[i]);
                            }
                        }};
                    }
                    input!(0);
                    input!(1);
                    input!(2);
                    input!(3);
                }
                self.store_neon(&acc, (r, rows), block * NEON_CHANNELS, q, y, None);
                r += ROW_BLOCK;
            }
        }
    }

    /// # Safety
    /// The CPU must have NEON and the dot-product extension (the `neon-dot` path). Shapes are
    /// asserted.
    #[target_feature(enable = "neon,dotprod")]
    pub(super) unsafe fn matmul_neon_dot(
        &self,
        w: &[i8],
        sums: &[i32],
        q: &QuantizedRows,
        n: usize,
        y: &mut [f32],
    ) {
        self.check(q, n, y, (NEON_CHANNELS, w.len()));
        let blocks = self.out.div_ceil(NEON_CHANNELS);
        assert!(sums.len() >= blocks * NEON_CHANNELS);
        let steps = q.stride / 4;
        let block_bytes = steps * NEON_CHANNELS * 4;
        // u8 to i8 minus 128: flipping the top bit.
        let flip = vdupq_n_u8(0x80);
        for block in 0..blocks {
            let w = w.as_ptr().add(block * block_bytes);
            let mut r = 0;
            while r < n {
                let rows = (n - r).min(ROW_BLOCK);
                let x: [*const u8; ROW_BLOCK] = std::array::from_fn(|i| {
                    q.values.as_ptr().add((r + i.min(rows - 1)) * q.stride)
                });
                let mut acc = [[vdupq_n_s32(0); 4]; ROW_BLOCK];
                // Step `s + lane` of the 16 channels: 64 bytes, 4 registers of 4 channels.
                macro_rules! step {
                    ($s:expr, $a:expr, $lane:literal) => {{
                        let ws = w.add(($s + $lane) * NEON_CHANNELS * 4);
                        let wz: [int8x16_t; 4] = std::array::from_fn(|z| vld1q_s8(ws.add(z * 16)));
                        for i in 0..ROW_BLOCK {
                            for z in 0..4 {
                                acc[i][z] = sdot_lane!(acc[i][z], wz[z], $a[i], $lane);
                            }
                        }
                    }};
                }
                // Four steps per 16-byte load of each row's activations.
                let mut s = 0;
                while s + 4 <= steps {
                    let a: [int8x16_t; ROW_BLOCK] = std::array::from_fn(|i| {
                        vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x[i].add(s * 4)), flip))
                    });
                    step!(s, a, 0);
                    step!(s, a, 1);
                    step!(s, a, 2);
                    step!(s, a, 3);
                    s += 4;
                }
                // The last 1 to 3 steps: the bytes past the row read as 128, which the flip
                // makes 0 (and no weights are read for those lanes).
                let left = steps - s;
                if left > 0 {
                    let a: [int8x16_t; ROW_BLOCK] = std::array::from_fn(|i| {
                        let mut bytes = [0x80u8; 16];
                        bytes[..left * 4]
                            .copy_from_slice(std::slice::from_raw_parts(x[i].add(s * 4), left * 4));
                        vreinterpretq_s8_u8(veorq_u8(vld1q_u8(bytes.as_ptr()), flip))
                    });
                    step!(s, a, 0);
                    if left > 1 {
                        step!(s, a, 1);
                    }
                    if left > 2 {
                        step!(s, a, 2);
                    }
                }
                self.store_neon(&acc, (r, rows), block * NEON_CHANNELS, q, y, Some(sums));
                r += ROW_BLOCK;
            }
        }
    }

    /// Dequantizes and stores the NEON kernels' sums for `rows` rows from `r`, channels
    /// `first..first + 16` (those below `out`); with `offsets`, each channel's sum first gains
    /// `128 ·` its offset (the `neon-dot` kernel's `a - 128`).
    ///
    /// # Safety
    /// The CPU must have NEON; [`Int8Matrix::check`] must have passed for `q` and `y`, and
    /// `offsets` must hold every channel of the block.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn store_neon(
        &self,
        acc: &[[int32x4_t; 4]; ROW_BLOCK],
        (r, rows): (usize, usize),
        first: usize,
        q: &QuantizedRows,
        y: &mut [f32],
        offsets: Option<&[i32]>,
    ) {
        for (i, acc) in acc.iter().enumerate().take(rows) {
            let row_scale = vdupq_n_f32(q.scales[r + i]);
            let row_min = vdupq_n_f32(q.minimums[r + i]);
            for (z, &acc) in acc.iter().enumerate() {
                let c = first + z * 4;
                if c >= self.out {
                    break;
                }
                let acc = match offsets {
                    Some(o) => vaddq_s32(acc, vshlq_n_s32::<7>(vld1q_s32(o.as_ptr().add(c)))),
                    None => acc,
                };
                let sums = vld1q_f32(self.sums.as_ptr().add(c));
                let scale = vld1q_f32(self.scales.as_ptr().add(c));
                // `a + b · c`, fused: the portable loop's `mul_add`.
                let v = vfmaq_f32(
                    vmulq_f32(row_min, sums),
                    vcvtq_f32_s32(acc),
                    vmulq_f32(scale, row_scale),
                );
                let row = &mut y[(r + i) * self.out..(r + i + 1) * self.out];
                if c + 4 <= self.out {
                    vst1q_f32(row.as_mut_ptr().add(c), v);
                } else {
                    let mut lanes = [0f32; 4];
                    vst1q_f32(lanes.as_mut_ptr(), v);
                    row[c..].copy_from_slice(&lanes[..self.out - c]);
                }
            }
        }
    }
}
