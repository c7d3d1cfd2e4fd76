//! SIRT, exactly as ASTRA's CPU `SIRT` algorithm.

use std::borrow::Cow;

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use netinv_core::{IterState, Monitor};
use serde::{Deserialize, Serialize};

use crate::batch::{flat, flat_mut, stack_images, stack_initial};
use crate::error::check_array;
use crate::run::sealed::Sealed;
use crate::run::{run_monitored, run_quiet, standard, BatchRun, BatchStep, StepReport};
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
/// Any [`LinearOperator`] serves. The on-the-fly [`RayTransform`](crate::RayTransform) is the
/// default choice at every size (docs/performance.md: 0.28-0.32x ASTRA's CPU time per
/// iteration at 1 thread, memory O(image + sinogram)); a [`CsrOperator`](crate::CsrOperator)
/// pays only for small images used many times (e.g. batches of digits), and
/// [`AutoOperator`](crate::AutoOperator) picks it below a memory budget.
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

    /// SIRT's weights `R = 1 / (A 1)` and `C = relaxation / (A^T 1)` for `op`, to share
    /// between runs ([`start_prepared`](Self::start_prepared)).
    pub fn weights<O: LinearOperator + ?Sized>(&self, op: &O) -> SirtWeights {
        SirtWeights::compute(op, self.config.relaxation)
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
    /// `monitor` after every iteration: [`start`](Self::start), then
    /// [`BatchRun::step_with`] until the monitor or the iteration budget stops the run.
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
        run_monitored(self.start(op, sinogram, initial)?, monitor)
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
        run_quiet(self.start_batch(op, sinograms, initial)?)
    }

    /// A run on one image, ready to [`step`](BatchRun::step): checks the data, computes the
    /// weights, and starts from `initial` (or zero). The run is a batch of one image
    /// (image 0 of [`BatchRun::image`]).
    ///
    /// # Errors
    /// As [`reconstruct_with`](Self::reconstruct_with).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{shepp_logan, LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(16, 16, 12, 24, 1.0).unwrap()).unwrap();
    /// let sino = op.apply(shepp_logan(16, 16).unwrap().view());
    /// let sirt = Sirt::new(SirtConfig { iterations: 10, min: Some(0.0), ..Default::default() }).unwrap();
    /// let mut run = sirt.start(&op, sino.view(), None).unwrap();
    /// for _ in 0..4 {
    ///     run.step().unwrap();
    /// }
    /// run.image_mut(0).mapv_inplace(|v| v.min(0.5)); // any outside change between steps
    /// while run.running() {
    ///     run.step().unwrap();
    /// }
    /// let rec = run.finish().remove(0);
    /// assert_eq!(rec.state.iteration, 10);
    /// ```
    pub fn start<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        sinogram: ArrayView2<f32>,
        initial: Option<ArrayView2<f32>>,
    ) -> Result<SirtRun<'a, O>> {
        op.check_range_array(sinogram)?;
        let x = self.single_start(op, initial)?;
        let weights = Cow::Owned(self.weights(op));
        self.start_stacked(op, weights, sinogram.insert_axis(Axis(2)), x)
    }

    /// [`start`](Self::start) with weights computed before
    /// ([`weights`](Self::weights)), for many runs on one operator.
    ///
    /// # Errors
    /// As [`start`](Self::start), plus [`Error::InvalidConfig`] if `weights` were
    /// computed for another operator shape or relaxation.
    pub fn start_prepared<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        weights: &'a SirtWeights,
        sinogram: ArrayView2<f32>,
        initial: Option<ArrayView2<f32>>,
    ) -> Result<SirtRun<'a, O>> {
        op.check_range_array(sinogram)?;
        let x = self.single_start(op, initial)?;
        self.check_weights(op, weights)?;
        let weights = Cow::Borrowed(weights);
        self.start_stacked(op, weights, sinogram.insert_axis(Axis(2)), x)
    }

    /// A run on a batch of sinograms, from `initial` (one image per sinogram) or zero, as
    /// in [`reconstruct_batch`](Self::reconstruct_batch); image `k` of the run belongs to
    /// `sinograms[k]`.
    ///
    /// # Errors
    /// As [`reconstruct_batch`](Self::reconstruct_batch).
    pub fn start_batch<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        sinograms: &[ArrayView2<f32>],
        initial: Option<&[ArrayView2<f32>]>,
    ) -> Result<SirtRun<'a, O>> {
        let (b, x) = self.batch_start(op, sinograms, initial)?;
        let weights = Cow::Owned(self.weights(op));
        self.start_stacked(op, weights, b.view(), x)
    }

    /// [`start_batch`](Self::start_batch) with weights computed before.
    ///
    /// # Errors
    /// As [`start_batch`](Self::start_batch), plus [`Error::InvalidConfig`] if `weights`
    /// were computed for another operator shape or relaxation.
    pub fn start_batch_prepared<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        weights: &'a SirtWeights,
        sinograms: &[ArrayView2<f32>],
        initial: Option<&[ArrayView2<f32>]>,
    ) -> Result<SirtRun<'a, O>> {
        let (b, x) = self.batch_start(op, sinograms, initial)?;
        self.check_weights(op, weights)?;
        self.start_stacked(op, Cow::Borrowed(weights), b.view(), x)
    }

    /// The checked initial image of a one-image run, `[rows, cols, 1]`.
    fn single_start<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        initial: Option<ArrayView2<f32>>,
    ) -> Result<Array3<f32>> {
        let x = match initial {
            Some(init) => {
                check_array("initial image", op.domain_shape(), init)?;
                init.to_owned()
            }
            None => Array2::zeros(op.domain_shape()),
        };
        Ok(x.insert_axis(Axis(2)))
    }

    /// The checked and stacked sinograms and initial images of a batch run.
    fn batch_start<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinograms: &[ArrayView2<f32>],
        initial: Option<&[ArrayView2<f32>]>,
    ) -> Result<(Array3<f32>, Array3<f32>)> {
        for b in sinograms {
            op.check_range_array(*b)?;
        }
        let batch = stack_images(sinograms)?;
        let (rows, cols) = op.domain_shape();
        let x = match initial {
            Some(init) => stack_initial(init, sinograms.len(), (rows, cols))?,
            None => Array3::zeros((rows, cols, sinograms.len())),
        };
        Ok((batch, x))
    }

    /// Checks that `weights` fit `op` and this configuration's relaxation.
    fn check_weights<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        weights: &SirtWeights,
    ) -> Result<()> {
        let fits = weights.row.dim() == op.range_shape()
            && weights.col.dim() == op.domain_shape()
            && weights.relaxation.to_bits() == self.config.relaxation.to_bits();
        if fits {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                field: "weights",
                reason: format!(
                    "computed for range {:?}, domain {:?}, relaxation {}; this run has {:?}, {:?}, {}",
                    weights.row.dim(),
                    weights.col.dim(),
                    weights.relaxation,
                    op.range_shape(),
                    op.domain_shape(),
                    self.config.relaxation
                ),
            })
        }
    }

    /// A run from checked data: `sinograms` `[angles, detectors, batch]`, `x` the initial
    /// images `[rows, cols, batch]`.
    fn start_stacked<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        weights: Cow<'a, SirtWeights>,
        sinograms: ArrayView3<f32>,
        x: Array3<f32>,
    ) -> Result<SirtRun<'a, O>> {
        let sinograms = sinograms.as_standard_layout().into_owned();
        let state = SirtState {
            op,
            weights,
            bounds: (self.config.min, self.config.max),
            residual: Array3::zeros(sinograms.dim()),
            update: Array3::zeros(x.dim()),
            sinograms,
        };
        Ok(BatchRun::new(state, standard(x), self.config.iterations))
    }
}

