//! Scoring images: the judge's verdict, the acceptance test's noise images and the
//! model-free class-mean correlation.

use candle_core::Device;
use ndarray::{Array4, ArrayView4, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::bridge::array4_to_tensor;
use crate::error::invalid;
use crate::train::softmax_rows;
use crate::{Classifier, Error, Result};

/// The judge's verdict on a batch of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The judge's class for each image.
    pub predictions: Vec<u32>,
    /// The judge's probability of each image's target.
    pub target_probabilities: Vec<f32>,
    /// Whether each image was judged as its target.
    pub correct: Vec<bool>,
    /// Fraction judged as their target.
    pub accuracy: f64,
}

/// Checks `targets` against `n` images and `classes` outputs.
pub(super) fn check_targets(n: usize, targets: &[u32], classes: usize) -> Result<()> {
    if targets.len() != n || n == 0 {
        return Err(Error::Shape {
            expected: format!("{n} >= 1 targets"),
            got: format!("{} targets", targets.len()),
        });
    }
    match targets.iter().position(|&t| t as usize >= classes) {
        Some(i) => Err(invalid(
            "targets",
            format!(
                "target {} of image {i} is not one of {classes} classes",
                targets[i]
            ),
        )),
        None => Ok(()),
    }
}

/// Index of the largest value (the first one on ties).
fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// The verdict of `net` on `images` (clipped to [0, 1]) against `targets`.
pub(super) fn verdict_of(
    net: &Classifier,
    images: ArrayView4<'_, f32>,
    targets: &[u32],
    device: &Device,
) -> Result<Verdict> {
    check_targets(images.dim().0, targets, net.config().outputs)?;
    if let Some(v) = images.iter().find(|v| !v.is_finite()) {
        return Err(invalid("images", format!("a pixel is {v}")));
    }
    let clipped = images.mapv(|v| v.clamp(0.0, 1.0));
    let probs = softmax_rows(&net.forward(&array4_to_tensor(clipped.view(), device)?)?)?;
    let predictions: Vec<u32> = probs.iter().map(|p| argmax(p) as u32).collect();
    let correct: Vec<bool> = predictions
        .iter()
        .zip(targets)
        .map(|(p, t)| p == t)
        .collect();
    let hits = correct.iter().filter(|&&c| c).count();
    Ok(Verdict {
        target_probabilities: probs
            .iter()
            .zip(targets)
            .map(|(p, &t)| p[t as usize])
            .collect(),
        predictions,
        accuracy: hits as f64 / correct.len() as f64,
        correct,
    })
}

/// `n` seeded noise images `[n, 1, 28, 28]`: `0.5 + 0.2 N(0, 1)` clipped to [0, 1].
pub fn noise_images(n: usize, seed: u64) -> Array4<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal =
        Normal::new(0.5f32, 0.2).unwrap_or_else(|_| unreachable!("constant parameters are valid"));
    Array4::from_shape_fn((n, 1, 28, 28), |_| normal.sample(&mut rng).clamp(0.0, 1.0))
}

/// Pearson correlation ([`netinv_metrics::stats::pearson`]) of each image `[n, 1, h, w]`
/// with the mean training image of its target class (from `train`), accumulated in f64;
/// a constant image (zero variance) scores 0. Images are clipped to [0, 1] first, as for
/// the judge.
///
/// # Errors
/// [`Error::Shape`] for a target count that is not `n` or images that are not `[n, 1, h, w]`
/// with the data set's `h, w`; [`Error::InvalidConfig`] for a target above 255; data errors
/// (a class without examples).
pub fn class_mean_correlation(
    images: ArrayView4<'_, f32>,
    targets: &[u32],
    train: &netinv_data::Dataset,
) -> Result<Vec<f64>> {
    let (n, c, h, w) = images.dim();
    if targets.len() != n || c != 1 || (h, w) != train.image_dim() {
        return Err(Error::Shape {
            expected: format!("[{} targets], images [n, 1, {:?}]", n, train.image_dim()),
            got: format!("{} targets, images {:?}", targets.len(), images.dim()),
        });
    }
    let mut out = Vec::with_capacity(n);
    for (i, &t) in targets.iter().enumerate() {
        let class = u8::try_from(t)
            .map_err(|_| invalid("targets", format!("target {t} of image {i} is not a class")))?;
        let mean = train.class_mean(class)?;
        let image = images.index_axis(Axis(0), i);
        let x: Vec<f64> = image
            .iter()
            .map(|&v| f64::from(v.clamp(0.0, 1.0)))
            .collect();
        let m: Vec<f64> = mean.iter().map(|&v| f64::from(v)).collect();
        out.push(netinv_metrics::stats::pearson(&x, &m));
    }
    Ok(out)
}
