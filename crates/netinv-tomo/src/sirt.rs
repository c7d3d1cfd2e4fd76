//! SIRT, exactly as ASTRA's CPU `SIRT` algorithm.

use ndarray::{Array2, ArrayView2, Zip};
use netinv_core::{IterState, MaxIterations, Monitor, Termination};
use serde::{Deserialize, Serialize};

use crate::error::check_array;
use crate::{Error, LinearOperator, Result};

/// ASTRA's threshold below which a row or column sum counts as zero.
const WEIGHT_EPS: f64 = 1e-6;

/// Settings of [`Sirt`].
///
/// Defaults: 100 iterations, no box (`min = max = None`), relaxation 1 (ASTRA's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SirtConfig {
    /// Number of iterations (at least 1).
    pub iterations: usize,
    /// Lower bound applied after every update (ASTRA's `MinConstraint`).
    pub min: Option<f32>,
    /// Upper bound applied after every update (ASTRA's `MaxConstraint`).
    pub max: Option<f32>,
    /// Relaxation factor `lambda` (ASTRA's `Relaxation`), finite and > 0.
    pub relaxation: f32,
}

impl Default for SirtConfig {
    fn default() -> Self {
        Self {
            iterations: 100,
            min: None,
            max: None,
            relaxation: 1.0,
        }
    }
}

impl SirtConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `iterations` is 0, a bound is not finite, `min > max`,
    /// or `relaxation` is not finite and positive.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.iterations == 0 {
            return bad("iterations", "must be at least 1".into());
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
        if !(self.relaxation.is_finite() && self.relaxation > 0.0) {
            return bad(
                "relaxation",
                format!("must be finite and > 0, got {}", self.relaxation),
            );
        }
        Ok(())
    }
}

/// The result of an iterative reconstruction: the image and the final iteration state.
#[derive(Debug, Clone)]
pub struct Reconstruction {
    /// The reconstructed image `[rows, cols]`.
    pub image: Array2<f32>,
    /// The final state (iterations done, last cost, why the run ended).
    pub state: IterState,
}

/// The Simultaneous Iterative Reconstruction Technique, exactly as ASTRA's CPU `SIRT`:
///
/// ```text
/// x <- clip(x + lambda * C A^T R (b - A x), min, max)
/// R = 1 / (A 1)   (row sums),   C = 1 / (A^T 1)   (column sums);   1 / s := 0 if |s| <= 1e-6
/// ```
///
/// starting from zero or a given image. The cost reported to the [`Monitor`] after
/// iteration `k` is `0.5 ||b - A x_{k-1}||^2`, the residual computed by that iteration
/// (free of charge); iterations stop after `iterations` or when a stop rule fires.
///
/// Any [`LinearOperator`] serves. For many iterations on a problem whose matrix fits in
/// memory, a [`CsrOperator`](crate::CsrOperator) built from the [`RayTransform`](crate::RayTransform)
/// gives the same result about twice as fast as the on-the-fly projector (docs/performance.md).
///
/// Reference: Gregor and Benson, "Computational analysis and improvement of SIRT", IEEE
/// TMI 27(7), 2008; van Aarle et al., "The ASTRA Toolbox", Ultramicroscopy 157, 2015.
///
/// # Examples
/// ```
/// use netinv_tomo::{shepp_logan, LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig};
/// let op = RayTransform::new(ParallelBeam2d::uniform(32, 32, 45, 46, 1.0).unwrap()).unwrap();
/// let truth = shepp_logan(32, 32).unwrap();
/// let sino = op.apply(truth.view());
/// let cfg = SirtConfig { iterations: 200, min: Some(0.0), max: Some(1.0), ..Default::default() };
/// let rec = Sirt::new(cfg).unwrap().reconstruct(&op, sino.view()).unwrap();
/// assert_eq!(rec.state.iteration, 200);
/// let err: f32 = (&rec.image - &truth).mapv(|v| v * v).sum().sqrt();
/// assert!(err / truth.mapv(|v| v * v).sum().sqrt() < 0.3);
/// ```
#[derive(Debug, Clone)]
pub struct Sirt {
    config: SirtConfig,
}

impl Sirt {
    /// A SIRT solver with a checked configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`SirtConfig::validate`].
    pub fn new(config: SirtConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &SirtConfig {
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

    /// Reconstructs from `sinogram`, starting from `initial` (or zero), reporting to
    /// `monitor` after every iteration.
    ///
    /// # Errors
    /// As [`Sirt::reconstruct`], plus [`Error::Shape`] / [`Error::NonFinite`] for
    /// `initial`, and [`Error::Core`] if an observer fails.
    pub fn reconstruct_with<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinogram: ArrayView2<f32>,
        initial: Option<ArrayView2<f32>>,
        monitor: &mut Monitor<'_, Array2<f32>>,
    ) -> Result<Reconstruction> {
        check_array("sinogram", op.range_shape(), sinogram)?;
        let mut x = match initial {
            Some(init) => {
                check_array("initial image", op.domain_shape(), init)?;
                init.to_owned()
            }
            None => Array2::zeros(op.domain_shape()),
        };
        let (row_w, col_w) = sirt_weights(op, self.config.relaxation);
        let mut residual = Array2::<f32>::zeros(op.range_shape());
        let mut update = Array2::<f32>::zeros(op.domain_shape());
        let mut state = IterState::new(self.config.iterations);
        let mut budget = MaxIterations(self.config.iterations);
        let (lo, hi) = (self.config.min, self.config.max);
        let reason = loop {
            op.apply_into(x.view(), residual.view_mut());
            let mut cost = 0.0f64;
            Zip::from(&mut residual)
                .and(&sinogram)
                .and(&row_w)
                .for_each(|r, &b, &w| {
                    let d = b - *r;
                    cost += (d as f64) * (d as f64);
                    *r = d * w;
                });
            op.adjoint_into(residual.view(), update.view_mut());
            Zip::from(&mut x)
                .and(&update)
                .and(&col_w)
                .for_each(|x, &u, &w| {
                    let mut v = *x + u * w;
                    if let Some(lo) = lo {
                        v = v.max(lo);
                    }
                    if let Some(hi) = hi {
                        v = v.min(hi);
                    }
                    *x = v;
                });
            state.advance(Some(0.5 * cost));
            if let Some(reason) = monitor.after_iteration(&state, &x)? {
                break reason;
            }
            if let Some(reason) = netinv_core::StopRule::check(&mut budget, &state) {
                break reason;
            }
        };
        finish(monitor, &mut state, reason, &x)?;
        Ok(Reconstruction { image: x, state })
    }
}

pub(crate) fn finish(
    monitor: &mut Monitor<'_, Array2<f32>>,
    state: &mut IterState,
    reason: Termination,
    x: &Array2<f32>,
) -> Result<()> {
    monitor.finish(state, reason, x)?;
    Ok(())
}

/// SIRT's weights: `R = 1 / (A 1)` and `C = lambda / (A^T 1)`, 0 where a sum is ~0.
pub(crate) fn sirt_weights<O: LinearOperator + ?Sized>(
    op: &O,
    relaxation: f32,
) -> (Array2<f32>, Array2<f32>) {
    let inv = |s: f32| {
        if (s as f64).abs() > WEIGHT_EPS {
            1.0 / s
        } else {
            0.0
        }
    };
    let row = op
        .apply(Array2::from_elem(op.domain_shape(), 1.0f32).view())
        .mapv(inv);
    let col = op
        .adjoint(Array2::from_elem(op.range_shape(), 1.0f32).view())
        .mapv(|s| relaxation * inv(s));
    (row, col)
}
