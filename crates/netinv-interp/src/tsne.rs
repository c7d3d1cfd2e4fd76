//! t-SNE embeddings of latent codes (van der Maaten & Hinton, 2008; Barnes-Hut: van der
//! Maaten, 2014) through the `bhtsne` crate, seeded, plus the k-NN preservation score.
//!
//! Why `bhtsne` (0.7): MIT licence, maintained, exact / Barnes-Hut / FIt-SNE paths,
//! rayon-parallel, and it accepts an initial embedding and precomputed neighbours. Its own
//! random steps (initial coordinates, vantage-point tree) use the unseeded thread RNG and
//! its parallel sums vary in the last bits with the thread schedule, so here the initial
//! coordinates come from our seeded host RNG, the neighbours from an exact search, and by
//! default the fit runs on a one-thread rayon pool: the same seed gives the same embedding.
//! `linfa-tsne` 0.8 wraps an older `bhtsne` (0.4) behind linfa's traits and adds ndarray
//! 0.16 next to our 0.17; it offers nothing the direct crate does not.

use bhtsne::{tSNE, Neighbor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{Error, Result};

/// Parameters of [`tsne_2d`].
///
/// Defaults: `perplexity` 30, `theta` 0.5 (Barnes-Hut accuracy), `epochs` 1000,
/// `learning_rate` 200 (the reference implementation's), `seed` 0, `deterministic` true.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TsneConfig {
    /// Effective number of neighbours (finite, > 0, and `3 * perplexity < n - 1`).
    pub perplexity: f64,
    /// Barnes-Hut opening angle (finite, > 0; smaller is more exact and slower).
    pub theta: f64,
    /// Gradient iterations (>= 250: the first 250 use early exaggeration).
    pub epochs: usize,
    /// Gradient-descent step (finite, > 0); `None` for bhtsne's size-scaled default
    /// `max(n / early_exaggeration / 4, 50)`, which is 50 for 2,000 points and kept fewer
    /// latent neighbours on the VAE means (10-NN preservation 0.473 against 0.510 at 200).
    pub learning_rate: Option<f64>,
    /// Seed of the initial embedding (`N(0, 1e-4 I)`, as in the reference implementation).
    pub seed: u64,
    /// Run the gradient descent on one thread, so results repeat bit for bit; `false`
    /// uses the global rayon pool (faster on several cores; the last bits vary).
    pub deterministic: bool,
}

impl Default for TsneConfig {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            theta: 0.5,
            epochs: 1000,
            learning_rate: Some(200.0),
            seed: 0,
            deterministic: true,
        }
    }
}

impl TsneConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        if !(self.perplexity.is_finite() && self.perplexity > 0.0) {
            return Err(invalid(
                "perplexity",
                format!("must be finite and > 0, got {}", self.perplexity),
            ));
        }
        if !(self.theta.is_finite() && self.theta > 0.0) {
            return Err(invalid(
                "theta",
                format!("must be finite and > 0, got {}", self.theta),
            ));
        }
        if let Some(lr) = self.learning_rate {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(invalid(
                    "learning_rate",
                    format!("must be finite and > 0, got {lr}"),
                ));
            }
        }
        if self.epochs < 250 {
            return Err(invalid(
                "epochs",
                format!(
                    "must be >= 250 (the exaggeration phase), got {}",
                    self.epochs
                ),
            ));
        }
        Ok(())
    }
}

fn check_points(points: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 || points.len() % dim != 0 || points.is_empty() {
        return Err(Error::Shape {
            expected: format!("row-major points [n >= 1, {dim}] with dim > 0"),
            got: format!("{} values", points.len()),
        });
    }
    if let Some(v) = points.iter().find(|v| !v.is_finite()) {
        return Err(invalid("points", format!("non-finite coordinate {v}")));
    }
    Ok(points.len() / dim)
}

