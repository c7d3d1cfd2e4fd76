//! TV-regularised and box-constrained least squares by the primal-dual hybrid gradient
//! method (Chambolle-Pock).

use ndarray::{Array2, ArrayView2, Zip};
use netinv_core::{IterState, MaxIterations, Monitor, StopRule, Termination};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::check_array;
use crate::sirt::{finish, Reconstruction};
use crate::{Error, LinearOperator, Result};

/// Settings of [`TvPdhg`].
///
/// Defaults: `weight` 0.01, 1000 iterations, no box, no relative-change stop, step ratio
/// 1, 50 power iterations, seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TvConfig {
    /// TV weight `lambda >= 0`; 0 gives (box-constrained) least squares. Its scale is
    /// that of the data term (line integrals in pixel units): 0.01 suits a Shepp-Logan
    /// phantom in [0, 1] with noiseless data; noisy data need more.
    pub weight: f32,
    /// Maximum number of iterations (at least 1).
    pub iterations: usize,
    /// Lower bound of the box constraint.
    pub min: Option<f32>,
    /// Upper bound of the box constraint.
    pub max: Option<f32>,
    /// Stop once `||x_k - x_{k-1}|| <= relative_change * ||x_k||` (`None`: run all
    /// iterations).
    pub relative_change: Option<f64>,
    /// Balance of the step sizes, `tau = ratio / L`, `sigma = 1 / (ratio L)` with `L` the
    /// estimated norm of `K = [A; grad]`; finite and > 0.
    pub step_ratio: f64,
    /// Power iterations for the operator-norm estimate (at least 1).
    pub power_iterations: usize,
    /// Seed of the power iteration's random start.
    pub seed: u64,
}

impl Default for TvConfig {
    fn default() -> Self {
        Self {
            weight: 0.01,
            iterations: 1000,
            min: None,
            max: None,
            relative_change: None,
            step_ratio: 1.0,
            power_iterations: 50,
            seed: 0,
        }
    }
}

impl TvConfig {
    /// Box-constrained least squares (`weight = 0`) with `iterations` iterations and the
    /// box `[min, max]`; the other fields keep their defaults.
    pub fn least_squares(iterations: usize, min: Option<f32>, max: Option<f32>) -> Self {
        Self {
            weight: 0.0,
            iterations,
            min,
            max,
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `weight` is negative or not finite, `iterations` or
    /// `power_iterations` is 0, a bound is not finite, `min > max`, `relative_change` is
    /// not finite and >= 0, or `step_ratio` is not finite and > 0.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(Error::InvalidConfig { field, reason });
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return bad(
                "weight",
                format!("must be finite and >= 0, got {}", self.weight),
            );
        }
        if self.iterations == 0 {
            return bad("iterations", "must be at least 1".into());
        }
        if self.power_iterations == 0 {
            return bad("power_iterations", "must be at least 1".into());
        }
        for (field, v) in [("min", self.min), ("max", self.max)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return bad(field, format!("must be finite, got {v:?}"));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max) {
            if lo > hi {
                return bad("min", format!("min ({lo}) > max ({hi})"));
            }
        }
        if let Some(t) = self.relative_change {
            if !(t.is_finite() && t >= 0.0) {
                return bad(
                    "relative_change",
                    format!("must be finite and >= 0, got {t}"),
                );
            }
        }
        if !(self.step_ratio.is_finite() && self.step_ratio > 0.0) {
            return bad(
                "step_ratio",
                format!("must be finite and > 0, got {}", self.step_ratio),
            );
        }
        Ok(())
    }
}

/// Forward-difference gradient with a zero difference at the last row / column:
/// `gy[r, c] = x[r+1, c] - x[r, c]`, `gx[r, c] = x[r, c+1] - x[r, c]`.
fn gradient(x: &Array2<f32>, gy: &mut Array2<f32>, gx: &mut Array2<f32>) {
    let (rows, cols) = x.dim();
    for r in 0..rows {
        for c in 0..cols {
            let v = x[[r, c]];
            gy[[r, c]] = if r + 1 < rows { x[[r + 1, c]] - v } else { 0.0 };
            gx[[r, c]] = if c + 1 < cols { x[[r, c + 1]] - v } else { 0.0 };
        }
    }
}

