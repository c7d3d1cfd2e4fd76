//! TV-regularised and box-constrained least squares by the primal-dual hybrid gradient
//! method (Chambolle-Pock).

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use netinv_core::Monitor;
use serde::{Deserialize, Serialize};

use crate::batch::stack_images;
use crate::error::check_array;
use crate::operator::power_iteration;
use crate::pdhg::{Anchor, PdhgState, TvRun};
use crate::run::{run_monitored, run_quiet};
use crate::sirt::Reconstruction;
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

/// Forward-difference gradient with a zero difference at the last row / column, for a
/// batch in `[rows, cols, batch]` layout (flat slices): `gy[r, c] = x[r+1, c] - x[r, c]`,
/// `gx[r, c] = x[r, c+1] - x[r, c]`, image by image.
pub(crate) fn gradient(
    x: &[f32],
    (rows, cols, batch): (usize, usize, usize),
    gy: &mut [f32],
    gx: &mut [f32],
) {
    let difference = |out: &mut [f32], next: Option<&[f32]>, here: &[f32]| match next {
        Some(next) => out
            .iter_mut()
            .zip(next.iter().zip(here))
            .for_each(|(o, (&n, &h))| *o = n - h),
        None => out.fill(0.0),
    };
    for r in 0..rows {
        for c in 0..cols {
            let p = (r * cols + c) * batch;
            let here = &x[p..p + batch];
            let below = (r + 1 < rows).then(|| &x[p + cols * batch..p + (cols + 1) * batch]);
            let right = (c + 1 < cols).then(|| &x[p + batch..p + 2 * batch]);
            difference(&mut gy[p..p + batch], below, here);
            difference(&mut gx[p..p + batch], right, here);
        }
    }
}

