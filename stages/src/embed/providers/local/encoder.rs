//! One padded forward pass of the sentence encoder, then sentence-transformers' pooling: the
//! mean over real tokens, L2-normalised.

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::BertModel;

use super::flat_bert::FlatBert;

/// The loaded network, shared read-only by every pool thread.
pub(super) enum Encoder {
    /// fp32, candle's BertModel (the default: no quantization error at all).
    F32 { bert: BertModel, device: Device },
    /// Dense layers in int8 over unpadded tokens.
    Int8(FlatBert),
}

impl Encoder {
    /// Vectors for `ids` (token ids per input, any lengths), in the same order.
    pub(super) fn embed(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, String> {
        match self {
            Self::F32 { bert, device } => {
                forward(bert, device, ids).map_err(|e| format!("forward pass: {e}"))
            }
            Self::Int8(bert) => bert.embed(ids).map_err(|e| format!("forward pass: {e}")),
        }
    }
}

fn forward(
    bert: &BertModel,
    device: &Device,
    ids: &[Vec<u32>],
) -> candle_core::Result<Vec<Vec<f32>>> {
    let rows = ids.len();
    let width = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut flat_ids = vec![0u32; rows * width];
    let mut flat_mask = vec![0u32; rows * width];
    for (r, row) in ids.iter().enumerate() {
        flat_ids[r * width..r * width + row.len()].copy_from_slice(row);
        flat_mask[r * width..r * width + row.len()].fill(1);
    }
    let input_ids = Tensor::from_vec(flat_ids, (rows, width), device)?;
    let mask = Tensor::from_vec(flat_mask, (rows, width), device)?;
    let token_types = input_ids.zeros_like()?;
    let hidden = bert.forward(&input_ids, &token_types, Some(&mask))?;
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
    mean.broadcast_div(&norms)?.to_vec2()
}
