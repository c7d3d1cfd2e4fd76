//! Objectives: what the network output of the inverted images should be.
//!
//! An [`Objective`] maps the network output `[b, outputs]` (logits for a classifier, or
//! embeddings for a prototype head) to a scalar loss; the inversion engine computes the
//! output as `net(x)` and adds the image priors. Other crates add their own objectives
//! (cosine or Busemann losses to prototypes) by implementing the trait.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{Error, Result};

/// How a per-image loss is reduced over the batch.
///
/// The reduction sets the weight of the class loss against the priors, which are summed
/// over the batch: with `Mean` at batch size `b`, each image's class loss weighs `1/b`
/// against its own prior terms; with `Sum` it weighs 1, i.e. `b` times more (10x at batch
/// 10). This changes which networks invert well; the reference settings use `Mean`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// Average over the batch (default).
    #[default]
    Mean,
    /// Sum over the batch.
    Sum,
}

impl Reduction {
    fn apply(self, per_image_sum: Tensor, batch: usize) -> candle_core::Result<Tensor> {
        match self {
            Reduction::Mean => per_image_sum.affine(1.0 / batch as f64, 0.0),
            Reduction::Sum => Ok(per_image_sum),
        }
    }
}

/// The loss that drives the network output `[b, outputs]` of the inverted images.
///
/// Any `Fn(&Tensor) -> candle_core::Result<Tensor>` is an objective (without target checks).
pub trait Objective {
    /// A scalar loss (shape `[]`) of the network output `[b, outputs]`, differentiable
    /// with respect to it.
    ///
    /// # Errors
    /// A candle error when the output has the wrong shape or an operation fails.
    fn loss(&self, output: &Tensor) -> candle_core::Result<Tensor>;

    /// Checks, before a run, that the objective fits a batch of `batch` images through a
    /// network with `outputs` outputs. The default accepts everything.
    ///
    /// # Errors
    /// [`Error::Shape`] for a batch-size mismatch, [`Error::TargetOutOfRange`] for a class
    /// the network does not have.
    fn check(&self, _batch: usize, _outputs: usize) -> Result<()> {
        Ok(())
    }

    /// The target class of each image, if the objective has one; the engine then records
    /// the network's probability of the targets at every step (and
    /// [`crate::TargetProbability`] can stop the run).
    fn targets(&self) -> Option<&[u32]> {
        None
    }

    /// A short name for logs.
    fn name(&self) -> &str {
        "objective"
    }
}

impl<F> Objective for F
where
    F: Fn(&Tensor) -> candle_core::Result<Tensor>,
{
    fn loss(&self, output: &Tensor) -> candle_core::Result<Tensor> {
        self(output)
    }
}