/// The adjoint of [`gradient`] (minus the divergence): `out = grad^T (gy, gx)`, same layout.
pub(crate) fn gradient_adjoint(
    gy: &[f32],
    gx: &[f32],
    (rows, cols, batch): (usize, usize, usize),
    out: &mut [f32],
) {
    for r in 0..rows {
        for c in 0..cols {
            let p = (r * cols + c) * batch;
            let up = p.wrapping_sub(cols * batch);
            let left = p.wrapping_sub(batch);
            for k in 0..batch {
                let mut v = 0.0;
                if r + 1 < rows {
                    v -= gy[p + k];
                }
                if r > 0 {
                    v += gy[up + k];
                }
                if c + 1 < cols {
                    v -= gx[p + k];
                }
                if c > 0 {
                    v += gx[left + k];
                }
                out[p + k] = v;
            }
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
    total_variation_per_image(x.insert_axis(Axis(2)))[0]
}

/// [`total_variation`] of every image of a `[rows, cols, batch]` batch.
pub(crate) fn total_variation_per_image(x: ArrayView3<f32>) -> Vec<f64> {
    let (rows, cols, batch) = x.dim();
    let mut tv = vec![0.0f64; batch];
    for r in 0..rows {
        for c in 0..cols {
            for (k, tv) in tv.iter_mut().enumerate() {
                let v = x[[r, c, k]] as f64;
                let dy = if r + 1 < rows {
                    x[[r + 1, c, k]] as f64 - v
                } else {
                    0.0
                };
                let dx = if c + 1 < cols {
                    x[[r, c + 1, k]] as f64 - v
                } else {
                    0.0
                };
                *tv += (dy * dy + dx * dx).sqrt();
            }
        }
    }
    tv
}

/// Estimates `||K||` for `K = [A; grad]` as [`LinearOperator::norm_estimate`] does for
/// `A`: power iteration on `A^T A + grad^T grad` from the same seeded start.
fn norm_with_gradient<O: LinearOperator + ?Sized>(op: &O, iterations: usize, seed: u64) -> f64 {
    let shape = op.domain_shape();
    let dims = (shape.0, shape.1, 1);
    let pixels = shape.0 * shape.1;
    let (mut gy, mut gx) = (vec![0.0f32; pixels], vec![0.0f32; pixels]);
    let mut gt = Array2::<f32>::zeros(shape);
    power_iteration(op, iterations, seed, |v, w| {
        let standard = "owned arrays are in standard layout";
        gradient(v.as_slice().expect(standard), dims, &mut gy, &mut gx);
        gradient_adjoint(&gy, &gx, dims, gt.as_slice_mut().expect(standard));
        *w += &gt;
    })
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
        run_monitored(self.start(op, sinogram, initial)?, monitor)
    }

    /// Reconstructs every sinogram of a batch, starting from zero: the same result for
    /// each as [`reconstruct`](Self::reconstruct) (bit for bit with a [`CsrOperator`]),
    /// at the cost of one batched forward and adjoint projection per iteration
    /// ([`LinearOperator::apply_batch_into`]), which is several times cheaper than one
    /// projection per image. With a relative-change stop, each image stops at its own
    /// iteration; the batch runs until the last one stops.
    ///
    /// # Errors
    /// [`Error::Shape`] if `sinograms` is empty or one does not match the operator,
    /// [`Error::NonFinite`] if one contains NaN or infinities.
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{shepp_logan, CsrOperator, LinearOperator, ParallelBeam2d, RayTransform, TvConfig, TvPdhg};
    /// let ray = RayTransform::new(ParallelBeam2d::uniform(16, 16, 8, 24, 1.0).unwrap()).unwrap();
    /// let op = CsrOperator::new(&ray);
    /// let truth = shepp_logan(16, 16).unwrap();
    /// let sinograms = [op.apply(truth.view()), op.apply(truth.t().view())];
    /// let views: Vec<_> = sinograms.iter().map(|s| s.view()).collect();
    /// let solver = TvPdhg::new(TvConfig { iterations: 50, ..Default::default() }).unwrap();
    /// let batch = solver.reconstruct_batch(&op, &views).unwrap();
    /// let single = solver.reconstruct(&op, views[1]).unwrap();
    /// assert_eq!(batch[1].image, single.image);
    /// ```
    ///
    /// [`CsrOperator`]: crate::CsrOperator
    pub fn reconstruct_batch<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinograms: &[ArrayView2<f32>],
    ) -> Result<Vec<Reconstruction>> {
        let weights = vec![self.config.weight; sinograms.len()];
        self.reconstruct_batch_weighted(op, sinograms, &weights)
    }

    /// [`reconstruct_batch`](Self::reconstruct_batch) with a TV weight per sinogram:
    /// image `k` is solved with `weights[k]` in place of the configuration's weight (every
    /// other setting shared), and its result is the one `reconstruct_batch` gives with
    /// that weight as the configuration's (bit for bit with a [`CsrOperator`]: the images
    /// of a batch do not interact, each has its own step sizes, TV term and stop). One
    /// batch over a grid of weights is how to tune the weight cheaply: the batched
    /// projection costs much less per image than several small batches.
    ///
    /// # Errors
    /// As [`reconstruct_batch`](Self::reconstruct_batch), plus [`Error::Shape`] if
    /// `weights` does not have one weight per sinogram and [`Error::InvalidConfig`] if a
    /// weight is negative or not finite.
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{shepp_logan, CsrOperator, LinearOperator, ParallelBeam2d, RayTransform, TvConfig, TvPdhg};
    /// let ray = RayTransform::new(ParallelBeam2d::uniform(16, 16, 8, 24, 1.0).unwrap()).unwrap();
    /// let op = CsrOperator::new(&ray);
    /// let sinogram = op.apply(shepp_logan(16, 16).unwrap().view());
    /// let config = TvConfig { iterations: 50, ..Default::default() };
    /// let solver = TvPdhg::new(config.clone()).unwrap();
    /// // the same sinogram at three TV weights, in one batch
    /// let weights = [0.0, 0.01, 0.1];
    /// let batch = solver
    ///     .reconstruct_batch_weighted(&op, &[sinogram.view(); 3], &weights)
    ///     .unwrap();
    /// let alone = TvPdhg::new(TvConfig { weight: 0.1, ..config }).unwrap();
    /// assert_eq!(batch[2].image, alone.reconstruct(&op, sinogram.view()).unwrap().image);
    /// assert!(solver.reconstruct_batch_weighted(&op, &[sinogram.view()], &[-1.0]).is_err());
    /// ```
    ///
    /// [`CsrOperator`]: crate::CsrOperator
    pub fn reconstruct_batch_weighted<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinograms: &[ArrayView2<f32>],
        weights: &[f32],
    ) -> Result<Vec<Reconstruction>> {
        run_quiet(self.start_batch_weighted(op, sinograms, weights)?)
    }

    /// A run on one image, ready to [`step`](crate::BatchRun::step): checks the data, estimates the
    /// operator norm for the step sizes, and starts from `initial` (or zero), clipped to
    /// the box. [`reconstruct_with`](Self::reconstruct_with) drives such a run.
    ///
    /// # Errors
    /// As [`reconstruct_with`](Self::reconstruct_with).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{shepp_logan, LinearOperator, ParallelBeam2d, RayTransform, TvConfig, TvPdhg};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(16, 16, 8, 24, 1.0).unwrap()).unwrap();
    /// let sino = op.apply(shepp_logan(16, 16).unwrap().view());
    /// let solver = TvPdhg::new(TvConfig { iterations: 40, ..Default::default() }).unwrap();
    /// let mut run = solver.start(&op, sino.view(), None).unwrap();
    /// while run.running() {
    ///     run.step().unwrap();
    /// }
    /// assert_eq!(run.state(0).iteration, 40);
    /// let stepped = run.finish().remove(0);
    /// assert_eq!(stepped.image, solver.reconstruct(&op, sino.view()).unwrap().image);
    /// ```
    pub fn start<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        sinogram: ArrayView2<f32>,
        initial: Option<ArrayView2<f32>>,
    ) -> Result<TvRun<'a, O>> {
        op.check_range_array(sinogram)?;
        let shape = op.domain_shape();
        let x = match initial {
            Some(init) => {
                check_array("initial image", shape, init)?;
                init.mapv(|v| self.clip(v))
            }
            None => Array2::from_elem(shape, self.clip(0.0)),
        };
        let sinogram = sinogram.insert_axis(Axis(2));
        let weights = vec![self.config.weight];
        Ok(self.start_stacked(op, sinogram, x.insert_axis(Axis(2)), weights, None))
    }

    /// A run on a batch of sinograms from zero, as in
    /// [`reconstruct_batch`](Self::reconstruct_batch).
    ///
    /// # Errors
    /// As [`reconstruct_batch`](Self::reconstruct_batch).
    pub fn start_batch<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        sinograms: &[ArrayView2<f32>],
    ) -> Result<TvRun<'a, O>> {
        let weights = vec![self.config.weight; sinograms.len()];
        self.start_batch_weighted(op, sinograms, &weights)
    }

    /// A run on a batch of sinograms with a TV weight each, as in
    /// [`reconstruct_batch_weighted`](Self::reconstruct_batch_weighted).
    ///
    /// # Errors
    /// As [`reconstruct_batch_weighted`](Self::reconstruct_batch_weighted).
    pub fn start_batch_weighted<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        sinograms: &[ArrayView2<f32>],
        weights: &[f32],
    ) -> Result<TvRun<'a, O>> {
        for b in sinograms {
            op.check_range_array(*b)?;
        }
        check_weights(weights, sinograms.len())?;
        let sinograms = stack_images(sinograms)?;
        let (rows, cols) = op.domain_shape();
        let x = Array3::from_elem((rows, cols, sinograms.dim().2), self.clip(0.0));
        Ok(self.start_stacked(op, sinograms.view(), x, weights.to_vec(), None))
    }

    /// A run on a batch of sinograms with an anchor term: image `k` solves
    ///
    /// ```text
    /// minimise  0.5 ||A x - b_k||^2 + mus[k] / 2 ||x - anchors[k]||^2 + weights[k] TV(x)
    ///           subject to  min <= x <= max
    /// ```
    ///
    /// (data consistency around a prior image, e.g. a generative model's output), from
    /// `initial[k]` clipped to the box (zero without `initial`). The anchor changes only
    /// the primal step, `x' = clip((v + tau mu x0) / (1 + tau mu))` with
    /// `v = x - tau (A^T p + grad^T q)`, the prox of the anchor plus the box; the step
    /// sizes are those of the weight alone. An image with `mus[k] = 0` iterates exactly as
    /// in [`start_batch_weighted`](Self::start_batch_weighted): from a zero start its
    /// result is that of [`reconstruct_batch_weighted`](Self::reconstruct_batch_weighted)
    /// bit for bit. The cost reported adds `mu / 2 ||x - x0||^2`.
    ///
    /// # Errors
    /// As [`start_batch_weighted`](Self::start_batch_weighted); [`Error::Shape`] if
    /// `anchors`, `mus` or `initial` do not have one entry per sinogram or an image does
    /// not match the operator's domain, [`Error::NonFinite`] for NaN or infinite pixels,
    /// [`Error::InvalidConfig`] for a negative or non-finite `mu`.
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{shepp_logan, CsrOperator, LinearOperator, ParallelBeam2d, RayTransform, TvConfig, TvPdhg};
    /// let ray = RayTransform::new(ParallelBeam2d::uniform(16, 16, 4, 24, 1.0).unwrap()).unwrap();
    /// let op = CsrOperator::new(&ray);
    /// let truth = shepp_logan(16, 16).unwrap();
    /// let sinogram = op.apply(truth.view());
    /// let solver = TvPdhg::new(TvConfig { iterations: 60, min: Some(0.0), max: Some(1.0), ..Default::default() }).unwrap();
    /// let (b, x0) = (sinogram.view(), truth.view());
    /// // mu = 0: the TV run itself; a large mu keeps the image at the anchor
    /// let mut run = solver.start_batch_anchored(&op, &[b, b], &[0.01, 0.01], &[x0, x0], &[0.0, 1e4], None).unwrap();
    /// while run.running() { run.step().unwrap(); }
    /// let recs = run.finish();
    /// assert_eq!(recs[0].image, solver.reconstruct(&op, b).unwrap().image);
    /// assert!((&recs[1].image - &truth).iter().all(|v| v.abs() < 0.01));
    /// ```
    pub fn start_batch_anchored<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        sinograms: &[ArrayView2<f32>],
        weights: &[f32],
        anchors: &[ArrayView2<f32>],
        mus: &[f32],
        initial: Option<&[ArrayView2<f32>]>,
    ) -> Result<TvRun<'a, O>> {
        for b in sinograms {
            op.check_range_array(*b)?;
        }
        let n = sinograms.len();
        check_weights(weights, n)?;
        check_anchor_weights(mus, n)?;
        let shape = op.domain_shape();
        let images = |what: &'static str, list: &[ArrayView2<f32>]| -> Result<Array3<f32>> {
            if list.len() != n {
                return Err(Error::Shape {
                    what,
                    expected: format!("one per sinogram ({n})"),
                    got: list.len().to_string(),
                });
            }
            for x in list {
                check_array(what, shape, *x)?;
            }
            stack_images(list)
        };
        let x0 = images("anchor images", anchors)?;
        let x = match initial {
            Some(init) => images("initial images", init)?.mapv(|v| self.clip(v)),
            None => Array3::from_elem((shape.0, shape.1, n), self.clip(0.0)),
        };
        let sinograms = stack_images(sinograms)?;
        let anchor = Anchor {
            x0,
            mu: mus.to_vec(),
        };
        Ok(self.start_stacked(op, sinograms.view(), x, weights.to_vec(), Some(anchor)))
    }

    /// A run from checked data: `sinograms` `[angles, detectors, batch]`, `x` the initial
    /// images `[rows, cols, batch]` (in the box), `weights` the TV weight of each image
    /// (checked). Each image gets the step sizes of a run with its weight alone: an image
    /// with weight 0 those of `A` (no TV term, as in a least-squares run), one with TV
    /// those of `[A; grad]`; one operator-norm estimate per kind of image in the batch.
    fn start_stacked<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        sinograms: ArrayView3<f32>,
        x: Array3<f32>,
        weights: Vec<f32>,
        anchor: Option<Anchor>,
    ) -> TvRun<'a, O> {
        let tv_mask: Vec<bool> = weights.iter().map(|&w| w > 0.0).collect();
        let tv_steps = tv_mask.contains(&true).then(|| self.step_sizes(op, true));
        let plain_steps = tv_mask.contains(&false).then(|| self.step_sizes(op, false));
        let steps: Vec<(f32, f32)> = tv_mask
            .iter()
            .map(|&tv| {
                let steps = if tv { tv_steps } else { plain_steps };
                steps.expect("the steps of every kind of image present are computed")
            })
            .collect();
        PdhgState::start(self.clone(), op, sinograms, x, weights, &steps, anchor)
    }

    /// `v` clipped to the box (inlined: it runs once per pixel and iteration).
    #[inline(always)]
    pub(crate) fn clip(&self, v: f32) -> f32 {
        let v = self.config.min.map_or(v, |lo| v.max(lo));
        self.config.max.map_or(v, |hi| v.min(hi))
    }

    /// The step sizes `(tau, sigma)` for `K = [A; grad]` (or `A` without `with_gradient`).
    fn step_sizes<O: LinearOperator + ?Sized>(&self, op: &O, with_gradient: bool) -> (f32, f32) {
        let cfg = &self.config;
        let norm = if with_gradient {
            norm_with_gradient(op, cfg.power_iterations, cfg.seed)
        } else {
            op.norm_estimate(cfg.power_iterations, cfg.seed)
        };
        let l = 1.05 * norm;
        let l = if l > 0.0 { l } else { 1.0 };
        (
            (cfg.step_ratio / l) as f32,
            (1.0 / (cfg.step_ratio * l)) as f32,
        )
    }
}

