//! A pluggable training loss for heads whose outputs are not logits (e.g. prototype
//! embeddings): [`TrainLoss`] and [`evaluate_with`].

use std::fmt::Debug;

use candle_core::{DType, Device, Tensor};
use candle_nn::ModuleT;
use netinv_metrics::ConfusionMatrix;

use super::adversarial::EVAL_BATCH;
use super::eval::Evaluation;
use super::source::Targets;
use crate::{Error, Result};

/// A training loss on a model's outputs `[b, outputs]` and hard labels u32 `[b]`, with
/// the matching prediction rule. [`super::Trainer::with_loss`] uses it instead of the
/// cross-entropy on logits (clean training on hard labels only).
pub trait TrainLoss: Debug + Send + Sync {
    /// The scalar (shape `[]`) batch loss, differentiable with respect to `outputs`.
    ///
    /// # Errors
    /// A candle error for wrong shapes or labels.
    fn loss(&self, outputs: &Tensor, labels: &Tensor) -> candle_core::Result<Tensor>;

    /// The predicted class u32 `[b]` of each row of `outputs`.
    ///
    /// # Errors
    /// A candle error for wrong shapes.
    fn predict(&self, outputs: &Tensor) -> candle_core::Result<Tensor>;

    /// Number of output classes (for the confusion matrix).
    fn classes(&self) -> usize;
}

/// The loss and number of correct predictions of a custom loss on hard targets.
pub(crate) fn custom_step_loss(
    l: &dyn TrainLoss,
    outputs: &Tensor,
    targets: &Targets,
) -> Result<(Tensor, usize)> {
    let Targets::Hard(labels) = targets else {
        return Err(Error::InvalidConfig {
            field: "loss",
            reason: "a custom training loss needs hard labels".into(),
        });
    };
    let loss = l.loss(outputs, labels)?;
    let predicted = l.predict(outputs)?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
    let truth = labels.to_dtype(DType::U32)?.to_vec1::<u32>()?;
    let correct = predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
    Ok((loss, correct))
}

/// [`super::evaluate`] with a custom loss: predictions from [`TrainLoss::predict`],
/// `loss` = the mean of [`TrainLoss::loss`] (eval-mode forward pass, batches of
/// [`EVAL_BATCH`]).
///
/// # Errors
/// [`Error::InvalidConfig`] for an empty dataset; the loss's errors; candle's errors.
pub fn evaluate_with<M: ModuleT + ?Sized>(
    model: &M,
    data: &netinv_data::Dataset,
    device: &Device,
    l: &dyn TrainLoss,
) -> Result<Evaluation> {
    if data.is_empty() {
        return Err(Error::InvalidConfig {
            field: "data",
            reason: "cannot evaluate on an empty dataset".into(),
        });
    }
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    let mut loss_sum = 0.0f64;
    for batch in data.batches(EVAL_BATCH, None)? {
        let (x, y) = batch.to_tensors(device)?;
        let out = model.forward_t(&x, false)?;
        let loss = l.loss(&out, &y)?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        loss_sum += f64::from(loss) * batch.len() as f64;
        predicted.extend(
            l.predict(&out)?
                .to_dtype(DType::U32)?
                .to_vec1::<u32>()?
                .iter()
                .map(|&p| p as usize),
        );
        truth.extend(batch.labels.iter().map(|&v| usize::from(v)));
    }
    let confusion = ConfusionMatrix::from_labels(&truth, &predicted, l.classes())?;
    Ok(Evaluation {
        accuracy: confusion.accuracy(),
        loss: loss_sum / data.len() as f64,
        macro_precision: confusion.macro_precision(),
        macro_recall: confusion.macro_recall(),
        macro_f1: confusion.macro_f1(),
        confusion,
    })
}