/// A borrowed objective is an objective (so [`crate::Inverter::start`] takes
/// `&dyn Objective` as well as an owned one).
impl Objective for &dyn Objective {
    fn loss(&self, output: &Tensor) -> candle_core::Result<Tensor> {
        (**self).loss(output)
    }
    fn check(&self, batch: usize, outputs: usize) -> Result<()> {
        (**self).check(batch, outputs)
    }
    fn targets(&self) -> Option<&[u32]> {
        (**self).targets()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
}

/// Log-softmax over dim 1 of `[b, k]`, stable (the row maximum is subtracted as a constant).
fn log_softmax(logits: &Tensor) -> candle_core::Result<Tensor> {
    let max = logits.max_keepdim(1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
    shifted.broadcast_sub(&lse)
}

fn check_batch(expected: usize, batch: usize) -> Result<()> {
    if expected != batch {
        return Err(Error::Shape {
            expected: format!("{expected} images (one per target)"),
            got: format!("{batch} images"),
        });
    }
    Ok(())
}

/// Cross-entropy of the logits `[b, k]` to one target class per image:
///
/// ```text
/// L = reduce_b ( -log softmax(z_b)[t_b] ),  reduce = mean (default) or sum over the batch
/// ```
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_invert::{CrossEntropy, Objective, Reduction};
/// // Uniform logits over 4 classes: the loss is ln 4 for every image.
/// let z = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
/// let ce = CrossEntropy::new(vec![1, 3], Reduction::Sum);
/// let l = ce.loss(&z).unwrap().to_scalar::<f32>().unwrap();
/// assert!((l - 2.0 * 4f32.ln()).abs() < 1e-6);
/// assert!(ce.check(2, 3).is_err()); // class 3 needs at least 4 outputs
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossEntropy {
    /// One target class per image.
    pub targets: Vec<u32>,
    /// Reduction over the batch.
    pub reduction: Reduction,
}

impl CrossEntropy {
    /// Cross-entropy to `targets` with `reduction`.
    pub fn new(targets: Vec<u32>, reduction: Reduction) -> Self {
        Self { targets, reduction }
    }

    fn one_hot(&self, k: usize, like: &Tensor) -> candle_core::Result<Tensor> {
        let mut data = vec![0f32; self.targets.len() * k];
        for (row, &t) in self.targets.iter().enumerate() {
            if (t as usize) < k {
                data[row * k + t as usize] = 1.0;
            }
        }
        Tensor::from_vec(data, (self.targets.len(), k), like.device())?.to_dtype(like.dtype())
    }
}

impl Objective for CrossEntropy {
    fn loss(&self, output: &Tensor) -> candle_core::Result<Tensor> {
        let (b, k) = output.dims2()?;
        if b != self.targets.len() {
            candle_core::bail!(
                "cross-entropy: {} targets for a batch of {b}",
                self.targets.len()
            );
        }
        let picked = (log_softmax(output)? * self.one_hot(k, output)?)?.sum_all()?;
        self.reduction.apply(picked.neg()?, b)
    }

    fn check(&self, batch: usize, outputs: usize) -> Result<()> {
        check_batch(self.targets.len(), batch)?;
        check_targets(&self.targets, outputs)
    }

    fn targets(&self) -> Option<&[u32]> {
        Some(&self.targets)
    }

    fn name(&self) -> &str {
        "cross_entropy"
    }
}

/// Checks that every target is below `outputs`.
pub(crate) fn check_targets(targets: &[u32], outputs: usize) -> Result<()> {
    match targets.iter().position(|&t| t as usize >= outputs) {
        Some(index) => Err(Error::TargetOutOfRange {
            index,
            class: targets[index],
            outputs,
        }),
        None => Ok(()),
    }
}

/// Cross-entropy of the logits `[b, k]` to a soft target distribution per image:
///
/// ```text
/// L = reduce_b ( -sum_k p_{b,k} log softmax(z_b)[k] )
/// ```
///
/// The recorded "target" of each image is the arg-max of its distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftCrossEntropy {
    distributions: Vec<Vec<f32>>,
    argmax: Vec<u32>,
    /// Reduction over the batch.
    pub reduction: Reduction,
}

impl SoftCrossEntropy {
    /// Soft cross-entropy to one distribution per image (each non-negative, summing to 1
    /// within 1e-4, all of one length).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty list, rows of different lengths, negative or
    /// non-finite entries, or rows not summing to 1.
    pub fn new(distributions: Vec<Vec<f32>>, reduction: Reduction) -> Result<Self> {
        let k = distributions.first().map_or(0, Vec::len);
        if k == 0 {
            return Err(invalid("distributions", "need at least one non-empty row"));
        }
        let mut argmax = Vec::with_capacity(distributions.len());
        for (i, row) in distributions.iter().enumerate() {
            if row.len() != k {
                return Err(invalid(
                    "distributions",
                    format!("row {i} has {} entries, row 0 has {k}", row.len()),
                ));
            }
            if row.iter().any(|p| !p.is_finite() || *p < 0.0) {
                return Err(invalid(
                    "distributions",
                    format!("row {i} has a negative or non-finite entry"),
                ));
            }
            let sum: f64 = row.iter().map(|&p| f64::from(p)).sum();
            if (sum - 1.0).abs() > 1e-4 {
                return Err(invalid(
                    "distributions",
                    format!("row {i} sums to {sum}, not 1"),
                ));
            }
            let best = row
                .iter()
                .enumerate()
                .fold(0, |best, (j, &p)| if p > row[best] { j } else { best });
            argmax.push(best as u32);
        }
        Ok(Self {
            distributions,
            argmax,
            reduction,
        })
    }