/// Checks per-image TV weights: one per image, each finite and >= 0.
fn check_weights(weights: &[f32], images: usize) -> Result<()> {
    if weights.len() != images {
        return Err(Error::Shape {
            what: "TV weights",
            expected: format!("one per sinogram ({images})"),
            got: weights.len().to_string(),
        });
    }
    match weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        Some((k, w)) => Err(Error::InvalidConfig {
            field: "weights",
            reason: format!("weight {k} must be finite and >= 0, got {w}"),
        }),
        None => Ok(()),
    }
}

/// Checks per-image anchor weights: one per image, each finite and >= 0.
fn check_anchor_weights(mus: &[f32], images: usize) -> Result<()> {
    if mus.len() != images {
        return Err(Error::Shape {
            what: "anchor weights",
            expected: format!("one per sinogram ({images})"),
            got: mus.len().to_string(),
        });
    }
    match mus
        .iter()
        .enumerate()
        .find(|(_, m)| !(m.is_finite() && **m >= 0.0))
    {
        Some((k, m)) => Err(Error::InvalidConfig {
            field: "mus",
            reason: format!("anchor weight {k} must be finite and >= 0, got {m}"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{flat, flat_mut};

    #[test]
    fn gradient_adjoint_is_transpose() {
        // a batch of three 5x7 images, so the batched layout is exercised too
        let dims = (5, 7, 3);
        let wave = |f: fn(f32) -> f32, a: usize, b: usize, k: usize, s: f32| {
            Array3::from_shape_fn(dims, move |(r, c, i)| f((a * r + b * c + k * i) as f32 * s))
        };
        let x = wave(f32::sin, 7, 1, 5, 0.37);
        let py = wave(f32::cos, 1, 2, 3, 0.91);
        let px = wave(f32::sin, 3, 1, 2, 0.23);
        let (mut gy, mut gx, mut gt) = (
            Array3::zeros(dims),
            Array3::zeros(dims),
            Array3::zeros(dims),
        );
        gradient(flat(&x), dims, flat_mut(&mut gy), flat_mut(&mut gx));
        gradient_adjoint(flat(&py), flat(&px), dims, flat_mut(&mut gt));
        let lhs: f64 = (&gy * &py + &gx * &px).iter().map(|&v| v as f64).sum();
        let rhs: f64 = (&x * &gt).iter().map(|&v| v as f64).sum();
        assert!(
            (lhs - rhs).abs() < 1e-5 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
        // image 1 of the batch alone gives image 1 of the batched gradient
        let x1 = x.index_axis(Axis(2), 1).to_owned();
        let (mut gy1, mut gx1) = (vec![0.0; 35], vec![0.0; 35]);
        gradient(x1.as_slice().unwrap(), (5, 7, 1), &mut gy1, &mut gx1);
        let gy_batch: Vec<f32> = gy.index_axis(Axis(2), 1).iter().copied().collect();
        assert_eq!(gy1, gy_batch);
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

#[cfg(test)]
#[path = "tv_anchor_tests.rs"]
mod anchor_tests;