/// A 2-D Barnes-Hut t-SNE embedding of `points` (row-major `[n, dim]`, Euclidean distance):
/// row-major `[n, 2]`.
///
/// ```text
/// p_{j|i} ~ exp(-|x_i - x_j|^2 / 2 sigma_i^2) over the 3*perplexity nearest neighbours,
///           sigma_i set by the perplexity;  P = (P_cond + P_cond^T) / 2n
/// q_ij    ~ (1 + |y_i - y_j|^2)^-1;       minimise KL(P || Q) by gradient descent
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid `cfg`, non-finite coordinates, or a perplexity
/// too large for `n` (`3 * perplexity >= n - 1`); [`Error::Shape`] for a length that is
/// not a multiple of `dim`.
///
/// # Examples
/// ```
/// use netinv_interp::{tsne_2d, TsneConfig};
/// // Two clusters of 20 points in 3-D.
/// let points: Vec<f32> = (0..40)
///     .flat_map(|i| {
///         let c = if i < 20 { 0.0 } else { 10.0 };
///         [c + (i % 5) as f32 * 0.1, c + (i % 3) as f32 * 0.1, c]
///     })
///     .collect();
/// let cfg = TsneConfig { perplexity: 5.0, epochs: 300, ..Default::default() };
/// let y = tsne_2d(&points, 3, &cfg)?;
/// assert_eq!(y.len(), 80);
/// # Ok::<(), netinv_interp::Error>(())
/// ```
pub fn tsne_2d(points: &[f32], dim: usize, cfg: &TsneConfig) -> Result<Vec<f32>> {
    cfg.validate()?;
    let n = check_points(points, dim)?;
    if (n as f64) - 1.0 < 3.0 * cfg.perplexity.floor() || n < 2 {
        return Err(invalid(
            "perplexity",
            format!(
                "{} is too large for {n} points (needs 3 * perplexity < n - 1)",
                cfg.perplexity
            ),
        ));
    }
    let rows: Vec<&[f32]> = points.chunks(dim).collect();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let init: Vec<f32> = (0..2 * n)
        .map(|_| 1e-2 * rng.sample::<f32, _>(StandardNormal))
        .collect();
    // Exact neighbours (as many as bhtsne's own search would take: 3 * perplexity).
    let k = ((3.0 * cfg.perplexity) as usize).clamp(1, n - 1);
    let neighbors: Vec<Vec<Neighbor<f32>>> = knn_with_distances(points, dim, k)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|(d2, index)| Neighbor {
                    index,
                    distance: d2.sqrt() as f32,
                })
                .collect()
        })
        .collect();
    let fit = || {
        let mut tsne: tSNE<f32, &[f32], 2> = tSNE::new(&rows);
        if let Some(lr) = cfg.learning_rate {
            tsne.learning_rate(lr as f32);
        }
        tsne.perplexity(cfg.perplexity as f32)
            .epochs(cfg.epochs)
            .initial_embedding(init.clone())
            .barnes_hut_with_neighbors(cfg.theta as f32, &neighbors);
        tsne.embedding()
    };
    if cfg.deterministic {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(|e| invalid("deterministic", format!("cannot build a thread pool: {e}")))?;
        Ok(pool.install(fit))
    } else {
        Ok(fit())
    }
}

/// Indices of the `k` nearest neighbours of every point (excluding itself; ties broken by
/// the lower index), by squared Euclidean distance accumulated in f64; O(n^2 dim).
fn knn(points: &[f32], dim: usize, k: usize) -> Vec<Vec<usize>> {
    knn_with_distances(points, dim, k)
        .into_iter()
        .map(|row| row.into_iter().map(|(_, j)| j).collect())
        .collect()
}

/// `(squared distance, index)` of the `k` nearest neighbours of every point, nearest
/// first, as [`knn`].
fn knn_with_distances(points: &[f32], dim: usize, k: usize) -> Vec<Vec<(f64, usize)>> {
    let n = points.len() / dim;
    (0..n)
        .map(|i| {
            let pi = &points[i * dim..(i + 1) * dim];
            let mut d: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let pj = &points[j * dim..(j + 1) * dim];
                    let s: f64 = pi
                        .iter()
                        .zip(pj)
                        .map(|(a, b)| {
                            let t = f64::from(*a) - f64::from(*b);
                            t * t
                        })
                        .sum();
                    (s, j)
                })
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.truncate(k);
            d
        })
        .collect()
}