    /// The target distributions, one row per image.
    pub fn distributions(&self) -> &[Vec<f32>] {
        &self.distributions
    }
}

impl Objective for SoftCrossEntropy {
    fn loss(&self, output: &Tensor) -> candle_core::Result<Tensor> {
        let (b, k) = output.dims2()?;
        if b != self.distributions.len() || k != self.distributions[0].len() {
            candle_core::bail!(
                "soft cross-entropy: targets [{}, {}] for an output [{b}, {k}]",
                self.distributions.len(),
                self.distributions[0].len()
            );
        }
        let flat: Vec<f32> = self.distributions.iter().flatten().copied().collect();
        let p = Tensor::from_vec(flat, (b, k), output.device())?.to_dtype(output.dtype())?;
        let picked = (log_softmax(output)? * p)?.sum_all()?;
        self.reduction.apply(picked.neg()?, b)
    }

    fn check(&self, batch: usize, outputs: usize) -> Result<()> {
        check_batch(self.distributions.len(), batch)?;
        let k = self.distributions[0].len();
        if k != outputs {
            return Err(Error::Shape {
                expected: format!("distributions over {outputs} classes"),
                got: format!("{k} classes"),
            });
        }
        Ok(())
    }

    fn targets(&self) -> Option<&[u32]> {
        Some(&self.argmax)
    }

