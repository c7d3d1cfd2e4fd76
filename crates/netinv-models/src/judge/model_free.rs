//! Model-free scores of images against the training digits: the correlation with the
//! target's class mean, the nearest class mean (by correlation) and a k-nearest-neighbour
//! vote in pixel space. No network is involved, so these scores cannot share a network's
//! blind spots (adversarial patterns); they are weak judges of their own (a thin, off-centre
//! but clear digit can correlate poorly with the blurry class mean).

use ndarray::{Array2, ArrayView4};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{Error, Result};

/// The `k` of [`PixelReference::scores`] used by the examples: a 5-nearest-neighbour vote.
pub const DEFAULT_KNN_K: usize = 5;

/// Model-free scores of a batch of images against their targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFreeScores {
    /// Pearson correlation of each image with its target's class mean, in [-1, 1].
    pub class_mean_corr: Vec<f64>,
    /// Mean of `class_mean_corr`.
    pub mean_class_mean_corr: f64,
    /// The class whose mean correlates best with each image.
    pub nearest_mean_predictions: Vec<u32>,
    /// Fraction of images whose nearest class mean is their target.
    pub nearest_mean_accuracy: f64,
    /// The number of neighbours of the k-NN vote.
    pub knn_k: usize,
    /// The k-NN class of each image.
    pub knn_predictions: Vec<u32>,
    /// Fraction of images whose k-NN class is their target.
    pub knn_accuracy: f64,
}

/// The training digits in the form the model-free scores need: the images as f64 rows,
/// their squared norms and labels, and the centred, unit-norm class means.
#[derive(Debug, Clone)]
pub struct PixelReference {
    dim: (usize, usize),
    images: Array2<f64>,
    squared_norms: Vec<f64>,
    labels: Vec<u32>,
    /// Per class: the class mean minus its own mean, scaled to unit norm (so a dot product
    /// with a centred image over that image's norm is Pearson's r); `None` for a class
    /// without examples or with a constant mean.
    unit_means: Vec<Option<Vec<f64>>>,
}

/// `v` minus its mean, scaled to unit norm; `None` for a constant `v`.
fn centred_unit(v: &[f64]) -> Option<Vec<f64>> {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let centred: Vec<f64> = v.iter().map(|x| x - mean).collect();
    let norm = centred.iter().map(|x| x * x).sum::<f64>().sqrt();
    (norm > 0.0).then(|| centred.iter().map(|x| x / norm).collect())
}

/// Index of the largest value (the first one on ties).
fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// Fraction of `predictions` equal to their target.
fn accuracy(predictions: &[u32], targets: &[u32]) -> f64 {
    let hits = predictions
        .iter()
        .zip(targets)
        .filter(|(p, t)| p == t)
        .count();
    hits as f64 / predictions.len() as f64
}

impl PixelReference {
    /// Builds the reference from `train` (all its digits and classes 0..=9).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty data set.
    pub fn new(train: &netinv_data::Dataset) -> Result<Self> {
        if train.is_empty() {
            return Err(invalid("train", "the reference needs at least one digit"));
        }
        let (n, (h, w)) = (train.len(), train.image_dim());
        let images = Array2::from_shape_fn((n, h * w), |(i, p)| {
            f64::from(train.images()[[i, p / w, p % w]])
        });
        let squared_norms = images
            .outer_iter()
            .map(|row| row.iter().map(|v| v * v).sum())
            .collect();
        let labels: Vec<u32> = train.labels().iter().map(|&l| u32::from(l)).collect();
        let unit_means = (0..netinv_data::NUM_CLASSES)
            .map(|class| {
                let rows: Vec<usize> = (0..n).filter(|&i| labels[i] as usize == class).collect();
                if rows.is_empty() {
                    return None;
                }
                let mean: Vec<f64> = (0..h * w)
                    .map(|p| rows.iter().map(|&i| images[[i, p]]).sum::<f64>() / rows.len() as f64)
                    .collect();
                centred_unit(&mean)
            })
            .collect();
        Ok(Self {
            dim: (h, w),
            images,
            squared_norms,
            labels,
            unit_means,
        })
    }

    /// The images `[n, 1, h, w]` clipped to [0, 1], as f64 rows `[n, h * w]`.
    fn rows(&self, images: ArrayView4<'_, f32>) -> Result<Array2<f64>> {
        let (n, c, h, w) = images.dim();
        if n == 0 || c != 1 || (h, w) != self.dim {
            return Err(Error::Shape {
                expected: format!("images [n >= 1, 1, {}, {}]", self.dim.0, self.dim.1),
                got: format!("images {:?}", images.dim()),
            });
        }
        if let Some(v) = images.iter().find(|v| !v.is_finite()) {
            return Err(invalid("images", format!("a pixel is {v}")));
        }
        let flat = images.to_shape((n, h * w)).map_err(|e| Error::Shape {
            expected: "a contiguous image batch".into(),
            got: e.to_string(),
        })?;
        Ok(flat.mapv(|v| f64::from(v.clamp(0.0, 1.0))))
    }

