//! Input checks shared by the losses.

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// Checks `z` `[b, D]` against prototypes `[K, D]` and labels u32 `[b]` (labels < K);
/// returns (b, D, K).
pub(crate) fn check_batch(
    z: &Tensor,
    prototypes: &Tensor,
    labels: Option<&Tensor>,
) -> Result<(usize, usize, usize)> {
    let (b, d) = z.dims2().map_err(|_| Error::Shape {
        expected: "embeddings [b, D]".into(),
        got: format!("{:?}", z.dims()),
    })?;
    let (k, dp) = prototypes.dims2().map_err(|_| Error::Shape {
        expected: "prototypes [K, D]".into(),
        got: format!("{:?}", prototypes.dims()),
    })?;
    if d == 0 || k == 0 {
        return Err(Error::Shape {
            expected: "D >= 1 and K >= 1".into(),
            got: format!("D = {dp}, K = {k}"),
        });
    }
    if dp != d {
        return Err(Error::Shape {
            expected: format!("prototypes [K, {d}] (the embedding dimension)"),
            got: format!("{:?}", prototypes.dims()),
        });
    }
    if let Some(labels) = labels {
        if labels.dims() != [b] {
            return Err(Error::Shape {
                expected: format!("labels [{b}]"),
                got: format!("{:?}", labels.dims()),
            });
        }
        let values = labels.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        if let Some((index, &label)) = values.iter().enumerate().find(|(_, &l)| l as usize >= k) {
            return Err(Error::LabelOutOfRange {
                index,
                label,
                classes: k,
            });
        }
    }
    Ok((b, d, k))
}

/// Squared row norms `[b]` of `z` `[b, D]`.
pub(crate) fn sq_norms(z: &Tensor) -> candle_core::Result<Tensor> {
    z.sqr()?.sum(1)
}
