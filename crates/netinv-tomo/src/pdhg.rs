//! The state of a [`TvPdhg`] run and its iteration (Chambolle-Pock).

use ndarray::{Array3, ArrayView2, ArrayView3, Axis};
use netinv_core::{IterState, Termination};

use crate::batch::{flat, flat_mut, Iterates, Observe, Stepper};
use crate::sirt::Reconstruction;
use crate::tv::{gradient, gradient_adjoint, total_variation_per_image};
use crate::{LinearOperator, Result, TvPdhg};

/// A [`TvPdhg`] run in progress on a batch of images (one image for [`TvPdhg::start`]):
/// the step sizes, the checked sinograms, the primal and dual iterates and the buffers of
/// an iteration, with every image's own [`IterState`] and stop.
///
/// [`step`](Self::step) does one PDHG iteration on every image; an image stops when an
/// observer passed to [`step_with`](Self::step_with), the relative-change rule of its
/// configuration or the iteration budget stops it, and its result is then frozen (steps go
/// on updating it with the batch: the images do not interact). Unlike a SIRT run, the
/// images cannot be changed between steps: PDHG's dual variables and extrapolated image
/// belong to the current iterate. [`finish`](Self::finish) gives every image's
/// [`Reconstruction`].
#[derive(Debug)]
pub struct TvRun<'a, O: ?Sized> {
    solver: TvPdhg,
    op: &'a O,
    /// TV weight, step sizes `tau`, `sigma` and whether TV is on, per image.
    weights: Vec<f32>,
    tau: Vec<f32>,
    sigma: Vec<f32>,
    tv_mask: Vec<bool>,
    any_tv: bool,
    sinograms: Array3<f32>,
    buffers: Buffers,
    iterates: Iterates,
}

/// PDHG's arrays besides the iterate `x` (`[rows, cols, batch]` or `[angles, detectors,
/// batch]`, standard layout).
#[derive(Debug)]
struct Buffers {
    /// `A x`, the extrapolated `x_bar = 2 x' - x` and its projection.
    ax: Array3<f32>,
    ax_bar: Array3<f32>,
    x_bar: Array3<f32>,
    /// The dual variables of the data term and of the gradient.
    p: Array3<f32>,
    qy: Array3<f32>,
    qx: Array3<f32>,
    /// Work arrays: `grad x_bar`, `A^T p`, `grad^T q`, the new iterate and its projection.
    gy: Array3<f32>,
    gx: Array3<f32>,
    atp: Array3<f32>,
    gtq: Array3<f32>,
    x_new: Array3<f32>,
    ax_new: Array3<f32>,
}

impl<'a, O: LinearOperator + ?Sized> TvRun<'a, O> {
    /// A run from checked data: `sinograms` `[angles, detectors, batch]`, `x` the initial
    /// images `[rows, cols, batch]` (in the box), per-image `weights` and `(tau, sigma)`.
    pub(crate) fn new(
        solver: TvPdhg,
        op: &'a O,
        sinograms: ArrayView3<f32>,
        x: Array3<f32>,
        weights: Vec<f32>,
        steps: &[(f32, f32)],
    ) -> Self {
        let iterates = Iterates::new(x, solver.config().iterations);
        let x = iterates.x();
        let dims = x.dim();
        let range = (sinograms.dim().0, sinograms.dim().1, dims.2);
        let mut ax = Array3::<f32>::zeros(range);
        op.apply_batch_into(x.view(), ax.view_mut());
        let buffers = Buffers {
            ax_bar: ax.clone(),
            ax,
            x_bar: x.clone(),
            p: Array3::zeros(range),
            qy: Array3::zeros(dims),
            qx: Array3::zeros(dims),
            gy: Array3::zeros(dims),
            gx: Array3::zeros(dims),
            atp: Array3::zeros(dims),
            gtq: Array3::zeros(dims),
            x_new: Array3::zeros(dims),
            ax_new: Array3::zeros(range),
        };
        let tv_mask: Vec<bool> = weights.iter().map(|&w| w > 0.0).collect();
        Self {
            solver,
            op,
            tau: steps.iter().map(|s| s.0).collect(),
            sigma: steps.iter().map(|s| s.1).collect(),
            any_tv: tv_mask.contains(&true),
            tv_mask,
            weights,
            sinograms: sinograms.as_standard_layout().into_owned(),
            buffers,
            iterates,
        }
    }
}

