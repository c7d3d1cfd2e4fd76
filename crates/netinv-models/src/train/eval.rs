//! Evaluation of a classifier on a labelled dataset.

use candle_core::{Device, D};
use candle_nn::ModuleT;
use netinv_metrics::ConfusionMatrix;
use serde::{Deserialize, Serialize};

use super::adversarial::EVAL_BATCH;
use super::loss::cross_entropy;
use crate::{Error, Result};

/// The scores of a classifier on a labelled dataset (eval-mode forward pass).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Fraction of correct arg-max predictions, in [0, 1].
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Unweighted mean of the per-class precisions.
    pub macro_precision: f64,
    /// Unweighted mean of the per-class recalls.
    pub macro_recall: f64,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
    /// Counts `[true class, predicted class]`.
    pub confusion: ConfusionMatrix,
}

/// Evaluates `model` (eval mode, batches of [`EVAL_BATCH`]) on `data`: accuracy, mean
/// cross-entropy, confusion matrix and macro precision / recall / F1 over the model's
/// output classes (netinv-metrics' conventions, scikit-learn's `zero_division=0`).
///
/// # Errors
/// [`Error::Shape`] if the model's output is not `[b, classes]` or a label is `>= classes`;
/// candle's errors.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_models::train::evaluate;
///
/// // A fixed "model" that predicts class 1 for every image.
/// let model = candle_nn::func(|x: &Tensor| {
///     let b = x.dim(0)?;
///     Tensor::new(&[0f32, 1.0], x.device())?.unsqueeze(0)?.repeat((b, 1))
/// });
/// let data = netinv_data::Mnist::embedded()?.test().with_classes(&[0, 1])?;
/// let ev = evaluate(&model, &data, &Device::Cpu)?;
/// let ones = data.labels().iter().filter(|&&l| l == 1).count() as f64;
/// assert!((ev.accuracy - ones / data.len() as f64).abs() < 1e-12);
/// assert!((ev.macro_recall - 0.5).abs() < 1e-12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn evaluate<M: ModuleT + ?Sized>(
    model: &M,
    data: &netinv_data::Dataset,
    device: &Device,
) -> Result<Evaluation> {
    let mut truth: Vec<usize> = Vec::with_capacity(data.len());
    let mut predicted: Vec<usize> = Vec::with_capacity(data.len());
    let mut loss_sum = 0.0f64;
    let mut classes = 0;
    for batch in data.batches(EVAL_BATCH, None)? {
        let (x, y) = batch.to_tensors(device)?;
        let logits = model.forward_t(&x, false)?;
        classes = logits.dims2()?.1;
        let loss = cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        loss_sum += f64::from(loss) * batch.len() as f64;
        predicted.extend(
            logits
                .argmax(D::Minus1)?
                .to_vec1::<u32>()?
                .iter()
                .map(|&p| p as usize),
        );
        truth.extend(batch.labels.iter().map(|&l| usize::from(l)));
    }
    if data.is_empty() {
        return Err(Error::InvalidConfig {
            field: "data",
            reason: "cannot evaluate on an empty dataset".into(),
        });
    }
    let confusion = ConfusionMatrix::from_labels(&truth, &predicted, classes)?;
    Ok(Evaluation {
        accuracy: confusion.accuracy(),
        loss: loss_sum / data.len() as f64,
        macro_precision: confusion.macro_precision(),
        macro_recall: confusion.macro_recall(),
        macro_f1: confusion.macro_f1(),
        confusion,
    })
}
/// Softmax of each row of `[b, k]` logits, `exp(z - max) / sum exp(z - max)` in f64, as
/// f32 probabilities per row.
///
/// # Errors
/// [`crate::Error::Candle`] for logits that are not two-dimensional.
pub fn softmax_rows(logits: &candle_core::Tensor) -> Result<Vec<Vec<f32>>> {
    let rows = logits.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f64> = row.iter().map(|&z| f64::from(z - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.iter().map(|e| (e / sum) as f32).collect()
        })
        .collect())
}
