//! A prepared inversion that advances one update at a time ([`InversionRun`]).

use std::collections::BTreeSet;

use candle_core::{DType, Device, Tensor, Var};
use ndarray::Array4;
use netinv_core::{IterState, Monitor, Termination};

use netinv_models::bridge::tensor_to_array4;
use netinv_models::train::{AdamParams, HostAdam, HostSgd, SgdParams};

use crate::engine::{Inversion, Snapshot, StepRecord};
use crate::lbfgs::HostLbfgs;
use crate::prior::{roll_image, total_penalty};
use crate::{
    BnStatsPrior, Error, ImageOptimizer, InversionConfig, Inverter, InvertibleNet, JitterShifts,
    Objective, Prior, Result,
};
use netinv_models::train::softmax_rows;

/// The image optimiser (netinv-models' host Adam / SGD, or this crate's L-BFGS, on the f32
/// pixels, f64 arithmetic) and the clamp after every update.
#[derive(Debug, Clone)]
enum ImageStep {
    Adam(HostAdam),
    Sgd(HostSgd),
    Lbfgs(HostLbfgs),
}

impl ImageStep {
    /// A fresh optimiser for `n` pixels as `cfg` says (no moments, step count 0).
    fn new(cfg: &InversionConfig, n: usize) -> Self {
        match cfg.optimizer {
            ImageOptimizer::Adam { beta1, beta2, eps } => ImageStep::Adam(HostAdam::new(
                n,
                AdamParams {
                    lr: cfg.lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay: 0.0,
                },
            )),
            ImageOptimizer::Sgd { momentum } => ImageStep::Sgd(HostSgd::new(
                n,
                SgdParams {
                    lr: cfg.lr,
                    momentum,
                    nesterov: false,
                    weight_decay: 0.0,
                },
            )),
            ImageOptimizer::Lbfgs { history } => ImageStep::Lbfgs(HostLbfgs::new(cfg.lr, history)),
        }
    }

    /// One update of the host image `xs` with gradient `grad`, then the clamp of `cfg`.
    fn update(&mut self, cfg: &InversionConfig, xs: &mut [f32], grad: &[f32]) -> Result<()> {
        match self {
            ImageStep::Adam(adam) => adam.step(xs, grad)?,
            ImageStep::Sgd(sgd) => sgd.step(xs, grad)?,
            ImageStep::Lbfgs(lbfgs) => {
                if xs.len() != grad.len() {
                    return Err(Error::Shape {
                        expected: format!("{} gradient values", xs.len()),
                        got: grad.len().to_string(),
                    });
                }
                lbfgs.step(xs, grad);
            }
        }
        if let Some([lo, hi]) = cfg.clamp {
            for value in xs.iter_mut() {
                *value = value.clamp(lo, hi);
            }
        }
        Ok(())
    }
}

/// The loss terms of the images before one update.
struct Evaluation {
    output: Tensor,
    objective: Tensor,
    total_value: f64,
    terms: Vec<(String, f64)>,
}

