//! The state of a [`TvPdhg`] run and its iteration (Chambolle-Pock).

use ndarray::{Array3, ArrayView3};
#[cfg(doc)]
use netinv_core::Termination;

use crate::batch::{flat, flat_mut};
use crate::run::sealed::Sealed;
use crate::run::{standard, BatchRun, BatchStep, StepReport};
use crate::tv::{gradient, gradient_adjoint, total_variation_per_image};
use crate::{LinearOperator, TvPdhg};

/// A [`TvPdhg`] run in progress on a batch of images (one image for [`TvPdhg::start`]): a
/// [`BatchRun`] of [`PdhgState`] (the step sizes, the checked sinograms, the dual
/// variables and the buffers of an iteration), with the current images and every image's
/// own [`IterState`](netinv_core::IterState) and stop.
///
/// An image stops when an observer passed to [`step_with`](BatchRun::step_with), the
/// relative-change rule of the configuration ([`Termination::Converged`]) or the iteration
/// budget stops it. Unlike a [`SirtRun`](crate::SirtRun), the images cannot be changed
/// between steps: PDHG's dual variables and extrapolated image belong to the current
/// iterate.
pub type TvRun<'a, O> = BatchRun<PdhgState<'a, O>>;

/// The prepared state of a [`TvRun`]: the operator, the TV weight and step sizes of each
/// image, the checked sinograms `[angles, detectors, batch]`, PDHG's dual variables and
/// the buffers of an iteration.
#[derive(Debug)]
pub struct PdhgState<'a, O: ?Sized> {
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
    /// The anchor term `mu_k / 2 ||x - x0||^2` of [`TvPdhg::start_batch_anchored`].
    anchor: Option<Anchor>,
}

/// The anchor images `x0` `[rows, cols, batch]` and the weight `mu >= 0` of each image
/// (an image with `mu = 0` iterates exactly as without an anchor).
#[derive(Debug)]
pub(crate) struct Anchor {
    pub(crate) x0: Array3<f32>,
    pub(crate) mu: Vec<f32>,
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

impl<'a, O: LinearOperator + ?Sized> PdhgState<'a, O> {
    /// A run from checked data: `sinograms` `[angles, detectors, batch]`, `x` the initial
    /// images `[rows, cols, batch]` (in the box), per-image `weights` and `(tau, sigma)`.
    pub(crate) fn start(
        solver: TvPdhg,
        op: &'a O,
        sinograms: ArrayView3<f32>,
        x: Array3<f32>,
        weights: Vec<f32>,
        steps: &[(f32, f32)],
        anchor: Option<Anchor>,
    ) -> TvRun<'a, O> {
        let x = standard(x);
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
        let max_iterations = solver.config().iterations;
        let state = Self {
            solver,
            op,
            tau: steps.iter().map(|s| s.0).collect(),
            sigma: steps.iter().map(|s| s.1).collect(),
            any_tv: tv_mask.contains(&true),
            tv_mask,
            weights,
            sinograms: sinograms.as_standard_layout().into_owned(),
            buffers,
            anchor: anchor.map(|a| Anchor {
                x0: standard(a.x0),
                mu: a.mu,
            }),
        };
        BatchRun::new(state, x, max_iterations)
    }
}

impl<O: ?Sized> PdhgState<'_, O> {
    /// Image `k`'s step sizes `(tau, sigma)`.
    ///
    /// # Panics
    /// If `k >= ` the number of images.
    pub fn step_sizes(&self, k: usize) -> (f32, f32) {
        (self.tau[k], self.sigma[k])
    }
}

impl<O: LinearOperator + ?Sized> BatchRun<PdhgState<'_, O>> {
    /// Image `k`'s step sizes `(tau, sigma)`.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn step_sizes(&self, k: usize) -> (f32, f32) {
        self.solver().step_sizes(k)
    }
}

