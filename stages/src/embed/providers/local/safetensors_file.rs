//! `model.safetensors` read straight into the `Vec<f32>` the forward pass keeps: one copy per
//! tensor, from a memory map.
//!
//! Why not candle, which kass used for this alone: its loader copies each tensor into a
//! `Tensor` and `to_vec1` copies it again (the 47 MB word embeddings twice), and it brought a
//! tensor library into the build for the sake of a header parser.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

/// A mapped safetensors file.
pub(super) struct SafetensorsFile {
    map: Mmap,
}

impl SafetensorsFile {
    pub(super) fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("model.safetensors: {e}"))?;
        // SAFETY: mapped read-only while the model loads; kass never writes model files, and
        // every tensor is copied out before the map is dropped.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| format!("model.safetensors: {e}"))?;
        Ok(Self { map })
    }

    /// The parsed header and data, borrowed from the map.
    pub(super) fn tensors(&self) -> Result<Tensors<'_>, String> {
        let file =
            SafeTensors::deserialize(&self.map).map_err(|e| format!("model.safetensors: {e}"))?;
        Ok(Tensors { file })
    }
}

pub(super) struct Tensors<'a> {
    file: SafeTensors<'a>,
}

impl Tensors<'_> {
    /// The tensor `name` (or `bert.{name}`: some checkpoints prefix every name with the
    /// architecture) as f32 values, row-major, and its shape.
    pub(super) fn get(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), String> {
        let (full, view) = [name.to_string(), format!("bert.{name}")]
            .into_iter()
            .find_map(|n| self.file.tensor(&n).ok().map(|view| (n, view)))
            .ok_or_else(|| format!("model.safetensors: no tensor `{name}`"))?;
        let bytes = view.data();
        let values = match view.dtype() {
            Dtype::F32 => f32_values(bytes),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            other => {
                return Err(format!(
                "model.safetensors: `{full}` is {other:?}; only F32, F16 and BF16 weights are read"
            ))
            }
        };
        Ok((values, view.shape().to_vec()))
    }
}

/// Little-endian f32s, copied in one `memcpy` on a little-endian machine (a per-value
/// conversion ran at a third of that speed over the model's 90 MB).
fn f32_values(bytes: &[u8]) -> Vec<f32> {
    if cfg!(target_endian = "big") {
        return bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
    }
    let n = bytes.len() / 4;
    let mut values = Vec::<f32>::with_capacity(n);
    // SAFETY: `values` has room for n f32 (4n bytes), the source holds at least 4n bytes, the
    // two do not overlap, and every bit pattern is a valid f32 in this byte order.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), values.as_mut_ptr() as *mut u8, n * 4);
        values.set_len(n);
    }
    values
}

/// IEEE half precision to f32, exactly (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exponent = ((h >> 10) & 0x1F) as u32;
    let mantissa = (h & 0x3FF) as u32;
    let bits = match exponent {
        0 if mantissa == 0 => sign,
        // Subnormal: mantissa · 2^-24, exact in f32.
        0 => {
            let magnitude = mantissa as f32 * 2f32.powi(-24);
            return if sign == 0 { magnitude } else { -magnitude };
        }
        0x1F => sign | 0x7F80_0000 | (mantissa << 13),
        _ => sign | ((exponent + 112) << 23) | (mantissa << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3C00), 1.0);
        assert_eq!(f16_to_f32(0xC000), -2.0);
        assert_eq!(f16_to_f32(0x7BFF), 65504.0);
        // The smallest subnormal, and a negative one.
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8003), -3.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7C00), f32::INFINITY);
        assert!(f16_to_f32(0x7E00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    }

    #[test]
    fn reads_f32_bf16_and_f16_and_names_an_unsupported_dtype() {
        use safetensors::tensor::TensorView;
        let one_f32 = 1.5f32.to_le_bytes();
        let bf16 = [0x80u8, 0x3F, 0x00, 0xC0]; // 1.0, -2.0
        let f16 = [0x00u8, 0x3C, 0x00, 0xC0]; // 1.0, -2.0
        let ints = [1u8, 0, 0, 0];
        let views = [
            ("a", TensorView::new(Dtype::F32, vec![1], &one_f32).unwrap()),
            (
                "bert.b",
                TensorView::new(Dtype::BF16, vec![2], &bf16).unwrap(),
            ),
            ("c", TensorView::new(Dtype::F16, vec![1, 2], &f16).unwrap()),
            ("d", TensorView::new(Dtype::I32, vec![1], &ints).unwrap()),
        ];
        let bytes = safetensors::serialize(views, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, bytes).unwrap();
        let file = SafetensorsFile::open(&path).unwrap();
        let tensors = file.tensors().unwrap();
        assert_eq!(tensors.get("a").unwrap(), (vec![1.5], vec![1]));
        assert_eq!(tensors.get("b").unwrap(), (vec![1.0, -2.0], vec![2]));
        assert_eq!(tensors.get("c").unwrap(), (vec![1.0, -2.0], vec![1, 2]));
        let err = tensors.get("d").unwrap_err();
        assert!(err.contains("`d` is I32"), "{err}");
        let err = tensors.get("e").unwrap_err();
        assert!(err.contains("no tensor `e`"), "{err}");
    }
}