    fn name(&self) -> &str {
        "soft_cross_entropy"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use netinv_core::testing::{assert_close, central_diff};
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn logits(values: &[f64], b: usize, k: usize) -> Tensor {
        Tensor::from_vec(values.to_vec(), (b, k), &Device::Cpu).unwrap()
    }

    fn ce_reference(values: &[f64], k: usize, targets: &[u32], mean: bool) -> f64 {
        let total: f64 = values
            .chunks(k)
            .zip(targets)
            .map(|(row, &t)| {
                let lse = row.iter().map(|z| z.exp()).sum::<f64>().ln();
                lse - row[t as usize]
            })
            .sum();
        if mean {
            total / targets.len() as f64
        } else {
            total
        }
    }

    #[test]
    fn cross_entropy_matches_reference_and_reductions() {
        let values = [1.0, -2.0, 0.5, 3.0, 0.0, -1.0];
        let z = logits(&values, 2, 3);
        let mean = CrossEntropy::new(vec![2, 0], Reduction::Mean);
        let sum = CrossEntropy::new(vec![2, 0], Reduction::Sum);
        let lm = mean.loss(&z).unwrap().to_scalar::<f64>().unwrap();
        let ls = sum.loss(&z).unwrap().to_scalar::<f64>().unwrap();
        assert!((lm - ce_reference(&values, 3, &[2, 0], true)).abs() < 1e-12);
        assert!((ls - 2.0 * lm).abs() < 1e-12);
        // Large logits stay finite.
        let big = logits(&[1000.0, 0.0, -1000.0], 1, 3);
        let l = CrossEntropy::new(vec![0], Reduction::Mean)
            .loss(&big)
            .unwrap();
        assert!(l.to_scalar::<f64>().unwrap().abs() < 1e-12);
    }

    #[test]
    fn soft_cross_entropy_with_one_hot_equals_hard() {
        let values = [1.0, -2.0, 0.5, 3.0, 0.0, -1.0];
        let z = logits(&values, 2, 3);
        let soft = SoftCrossEntropy::new(vec![vec![0., 0., 1.], vec![1., 0., 0.]], Reduction::Mean)
            .unwrap();
        let hard = CrossEntropy::new(vec![2, 0], Reduction::Mean);
        let a = soft.loss(&z).unwrap().to_scalar::<f64>().unwrap();
        let b = hard.loss(&z).unwrap().to_scalar::<f64>().unwrap();
        assert!((a - b).abs() < 1e-12);
        assert_eq!(soft.targets(), Some(&[2u32, 0][..]));
        // Half-half target: the loss is the mean of the two hard losses.
        let half = SoftCrossEntropy::new(vec![vec![0.5, 0.5, 0.0]], Reduction::Sum).unwrap();
        let row = logits(&values[..3], 1, 3);
        let expected = 0.5
            * (ce_reference(&values[..3], 3, &[0], false)
                + ce_reference(&values[..3], 3, &[1], false));
        assert!((half.loss(&row).unwrap().to_scalar::<f64>().unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn bad_targets_are_errors() {
        let ce = CrossEntropy::new(vec![0, 10], Reduction::Mean);
        assert!(matches!(
            ce.check(2, 10),
            Err(Error::TargetOutOfRange {
                index: 1,
                class: 10,
                outputs: 10
            })
        ));
        assert!(matches!(ce.check(3, 11), Err(Error::Shape { .. })));
        assert!(ce.check(2, 11).is_ok());
        assert!(ce.loss(&logits(&[0.0; 9], 3, 3)).is_err());
        assert!(SoftCrossEntropy::new(vec![], Reduction::Mean).is_err());
        assert!(SoftCrossEntropy::new(vec![vec![0.5, 0.6]], Reduction::Mean).is_err());
        assert!(SoftCrossEntropy::new(vec![vec![1.5, -0.5]], Reduction::Mean).is_err());
        assert!(SoftCrossEntropy::new(vec![vec![1.0], vec![0.5, 0.5]], Reduction::Mean).is_err());
        let soft = SoftCrossEntropy::new(vec![vec![0.5, 0.5]], Reduction::Mean).unwrap();
        assert!(soft.check(1, 3).is_err());
        assert!(soft.check(2, 2).is_err());
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let p = netinv_models::train::softmax_rows(
            &logits(&[0.0, 0.0, 1000.0, 0.0], 2, 2)
                .to_dtype(candle_core::DType::F32)
                .unwrap(),
        )
        .unwrap();
        assert!((p[0][0] - 0.5).abs() < 1e-7);
        assert!((p[1][0] - 1.0).abs() < 1e-7);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn objective_gradients_match_central_differences(b in 1usize..4, k in 2usize..6, seed in 0u64..1000) {
            let mut rng = StdRng::seed_from_u64(seed);
            let values: Vec<f64> = (0..b * k).map(|_| rng.random::<f64>() * 4.0 - 2.0).collect();
            let targets: Vec<u32> = (0..b).map(|_| rng.random_range(0..k as u32)).collect();
            let mut dist = Vec::new();
            for _ in 0..b {
                let raw: Vec<f32> = (0..k).map(|_| rng.random::<f32>() + 0.01).collect();
                let s: f32 = raw.iter().sum();
                dist.push(raw.iter().map(|r| r / s).collect::<Vec<f32>>());
            }
            let objectives: Vec<Box<dyn Objective>> = vec![
                Box::new(CrossEntropy::new(targets.clone(), Reduction::Mean)),
                Box::new(CrossEntropy::new(targets, Reduction::Sum)),
                Box::new(SoftCrossEntropy::new(dist, Reduction::Mean).unwrap()),
            ];
            for o in &objectives {
                let z = Var::from_tensor(&logits(&values, b, k)).unwrap();
                let g = o.loss(z.as_tensor()).unwrap().backward().unwrap();
                let analytic = g.get(z.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
                let numeric = central_diff(|v| o.loss(&logits(v, b, k)).unwrap().to_scalar::<f64>().unwrap(), &values, 1e-6);
                assert_close(&analytic, &numeric, 1e-5, 1e-7);
            }
        }
    }
}
