//! Image priors: total variation (three forms), the L2 norm, the BatchNorm statistics prior
//! of DeepInversion, and random jitter.
//!
//! Every prior is a candle expression on an image batch `x` of shape `[b, c, h, w]`, so
//! autograd gives its gradient. Each carries its weight and returns the *weighted* penalty
//! as a scalar tensor of `x`'s dtype. Batch reduction: every penalty is **summed over the
//! batch** (the reference settings of the inversion study), so with a class loss averaged
//! over the batch the priors weigh `b` times more, relative to it, than per image.

use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::Result;

/// A regulariser R(x) of an image batch `x` `[b, c, h, w]`.
///
/// Any `Fn(&Tensor) -> candle_core::Result<Tensor>` is a prior.
pub trait Prior {
    /// The weighted penalty, a scalar tensor (shape `[]`) of `x`'s dtype, differentiable
    /// with respect to `x`.
    ///
    /// # Errors
    /// A candle error if `x` is not of rank 4 or an operation fails.
    fn penalty(&self, x: &Tensor) -> candle_core::Result<Tensor>;

    /// The weighted penalty of each image of the batch, `[b]`, differentiable: the penalty
    /// of `x[k]` alone. For a prior that is a sum over images (every image prior of this
    /// crate) [`penalty`](Self::penalty) is the sum of these. The default evaluates the
    /// images one at a time; [`SquaredTv`] and [`L2Norm`] override it with one batched
    /// expression.
    ///
    /// # Errors
    /// As [`penalty`](Self::penalty).
    fn penalty_per_image(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let parts = (0..x.dim(0)?)
            .map(|k| self.penalty(&x.narrow(0, k, 1)?)?.reshape(1))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0)
    }

    /// A short name for logs and loss histories.
    fn name(&self) -> &str {
        "prior"
    }
}

impl<F> Prior for F
where
    F: Fn(&Tensor) -> candle_core::Result<Tensor>,
{
    fn penalty(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self(x)
    }
}

/// Horizontal and vertical forward differences of `x` `[b, c, h, w]`:
/// `x[.., i, j+1] - x[.., i, j]` `[b, c, h, w-1]` and `x[.., i+1, j] - x[.., i, j]` `[b, c, h-1, w]`.
fn differences(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let (_, _, h, w) = x.dims4()?;
    let dx = (x.narrow(3, 1, w - 1)? - x.narrow(3, 0, w - 1)?)?;
    let dy = (x.narrow(2, 1, h - 1)? - x.narrow(2, 0, h - 1)?)?;
    Ok((dx, dy))
}

/// The sum over all but the first axis: one value per image `[b]`.
fn sum_per_image(t: &Tensor) -> candle_core::Result<Tensor> {
    t.flatten_from(1)?.sum(1)
}

fn check_weight(field: &'static str, weight: f64) -> Result<()> {
    if !(weight.is_finite() && weight >= 0.0) {
        return Err(invalid(
            field,
            format!("{weight} is not a finite weight >= 0"),
        ));
    }
    Ok(())
}

/// Total variation in the thesis's squared-difference form (Eq. 2.5), summed over the batch
/// and channels:
///
/// ```text
/// R(x) = weight * sum_{b,c} [ sum_{i, j<w-1} (x[i,j+1] - x[i,j])^2 + sum_{i<h-1, j} (x[i+1,j] - x[i,j])^2 ]
/// ```
///
/// Differences across the image border are not counted (no wrap-around, no padding).
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_invert::{Prior, SquaredTv};
/// // One 2x2 image [[0, 1], [0, 1]]: two horizontal steps of 1, vertical steps of 0.
/// let x = Tensor::new(&[0f32, 1., 0., 1.], &Device::Cpu).unwrap().reshape((1, 1, 2, 2)).unwrap();
/// let tv = SquaredTv::new(0.5).unwrap().penalty(&x).unwrap();
/// assert_eq!(tv.to_scalar::<f32>().unwrap(), 1.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SquaredTv {
    /// The weight (>= 0).
    pub weight: f64,
}