/// A prepared inversion (from [`Inverter::start`]): the image batch (the only variable),
/// the optimiser state, the objective, the priors, the snapshots, the history and the
/// [`IterState`]. [`InversionRun::step`] does one update and reports it to a
/// [`Monitor`]; [`InversionRun::finish`] ends the run and returns the [`Inversion`].
/// [`Inverter::run`] is `start`, `step` until a stop, `finish`.
///
/// Between steps the iterate can be read ([`InversionRun::images`]) and replaced
/// ([`InversionRun::set_images`]), so that another solver can alternate with the inversion
/// on the same images.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_core::Monitor;
/// use netinv_invert::{CrossEntropy, InversionConfig, Inverter, InvertibleNet, Reduction, Result};
///
/// /// logits = (s - 2, 2 - s), s = sum of the pixels of a 2x2 image.
/// struct Sum;
/// impl InvertibleNet for Sum {
///     fn input_dims(&self) -> (usize, usize, usize) { (1, 2, 2) }
///     fn outputs(&self) -> usize { 2 }
///     fn forward(&self, x: &Tensor) -> Result<Tensor> {
///         let s = x.flatten_from(1)?.sum_keepdim(1)?.affine(1.0, -2.0)?;
///         Ok(Tensor::cat(&[&s, &s.neg()?], 1)?)
///     }
/// }
/// let inverter = Inverter::new(InversionConfig { steps: 10, ..Default::default() })?;
/// let objective = CrossEntropy::new(vec![0], Reduction::Mean);
/// let start = Tensor::full(0.5f32, (1, 1, 2, 2), &Device::Cpu)?;
/// let mut monitor = Monitor::new();
/// let mut run = inverter.start(&Sum, objective, &start)?;
/// for _ in 0..5 {
///     run.step(&mut monitor)?;
/// }
/// // another solver may change the images between steps
/// let darker = (run.images() * 0.9)?;
/// run.set_images(&darker)?;
/// while run.step(&mut monitor)?.is_none() {}
/// let out = run.finish(&mut monitor)?;
/// assert_eq!(out.history.len(), 10);
/// assert_eq!(out.predictions(), vec![0]);
/// # Ok::<(), netinv_invert::Error>(())
/// ```
pub struct InversionRun<'a, N: InvertibleNet + ?Sized> {
    inverter: &'a Inverter,
    net: &'a N,
    objective: Box<dyn Objective + 'a>,
    targets: Option<Vec<u32>>,
    owned_priors: Vec<Box<dyn Prior>>,
    bn_prior: Option<BnStatsPrior>,
    jitter: Option<JitterShifts>,
    snapshot_at: BTreeSet<usize>,
    shape: (usize, usize, usize, usize),
    device: Device,
    x: Var,
    xs: Vec<f32>,
    optimizer: ImageStep,
    initial: Array4<f32>,
    state: IterState,
    history: Vec<StepRecord>,
    snapshots: Vec<Snapshot>,
    stop: Option<Termination>,
}

impl<N: InvertibleNet + ?Sized> std::fmt::Debug for InversionRun<'_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InversionRun")
            .field("inverter", self.inverter)
            .field("objective", &self.objective.name())
            .field("shape", &self.shape)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Checks that `dims` is a non-empty batch of `net` inputs; returns the batch shape.
fn batch_shape<N: InvertibleNet + ?Sized>(
    net: &N,
    dims: &[usize],
) -> Result<(usize, usize, usize, usize)> {
    let (c, h, w) = net.input_dims();
    if dims.len() != 4 || dims[1..] != [c, h, w] || dims[0] == 0 {
        return Err(Error::Shape {
            expected: format!("[b >= 1, {c}, {h}, {w}]"),
            got: format!("{dims:?}"),
        });
    }
    Ok((dims[0], c, h, w))
}

/// The pixels of `images` as host f32, refused if any is NaN or infinite.
fn finite_pixels(images: &Tensor, what: &'static str, iteration: usize) -> Result<Vec<f32>> {
    let xs = images
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if xs.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what, iteration });
    }
    Ok(xs)
}

impl<'a, N: InvertibleNet + ?Sized> InversionRun<'a, N> {
    /// Checks the inputs and prepares the run (see [`Inverter::start`]).
    pub(crate) fn new(
        inverter: &'a Inverter,
        net: &'a N,
        objective: Box<dyn Objective + 'a>,
        init: &Tensor,
    ) -> Result<Self> {
        let cfg = inverter.config();
        let shape = batch_shape(net, init.dims())?;
        objective.check(shape.0, net.outputs())?;
        if cfg.bn > 0.0 && !net.has_batch_norm() {
            return Err(Error::NoBatchNorm);
        }
        let device = init.device().clone();
        let xs = finite_pixels(init, "initial image", 0)?;
        let x = Var::from_tensor(&Tensor::from_vec(xs.clone(), shape, &device)?)?;
        let initial = tensor_to_array4(x.as_tensor())?;
        let bn_prior = (cfg.bn > 0.0)
            .then(|| BnStatsPrior::new(cfg.bn))
            .transpose()?;
        let snapshot_at: BTreeSet<usize> = cfg.snapshots.iter().copied().collect();
        Ok(Self {
            inverter,
            net,
            targets: objective.targets().map(<[u32]>::to_vec),
            objective,
            owned_priors: inverter.config_priors()?,
            bn_prior,
            jitter: cfg.jitter.map(|j| j.shifts()),
            snapshots: Vec::with_capacity(snapshot_at.len()),
            snapshot_at,
            shape,
            device,
            optimizer: ImageStep::new(cfg, xs.len()),
            x,
            xs,
            initial,
            state: IterState::new(cfg.steps),
            history: Vec::with_capacity(cfg.steps),
            stop: None,
        })
    }