/// SIRT's weights for one operator and relaxation: `R = 1 / (A 1)` (one per ray) and
/// `C = lambda / (A^T 1)` (one per pixel), 0 where a sum is ~0 (`|s| <= 1e-6`, ASTRA's
/// rule). Computing them costs one forward and one adjoint projection; a caller that runs
/// SIRT many times on one operator computes them once ([`Sirt::weights`]) and starts every
/// run from them ([`Sirt::start_prepared`], [`Sirt::start_batch_prepared`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SirtWeights {
    row: Array2<f32>,
    col: Array2<f32>,
    relaxation: f32,
}

impl SirtWeights {
    /// The weights of `op` with relaxation `lambda` (not checked: [`Sirt::weights`] uses
    /// the checked one of its configuration).
    fn compute<O: LinearOperator + ?Sized>(op: &O, relaxation: f32) -> Self {
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
        Self {
            row: row.as_standard_layout().into_owned(),
            col: col.as_standard_layout().into_owned(),
            relaxation,
        }
    }

    /// The ray weights `R = 1 / (A 1)`, `[angles, detectors]`.
    pub fn rays(&self) -> ArrayView2<'_, f32> {
        self.row.view()
    }

    /// The pixel weights `C = lambda / (A^T 1)`, `[rows, cols]`.
    pub fn pixels(&self) -> ArrayView2<'_, f32> {
        self.col.view()
    }

    /// The relaxation `lambda` included in the pixel weights.
    pub fn relaxation(&self) -> f32 {
        self.relaxation
    }
}

