//! Hyperspherical prototype placement (Mettes et al. 2019): K unit vectors in D dimensions,
//! spread as far apart as possible.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::Result;

/// Settings of [`place_prototypes`]. Defaults: `iterations` 2000, `lr` 0.1, `momentum`
/// 0.9, `decay` 0.998 (the step after `t` iterations is `lr * decay^t`), `restarts` 4,
/// `seed` 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlacementConfig {
    /// Projected-gradient iterations per restart (>= 1).
    pub iterations: usize,
    /// Initial step size (> 0).
    pub lr: f64,
    /// Heavy-ball momentum in [0, 1).
    pub momentum: f64,
    /// Multiplicative step decay per iteration, in (0, 1].
    pub decay: f64,
    /// Independent seeded starts; the best result is kept (>= 1).
    pub restarts: usize,
    /// Seed of the random starts (restart `r` uses `seed + r`).
    pub seed: u64,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        Self {
            iterations: 2000,
            lr: 0.1,
            momentum: 0.9,
            decay: 0.998,
            restarts: 4,
            seed: 0,
        }
    }
}

impl PlacementConfig {
    /// Checks every field's range.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.iterations == 0 {
            return Err(invalid("iterations", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid(
                "lr",
                format!("must be finite and > 0, got {}", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(invalid(
                "momentum",
                format!("must be in [0, 1), got {}", self.momentum),
            ));
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(invalid(
                "decay",
                format!("must be in (0, 1], got {}", self.decay),
            ));
        }
        if self.restarts == 0 {
            return Err(invalid("restarts", "must be at least 1"));
        }
        Ok(())
    }
}

/// The result of [`place_prototypes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Number of prototypes K.
    pub classes: usize,
    /// Dimension D.
    pub dim: usize,
    /// The prototypes, row-major `[K, D]`, each row of unit norm.
    pub prototypes: Vec<f64>,
    /// The largest cosine between two distinct prototypes (`-1` for K = 1).
    pub max_cosine: f64,
    /// The final loss `(1/K) sum_i max_{j != i} p_i . p_j`.
    pub loss: f64,
    /// The simplex bound `-1 / (K - 1)`: no placement has a smaller largest cosine; it is
    /// reached exactly when `K <= D + 1` (`-1` for K = 1).
    pub lower_bound: f64,
    /// Set when the placement is poor: prototypes (nearly) coincide (largest cosine above
    /// 0.99), which happens when K is far above what D dimensions hold (e.g. D = 1, K > 2).
    pub warning: Option<String>,
}

impl Placement {
    /// Prototype `k` as f32 (the dtype of the networks).
    ///
    /// # Panics
    /// If `k >= classes`.
    pub fn row_f32(&self, k: usize) -> Vec<f32> {
        self.prototypes[k * self.dim..(k + 1) * self.dim]
            .iter()
            .map(|&v| v as f32)
            .collect()
    }