    /// The current images `[b, c, h, w]` (f32; after the latest update).
    pub fn images(&self) -> &Tensor {
        self.x.as_tensor()
    }

    /// The current images as a host array `[b, c, h, w]`.
    ///
    /// # Errors
    /// Never in practice: the shape is the run's own.
    pub fn images_array(&self) -> Result<Array4<f32>> {
        Array4::from_shape_vec(self.shape, self.xs.clone()).map_err(|e| Error::Shape {
            expected: format!("{:?}", self.shape),
            got: e.to_string(),
        })
    }

    /// Replaces the current images (any float dtype; stored as f32) before the next step.
    /// The optimiser state is kept (see [`InversionRun::reset_optimizer`]); the clamp is
    /// not applied to the new images.
    ///
    /// # Errors
    /// [`Error::Shape`] unless `images` has the run's shape `[b, c, h, w]`;
    /// [`Error::NonFinite`] for a NaN or infinite pixel.
    pub fn set_images(&mut self, images: &Tensor) -> Result<()> {
        let (b, c, h, w) = self.shape;
        if images.dims() != [b, c, h, w] {
            return Err(Error::Shape {
                expected: format!("{:?}", [b, c, h, w]),
                got: format!("{:?}", images.dims()),
            });
        }
        self.xs = finite_pixels(images, "replacement image", self.state.iteration)?;
        self.x.set(&Tensor::from_vec(
            self.xs.clone(),
            self.shape,
            &self.device,
        )?)?;
        Ok(())
    }

    /// Replaces the objective before the next step (for example with new target classes).
    ///
    /// # Errors
    /// As [`Objective::check`] for the run's batch and network.
    pub fn set_objective(&mut self, objective: impl Objective + 'a) -> Result<()> {
        objective.check(self.shape.0, self.net.outputs())?;
        self.targets = objective.targets().map(<[u32]>::to_vec);
        self.objective = Box::new(objective);
        Ok(())
    }

    /// Forgets the optimiser's moments and restarts Adam's bias correction, so that the
    /// next steps are those of a fresh run from the current images (the iteration count,
    /// history, snapshots and jitter sequence go on).
    pub fn reset_optimizer(&mut self) {
        self.optimizer = ImageStep::new(self.inverter.config(), self.xs.len());
    }

    /// The iteration state after the latest step.
    pub fn state(&self) -> &IterState {
        &self.state
    }

    /// One record per step so far.
    pub fn history(&self) -> &[StepRecord] {
        &self.history
    }