/// The adjoint of [`gradient`] (minus the divergence): `out = grad^T (gy, gx)`.
fn gradient_adjoint(gy: &Array2<f32>, gx: &Array2<f32>, out: &mut Array2<f32>) {
    let (rows, cols) = out.dim();
    for r in 0..rows {
        for c in 0..cols {
            let mut v = 0.0;
            if r + 1 < rows {
                v -= gy[[r, c]];
            }
            if r > 0 {
                v += gy[[r - 1, c]];
            }
            if c + 1 < cols {
                v -= gx[[r, c]];
            }
            if c > 0 {
                v += gx[[r, c - 1]];
            }
            out[[r, c]] = v;
        }
    }
}

/// Isotropic total variation `sum_{r,c} sqrt(gy^2 + gx^2)` (forward differences).
///
/// # Examples
/// ```
/// use netinv_tomo::{ndarray::array, total_variation};
/// assert_eq!(total_variation(array![[0.0f32, 1.0], [0.0, 1.0]].view()), 2.0);
/// ```
pub fn total_variation(x: ArrayView2<f32>) -> f64 {
    let (rows, cols) = x.dim();
    let mut tv = 0.0f64;
    for r in 0..rows {
        for c in 0..cols {
            let v = x[[r, c]] as f64;
            let dy = if r + 1 < rows {
                x[[r + 1, c]] as f64 - v
            } else {
                0.0
            };
            let dx = if c + 1 < cols {
                x[[r, c + 1]] as f64 - v
            } else {
                0.0
            };
            tv += (dy * dy + dx * dx).sqrt();
        }
    }
    tv
}

fn norm2(a: &Array2<f32>) -> f64 {
    a.iter().map(|&v| (v as f64) * (v as f64)).sum()
}

/// Estimates `||K||` for `K = [A; grad]` (or `K = A` without `with_gradient`) by power
/// iteration on `K^T K` from a seeded Gaussian start; returns the estimate (a lower bound
/// that converges from below).
///
/// # Examples
/// ```
/// use netinv_tomo::{operator_norm, ParallelBeam2d, RayTransform};
/// let op = RayTransform::new(ParallelBeam2d::uniform(16, 16, 8, 16, 1.0).unwrap()).unwrap();
/// let l = operator_norm(&op, false, 100, 0);
/// // ||A||^2 >= ||A 1||^2 / ||1||^2: every ray through the image has length about 16.
/// assert!(l > 10.0 && l < 40.0);
/// ```
pub fn operator_norm<O: LinearOperator + ?Sized>(
    op: &O,
    with_gradient: bool,
    iterations: usize,
    seed: u64,
) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let shape = op.domain_shape();
    let mut v = Array2::from_shape_fn(shape, |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z as f32
    });
    let mut av = Array2::zeros(op.range_shape());
    let mut w = Array2::zeros(shape);
    let (mut gy, mut gx, mut gt) = (
        Array2::zeros(shape),
        Array2::zeros(shape),
        Array2::zeros(shape),
    );
    let mut estimate = 0.0;
    for _ in 0..iterations.max(1) {
        let n = norm2(&v).sqrt();
        if n == 0.0 {
            break;
        }
        v.mapv_inplace(|x| (x as f64 / n) as f32);
        op.apply_into(v.view(), av.view_mut());
        op.adjoint_into(av.view(), w.view_mut());
        if with_gradient {
            gradient(&v, &mut gy, &mut gx);
            gradient_adjoint(&gy, &gx, &mut gt);
            w += &gt;
        }
        estimate = norm2(&w).sqrt().sqrt();
        std::mem::swap(&mut v, &mut w);
    }
    estimate
}