impl<O: LinearOperator + ?Sized> PdhgState<'_, O> {
    /// The dual steps: `p <- (p + sigma (A x_bar - b)) / (1 + sigma)` and, for images with
    /// TV, `q <- proj(q + sigma grad x_bar)`, then `grad^T q`.
    fn dual_step(&mut self, dims: (usize, usize, usize)) {
        let batch = dims.2;
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
    fn primal_step(&mut self, x: &Array3<f32>) {
        let batch = x.dim().2;
        let buf = &mut self.buffers;
        self.op.adjoint_batch_into(buf.p.view(), buf.atp.view_mut());
        let pixels = flat_mut(&mut buf.x_new)
            .chunks_exact_mut(batch)
            .zip(flat(x).chunks_exact(batch))
            .zip(flat(&buf.atp).chunks_exact(batch))
            .zip(flat(&buf.gtq).chunks_exact(batch));
        match &self.anchor {
            None => {
                for (((xn, x), a), g) in pixels {
                    let per_image = xn.iter_mut().zip(x).zip(a.iter().zip(g)).zip(&self.tau);
                    for (((xn, &x), (&a, &g)), &t) in per_image {
                        *xn = self.solver.clip(x - t * (a + g));
                    }
                }
            }
            Some(anchor) => {
                let anchors = flat(&anchor.x0).chunks_exact(batch);
                for ((((xn, x), a), g), x0) in pixels.zip(anchors) {
                    let per_image = xn
                        .iter_mut()
                        .zip(x)
                        .zip(a.iter().zip(g))
                        .zip(self.tau.iter().zip(x0.iter().zip(&anchor.mu)));
                    for (((xn, &x), (&a, &g)), (&t, (&x0, &mu))) in per_image {
                        let v = x - t * (a + g);
                        // the prox of mu/2 ||x - x0||^2 + box; mu = 0 keeps the TV step's bits
                        *xn = if mu == 0.0 {
                            self.solver.clip(v)
                        } else {
                            self.solver.clip((v + t * mu * x0) / (1.0 + t * mu))
                        };
                    }
                }
            }
        }
        self.op
            .apply_batch_into(buf.x_new.view(), buf.ax_new.view_mut());
    }

    /// The extrapolation `x_bar = 2 x' - x`, `A x_bar = 2 A x' - A x`, with per-image sums:
    /// `(||x' - x||^2, ||x'||^2, ||A x' - b||^2)`.
    fn extrapolate(&mut self, x: &Array3<f32>) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let batch = x.dim().2;
        let buf = &mut self.buffers;
        let (mut diff, mut size, mut data) = (
            vec![0.0f64; batch],
            vec![0.0f64; batch],
            vec![0.0f64; batch],
        );
        let pixels = flat_mut(&mut buf.x_bar)
            .chunks_exact_mut(batch)
            .zip(flat(&buf.x_new).chunks_exact(batch))
            .zip(flat(x).chunks_exact(batch));
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
    fn costs(&self, x: &Array3<f32>, data: &[f64]) -> Vec<f64> {
        let batch = x.dim().2;
        let tv = if self.any_tv {
            total_variation_per_image(x.view())
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
                0.5 * data[k] + lambda as f64 * tv + self.anchor_cost(x, k)
            })
            .collect()
    }

    /// `mu_k / 2 ||x_k - x0_k||^2` of image `k` (0 without an anchor).
    fn anchor_cost(&self, x: &Array3<f32>, k: usize) -> f64 {
        match &self.anchor {
            Some(a) if a.mu[k] > 0.0 => {
                let dist: f64 = x
                    .index_axis(ndarray::Axis(2), k)
                    .iter()
                    .zip(a.x0.index_axis(ndarray::Axis(2), k))
                    .map(|(&v, &w)| f64::from(v - w).powi(2))
                    .sum();
                0.5 * f64::from(a.mu[k]) * dist
            }
            _ => 0.0,
        }
    }
}

impl<O: ?Sized> Sealed for PdhgState<'_, O> {}

impl<O: LinearOperator + ?Sized> BatchStep for PdhgState<'_, O> {
    /// One PDHG iteration; the cost of image `k` is the objective at the new iterate, the
    /// metric `relative_change` is `||x' - x|| / ||x'||`, and the relative-change rule
    /// stops an image.
    fn iterate(&mut self, x: &mut Array3<f32>) -> StepReport {
        self.dual_step(x.dim());
        self.primal_step(x);
        let (diff, size, data) = self.extrapolate(x);
        std::mem::swap(x, &mut self.buffers.x_new);
        std::mem::swap(&mut self.buffers.ax, &mut self.buffers.ax_new);
        let cost = self.costs(x, &data);
        let change: Vec<f64> = (0..x.dim().2)
            .map(|k| diff[k].sqrt() / size[k].sqrt().max(f64::MIN_POSITIVE))
            .collect();
        let tolerance = self.solver.config().relative_change;
        let converged = change
            .iter()
            .map(|&c| tolerance.is_some_and(|t| c <= t))
            .collect();
        (cost, Some(("relative_change", change)), converged)
    }
}