    /// Pearson correlation of each image (clipped to [0, 1]) with every class mean,
    /// `[n][10]`; 0 for a constant image or a class without a usable mean.
    ///
    /// # Errors
    /// [`Error::Shape`] for images that are not `[n >= 1, 1, h, w]` with the reference's
    /// `h, w`; [`Error::InvalidConfig`] for a NaN or infinite pixel.
    pub fn class_mean_correlations(&self, images: ArrayView4<'_, f32>) -> Result<Vec<Vec<f64>>> {
        let rows = self.rows(images)?;
        Ok(rows
            .outer_iter()
            .map(|row| {
                let row: Vec<f64> = row.to_vec();
                let Some(unit) = centred_unit(&row) else {
                    return vec![0.0; self.unit_means.len()];
                };
                self.unit_means
                    .iter()
                    .map(|m| m.as_ref().map_or(0.0, |m| dot(&unit, m)))
                    .collect()
            })
            .collect())
    }

    /// The class of the `k` training digits nearest to each image (Euclidean distance in
    /// pixel space, images clipped to [0, 1]): the most frequent label among them; on a
    /// tie, the tied class of the nearest neighbour. Neighbours at equal distance are taken
    /// in training order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `k` of 0 or above the number of training digits; as
    /// [`PixelReference::class_mean_correlations`].
    pub fn knn(&self, images: ArrayView4<'_, f32>, k: usize) -> Result<Vec<u32>> {
        if k == 0 || k > self.labels.len() {
            return Err(invalid(
                "k",
                format!("must be in 1..={}, got {k}", self.labels.len()),
            ));
        }
        let rows = self.rows(images)?;
        // ||x - t||^2 = ||t||^2 - 2 x.t + ||x||^2; the last term is the same for every t.
        let dots = rows.dot(&self.images.t());
        Ok(dots
            .outer_iter()
            .map(|dots| {
                let mut order: Vec<(f64, usize)> = dots
                    .iter()
                    .zip(&self.squared_norms)
                    .enumerate()
                    .map(|(i, (d, sq))| (sq - 2.0 * d, i))
                    .collect();
                order.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                order.truncate(k);
                order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                self.vote(&order)
            })
            .collect())
    }

    /// The most frequent label of `neighbours` (nearest first); ties go to the class met
    /// first.
    fn vote(&self, neighbours: &[(f64, usize)]) -> u32 {
        let mut counts = [0usize; netinv_data::NUM_CLASSES];
        for &(_, i) in neighbours {
            counts[self.labels[i] as usize] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(0);
        neighbours
            .iter()
            .map(|&(_, i)| self.labels[i])
            .find(|&l| counts[l as usize] == top)
            .unwrap_or(0)
    }

    /// All model-free scores of `images` `[n, 1, h, w]` against `targets` (one per image,
    /// each < 10), with a `k`-NN vote.
    ///
    /// # Errors
    /// [`Error::Shape`] for a target count that is not `n`; [`Error::InvalidConfig`] for a
    /// target above 9; as [`PixelReference::knn`].
    pub fn scores(
        &self,
        images: ArrayView4<'_, f32>,
        targets: &[u32],
        k: usize,
    ) -> Result<ModelFreeScores> {
        super::verdict::check_targets(images.dim().0, targets, self.unit_means.len())?;
        let correlations = self.class_mean_correlations(images)?;
        let class_mean_corr: Vec<f64> = correlations
            .iter()
            .zip(targets)
            .map(|(r, &t)| r[t as usize])
            .collect();
        let nearest_mean_predictions: Vec<u32> =
            correlations.iter().map(|r| argmax(r) as u32).collect();
        let knn_predictions = self.knn(images, k)?;
        Ok(ModelFreeScores {
            mean_class_mean_corr: class_mean_corr.iter().sum::<f64>() / targets.len() as f64,
            class_mean_corr,
            nearest_mean_accuracy: accuracy(&nearest_mean_predictions, targets),
            nearest_mean_predictions,
            knn_k: k,
            knn_accuracy: accuracy(&knn_predictions, targets),
            knn_predictions,
        })
    }
}

/// Dot product, accumulated in f64.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