/// TV-regularised least squares with a box constraint, by the primal-dual hybrid gradient
/// method of Chambolle and Pock (their Algorithm 1, `theta = 1`):
///
/// ```text
/// minimise   0.5 ||A x - b||^2 + lambda TV(x)   subject to   min <= x <= max
/// K = [A; grad],  L ~ ||K|| (power iteration, +5 %),  tau = ratio / L,  sigma = 1 / (ratio L)
/// p <- (p + sigma (A xb - b)) / (1 + sigma)
/// q <- q + sigma grad xb, projected pixelwise onto { |q| <= lambda }
/// x' <- clip(x - tau (A^T p + grad^T q), min, max);   xb <- 2 x' - x;   x <- x'
/// ```
///
/// TV is isotropic with forward differences. With `lambda = 0` it is exactly PDHG for
/// box-constrained least squares (the gradient then drops out of `K`). The cost reported
/// to the [`Monitor`] is the objective at the new iterate; the metric `relative_change`
/// is `||x' - x|| / ||x'||`. One forward and one adjoint projection per iteration.
///
/// Reference: A. Chambolle and T. Pock, "A first-order primal-dual algorithm for convex
/// problems with applications to imaging", J. Math. Imaging Vis. 40, 2011; E. Y. Sidky,
/// J. H. Jorgensen, X. Pan, "Convex optimization problem prototyping for image
/// reconstruction in computed tomography with the Chambolle-Pock algorithm", Phys. Med.
/// Biol. 57, 2012.
///
/// # Examples
/// ```
/// use netinv_tomo::{shepp_logan, LinearOperator, ParallelBeam2d, RayTransform, TvConfig, TvPdhg};
/// let op = RayTransform::new(ParallelBeam2d::uniform(32, 32, 16, 46, 1.0).unwrap()).unwrap();
/// let truth = shepp_logan(32, 32).unwrap();
/// let sino = op.apply(truth.view());
/// let cfg = TvConfig { weight: 0.01, iterations: 300, min: Some(0.0), max: Some(1.0), ..Default::default() };
/// let rec = TvPdhg::new(cfg).unwrap().reconstruct(&op, sino.view()).unwrap();
/// let err: f32 = (&rec.image - &truth).mapv(|v| v * v).sum().sqrt();
/// assert!(err / truth.mapv(|v| v * v).sum().sqrt() < 0.3);
/// ```
#[derive(Debug, Clone)]
pub struct TvPdhg {
    config: TvConfig,
}

impl TvPdhg {
    /// A solver with a checked configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`TvConfig::validate`].
    pub fn new(config: TvConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &TvConfig {
        &self.config
    }

    /// Reconstructs from `sinogram` (`op.range_shape()`), starting from zero.
    ///
    /// # Errors
    /// [`Error::Shape`] if the sinogram does not match the operator, [`Error::NonFinite`]
    /// if it contains NaN or infinities.
    pub fn reconstruct<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinogram: ArrayView2<f32>,
    ) -> Result<Reconstruction> {
        self.reconstruct_with(op, sinogram, None, &mut Monitor::new())
    }