impl SquaredTv {
    /// A squared-difference TV prior with `weight`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a negative or non-finite weight.
    pub fn new(weight: f64) -> Result<Self> {
        check_weight("weight", weight)?;
        Ok(Self { weight })
    }
}

impl Prior for SquaredTv {
    fn penalty(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (dx, dy) = differences(x)?;
        let sum = (dx.sqr()?.sum_all()? + dy.sqr()?.sum_all()?)?;
        sum.affine(self.weight, 0.0)
    }

    fn penalty_per_image(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (dx, dy) = differences(x)?;
        (sum_per_image(&dx.sqr()?)? + sum_per_image(&dy.sqr()?)?)?.affine(self.weight, 0.0)
    }

    fn name(&self) -> &str {
        "tv_squared"
    }
}

/// Anisotropic (L1) total variation, summed over the batch and channels:
///
/// ```text
/// R(x) = weight * sum_{b,c} [ sum_{i, j<w-1} |x[i,j+1] - x[i,j]| + sum_{i<h-1, j} |x[i+1,j] - x[i,j]| ]
/// ```
///
/// The gradient of `|d|` at `d = 0` is taken as +1 (candle's convention).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnisotropicTv {
    /// The weight (>= 0).
    pub weight: f64,
}

impl AnisotropicTv {
    /// An anisotropic L1 TV prior with `weight`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a negative or non-finite weight.
    pub fn new(weight: f64) -> Result<Self> {
        check_weight("weight", weight)?;
        Ok(Self { weight })
    }
}

impl Prior for AnisotropicTv {
    fn penalty(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (dx, dy) = differences(x)?;
        let sum = (dx.abs()?.sum_all()? + dy.abs()?.sum_all()?)?;
        sum.affine(self.weight, 0.0)
    }

    fn name(&self) -> &str {
        "tv_l1"
    }
}

/// Isotropic total variation with smoothing `eps > 0`, summed over the batch and channels,
/// on the `(h-1) x (w-1)` pixels that have both a right and a lower neighbour:
///
/// ```text
/// R(x) = weight * sum_{b,c} sum_{i<h-1, j<w-1} ( sqrt(dx_{ij}^2 + dy_{ij}^2 + eps^2) - eps )
/// dx_{ij} = x[i,j+1] - x[i,j],  dy_{ij} = x[i+1,j] - x[i,j]
/// ```
///
/// Subtracting `eps` makes R of a constant image exactly 0; `eps` keeps the gradient
/// finite where the image is flat.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IsotropicTv {
    /// The weight (>= 0).
    pub weight: f64,
    /// The smoothing constant (> 0), in image units; 1e-3 is a common choice.
    pub eps: f64,
}

impl IsotropicTv {
    /// An isotropic TV prior with `weight` and smoothing `eps`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a negative or non-finite weight, or `eps <= 0`.
    pub fn new(weight: f64, eps: f64) -> Result<Self> {
        check_weight("weight", weight)?;
        if !(eps.is_finite() && eps > 0.0) {
            return Err(invalid("eps", format!("{eps} is not a finite value > 0")));
        }
        Ok(Self { weight, eps })
    }
}

impl Prior for IsotropicTv {
    fn penalty(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (dx, dy) = differences(x)?;
        let dx = dx.narrow(2, 0, h - 1)?;
        let dy = dy.narrow(3, 0, w - 1)?;
        let magnitude = (dx.sqr()? + dy.sqr()?)?
            .affine(1.0, self.eps * self.eps)?
            .sqrt()?
            .affine(1.0, -self.eps)?;
        magnitude.sum_all()?.affine(self.weight, 0.0)
    }

    fn name(&self) -> &str {
        "tv_isotropic"
    }
}