/// A SIRT run in progress on a batch of images (one image for [`Sirt::start`]): a
/// [`BatchRun`] of [`SirtState`] (the weights, the checked sinograms and the buffers of an
/// iteration), with the current images and every image's own [`IterState`] and stop.
///
/// [`step`](BatchRun::step) does one iteration on every image. The images may be read and
/// changed between steps ([`image_mut`](BatchRun::image_mut),
/// [`images_mut`](BatchRun::images_mut), [`set_image`](BatchRun::set_image)): the next
/// step starts from them, exactly as a new run started from them would (SIRT keeps no
/// state besides the image). An image stops when an observer passed to
/// [`step_with`](BatchRun::step_with) or the configured iteration budget stops it.
///
/// # Examples
/// ```
/// use netinv_tomo::{shepp_logan, LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig};
/// let op = RayTransform::new(ParallelBeam2d::uniform(16, 16, 12, 24, 1.0).unwrap()).unwrap();
/// let sino = op.apply(shepp_logan(16, 16).unwrap().view());
/// let sirt = Sirt::new(SirtConfig { iterations: 30, ..Default::default() }).unwrap();
/// let weights = sirt.weights(&op); // once per operator
/// let mut run = sirt.start_prepared(&op, &weights, sino.view(), None).unwrap();
/// while run.running() {
///     run.step().unwrap();
/// }
/// let stepped = run.finish().remove(0);
/// assert_eq!(stepped.image, sirt.reconstruct(&op, sino.view()).unwrap().image);
/// ```
pub type SirtRun<'a, O> = BatchRun<SirtState<'a, O>>;

/// The prepared state of a [`SirtRun`]: the operator, the weights, the box, the checked
/// sinograms `[angles, detectors, batch]` and the buffers of an iteration.
#[derive(Debug)]
pub struct SirtState<'a, O: ?Sized> {
    op: &'a O,
    weights: Cow<'a, SirtWeights>,
    bounds: (Option<f32>, Option<f32>),
    sinograms: Array3<f32>,
    residual: Array3<f32>,
    update: Array3<f32>,
}

impl<O: ?Sized> SirtState<'_, O> {
    /// The weights the run uses.
    pub fn weights(&self) -> &SirtWeights {
        &self.weights
    }
}

impl<O: LinearOperator + ?Sized> BatchRun<SirtState<'_, O>> {
    /// The current image `k`, to change before the next step.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn image_mut(&mut self, k: usize) -> ArrayViewMut2<'_, f32> {
        self.x_mut().index_axis_mut(Axis(2), k)
    }

    /// All current images `[rows, cols, batch]`, to change before the next step.
    pub fn images_mut(&mut self) -> ArrayViewMut3<'_, f32> {
        self.x_mut().view_mut()
    }

    /// Replaces image `k` by `image` (checked), for the next step to start from.
    ///
    /// # Errors
    /// [`Error::Shape`] if `image` is not `op.domain_shape()`, [`Error::NonFinite`] if it
    /// holds NaN or infinities.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn set_image(&mut self, k: usize, image: ArrayView2<f32>) -> Result<()> {
        check_array("image", self.solver().op.domain_shape(), image)?;
        self.image_mut(k).assign(&image);
        Ok(())
    }

    /// The weights the run uses.
    pub fn weights(&self) -> &SirtWeights {
        self.solver().weights()
    }
}

impl<O: ?Sized> Sealed for SirtState<'_, O> {}

impl<O: LinearOperator + ?Sized> BatchStep for SirtState<'_, O> {
    /// `x <- clip(x + C A^T R (b - A x))` on the whole batch; the cost of image `k` is
    /// `0.5 ||b - A x||^2` of the image the iteration started from.
    fn iterate(&mut self, x: &mut Array3<f32>) -> StepReport {
        let batch = x.dim().2;
        let (row_w, col_w) = (&self.weights.row, &self.weights.col);
        let (lo, hi) = self.bounds;
        self.op.apply_batch_into(x.view(), self.residual.view_mut());
        let mut cost = vec![0.0f64; batch];
        let rays = flat_mut(&mut self.residual)
            .chunks_exact_mut(batch)
            .zip(flat(&self.sinograms).chunks_exact(batch))
            .zip(row_w.as_slice().unwrap_or(&[]));
        for ((r, b), &w) in rays {
            for k in 0..batch {
                let d = b[k] - r[k];
                cost[k] += (d as f64) * (d as f64);
                r[k] = d * w;
            }
        }
        self.op
            .adjoint_batch_into(self.residual.view(), self.update.view_mut());
        let pixels = flat_mut(x)
            .chunks_exact_mut(batch)
            .zip(flat(&self.update).chunks_exact(batch))
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
        (cost.iter().map(|c| 0.5 * c).collect(), None, Vec::new())
    }
}