    /// Reconstructs from `sinogram`, starting from `initial` (or zero, clipped to the
    /// box), reporting to `monitor` after every iteration.
    ///
    /// # Errors
    /// As [`TvPdhg::reconstruct`], plus [`Error::Shape`] / [`Error::NonFinite`] for
    /// `initial`, and [`Error::Core`] if an observer fails.
    pub fn reconstruct_with<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinogram: ArrayView2<f32>,
        initial: Option<ArrayView2<f32>>,
        monitor: &mut Monitor<'_, Array2<f32>>,
    ) -> Result<Reconstruction> {
        check_array("sinogram", op.range_shape(), sinogram)?;
        let cfg = &self.config;
        let (lo, hi) = (cfg.min, cfg.max);
        let clip = |v: f32| {
            let v = lo.map_or(v, |lo| v.max(lo));
            hi.map_or(v, |hi| v.min(hi))
        };
        let shape = op.domain_shape();
        let mut x = match initial {
            Some(init) => {
                check_array("initial image", shape, init)?;
                init.mapv(clip)
            }
            None => Array2::from_elem(shape, clip(0.0)),
        };
        let use_tv = cfg.weight > 0.0;
        let lambda = cfg.weight;
        let l = 1.05 * operator_norm(op, use_tv, cfg.power_iterations, cfg.seed);
        let l = if l > 0.0 { l } else { 1.0 };
        let tau = (cfg.step_ratio / l) as f32;
        let sigma = (1.0 / (cfg.step_ratio * l)) as f32;

        let mut ax = op.apply(x.view());
        let mut ax_bar = ax.clone();
        let mut x_bar = x.clone();
        let mut p = Array2::<f32>::zeros(op.range_shape());
        let (mut qy, mut qx) = (Array2::<f32>::zeros(shape), Array2::<f32>::zeros(shape));
        let (mut gy, mut gx) = (Array2::<f32>::zeros(shape), Array2::<f32>::zeros(shape));
        let mut atp = Array2::<f32>::zeros(shape);
        let mut gtq = Array2::<f32>::zeros(shape);
        let mut x_new = Array2::<f32>::zeros(shape);
        let mut ax_new = Array2::<f32>::zeros(op.range_shape());

        let mut state = IterState::new(cfg.iterations);
        let mut budget = MaxIterations(cfg.iterations);
        let reason =
            loop {
                // Dual steps.
                Zip::from(&mut p)
                    .and(&ax_bar)
                    .and(&sinogram)
                    .for_each(|p, &a, &b| *p = (*p + sigma * (a - b)) / (1.0 + sigma));
                if use_tv {
                    gradient(&x_bar, &mut gy, &mut gx);
                    Zip::from(&mut qy).and(&mut qx).and(&gy).and(&gx).for_each(
                        |qy, qx, &gy, &gx| {
                            let (y, x) = (*qy + sigma * gy, *qx + sigma * gx);
                            let n = ((y as f64).powi(2) + (x as f64).powi(2)).sqrt() as f32;
                            let s = if n > lambda { lambda / n } else { 1.0 };
                            *qy = y * s;
                            *qx = x * s;
                        },
                    );
                    gradient_adjoint(&qy, &qx, &mut gtq);
                }
                // Primal step.
                op.adjoint_into(p.view(), atp.view_mut());
                Zip::from(&mut x_new)
                    .and(&x)
                    .and(&atp)
                    .and(&gtq)
                    .for_each(|xn, &x, &a, &g| *xn = clip(x - tau * (a + g)));
                op.apply_into(x_new.view(), ax_new.view_mut());
                // Extrapolation and bookkeeping.
                let mut diff = 0.0f64;
                let mut size = 0.0f64;
                Zip::from(&mut x_bar)
                    .and(&x_new)
                    .and(&x)
                    .for_each(|xb, &xn, &x| {
                        *xb = 2.0 * xn - x;
                        diff += ((xn - x) as f64).powi(2);
                        size += (xn as f64).powi(2);
                    });
                let mut data = 0.0f64;
                Zip::from(&mut ax_bar)
                    .and(&ax_new)
                    .and(&ax)
                    .and(&sinogram)
                    .for_each(|ab, &an, &a, &b| {
                        *ab = 2.0 * an - a;
                        data += ((an - b) as f64).powi(2);
                    });
                std::mem::swap(&mut x, &mut x_new);
                std::mem::swap(&mut ax, &mut ax_new);
                let tv = if use_tv {
                    total_variation(x.view())
                } else {
                    0.0
                };
                let change = diff.sqrt() / size.sqrt().max(f64::MIN_POSITIVE);
                state.advance(Some(0.5 * data + lambda as f64 * tv));
                state.set_metric("relative_change", change);
                if let Some(reason) = monitor.after_iteration(&state, &x)? {
                    break reason;
                }
                if cfg.relative_change.is_some_and(|t| change <= t) {
                    break Termination::Converged;
                }
                if let Some(reason) = budget.check(&state) {
                    break reason;
                }
            };
        finish(monitor, &mut state, reason, &x)?;
        Ok(Reconstruction { image: x, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_adjoint_is_transpose() {
        let shape = (5, 7);
        let x = Array2::from_shape_fn(shape, |(r, c)| ((r * 7 + c) as f32 * 0.37).sin());
        let py = Array2::from_shape_fn(shape, |(r, c)| ((r + 2 * c) as f32 * 0.91).cos());
        let px = Array2::from_shape_fn(shape, |(r, c)| ((3 * r + c) as f32 * 0.23).sin());
        let (mut gy, mut gx, mut gt) = (
            Array2::zeros(shape),
            Array2::zeros(shape),
            Array2::zeros(shape),
        );
        gradient(&x, &mut gy, &mut gx);
        gradient_adjoint(&py, &px, &mut gt);
        let lhs: f64 = (&gy * &py + &gx * &px).iter().map(|&v| v as f64).sum();
        let rhs: f64 = (&x * &gt).iter().map(|&v| v as f64).sum();
        assert!(
            (lhs - rhs).abs() < 1e-5 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    #[test]
    fn config_rules() {
        assert!(TvConfig::default().validate().is_ok());
        let bad = [
            TvConfig {
                weight: -1.0,
                ..Default::default()
            },
            TvConfig {
                weight: f32::NAN,
                ..Default::default()
            },
            TvConfig {
                iterations: 0,
                ..Default::default()
            },
            TvConfig {
                power_iterations: 0,
                ..Default::default()
            },
            TvConfig {
                min: Some(1.0),
                max: Some(0.0),
                ..Default::default()
            },
            TvConfig {
                min: Some(f32::NAN),
                ..Default::default()
            },
            TvConfig {
                relative_change: Some(-1.0),
                ..Default::default()
            },
            TvConfig {
                step_ratio: 0.0,
                ..Default::default()
            },
        ];
        for cfg in bad {
            assert!(matches!(TvPdhg::new(cfg), Err(Error::InvalidConfig { .. })));
        }
    }
}