    /// All prototypes as f32, row-major `[K, D]`.
    pub fn to_f32(&self) -> Vec<f32> {
        self.prototypes.iter().map(|&v| v as f32).collect()
    }
}

/// Places `classes` (K) unit vectors in `dim` (D) dimensions by minimising
///
/// ```text
/// L(P) = (1/K) sum_i max_j M_ij,    M = P P^T - 2 I,    ||p_i|| = 1
/// ```
///
/// (the `-2 I` removes the diagonal from the max) with projected (sub)gradient descent and
/// heavy-ball momentum, rows renormalised after every step:
///
/// ```text
/// g_i  = (1/K) (p_{j*(i)} + sum_{k: j*(k) = i} p_k)       j*(i) = argmax_{j != i} p_i . p_j
/// v   <- momentum v - lr decay^t g
/// P   <- rows_normalised(P + v)
/// ```
///
/// from `restarts` seeded Gaussian starts, followed by the same number of iterations on the
/// smooth maximum `(1/t) log sum_{i<j} exp(t p_i . p_j)` with `t` rising from 10 to 3000
/// (this evens out the largest cosines; without it K = 10, D = 2 ended at 0.92); the
/// iterate with the smallest largest pairwise cosine over all restarts, phases and
/// iterations is returned. Plain subgradient descent without
/// momentum stalls on coinciding prototypes for K = 10, D = 2 (see the issue); momentum
/// with a decaying step reaches the optima (cos(2 pi / 10) = 0.809 for D = 2, the
/// tetrahedron's -1/3 for K = 4, D = 3).
///
/// Placements that cannot be spread (K far above 2D, D = 1 with K > 2) still terminate,
/// with the best found and [`Placement::warning`] set.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] for `classes == 0`, `dim == 0` or a bad `cfg`.
///
/// # Examples
/// ```
/// use netinv_prototypes::{place_prototypes, PlacementConfig};
/// let p = place_prototypes(2, 3, &PlacementConfig::default())?;
/// assert!((p.max_cosine + 1.0).abs() < 1e-6); // antipodal
/// # Ok::<(), netinv_prototypes::Error>(())
/// ```
pub fn place_prototypes(classes: usize, dim: usize, cfg: &PlacementConfig) -> Result<Placement> {
    cfg.validate()?;
    if classes == 0 {
        return Err(invalid("classes", "need at least one prototype"));
    }
    if dim == 0 {
        return Err(invalid("dim", "the dimension must be at least 1"));
    }
    let lower_bound = if classes == 1 {
        -1.0
    } else {
        -1.0 / (classes as f64 - 1.0)
    };
    let mut best: Option<(f64, f64, Vec<f64>)> = None;
    for r in 0..cfg.restarts {
        let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_add(r as u64));
        let (mc, loss, p) = run_once(classes, dim, cfg, &mut rng);
        if best.as_ref().is_none_or(|b| mc < b.0) {
            best = Some((mc, loss, p));
        }
    }
    let (max_cosine, loss, prototypes) = best.unwrap_or((1.0, 1.0, vec![0.0; classes * dim]));
    let warning = (max_cosine > 0.99).then(|| {
        format!(
            "{classes} prototypes in {dim} dimensions could not be separated: the largest \
             pairwise cosine is {max_cosine:.4} (bound {lower_bound:.4})"
        )
    });
    Ok(Placement {
        classes,
        dim,
        prototypes,
        max_cosine,
        loss,
        lower_bound,
        warning,
    })
}

/// One restart; returns (best max cosine, its loss, its prototypes).
fn run_once(k: usize, d: usize, cfg: &PlacementConfig, rng: &mut StdRng) -> (f64, f64, Vec<f64>) {
    let mut p: Vec<f64> = (0..k * d).map(|_| StandardNormal.sample(rng)).collect();
    normalise_rows(&mut p, d);
    if k == 1 {
        return (-1.0, -1.0, p);
    }
    let mut v = vec![0.0; k * d];
    let mut g = vec![0.0; k * d];
    let mut nearest = vec![0usize; k];
    let (mut best_mc, mut best_loss) = (f64::INFINITY, f64::INFINITY);
    let mut best_p = p.clone();
    let mut lr = cfg.lr;
    for it in 0..=cfg.iterations {
        let (loss, mc) = nearest_neighbours(&p, k, d, &mut nearest);
        if mc < best_mc - 1e-15 || (mc <= best_mc && loss < best_loss) {
            best_mc = mc;
            best_loss = loss;
            best_p.copy_from_slice(&p);
        }
        if it == cfg.iterations {
            break;
        }
        g.iter_mut().for_each(|x| *x = 0.0);
        let scale = 1.0 / k as f64;
        for (i, &j) in nearest.iter().enumerate() {
            for c in 0..d {
                g[i * d + c] += scale * p[j * d + c];
                g[j * d + c] += scale * p[i * d + c];
            }
        }
        for ((vi, pi), gi) in v.iter_mut().zip(p.iter_mut()).zip(&g) {
            *vi = cfg.momentum * *vi - lr * gi;
            *pi += *vi;
        }
        normalise_rows(&mut p, d);
        lr *= cfg.decay;
    }
    polish(&mut best_p, k, d, cfg.iterations, cfg.momentum);
    let (loss, mc) = nearest_neighbours(&best_p, k, d, &mut nearest);
    if mc <= best_mc {
        (best_mc, best_loss) = (mc, loss);
    }
    (best_mc, best_loss, best_p)
}