/// The squared L2 norm (Eq. 2.4), summed over the batch:
///
/// ```text
/// R(x) = weight * sum_{b,c,i,j} x[b,c,i,j]^2
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct L2Norm {
    /// The weight (>= 0).
    pub weight: f64,
}

impl L2Norm {
    /// An L2 prior with `weight`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a negative or non-finite weight.
    pub fn new(weight: f64) -> Result<Self> {
        check_weight("weight", weight)?;
        Ok(Self { weight })
    }
}

impl Prior for L2Norm {
    fn penalty(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.sqr()?.sum_all()?.affine(self.weight, 0.0)
    }

    fn penalty_per_image(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        sum_per_image(&x.sqr()?)?.affine(self.weight, 0.0)
    }

    fn name(&self) -> &str {
        "l2"
    }
}

/// The statistics of one BatchNorm layer's input, all `[C]`: the batch statistics of the
/// current images (differentiable w.r.t. the images) and the running statistics stored in
/// the trained network (constants).
#[derive(Debug, Clone)]
pub struct BnLayerStats {
    /// Mean over (batch, h, w) of the layer input for the current images, `[C]`; or per
    /// image, over (h, w), `[b, C]`.
    pub batch_mean: Tensor,
    /// Biased variance over (batch, h, w) of the layer input for the current images, `[C]`;
    /// or per image, over (h, w), `[b, C]`.
    pub batch_var: Tensor,
    /// The layer's running mean from training.
    pub running_mean: Tensor,
    /// The layer's running variance from training.
    pub running_var: Tensor,
}

/// The feature-distribution prior of DeepInversion (Yin et al., "Dreaming to Distill",
/// CVPR 2020): the batch statistics of every BatchNorm input should match the statistics
/// the network stored during training.
///
/// ```text
/// R = weight * sum_l ( ||mu_l(x) - mu_l||_2 + ||var_l(x) - var_l||_2 ),
/// ||v||_2 = sqrt(sum_c v_c^2 + 1e-12)
/// ```
///
/// The `1e-12` keeps the gradient finite when the statistics match exactly. The statistics
/// are taken over the whole batch, so this prior is a property of the batch, not a sum over
/// images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BnStatsPrior {
    /// The weight (>= 0).
    pub weight: f64,
}

impl BnStatsPrior {
    /// A BatchNorm statistics prior with `weight`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a negative or non-finite weight.
    pub fn new(weight: f64) -> Result<Self> {
        check_weight("weight", weight)?;
        Ok(Self { weight })
    }

    /// The weighted penalty for the statistics of every BatchNorm layer, a scalar tensor.
    ///
    /// # Errors
    /// [`crate::Error::NoBatchNorm`] for an empty `layers`; [`crate::Error::Shape`] when the
    /// running statistics are not `[C]` or the current ones neither `[C]` nor `[b, C]`;
    /// candle errors otherwise. Per-image statistics `[b, C]` add one norm per image.
    ///
    /// # Examples
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use netinv_invert::{BnLayerStats, BnStatsPrior};
    /// let t = |v: &[f32]| Tensor::new(v, &Device::Cpu).unwrap();
    /// let layer = BnLayerStats {
    ///     batch_mean: t(&[3.0, 0.0]), running_mean: t(&[0.0, 4.0]), // ||(3, -4)|| = 5
    ///     batch_var: t(&[1.0, 1.0]), running_var: t(&[1.0, 1.0]),  // ||0|| = 0
    /// };
    /// let r = BnStatsPrior::new(2.0).unwrap().penalty(&[layer]).unwrap();
    /// assert!((r.to_scalar::<f32>().unwrap() - 10.0).abs() < 1e-4);
    /// ```
    pub fn penalty(&self, layers: &[BnLayerStats]) -> Result<Tensor> {
        Ok(self.penalty_per_image(layers)?.sum_all()?)
    }

