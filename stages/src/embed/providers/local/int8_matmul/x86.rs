//! The x86-64 int8 kernels of [`Int8Matrix`]: `avx512` and `avx-vnni` (`vpdpbusd`) and `avx2`
//! (`vpmaddwd`); the parent module says why each is built the way it is.

use std::arch::x86_64::*;

use super::{Int8Matrix, QuantizedRows, ROW_BLOCK};

/// Output channels per pass of the 512-bit kernel: four registers of 16 lanes.
pub(super) const ZMM_CHANNELS: usize = 64;
/// Output channels per pass of the 256-bit kernels: two registers of 8 lanes (with 4 rows, 8
/// accumulators: AVX2 has 16 registers, and `vpmaddwd` needs a temporary per product).
pub(super) const YMM_CHANNELS: usize = 16;

impl Int8Matrix {
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI (the `avx512` path). Shapes are asserted.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
    pub(super) unsafe fn matmul_avx512(
        &self,
        w: &[i8],
        q: &QuantizedRows,
        n: usize,
        y: &mut [f32],
    ) {
        self.check(q, n, y, (ZMM_CHANNELS, w.len()));
        let steps = q.stride / 4;
        let block_bytes = steps * ZMM_CHANNELS * 4;
        for block in 0..self.out.div_ceil(ZMM_CHANNELS) {
            let w = w.as_ptr().add(block * block_bytes);
            let first = block * ZMM_CHANNELS;
            let mut r = 0;
            while r < n {
                let rows = (n - r).min(ROW_BLOCK);
                // Rows past the end repeat the last one; their sums are not stored.
                let x: [*const u8; ROW_BLOCK] = std::array::from_fn(|i| {
                    q.values.as_ptr().add((r + i.min(rows - 1)) * q.stride)
                });
                let mut acc = [[_mm512_setzero_si512(); 4]; ROW_BLOCK];
                for s in 0..steps {
                    let ws = w.add(s * ZMM_CHANNELS * 4);
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
                        if c >= self.out {
                            break;
                        }
                        let sums = _mm512_loadu_ps(self.sums.as_ptr().add(c));
                        let scale = _mm512_loadu_ps(self.scales.as_ptr().add(c));
                        let v = _mm512_fmadd_ps(
                            _mm512_cvtepi32_ps(*acc),
                            _mm512_mul_ps(scale, row_scale),
                            _mm512_mul_ps(row_min, sums),
                        );
                        let at = y.as_mut_ptr().add((r + i) * self.out + c);
                        // Lanes past `out` are masked off (a masked store does not touch them).
                        let lanes = (self.out - c).min(16);
                        _mm512_mask_storeu_ps(at, ((1u32 << lanes) - 1) as u16, v);
                    }
                }
                r += ROW_BLOCK;
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX2, FMA and AVX-VNNI (the `avx-vnni` path). Shapes are asserted.
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub(super) unsafe fn matmul_avx_vnni(
        &self,
        w: &[i8],
        q: &QuantizedRows,
        n: usize,
        y: &mut [f32],
    ) {
        self.check(q, n, y, (YMM_CHANNELS, w.len()));
        let steps = q.stride / 4;
        let block_bytes = steps * YMM_CHANNELS * 4;
        for block in 0..self.out.div_ceil(YMM_CHANNELS) {
            let w = w.as_ptr().add(block * block_bytes);
            let mut r = 0;
            while r < n {
                let rows = (n - r).min(ROW_BLOCK);
                let x: [*const u8; ROW_BLOCK] = std::array::from_fn(|i| {
                    q.values.as_ptr().add((r + i.min(rows - 1)) * q.stride)
                });
                let mut acc = [[_mm256_setzero_si256(); 2]; ROW_BLOCK];
                for s in 0..steps {
                    let ws = w.add(s * YMM_CHANNELS * 4);
                    let w0 = _mm256_loadu_si256(ws as *const _);
                    let w1 = _mm256_loadu_si256(ws.add(32) as *const _);
                    for i in 0..ROW_BLOCK {
                        let a = _mm256_set1_epi32((x[i].add(s * 4) as *const i32).read_unaligned());
                        acc[i][0] = _mm256_dpbusd_avx_epi32(acc[i][0], a, w0);
                        acc[i][1] = _mm256_dpbusd_avx_epi32(acc[i][1], a, w1);
                    }
                }
                self.store_ymm(&acc, (r, rows), block * YMM_CHANNELS, q, y);
                r += ROW_BLOCK;
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA (the `avx2` path). Shapes are asserted.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul_avx2(
        &self,
        w: &[i16],
        q: &mut QuantizedRows,
        n: usize,
        y: &mut [f32],
    ) {
        self.check(q, n, y, (YMM_CHANNELS, w.len()));
        // Widened once per product (n · inner values), reused by every block of channels.
        q.wide.clear();
        q.wide
            .extend(q.values[..n * q.stride].iter().map(|&v| v as i16));
        let steps = q.stride / 2;
        let block_len = steps * YMM_CHANNELS * 2;
        for block in 0..self.out.div_ceil(YMM_CHANNELS) {
            let w = w.as_ptr().add(block * block_len);
            let mut r = 0;
            while r < n {
                let rows = (n - r).min(ROW_BLOCK);
                let x: [*const i16; ROW_BLOCK] =
                    std::array::from_fn(|i| q.wide.as_ptr().add((r + i.min(rows - 1)) * q.stride));
                let mut acc = [[_mm256_setzero_si256(); 2]; ROW_BLOCK];
                for s in 0..steps {
                    let ws = w.add(s * YMM_CHANNELS * 2);
                    let w0 = _mm256_loadu_si256(ws as *const _);
                    let w1 = _mm256_loadu_si256(ws.add(16) as *const _);
                    for i in 0..ROW_BLOCK {
                        // Two activations, as two i16, in every lane.
                        let a = _mm256_set1_epi32((x[i].add(s * 2) as *const i32).read_unaligned());
                        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(a, w0));
                        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(a, w1));
                    }
                }
                self.store_ymm(&acc, (r, rows), block * YMM_CHANNELS, q, y);
                r += ROW_BLOCK;
            }
        }
    }

    /// Dequantizes and stores the 256-bit kernels' sums for `rows` rows from `r`, channels
    /// `first..first + 16` (those below `out`).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; [`Int8Matrix::check`] must have passed for `q` and `y`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store_ymm(
        &self,
        acc: &[[__m256i; 2]; ROW_BLOCK],
        (r, rows): (usize, usize),
        first: usize,
        q: &QuantizedRows,
        y: &mut [f32],
    ) {
        for (i, acc) in acc.iter().enumerate().take(rows) {
            let row_scale = _mm256_set1_ps(q.scales[r + i]);
            let row_min = _mm256_set1_ps(q.minimums[r + i]);
            for (z, acc) in acc.iter().enumerate() {
                let c = first + z * 8;
                if c >= self.out {
                    break;
                }
                let sums = _mm256_loadu_ps(self.sums.as_ptr().add(c));
                let scale = _mm256_loadu_ps(self.scales.as_ptr().add(c));
                let v = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(*acc),
                    _mm256_mul_ps(scale, row_scale),
                    _mm256_mul_ps(row_min, sums),
                );
                let row = &mut y[(r + i) * self.out..(r + i + 1) * self.out];
                if c + 8 <= self.out {
                    _mm256_storeu_ps(row.as_mut_ptr().add(c), v);
                } else {
                    let mut lanes = [0f32; 8];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                    row[c..].copy_from_slice(&lanes[..self.out - c]);
                }
            }
        }
    }
}