/// Second phase: projected descent with momentum on the smooth maximum
/// `(1/t) log sum_{i<j} exp(t p_i . p_j)` with `t` rising geometrically from 10 to 3000,
/// which evens out the largest cosines the subgradient phase leaves unequal. Keeps (in
/// `p`) the iterate with the smallest largest cosine.
fn polish(p: &mut [f64], k: usize, d: usize, iterations: usize, momentum: f64) {
    let mut nearest = vec![0usize; k];
    let (_, mut best_mc) = nearest_neighbours(p, k, d, &mut nearest);
    let mut best = p.to_vec();
    let mut x = p.to_vec();
    let mut v = vec![0.0; k * d];
    let mut g = vec![0.0; k * d];
    let mut dots = vec![0.0; k * k];
    for it in 0..iterations {
        let frac = it as f64 / iterations as f64;
        let t = 10.0 * 300f64.powf(frac);
        let lr = 0.01 * (1.0 - frac) + 1e-4;
        let mut m = f64::NEG_INFINITY;
        for i in 0..k {
            for j in i + 1..k {
                let dot: f64 = (0..d).map(|c| x[i * d + c] * x[j * d + c]).sum();
                dots[i * k + j] = dot;
                m = m.max(dot);
            }
        }
        g.iter_mut().for_each(|a| *a = 0.0);
        let mut z = 0.0;
        for i in 0..k {
            for j in i + 1..k {
                let w = (t * (dots[i * k + j] - m)).exp();
                z += w;
                for c in 0..d {
                    g[i * d + c] += w * x[j * d + c];
                    g[j * d + c] += w * x[i * d + c];
                }
            }
        }
        for ((vi, xi), gi) in v.iter_mut().zip(x.iter_mut()).zip(&g) {
            *vi = momentum * *vi - lr * gi / z;
            *xi += *vi;
        }
        normalise_rows(&mut x, d);
        let (_, mc) = nearest_neighbours(&x, k, d, &mut nearest);
        if mc < best_mc {
            best_mc = mc;
            best.copy_from_slice(&x);
        }
    }
    p.copy_from_slice(&best);
}

/// For each row its most similar other row; returns (loss, largest cosine).
fn nearest_neighbours(p: &[f64], k: usize, d: usize, nearest: &mut [usize]) -> (f64, f64) {
    let (mut sum, mut overall) = (0.0, f64::NEG_INFINITY);
    for i in 0..k {
        let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
        for j in 0..k {
            if j == i {
                continue;
            }
            let dot: f64 = (0..d).map(|c| p[i * d + c] * p[j * d + c]).sum();
            if dot > best {
                best = dot;
                arg = j;
            }
        }
        nearest[i] = arg;
        sum += best;
        overall = overall.max(best);
    }
    (sum / k as f64, overall.min(1.0))
}

fn normalise_rows(p: &mut [f64], d: usize) {
    for row in p.chunks_mut(d) {
        let n = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|x| *x /= n);
        } else {
            row[0] = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tetrahedron() {
        let p = place_prototypes(4, 3, &PlacementConfig::default()).unwrap();
        assert!((p.max_cosine + 1.0 / 3.0).abs() < 1e-3, "{}", p.max_cosine);
        assert!(p.warning.is_none());
        for k in 0..4 {
            let n: f64 = p.prototypes[k * 3..k * 3 + 3].iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn decagon() {
        let p = place_prototypes(10, 2, &PlacementConfig::default()).unwrap();
        let target = (2.0 * std::f64::consts::PI / 10.0).cos();
        assert!((p.max_cosine - target).abs() < 1e-3, "{}", p.max_cosine);
    }

    #[test]
    fn ten_in_five_dims_orthogonal_or_better() {
        let p = place_prototypes(10, 5, &PlacementConfig::default()).unwrap();
        assert!(p.max_cosine <= 1e-3, "{}", p.max_cosine);
    }

    #[test]
    fn antipodal_pair_and_single() {
        let p = place_prototypes(2, 5, &PlacementConfig::default()).unwrap();
        assert!((p.max_cosine + 1.0).abs() < 1e-9);
        let one = place_prototypes(1, 3, &PlacementConfig::default()).unwrap();
        assert_eq!(one.max_cosine, -1.0);
    }

    #[test]
    fn impossible_placement_warns_and_terminates() {
        let p = place_prototypes(5, 1, &PlacementConfig::default()).unwrap();
        assert!(p.warning.is_some());
        assert!(p.max_cosine <= 1.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        let cfg = PlacementConfig::default();
        assert!(place_prototypes(0, 3, &cfg).is_err());
        assert!(place_prototypes(3, 0, &cfg).is_err());
        let bad = PlacementConfig {
            momentum: 1.0,
            ..Default::default()
        };
        assert!(place_prototypes(3, 2, &bad).is_err());
    }

    #[test]
    fn seeded_and_deterministic() {
        let cfg = PlacementConfig::default();
        assert_eq!(
            place_prototypes(6, 3, &cfg).unwrap(),
            place_prototypes(6, 3, &cfg).unwrap()
        );
    }
}
