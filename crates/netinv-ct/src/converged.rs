//! A converged solver with the class prior: projected gradient on the data term plus the
//! network terms.

use candle_core::{Device, Tensor};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, Zip};
use netinv_core::{BatchProgress, IterState, Monitor, Termination};
use netinv_invert::InvertibleNet;
use netinv_tomo::{stack_images, LinearOperator};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::net::{check_class, check_scan, net_terms_gradient};
use crate::{Error, InversionTerms, LabelMode, NetTerms, Result};

/// Called after every iteration for each image still running (index, state, image); may
/// stop that image.
type Observe<'a> =
    dyn FnMut(usize, &IterState, ArrayView2<f32>) -> Result<Option<Termination>> + 'a;

/// Settings of [`ClassPriorSolver`].
///
/// Defaults: 1000 iterations, step `0.9 / ||A||^2` (estimated by 50 power iterations, seed
/// 0), `class_weight` 1, `tv` 1e-2, `l2` 0, `bn` 0, both terms, box [0, 1], stop when
/// `||x_k - x_{k-1}|| <= 1e-6 ||x_k||`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassPriorConfig {
    /// Maximum number of iterations (at least 1).
    pub iterations: usize,
    /// Step size multiplier `s`; the step is `s / ||A||^2` (finite, in (0, 2)).
    pub step_scale: f64,
    /// Weight of the class cross-entropy (>= 0).
    pub class_weight: f64,
    /// Weight of the squared-difference TV prior (>= 0).
    pub tv: f64,
    /// Weight of the squared L2 prior (>= 0).
    pub l2: f64,
    /// Weight of the BatchNorm-statistics prior (>= 0).
    pub bn: f64,
    /// Which network terms are used.
    pub terms: InversionTerms,
    /// Lower bound of the box.
    pub min: f32,
    /// Upper bound of the box.
    pub max: f32,
    /// Stop once `||x_k - x_{k-1}|| <= relative_change ||x_k||` (`None`: all iterations).
    pub relative_change: Option<f64>,
    /// Power iterations for `||A||` (at least 1).
    pub power_iterations: usize,
    /// Seed of the power iteration.
    pub seed: u64,
}

impl Default for ClassPriorConfig {
    fn default() -> Self {
        Self {
            iterations: 1000,
            step_scale: 0.9,
            class_weight: 1.0,
            tv: 1e-2,
            l2: 0.0,
            bn: 0.0,
            terms: InversionTerms::Both,
            min: 0.0,
            max: 1.0,
            relative_change: Some(1e-6),
            power_iterations: 50,
            seed: 0,
        }
    }
}

impl ClassPriorConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.iterations == 0 {
            return Err(invalid("iterations", "must be at least 1"));
        }
        if self.power_iterations == 0 {
            return Err(invalid("power_iterations", "must be at least 1"));
        }
        if !(self.step_scale.is_finite() && self.step_scale > 0.0 && self.step_scale < 2.0) {
            return Err(invalid(
                "step_scale",
                format!("must be in (0, 2), got {}", self.step_scale),
            ));
        }
        for (field, w) in [
            ("class_weight", self.class_weight),
            ("tv", self.tv),
            ("l2", self.l2),
            ("bn", self.bn),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(invalid(field, format!("must be finite and >= 0, got {w}")));
            }
        }
        if !(self.min.is_finite() && self.max.is_finite() && self.min < self.max) {
            return Err(invalid(
                "min",
                format!(
                    "[{}, {}] is not a finite box with min < max",
                    self.min, self.max
                ),
            ));
        }
        if let Some(r) = self.relative_change {
            if !(r.is_finite() && r >= 0.0) {
                return Err(invalid("relative_change", format!("must be >= 0, got {r}")));
            }
        }
        Ok(())
    }

    fn weights(&self) -> NetTerms {
        self.terms
            .weights(self.class_weight, self.tv, self.l2, self.bn)
    }
}

/// The result of [`ClassPriorSolver::reconstruct`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassPriorReconstruction {
    /// The final image `[rows, cols]` in `[min, max]`.
    pub image: Array2<f32>,
    /// The class of the class term at the last iteration (if the term is on).
    pub class: Option<u32>,
    /// The final state (cost = full objective at the last iterate before its update).
    pub state: IterState,
}

/// Projected gradient on the data term plus the network terms:
///
/// ```text
/// f(x) = 0.5 ||A x - b||^2 + w_c CE(F(x), c) + tv TV2(x) + l2 ||x||^2 + bn R_BN(x)
/// x <- clip(x - tau grad f(x), min, max),   tau = step_scale / ||A||^2
/// ```
///
/// The class gradient goes through the frozen network. In the label-free mode
/// ([`LabelMode::Predicted`]) `c` is the network's prediction for the current iterate, from
/// the same forward pass, at every iteration. The network terms are not convex, so this
/// converges to a stationary point at best; the relative-change rule stops it.
#[derive(Debug, Clone)]
pub struct ClassPriorSolver {
    cfg: ClassPriorConfig,
}