/// The k-NN preservation of an embedding: the fraction of each point's `k` nearest
/// neighbours in `high` (`[n, high_dim]`) that are also among its `k` nearest in `low`
/// (`[n, low_dim]`), averaged over points; 1 when the neighbourhoods are identical.
///
/// ```text
/// knn_preservation = 1/(n k) sum_i |N_k^high(i) ∩ N_k^low(i)|
/// ```
///
/// # Errors
/// [`Error::Shape`] if the arrays do not hold the same number of points; an
/// [`Error::InvalidConfig`] for `k == 0` or `k >= n`, or non-finite coordinates.
///
/// # Examples
/// ```
/// // Points on a line, embedded in reverse order: the neighbourhoods are the same.
/// let high = [0.0f32, 1.0, 2.0, 3.0];
/// let low = [3.0f32, 2.0, 1.0, 0.0];
/// assert_eq!(netinv_interp::knn_preservation(&high, 1, &low, 1, 1)?, 1.0);
/// # Ok::<(), netinv_interp::Error>(())
/// ```
pub fn knn_preservation(
    high: &[f32],
    high_dim: usize,
    low: &[f32],
    low_dim: usize,
    k: usize,
) -> Result<f64> {
    let n = check_points(high, high_dim)?;
    let m = check_points(low, low_dim)?;
    if n != m {
        return Err(Error::Shape {
            expected: format!("{n} embedded points"),
            got: format!("{m}"),
        });
    }
    if k == 0 || k >= n {
        return Err(invalid("k", format!("must be in 1..{n}, got {k}")));
    }
    let a = knn(high, high_dim, k);
    let b = knn(low, low_dim, k);
    let kept: usize = a
        .iter()
        .zip(&b)
        .map(|(x, y)| x.iter().filter(|j| y.contains(j)).count())
        .sum();
    Ok(kept as f64 / (n * k) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well-separated Gaussian clusters of `per` points in 8-D.
    fn clusters(per: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pts = Vec::new();
        let mut labels = Vec::new();
        for c in 0..3 {
            for _ in 0..per {
                for d in 0..8 {
                    let centre = if d == c { 20.0 } else { 0.0 };
                    pts.push(centre + rng.sample::<f32, _>(StandardNormal));
                }
                labels.push(c);
            }
        }
        (pts, labels)
    }

    #[test]
    fn knn_preservation_known_values() {
        // 1-D points 0, 1, 2, 10 with k = 1: neighbours 1, 0 (tie 0/2 -> 0), 1, 2.
        let high = [0.0f32, 1.0, 2.0, 10.0];
        assert_eq!(knn_preservation(&high, 1, &high, 1, 1).unwrap(), 1.0);
        // Swap the embedded positions of points 0 and 3: low = 10, 1, 2, 0.
        // low neighbours: 0 -> 2 (dist 8), 1 -> 2, 2 -> 1, 3 -> 1.
        // kept: point0 {1} vs {2} no; point1 {0} vs {2} no; point2 {1} vs {1} yes; point3 {2} vs {1} no.
        let low = [10.0f32, 1.0, 2.0, 0.0];
        assert_eq!(knn_preservation(&high, 1, &low, 1, 1).unwrap(), 0.25);
        assert!(knn_preservation(&high, 1, &low[..3], 1, 1).is_err());
        assert!(knn_preservation(&high, 1, &low, 1, 0).is_err());
        assert!(knn_preservation(&high, 1, &low, 1, 4).is_err());
        assert!(knn_preservation(&[f32::NAN, 0.0], 1, &[0.0, 1.0], 1, 1).is_err());
    }

    #[test]
    fn tsne_separates_clusters_and_repeats_with_a_seed() {
        let (pts, labels) = clusters(30, 1);
        let cfg = TsneConfig {
            perplexity: 10.0,
            epochs: 400,
            seed: 3,
            ..Default::default()
        };
        let y = tsne_2d(&pts, 8, &cfg).unwrap();
        assert_eq!(y.len(), 180);
        assert!(y.iter().all(|v| v.is_finite()));
        // Every point's nearest embedded neighbour has its label.
        let nn = knn(&y, 2, 1);
        for (i, n) in nn.iter().enumerate() {
            assert_eq!(labels[n[0]], labels[i], "point {i}");
        }
        // Same seed, same embedding.
        assert_eq!(tsne_2d(&pts, 8, &cfg).unwrap(), y);
        let other = tsne_2d(
            &pts,
            8,
            &TsneConfig {
                seed: 4,
                ..cfg.clone()
            },
        )
        .unwrap();
        assert_ne!(other, y);
        let kp = knn_preservation(&pts, 8, &y, 2, 5).unwrap();
        assert!(kp > 0.2, "{kp}");
    }

    #[test]
    fn bad_inputs() {
        let (pts, _) = clusters(5, 0);
        // 15 points, perplexity 30: too large.
        assert!(matches!(
            tsne_2d(&pts, 8, &TsneConfig::default()),
            Err(Error::InvalidConfig {
                field: "perplexity",
                ..
            })
        ));
        assert!(tsne_2d(&pts[..7], 8, &TsneConfig::default()).is_err());
        for bad in [
            TsneConfig {
                perplexity: 0.0,
                ..Default::default()
            },
            TsneConfig {
                theta: 0.0,
                ..Default::default()
            },
            TsneConfig {
                epochs: 10,
                ..Default::default()
            },
            TsneConfig {
                learning_rate: Some(0.0),
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
