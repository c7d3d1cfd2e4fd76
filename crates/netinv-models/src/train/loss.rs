//! Cross-entropy on hard and soft targets.

use candle_core::{DType, Tensor, D};

use super::source::Targets;
use crate::{Error, Result};

/// Mean cross-entropy of logits `[b, classes]` against soft targets `[b, classes]`:
///
/// ```text
/// J = -(1 / b) * sum_i sum_k t_ik * log_softmax(z_i)_k
/// ```
///
/// With one-hot targets this is the ordinary cross-entropy on hard labels. The targets are
/// not checked here (see [`super::validate_soft_labels`]).
///
/// # Errors
/// [`Error::Shape`] if the shapes differ or are not 2-D; candle's errors.
pub fn soft_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.rank() != 2 || logits.dims() != targets.dims() {
        return Err(Error::Shape {
            expected: format!("soft targets of the logits' shape {:?}", logits.dims()),
            got: format!("{:?}", targets.dims()),
        });
    }
    let b = logits.dim(0)?;
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let targets = targets.to_dtype(logits.dtype())?;
    Ok((log_p * targets)?.sum_all()?.affine(-1.0 / b as f64, 0.0)?)
}

/// Mean cross-entropy of logits `[b, classes]` against hard labels u32 `[b]`:
/// `J = -(1 / b) * sum_i log_softmax(z_i)_{y_i}`.
///
/// # Errors
/// [`Error::Shape`] if the label count differs from the batch size or a label is
/// `>= classes`; candle's errors.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (b, classes) = logits.dims2()?;
    if labels.dims() != [b] {
        return Err(Error::Shape {
            expected: format!("labels [{b}]"),
            got: format!("{:?}", labels.dims()),
        });
    }
    let labels = labels.to_dtype(DType::U32)?;
    if let Some(&bad) = labels
        .to_vec1::<u32>()?
        .iter()
        .find(|&&l| l as usize >= classes)
    {
        return Err(Error::Shape {
            expected: format!("labels < {classes} (the number of logits)"),
            got: format!("label {bad}"),
        });
    }
    Ok(candle_nn::loss::cross_entropy(logits, &labels)?)
}

/// The training loss of `logits` `[b, classes]` for either kind of [`Targets`].
///
/// # Errors
/// See [`cross_entropy`] and [`soft_cross_entropy`].
pub fn loss_for(logits: &Tensor, targets: &Targets) -> Result<Tensor> {
    match targets {
        Targets::Hard(labels) => cross_entropy(logits, labels),
        Targets::Soft(t) => soft_cross_entropy(logits, t),
    }
}

/// Number of rows whose arg-max logit equals the hard label (or the arg-max of the soft
/// target).
pub(crate) fn count_correct(logits: &Tensor, targets: &Targets) -> Result<usize> {
    let predicted = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let truth = match targets {
        Targets::Hard(labels) => labels.to_dtype(DType::U32)?.to_vec1::<u32>()?,
        Targets::Soft(t) => t.argmax(D::Minus1)?.to_vec1::<u32>()?,
    };
    Ok(predicted.iter().zip(&truth).filter(|(p, t)| p == t).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn cross_entropy_known_value() {
        let dev = Device::Cpu;
        // Uniform logits over 4 classes: J = ln 4.
        let logits = Tensor::zeros((3, 4), DType::F32, &dev).unwrap();
        let labels = Tensor::new(&[0u32, 3, 2], &dev).unwrap();
        let j = cross_entropy(&logits, &labels)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((j - 4f32.ln()).abs() < 1e-6);
        // logits (0, ln 3): p = (1/4, 3/4).
        let logits = Tensor::new(&[[0.0f32, 3f32.ln()]], &dev).unwrap();
        let j1 = cross_entropy(&logits, &Tensor::new(&[1u32], &dev).unwrap())
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((j1 - (4.0f32 / 3.0).ln()).abs() < 1e-6);
        let soft = Tensor::new(&[[0.5f32, 0.5]], &dev).unwrap();
        let js = soft_cross_entropy(&logits, &soft)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let expected = 0.5 * 4f32.ln() + 0.5 * (4.0f32 / 3.0).ln();
        assert!((js - expected).abs() < 1e-6);
    }

    #[test]
    fn soft_one_hot_equals_hard() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[1.0f32, -2.0, 0.5], [0.1, 0.2, 3.0]], &dev).unwrap();
        let labels = Tensor::new(&[2u32, 0], &dev).unwrap();
        let one_hot = Tensor::new(&[[0.0f32, 0.0, 1.0], [1.0, 0.0, 0.0]], &dev).unwrap();
        let a = cross_entropy(&logits, &labels)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let b = soft_cross_entropy(&logits, &one_hot)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    #[test]
    fn bad_labels_are_errors() {
        let dev = Device::Cpu;
        let logits = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        let wrong_len = Tensor::new(&[0u32], &dev).unwrap();
        assert!(matches!(
            cross_entropy(&logits, &wrong_len),
            Err(Error::Shape { .. })
        ));
        let too_big = Tensor::new(&[0u32, 3], &dev).unwrap();
        assert!(matches!(
            cross_entropy(&logits, &too_big),
            Err(Error::Shape { .. })
        ));
        let soft = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
        assert!(matches!(
            soft_cross_entropy(&logits, &soft),
            Err(Error::Shape { .. })
        ));
    }
}