impl ClassPriorSolver {
    /// A solver with a checked configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`ClassPriorConfig::validate`].
    pub fn new(cfg: ClassPriorConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg })
    }

    /// The configuration.
    pub fn config(&self) -> &ClassPriorConfig {
        &self.cfg
    }

    /// Reconstructs from `sinogram`, starting from `initial` (or zero), reporting to
    /// `monitor` after every iteration (cost = objective, metric `residual`).
    ///
    /// # Errors
    /// As [`crate::HybridReconstructor::reconstruct`]: [`Error::NoAngles`],
    /// [`Error::Shape`], [`Error::NoBatchNorm`], [`Error::ClassOutOfRange`],
    /// [`Error::Tomo`]; [`Error::NonFinite`] if the objective or its gradient diverges.
    pub fn reconstruct<N, O>(
        &self,
        net: &N,
        op: &O,
        sinogram: ArrayView2<f32>,
        label: LabelMode,
        initial: Option<ArrayView2<f32>>,
        monitor: &mut Monitor<'_, Array2<f32>>,
    ) -> Result<ClassPriorReconstruction>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        let initial = initial.map(|x| [x]);
        let x = self.check_and_stack(
            net,
            op,
            &[sinogram],
            &[label],
            initial.as_ref().map(|x| &x[..]),
        )?;
        let mut observe = |_: usize, state: &IterState, x: ArrayView2<f32>| {
            Ok(monitor.after_iteration(state, &x.to_owned())?)
        };
        let sinogram = sinogram.insert_axis(Axis(2));
        let mut out = self.run(net, op, sinogram, x, &[label], &mut observe)?;
        let mut rec = out.pop().expect("a batch of one image gives one result");
        finish(&mut rec, monitor)?;
        Ok(rec)
    }

    /// Reconstructs every sinogram of a batch (`labels[k]` for sinogram `k`, `initial[k]`
    /// or zero as its start): the result of [`reconstruct`](Self::reconstruct) for each,
    /// up to rounding, with one network batch and one batched projection pair per
    /// iteration. BatchNorm statistics are per image, so the images do not interact; each
    /// stops on its own relative change.
    ///
    /// # Errors
    /// As [`reconstruct`](Self::reconstruct), plus [`Error::Shape`] if `sinograms` is
    /// empty or `labels` / `initial` have another length.
    pub fn reconstruct_batch<N, O>(
        &self,
        net: &N,
        op: &O,
        sinograms: &[ArrayView2<f32>],
        labels: &[LabelMode],
        initial: Option<&[ArrayView2<f32>]>,
    ) -> Result<Vec<ClassPriorReconstruction>>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        let x = self.check_and_stack(net, op, sinograms, labels, initial)?;
        let sinograms = stack_images(sinograms)?;
        let mut quiet = |_: usize, _: &IterState, _: ArrayView2<f32>| Ok(None);
        let mut out = self.run(net, op, sinograms.view(), x, labels, &mut quiet)?;
        for rec in &mut out {
            finish(rec, &mut Monitor::new())?;
        }
        Ok(out)
    }

    /// Checks the network, the scan, the labels and the data, and returns the starting
    /// images `[rows, cols, batch]` (clipped to the box).
    fn check_and_stack<N, O>(
        &self,
        net: &N,
        op: &O,
        sinograms: &[ArrayView2<f32>],
        labels: &[LabelMode],
        initial: Option<&[ArrayView2<f32>]>,
    ) -> Result<Array3<f32>>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        check_scan(net, op)?;
        let cfg = &self.cfg;
        let w = cfg.weights();
        if w.bn > 0.0 && !net.has_batch_norm() {
            return Err(Error::NoBatchNorm { weight: w.bn });
        }
        let batch = sinograms.len();
        let count = |what: &'static str, n: usize| {
            if n == batch && batch > 0 {
                Ok(())
            } else {
                Err(Error::Shape {
                    what,
                    expected: format!("{batch} (one per sinogram, at least one)"),
                    got: n.to_string(),
                })
            }
        };
        count("labels", labels.len())?;
        for label in labels {
            if let LabelMode::Oracle(c) = *label {
                check_class(net, c)?;
            }
        }
        for b in sinograms {
            op.check_range_array(*b)?;
        }
        let shape = op.domain_shape();
        let clip = |v: f32| v.clamp(cfg.min, cfg.max);
        match initial {
            Some(init) => {
                count("initial images", init.len())?;
                if let Some(bad) = init.iter().find(|x| x.dim() != shape) {
                    return Err(Error::Shape {
                        what: "initial image",
                        expected: format!("{shape:?}"),
                        got: format!("{:?}", bad.dim()),
                    });
                }
                Ok(stack_images(init)?.mapv(clip))
            }
            None => Ok(Array3::from_elem((shape.0, shape.1, batch), clip(0.0))),
        }
    }

    /// The iterations on a batch: `sinograms` `[angles, detectors, batch]`, `x` the
    /// starting images `[rows, cols, batch]`. After every iteration, `observe(k, state,
    /// image)` is called for each image still running and may stop it; the per-image stop
    /// bookkeeping is netinv-core's [`BatchProgress`]. Returns each image as it was when
    /// it stopped; its state holds the reason.
    fn run<N, O>(
        &self,
        net: &N,
        op: &O,
        sinograms: ArrayView3<f32>,
        mut x: Array3<f32>,
        labels: &[LabelMode],
        observe: &mut Observe<'_>,
    ) -> Result<Vec<ClassPriorReconstruction>>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        let cfg = &self.cfg;
        let w = cfg.weights();
        let (rows, cols, batch) = x.dim();
        let sinograms = sinograms.as_standard_layout();
        let norm = op.norm_estimate(cfg.power_iterations, cfg.seed);
        let tau = (cfg.step_scale / (norm * norm).max(f64::MIN_POSITIVE)) as f32;
        let mut residual = Array3::<f32>::zeros(sinograms.dim());
        let mut data_grad = Array3::<f32>::zeros(x.dim());
        let fixed: Vec<Option<u32>> = labels
            .iter()
            .map(|l| match l {
                LabelMode::Oracle(c) => Some(*c),
                LabelMode::Predicted => None,
            })
            .collect();
        let mut progress: BatchProgress<(Array2<f32>, Option<u32>)> =
            BatchProgress::new(batch, cfg.iterations);
        for i in 1.. {
            op.apply_batch_into(x.view(), residual.view_mut());
            residual -= &sinograms;
            op.adjoint_batch_into(residual.view(), data_grad.view_mut());
            let mut data = vec![0.0f64; batch];
            for r in residual.as_slice().unwrap_or(&[]).chunks_exact(batch) {
                for (d, &r) in data.iter_mut().zip(r) {
                    *d += f64::from(r) * f64::from(r);
                }
            }
            data.iter_mut().for_each(|d| *d *= 0.5);
            // the network sees the images as [b, 1, rows, cols]
            let images = x.view().permuted_axes([2, 0, 1]);
            let images = Tensor::from_vec(
                images.iter().copied().collect::<Vec<f32>>(),
                (batch, 1, rows, cols),
                &Device::Cpu,
            )?;
            let terms = net_terms_gradient(net, &images, &fixed, w)?;
            let net_grad = ArrayView3::from_shape((batch, rows, cols), &terms.gradient)
                .map_err(|e| Error::Shape {
                    what: "network gradient",
                    expected: format!("{:?}", (batch, rows, cols)),
                    got: e.to_string(),
                })?
                .permuted_axes([1, 2, 0]);
            if terms.gradient.iter().any(|g| !g.is_finite()) {
                return Err(Error::NonFinite {
                    what: "gradient",
                    iteration: i,
                });
            }
            let (mut change, mut size) = (vec![0.0f64; batch], vec![0.0f64; batch]);
            Zip::indexed(&mut x)
                .and(&data_grad)
                .and(net_grad)
                .for_each(|(_, _, k), x, &g, &h| {
                    let v = (*x - tau * (g + h)).clamp(cfg.min, cfg.max);
                    change[k] += f64::from(v - *x).powi(2);
                    size[k] += f64::from(v).powi(2);
                    *x = v;
                });
            let costs: Vec<f64> = data.iter().zip(&terms.values).map(|(d, v)| d + v).collect();
            if progress.running_members().any(|k| !costs[k].is_finite()) {
                return Err(Error::NonFinite {
                    what: "objective",
                    iteration: i,
                });
            }
            let class = |k: usize| match (w.class > 0.0, &terms.predicted) {
                (false, _) => None,
                (true, predicted) => fixed[k].or(predicted.as_ref().map(|p| p[k])),
            };
            progress.end_iteration(
                &costs,
                Some(("residual", &data)),
                |k, state| {
                    let converged = cfg
                        .relative_change
                        .is_some_and(|r| change[k].sqrt() <= r * size[k].sqrt());
                    Ok::<_, Error>(match observe(k, state, x.index_axis(Axis(2), k))? {
                        Some(reason) => Some(reason),
                        None if converged => Some(Termination::Converged),
                        None if i >= cfg.iterations => Some(Termination::MaxIterations),
                        None => None,
                    })
                },
                |k| (x.index_axis(Axis(2), k).to_owned(), class(k)),
            )?;
            if !progress.running() {
                break;
            }
        }
        // every image has stopped here; `finish` only hands out the results
        Ok(progress
            .finish(
                |k| (x.index_axis(Axis(2), k).to_owned(), None),
                Termination::MaxIterations,
            )
            .into_iter()
            .map(|stopped| {
                let mut state = stopped.state;
                state.termination = Some(stopped.reason);
                let (image, class) = stopped.iterate;
                ClassPriorReconstruction {
                    image,
                    class,
                    state,
                }
            })
            .collect())
    }
}

/// Tells `monitor` that the run of `rec` has ended, with the reason `run` recorded.
fn finish(
    rec: &mut ClassPriorReconstruction,
    monitor: &mut Monitor<'_, Array2<f32>>,
) -> Result<()> {
    let reason = rec
        .state
        .termination
        .take()
        .unwrap_or(Termination::MaxIterations);
    monitor.finish(&mut rec.state, reason, &rec.image)?;
    Ok(())
}
