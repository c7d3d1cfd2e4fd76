//! SIRT, exactly as ASTRA's CPU `SIRT` algorithm.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use netinv_core::{IterState, MaxIterations, Monitor, StopRule};
use serde::{Deserialize, Serialize};

use crate::batch::{
    flat, flat_mut, run_one, run_quiet, stack_images, BatchProgress, Observe, Stopped,
};
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
        let x = match initial {
            Some(init) => {
                check_array("initial image", op.domain_shape(), init)?;
                init.to_owned()
            }
            None => Array2::zeros(op.domain_shape()),
        };
        run_one(sinogram, x, monitor, |b, x, observe| {
            self.run(op, b, x, observe)
        })
    }

    /// Reconstructs every sinogram of a batch, from `initial` (one image per sinogram) or
    /// zero: the same result for each as [`reconstruct_with`](Self::reconstruct_with)
    /// (bit for bit with a [`CsrOperator`](crate::CsrOperator)), with one batched forward
    /// and adjoint projection per iteration and the weights computed once.
    ///
    /// # Errors
    /// [`Error::Shape`] if `sinograms` is empty, if `initial` has another length, or if an
    /// array does not match the operator; [`Error::NonFinite`] for NaN or infinities.
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{shepp_logan, CsrOperator, LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig};
    /// let ray = RayTransform::new(ParallelBeam2d::uniform(16, 16, 8, 24, 1.0).unwrap()).unwrap();
    /// let op = CsrOperator::new(&ray);
    /// let truth = shepp_logan(16, 16).unwrap();
    /// let sinograms = [op.apply(truth.view()), op.apply(truth.t().view())];
    /// let views: Vec<_> = sinograms.iter().map(|s| s.view()).collect();
    /// let sirt = Sirt::new(SirtConfig { iterations: 20, ..Default::default() }).unwrap();
    /// let batch = sirt.reconstruct_batch(&op, &views, None).unwrap();
    /// assert_eq!(batch[1].image, sirt.reconstruct(&op, views[1]).unwrap().image);
    /// ```
    pub fn reconstruct_batch<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinograms: &[ArrayView2<f32>],
        initial: Option<&[ArrayView2<f32>]>,
    ) -> Result<Vec<Reconstruction>> {
        for b in sinograms {
            check_array("sinogram", op.range_shape(), *b)?;
        }
        let batch = stack_images(sinograms)?;
        let (rows, cols) = op.domain_shape();
        let x = match initial {
            Some(init) => {
                if init.len() != sinograms.len() {
                    return Err(Error::Shape {
                        what: "initial images",
                        expected: format!("{} (one per sinogram)", sinograms.len()),
                        got: init.len().to_string(),
                    });
                }
                for x in init {
                    check_array("initial image", (rows, cols), *x)?;
                }
                stack_images(init)?
            }
            None => Array3::zeros((rows, cols, sinograms.len())),
        };
        run_quiet(|observe| self.run(op, batch.view(), x, observe))
    }

    /// The iterations on a batch: `sinograms` `[angles, detectors, batch]`, `x` the
    /// initial images `[rows, cols, batch]` in standard layout; `observe` as in
    /// [`BatchProgress::end_iteration`].
    fn run<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinograms: ArrayView3<f32>,
        mut x: Array3<f32>,
        observe: &mut Observe<'_>,
    ) -> Result<Vec<Stopped>> {
        let batch = x.dim().2;
        let sinograms = sinograms.as_standard_layout();
        let (row_w, col_w) = sirt_weights(op, self.config.relaxation);
        let (row_w, col_w) = (row_w.as_standard_layout(), col_w.as_standard_layout());
        let mut residual = Array3::<f32>::zeros(sinograms.dim());
        let mut update = Array3::<f32>::zeros(x.dim());
        let mut progress = BatchProgress::new(batch, self.config.iterations);
        let mut budget = MaxIterations(self.config.iterations);
        let (lo, hi) = (self.config.min, self.config.max);
        while progress.running() {
            op.apply_batch_into(x.view(), residual.view_mut());
            let mut cost = vec![0.0f64; batch];
            let rays = flat_mut(&mut residual)
                .chunks_exact_mut(batch)
                .zip(sinograms.as_slice().unwrap_or(&[]).chunks_exact(batch))
                .zip(row_w.as_slice().unwrap_or(&[]));
            for ((r, b), &w) in rays {
                for k in 0..batch {
                    let d = b[k] - r[k];
                    cost[k] += (d as f64) * (d as f64);
                    r[k] = d * w;
                }
            }
            op.adjoint_batch_into(residual.view(), update.view_mut());
            let pixels = flat_mut(&mut x)
                .chunks_exact_mut(batch)
                .zip(flat(&update).chunks_exact(batch))
                .zip(col_w.as_slice().unwrap_or(&[]));
            for ((x, u), &w) in pixels {
                for (x, &u) in x.iter_mut().zip(u) {
                    let mut v = *x + u * w;
                    if let Some(lo) = lo {
                        v = v.max(lo);
                    }
                    if let Some(hi) = hi {
                        v = v.min(hi);
                    }
                    *x = v;
                }
            }
            let cost: Vec<f64> = cost.iter().map(|c| 0.5 * c).collect();
            progress.end_iteration(x.view(), &cost, None, observe, |_, state| {
                budget.check(state)
            })?;
        }
        Ok(progress.finish())
    }
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