    /// The weighted penalty of each image, `[b]`, for per-image statistics `[b, C]`
    /// (`[1]` for batch statistics `[C]`); [`penalty`](Self::penalty) is its sum.
    ///
    /// # Errors
    /// As [`penalty`](Self::penalty).
    pub fn penalty_per_image(&self, layers: &[BnLayerStats]) -> Result<Tensor> {
        let Some(first) = layers.first() else {
            return Err(crate::Error::NoBatchNorm);
        };
        // One norm per row of the current statistics: per image for `[b, C]`.
        let norm = |a: &Tensor, b: &Tensor| -> Result<Tensor> {
            let channels = b.dims().first().copied();
            let fits = b.rank() == 1
                && match a.dims() {
                    [c] => Some(*c) == channels,
                    [_, c] => Some(*c) == channels,
                    _ => false,
                };
            if !fits {
                return Err(crate::Error::Shape {
                    expected: format!(
                        "statistics [C] or [b, C] and running statistics [C], got {:?}",
                        a.dims()
                    ),
                    got: format!("{:?}", b.dims()),
                });
            }
            let b = b.to_dtype(a.dtype())?;
            let squared = a.broadcast_sub(&b)?.sqr()?;
            let per_row = if a.rank() == 2 {
                squared.sum(1)?
            } else {
                squared.sum_all()?.reshape(1)?
            };
            Ok(per_row.affine(1.0, 1e-12)?.sqrt()?)
        };
        let rows = first.batch_mean.dims().first().copied().unwrap_or(1);
        let rows = if first.batch_mean.rank() == 2 {
            rows
        } else {
            1
        };
        let mut total = Tensor::zeros(rows, first.batch_mean.dtype(), first.batch_mean.device())?;
        for layer in layers {
            total = total.broadcast_add(&norm(&layer.batch_mean, &layer.running_mean)?)?;
            total = total.broadcast_add(&norm(&layer.batch_var, &layer.running_var)?)?;
        }
        Ok(total.affine(self.weight, 0.0)?)
    }
}

/// Random jitter (DeepInversion, and Mordvintsev et al.'s "Inceptionism"): before every
/// step the image batch is rolled (cyclically shifted) by a seeded integer offset in
/// `[-max_shift, max_shift]` along height and width, the network sees the shifted batch,
/// and autograd rolls the gradient back, so the stored image itself never moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jitter {
    /// The largest shift in pixels along each axis (>= 1).
    pub max_shift: usize,
    /// Seed of the shift sequence.
    pub seed: u64,
}

impl Jitter {
    /// Checks `max_shift >= 1`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.max_shift == 0 {
            return Err(invalid("jitter.max_shift", "must be at least 1"));
        }
        Ok(())
    }

    /// The seeded sequence of shifts `(dy, dx)`, one per step.
    pub fn shifts(&self) -> JitterShifts {
        JitterShifts {
            rng: StdRng::seed_from_u64(self.seed),
            max: self.max_shift as i32,
        }
    }
}

/// An endless, seeded sequence of jitter shifts `(dy, dx)` (see [`Jitter`]).
#[derive(Debug, Clone)]
pub struct JitterShifts {
    rng: StdRng,
    max: i32,
}

impl Iterator for JitterShifts {
    type Item = (i32, i32);

    fn next(&mut self) -> Option<(i32, i32)> {
        let dy = self.rng.random_range(-self.max..=self.max);
        let dx = self.rng.random_range(-self.max..=self.max);
        Some((dy, dx))
    }
}

/// Rolls `x` `[b, c, h, w]` by `dy` rows and `dx` columns (cyclically).
///
/// # Errors
/// A candle error if `x` is not of rank 4.
pub(crate) fn roll_image(x: &Tensor, dy: i32, dx: i32) -> candle_core::Result<Tensor> {
    x.dims4()?;
    let mut out = x.clone();
    if dy != 0 {
        out = out.roll(dy, 2)?;
    }
    if dx != 0 {
        out = out.roll(dx, 3)?;
    }
    Ok(out)
}