impl<O: LinearOperator + ?Sized> TvRun<'_, O> {
    /// One PDHG iteration on every image, then the stops: each running image's state
    /// advances (cost: the objective at the new iterate; metric `relative_change`), and
    /// the relative-change rule, then the iteration budget, may stop it.
    ///
    /// # Errors
    /// None from PDHG itself; the `Result` is that of [`step_with`](Self::step_with).
    pub fn step(&mut self) -> Result<()> {
        self.step_observed(&mut |_, _, _| Ok(None))
    }

    /// [`step`](Self::step), asking `observe(k, state, image)` for each running image `k`
    /// first whether it stops (a [`Monitor`](netinv_core::Monitor)'s observers and stop
    /// rules, say); the solver's rules apply when `observe` returns `None`.
    ///
    /// # Errors
    /// The first error `observe` returns.
    pub fn step_with(
        &mut self,
        mut observe: impl FnMut(usize, &IterState, ArrayView2<f32>) -> Result<Option<Termination>>,
    ) -> Result<()> {
        self.step_observed(&mut observe)
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.iterates.x().dim().2
    }

    /// Whether the run has no images (never: a run has at least one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any image is still running.
    pub fn running(&self) -> bool {
        self.iterates.progress().running()
    }

    /// Whether image `k` is still running.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn is_running(&self, k: usize) -> bool {
        self.iterates.progress().is_running(k)
    }

    /// Image `k`'s state (iterations done, objective, relative change).
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn state(&self, k: usize) -> &IterState {
        self.iterates.progress().state(k)
    }

    /// The current image `k`, `[rows, cols]`.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn image(&self, k: usize) -> ArrayView2<'_, f32> {
        self.iterates.x().index_axis(Axis(2), k)
    }

    /// All current images, `[rows, cols, batch]`.
    pub fn images(&self) -> ArrayView3<'_, f32> {
        self.iterates.x().view()
    }

    /// Image `k`'s step sizes `(tau, sigma)`.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn step_sizes(&self, k: usize) -> (f32, f32) {
        (self.tau[k], self.sigma[k])
    }

    /// Ends the run: every image's [`Reconstruction`] in batch order, with its state and
    /// termination. An image that stopped is as it was at its stop; one still running is
    /// as it is now, with [`Termination::Other`] saying the caller finished it.
    pub fn finish(self) -> Vec<Reconstruction> {
        self.iterates.finish()
    }

    /// The dual steps: `p <- (p + sigma (A x_bar - b)) / (1 + sigma)` and, for images with
    /// TV, `q <- proj(q + sigma grad x_bar)`, then `grad^T q`.
    fn dual_step(&mut self) {
        let batch = self.len();
        let dims = self.iterates.x().dim();
        let buf = &mut self.buffers;
        let rays = flat_mut(&mut buf.p)
            .chunks_exact_mut(batch)
            .zip(flat(&buf.ax_bar).chunks_exact(batch))
            .zip(flat(&self.sinograms).chunks_exact(batch));
        for ((p, a), b) in rays {
            for ((p, (&a, &b)), &s) in p.iter_mut().zip(a.iter().zip(b)).zip(&self.sigma) {
                *p = (*p + s * (a - b)) / (1.0 + s);
            }
        }
        if !self.any_tv {
            return;
        }
        gradient(
            flat(&buf.x_bar),
            dims,
            flat_mut(&mut buf.gy),
            flat_mut(&mut buf.gx),
        );
        let pixels = flat_mut(&mut buf.qy)
            .chunks_exact_mut(batch)
            .zip(flat_mut(&mut buf.qx).chunks_exact_mut(batch))
            .zip(flat(&buf.gy).chunks_exact(batch))
            .zip(flat(&buf.gx).chunks_exact(batch));
        for (((qy, qx), gy), gx) in pixels {
            let per_image = qy
                .iter_mut()
                .zip(qx.iter_mut())
                .zip(gy.iter().zip(gx))
                .zip(self.sigma.iter().zip(&self.weights).zip(&self.tv_mask));
            for (((qy, qx), (&gy, &gx)), ((&s, &lambda), &tv)) in per_image {
                let (y, x) = (*qy + s * gy, *qx + s * gx);
                let n = ((y as f64).powi(2) + (x as f64).powi(2)).sqrt() as f32;
                let s = if n > lambda { lambda / n } else { 1.0 };
                // an image without TV keeps q = 0, so its grad^T q is 0
                (*qy, *qx) = if tv { (y * s, x * s) } else { (0.0, 0.0) };
            }
        }
        gradient_adjoint(flat(&buf.qy), flat(&buf.qx), dims, flat_mut(&mut buf.gtq));
    }

    /// The primal step `x' = clip(x - tau (A^T p + grad^T q))` and its projection `A x'`.
    fn primal_step(&mut self) {
        let batch = self.len();
        let buf = &mut self.buffers;
        self.op.adjoint_batch_into(buf.p.view(), buf.atp.view_mut());
        let pixels = flat_mut(&mut buf.x_new)
            .chunks_exact_mut(batch)
            .zip(flat(self.iterates.x()).chunks_exact(batch))
            .zip(flat(&buf.atp).chunks_exact(batch))
            .zip(flat(&buf.gtq).chunks_exact(batch));
        for (((xn, x), a), g) in pixels {
            let per_image = xn.iter_mut().zip(x).zip(a.iter().zip(g)).zip(&self.tau);
            for (((xn, &x), (&a, &g)), &t) in per_image {
                *xn = self.solver.clip(x - t * (a + g));
            }
        }
        self.op
            .apply_batch_into(buf.x_new.view(), buf.ax_new.view_mut());
    }

    /// The extrapolation `x_bar = 2 x' - x`, `A x_bar = 2 A x' - A x`, with per-image sums:
    /// `(||x' - x||^2, ||x'||^2, ||A x' - b||^2)`.
    fn extrapolate(&mut self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let batch = self.len();
        let buf = &mut self.buffers;
        let (mut diff, mut size, mut data) = (
            vec![0.0f64; batch],
            vec![0.0f64; batch],
            vec![0.0f64; batch],
        );
        let pixels = flat_mut(&mut buf.x_bar)
            .chunks_exact_mut(batch)
            .zip(flat(&buf.x_new).chunks_exact(batch))
            .zip(flat(self.iterates.x()).chunks_exact(batch));
        // zipped slices, not indices: without bounds checks the loops over the batch
        // vectorise (each image's sums still run over the pixels in order)
        for ((xb, xn), xo) in pixels {
            let per_image = xb
                .iter_mut()
                .zip(xn.iter().zip(xo))
                .zip(diff.iter_mut().zip(size.iter_mut()));
            for ((xb, (&xn, &xo)), (diff, size)) in per_image {
                *xb = 2.0 * xn - xo;
                *diff += ((xn - xo) as f64).powi(2);
                *size += (xn as f64).powi(2);
            }
        }
        let rays = flat_mut(&mut buf.ax_bar)
            .chunks_exact_mut(batch)
            .zip(flat(&buf.ax_new).chunks_exact(batch))
            .zip(flat(&buf.ax).chunks_exact(batch))
            .zip(flat(&self.sinograms).chunks_exact(batch));
        for (((ab, an), ao), b) in rays {
            let per_image = ab
                .iter_mut()
                .zip(an.iter().zip(ao))
                .zip(b.iter().zip(&mut data));
            for ((ab, (&an, &ao)), (&b, data)) in per_image {
                *ab = 2.0 * an - ao;
                *data += ((an - b) as f64).powi(2);
            }
        }
        (diff, size, data)
    }

    /// Each image's objective `0.5 ||A x - b||^2 + lambda TV(x)` at the new iterate, from
    /// its data sum.
    fn costs(&self, data: &[f64]) -> Vec<f64> {
        let batch = self.len();
        let tv = if self.any_tv {
            total_variation_per_image(self.iterates.x().view())
        } else {
            vec![0.0; batch]
        };
        (0..batch)
            .map(|k| {
                let (lambda, tv) = if self.tv_mask[k] {
                    (self.weights[k], tv[k])
                } else {
                    (0.0, 0.0)
                };
                0.5 * data[k] + lambda as f64 * tv
            })
            .collect()
    }
}

impl<O: LinearOperator + ?Sized> Stepper for TvRun<'_, O> {
    fn step_observed(&mut self, observe: &mut Observe<'_>) -> Result<()> {
        self.dual_step();
        self.primal_step();
        let (diff, size, data) = self.extrapolate();
        std::mem::swap(self.iterates.x_mut(), &mut self.buffers.x_new);
        std::mem::swap(&mut self.buffers.ax, &mut self.buffers.ax_new);
        let cost = self.costs(&data);
        let change: Vec<f64> = (0..self.len())
            .map(|k| diff[k].sqrt() / size[k].sqrt().max(f64::MIN_POSITIVE))
            .collect();
        let tolerance = self.solver.config().relative_change;
        let converged = |k: usize| tolerance.is_some_and(|t| change[k] <= t);
        self.iterates
            .end_iteration(&cost, Some(("relative_change", &change)), observe, |k| {
                converged(k).then_some(Termination::Converged)
            })
    }

    fn still_running(&self) -> bool {
        self.running()
    }

    fn finish_all(self) -> Vec<Reconstruction> {
        self.finish()
    }
}