    /// The loss of the current images, their gradient on the host, and the network output.
    fn evaluate(&mut self) -> Result<(Evaluation, Vec<f32>)> {
        let t = self.state.iteration + 1;
        let current = self.x.as_tensor();
        let input = match self.jitter.as_mut().and_then(Iterator::next) {
            Some((dy, dx)) => roll_image(current, dy, dx)?,
            None => current.clone(),
        };
        let (output, stats) = match (&self.bn_prior, self.inverter.config().bn_per_image) {
            (Some(_), true) => self.net.forward_with_image_bn_stats(&input)?,
            (Some(_), false) => self.net.forward_with_bn_stats(&input)?,
            (None, _) => (self.net.forward(&input)?, Vec::new()),
        };
        let objective = self.objective.loss(&output)?;
        let priors: Vec<&dyn Prior> = self
            .owned_priors
            .iter()
            .map(|p| p.as_ref())
            .chain(self.inverter.extra_priors())
            .collect();
        let (prior_sum, mut terms) = total_penalty(&priors, current)?;
        let mut total = (objective.to_dtype(DType::F32)? + prior_sum.to_dtype(DType::F32)?)?;
        if let Some(bn) = &self.bn_prior {
            let r = bn.penalty(&stats)?.to_dtype(DType::F32)?;
            terms.push(("bn".to_string(), f64::from(r.to_scalar::<f32>()?)));
            total = (total + r)?;
        }
        let total_value = f64::from(total.to_scalar::<f32>()?);
        if !total_value.is_finite() {
            return Err(Error::NonFinite {
                what: "loss",
                iteration: t - 1,
            });
        }
        let grads = total.backward()?;
        let grad = match grads.get(current) {
            Some(g) => g.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0f32; self.xs.len()],
        };
        if grad.iter().any(|g| !g.is_finite()) {
            return Err(Error::NonFinite {
                what: "gradient",
                iteration: t - 1,
            });
        }
        let eval = Evaluation {
            output,
            objective,
            total_value,
            terms,
        };
        Ok((eval, grad))
    }

    /// Mean and smallest network probability of the targets (NaN without targets).
    fn target_probabilities(&self, output: &Tensor) -> Result<(f64, f64)> {
        let Some(targets) = &self.targets else {
            return Ok((f64::NAN, f64::NAN));
        };
        let probs = softmax_rows(output)?;
        let p: Vec<f64> = probs
            .iter()
            .zip(targets)
            .map(|(row, &k)| f64::from(row[k as usize]))
            .collect();
        let mean = p.iter().sum::<f64>() / p.len() as f64;
        Ok((mean, p.iter().copied().fold(f64::INFINITY, f64::min)))
    }

    /// One iteration: forward (through the jittered batch if `cfg.jitter` is set), loss,
    /// backward to the images only, one optimiser update, clamp, snapshot, then
    /// `monitor.after_iteration(&state, &images)`. The state's `cost` is the total loss of
    /// the images before the update; its metrics hold `objective`, each prior term, and
    /// `target_prob_mean` / `target_prob_min` when the objective has targets.
    ///
    /// Returns the reason to stop: the first stop rule of `monitor` that fires, else
    /// [`Termination::MaxIterations`] once `cfg.steps` updates are done, else `None`.
    /// The run may still be stepped after a stop (a caller that alternates solvers decides
    /// when it ends); [`InversionRun::finish`] records the latest reason.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a NaN / infinite loss or gradient (the images are then
    /// left as before the step), errors of the network and of observers.
    pub fn step(&mut self, monitor: &mut Monitor<'_, Tensor>) -> Result<Option<Termination>> {
        let t = self.state.iteration + 1;
        let (eval, grad) = self.evaluate()?;
        self.optimizer
            .update(self.inverter.config(), &mut self.xs, &grad)?;
        self.x.set(&Tensor::from_vec(
            self.xs.clone(),
            self.shape,
            &self.device,
        )?)?;
        let (p_mean, p_min) = self.target_probabilities(&eval.output)?;
        let objective_value = f64::from(eval.objective.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        self.state.advance(Some(eval.total_value));
        self.state.set_metric("objective", objective_value);
        for (name, value) in &eval.terms {
            self.state.set_metric(name, *value);
        }
        if self.targets.is_some() {
            self.state.set_metric("target_prob_mean", p_mean);
            self.state.set_metric("target_prob_min", p_min);
        }
        self.history.push(StepRecord {
            iteration: t,
            total: eval.total_value,
            objective: objective_value,
            priors: eval.terms,
            target_prob_mean: p_mean,
            target_prob_min: p_min,
        });
        if self.snapshot_at.contains(&t) {
            self.snapshots.push(Snapshot {
                iteration: t,
                images: self.images_array()?,
            });
        }
        let reason = match monitor.after_iteration(&self.state, self.x.as_tensor())? {
            Some(reason) => Some(reason),
            None => (t >= self.inverter.config().steps).then_some(Termination::MaxIterations),
        };
        if reason.is_some() {
            self.stop.clone_from(&reason);
        }
        Ok(reason)
    }

    /// Ends the run: records the latest stop reason from [`InversionRun::step`] (or
    /// `Termination::Other("finished by the caller")` if no step reported one), tells
    /// `monitor`'s observers, and returns the images with the network's probabilities.
    ///
    /// # Errors
    /// Errors of observers and of the final forward pass.
    pub fn finish(mut self, monitor: &mut Monitor<'_, Tensor>) -> Result<Inversion> {
        let reason = self
            .stop
            .take()
            .unwrap_or_else(|| Termination::Other("finished by the caller".to_string()));
        monitor.finish(&mut self.state, reason, self.x.as_tensor())?;
        let final_x = self.x.as_tensor().detach();
        let probabilities = softmax_rows(&self.net.forward(&final_x)?)?;
        Ok(Inversion {
            images: tensor_to_array4(&final_x)?,
            initial: self.initial,
            snapshots: self.snapshots,
            history: self.history,
            probabilities,
            state: self.state,
        })
    }
}