/// Sum of the weighted penalties of `priors` on `x`, and each term as `(name, value)`.
///
/// # Errors
/// A candle error from any prior.
pub(crate) fn total_penalty(
    priors: &[&dyn Prior],
    x: &Tensor,
) -> candle_core::Result<(Tensor, Vec<(String, f64)>)> {
    let mut total = Tensor::zeros((), x.dtype(), x.device())?;
    let mut terms = Vec::with_capacity(priors.len());
    for prior in priors {
        let p = prior.penalty(x)?;
        terms.push((
            prior.name().to_string(),
            p.to_dtype(DType::F64)?.to_scalar::<f64>()?,
        ));
        total = (total + p)?;
    }
    Ok((total, terms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use netinv_core::testing::{assert_close, central_diff, check_close};
    use proptest::prelude::*;
    use rand::Rng;

    fn image(values: &[f64], b: usize, h: usize, w: usize) -> Tensor {
        Tensor::from_vec(values.to_vec(), (b, 1, h, w), &Device::Cpu).unwrap()
    }

    fn value(p: &dyn Prior, values: &[f64], b: usize, h: usize, w: usize) -> f64 {
        p.penalty(&image(values, b, h, w))
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    fn gradient(p: &dyn Prior, values: &[f64], b: usize, h: usize, w: usize) -> Vec<f64> {
        let x = Var::from_tensor(&image(values, b, h, w)).unwrap();
        let grads = p.penalty(x.as_tensor()).unwrap().backward().unwrap();
        grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    }

    // 3x3 image
    // 0 1 3
    // 0 0 2
    // 1 1 1
    const HAND: [f64; 9] = [0., 1., 3., 0., 0., 2., 1., 1., 1.];

    #[test]
    fn hand_made_3x3_values() {
        // horizontal diffs: (1, 2), (0, 2), (0, 0); vertical: (0, -1, -1), (1, 1, -1)
        assert_eq!(
            value(&SquaredTv::new(1.0).unwrap(), &HAND, 1, 3, 3),
            5. + 4. + 2. + 3.
        );
        assert_eq!(
            value(&AnisotropicTv::new(1.0).unwrap(), &HAND, 1, 3, 3),
            3. + 2. + 2. + 3.
        );
        assert_eq!(
            value(&L2Norm::new(2.0).unwrap(), &HAND, 1, 3, 3),
            2.0 * 17.0
        );
        // isotropic on the 2x2 top-left pixels: (dx, dy) = (1, 0), (2, -1), (0, 1), (2, 1)
        let eps = 1e-3;
        let expected: f64 = [1.0f64, 5.0, 1.0, 5.0]
            .iter()
            .map(|s| (s + eps * eps).sqrt() - eps)
            .sum();
        let got = value(&IsotropicTv::new(1.0, eps).unwrap(), &HAND, 1, 3, 3);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn batch_is_summed() {
        let two: Vec<f64> = HAND.iter().chain(HAND.iter()).copied().collect();
        for p in all_priors() {
            let one = value(p.as_ref(), &HAND, 1, 3, 3);
            assert!((value(p.as_ref(), &two, 2, 3, 3) - 2.0 * one).abs() < 1e-12);
        }
    }

    #[test]
    fn per_image_penalties_are_each_images_own_and_sum_to_the_penalty() {
        let mut rng = rand::rng();
        let two: Vec<f64> = (0..18).map(|_| rng.random::<f64>()).collect();
        let batch = image(&two, 2, 3, 3);
        for p in all_priors() {
            let each = p
                .penalty_per_image(&batch)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            assert_eq!(each.len(), 2, "{}", p.name());
            for (k, v) in each.iter().enumerate() {
                let alone = value(p.as_ref(), &two[9 * k..9 * (k + 1)], 1, 3, 3);
                assert!((v - alone).abs() < 1e-12, "{}: {v} vs {alone}", p.name());
            }
            let total = value(p.as_ref(), &two, 2, 3, 3);
            assert!((each.iter().sum::<f64>() - total).abs() < 1e-12);
        }
    }

    #[test]
    fn constant_image_has_zero_tv() {
        let flat = vec![0.37; 2 * 5 * 4];
        for p in all_priors().into_iter().take(3) {
            // Exactly 0 for the two sums of differences; sqrt(eps^2) - eps may round.
            assert!(
                value(p.as_ref(), &flat, 2, 5, 4).abs() < 1e-15,
                "{}",
                p.name()
            );
        }
        let x = Tensor::full(0.37f32, (2, 1, 5, 4), &Device::Cpu).unwrap();
        let tv = SquaredTv::new(1.0).unwrap().penalty(&x).unwrap();
        assert_eq!(tv.to_scalar::<f32>().unwrap(), 0.0);
    }

    #[test]
    fn bad_weights_are_errors() {
        assert!(SquaredTv::new(-1.0).is_err());
        assert!(AnisotropicTv::new(f64::NAN).is_err());
        assert!(L2Norm::new(f64::INFINITY).is_err());
        assert!(IsotropicTv::new(1.0, 0.0).is_err());
        assert!(BnStatsPrior::new(-0.1).is_err());
        assert!(Jitter {
            max_shift: 0,
            seed: 1
        }
        .validate()
        .is_err());
        assert!(matches!(
            BnStatsPrior::new(1.0).unwrap().penalty(&[]),
            Err(crate::Error::NoBatchNorm)
        ));
    }

    #[test]
    fn per_image_bn_penalty_is_the_sum_of_each_images_penalty() {
        let dev = Device::Cpu;
        let t1 = |v: &[f32]| Tensor::new(v, &dev).unwrap();
        let rows = [[3.0f32, 0.0], [1.0, 2.0]];
        let vars = [[1.0f32, 2.0], [0.5, 1.0]];
        let running = (t1(&[0.0, 4.0]), t1(&[1.0, 1.0]));
        let prior = BnStatsPrior::new(0.5).unwrap();
        let layer = |mean: Tensor, var: Tensor| BnLayerStats {
            batch_mean: mean,
            batch_var: var,
            running_mean: running.0.clone(),
            running_var: running.1.clone(),
        };
        let both = layer(
            Tensor::new(&rows, &dev).unwrap(),
            Tensor::new(&vars, &dev).unwrap(),
        );
        let joint = prior
            .penalty(std::slice::from_ref(&both))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let alone: f32 = (0..2)
            .map(|b| {
                prior
                    .penalty(&[layer(t1(&rows[b]), t1(&vars[b]))])
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            })
            .sum();
        // 0.5 * ((5 + 1) + (sqrt(5) + 0.5)): image 0, then image 1
        assert!((joint - alone).abs() < 1e-5, "{joint} vs {alone}");
        let each = prior
            .penalty_per_image(std::slice::from_ref(&both))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((each[0] - 3.0).abs() < 1e-5 && (each[1] - 0.5 * (5f32.sqrt() + 0.5)).abs() < 1e-5);
        assert!((joint - 0.5 * (5.0 + 1.0 + 5f32.sqrt() + 0.5)).abs() < 1e-4);
        let wrong = layer(
            Tensor::new(&[[1.0f32, 2.0, 3.0]], &dev).unwrap(),
            t1(&[1.0, 1.0]),
        );
        assert!(prior.penalty(&[wrong]).is_err());
    }

    #[test]
    fn closures_are_priors() {
        let p = |x: &Tensor| x.sum_all();
        assert_eq!(value(&p, &HAND, 1, 3, 3), 9.0);
    }

    #[test]
    fn roll_moves_pixels_cyclically() {
        let x = image(&HAND, 1, 3, 3);
        let r = roll_image(&x, 1, -1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        // rows shifted down by one (last row first), columns left by one
        assert_eq!(r, vec![1., 1., 1., 1., 3., 0., 0., 2., 0.]);
        let shifts: Vec<_> = Jitter {
            max_shift: 2,
            seed: 5,
        }
        .shifts()
        .take(50)
        .collect();
        assert!(shifts.iter().all(|&(a, b)| a.abs() <= 2 && b.abs() <= 2));
        assert!(shifts.iter().any(|&s| s != (0, 0)));
        assert_eq!(
            shifts,
            Jitter {
                max_shift: 2,
                seed: 5
            }
            .shifts()
            .take(50)
            .collect::<Vec<_>>()
        );
    }

    fn all_priors() -> Vec<Box<dyn Prior>> {
        vec![
            Box::new(SquaredTv::new(0.7).unwrap()),
            Box::new(AnisotropicTv::new(0.3).unwrap()),
            Box::new(IsotropicTv::new(1.3, 1e-2).unwrap()),
            Box::new(L2Norm::new(0.9).unwrap()),
        ]
    }

    fn bn_value_and_grad(mean: &[f64], var: &[f64], rm: &[f64], rv: &[f64]) -> (f64, Vec<f64>) {
        let dev = Device::Cpu;
        let m = Var::new(mean, &dev).unwrap();
        let v = Var::new(var, &dev).unwrap();
        let layer = BnLayerStats {
            batch_mean: m.as_tensor().clone(),
            batch_var: v.as_tensor().clone(),
            running_mean: Tensor::new(rm, &dev).unwrap(),
            running_var: Tensor::new(rv, &dev).unwrap(),
        };
        let r = BnStatsPrior::new(0.5)
            .unwrap()
            .penalty(&[layer.clone(), layer])
            .unwrap();
        let grads = r.backward().unwrap();
        let mut g = grads.get(m.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        g.extend(grads.get(v.as_tensor()).unwrap().to_vec1::<f64>().unwrap());
        (r.to_scalar::<f64>().unwrap(), g)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn prior_gradients_match_central_differences(
            b in 1usize..3, h in 2usize..5, w in 2usize..5, seed in 0u64..1000,
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let values: Vec<f64> = (0..b * h * w).map(|_| rng.random::<f64>()).collect();
            for p in all_priors() {
                let analytic = gradient(p.as_ref(), &values, b, h, w);
                let numeric = central_diff(|v| value(p.as_ref(), v, b, h, w), &values, 1e-6);
                // The L1 kink: skip points within h of a zero difference.
                let x = image(&values, b, h, w);
                let (dx, dy) = differences(&x).unwrap();
                let min_diff = dx.abs().unwrap().flatten_all().unwrap().min(0).unwrap().to_scalar::<f64>().unwrap()
                    .min(dy.abs().unwrap().flatten_all().unwrap().min(0).unwrap().to_scalar::<f64>().unwrap());
                if p.name() == "tv_l1" && min_diff < 1e-4 {
                    continue;
                }
                prop_assert!(check_close(&analytic, &numeric, 1e-5, 1e-6).is_ok(),
                    "{}: {:?}", p.name(), check_close(&analytic, &numeric, 1e-5, 1e-6));
            }
        }

        #[test]
        fn bn_prior_gradient_matches_central_differences(seed in 0u64..1000) {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut draw = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random::<f64>()).collect() };
            let (mean, var, rm, rv) = (draw(3), draw(3), draw(3), draw(3));
            let (_, analytic) = bn_value_and_grad(&mean, &var, &rm, &rv);
            let joined: Vec<f64> = mean.iter().chain(&var).copied().collect();
            let numeric = central_diff(|p| bn_value_and_grad(&p[..3], &p[3..], &rm, &rv).0, &joined, 1e-6);
            assert_close(&analytic, &numeric, 1e-5, 1e-6);
        }
    }
}
