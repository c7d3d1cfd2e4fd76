//! The inversion optimiser: the image batch is the only variable.

use std::collections::BTreeSet;

use candle_core::{DType, Device, Tensor, Var};
use ndarray::Array4;
use netinv_core::{IterState, Monitor, StopRule, Termination};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::objective::softmax_rows;
use crate::prior::total_penalty;
use crate::{
    AnisotropicTv, BnStatsPrior, CrossEntropy, Error, InvertibleNet, IsotropicTv, Jitter, L2Norm,
    Objective, Prior, Reduction, Result, SquaredTv,
};

/// The optimiser that updates the images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageOptimizer {
    /// Adam (Kingma and Ba 2015) with bias correction, no weight decay:
    /// ```text
    /// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    /// x = x - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    /// ```
    Adam {
        /// First-moment decay, default 0.9.
        beta1: f64,
        /// Second-moment decay, default 0.999.
        beta2: f64,
        /// Denominator guard, default 1e-8.
        eps: f64,
    },
    /// Gradient descent with heavy-ball momentum (PyTorch's form):
    /// `u = momentum * u + g;  x = x - lr * u`.
    Sgd {
        /// Momentum in [0, 1), 0 for plain gradient descent.
        momentum: f64,
    },
}

impl ImageOptimizer {
    /// Adam with PyTorch's defaults (0.9, 0.999, 1e-8).
    pub fn adam() -> Self {
        ImageOptimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl Default for ImageOptimizer {
    fn default() -> Self {
        Self::adam()
    }
}

/// Settings of an inversion. `Default` gives the reference settings of the inversion
/// study:
///
/// ```text
/// Adam on the image (0.9, 0.999, 1e-8), lr 0.05, 1,000 steps, clamp to [0, 1] after
/// every step, start 0.5 + 0.2 N(0, 1) (seed 0),
/// loss = cross-entropy (mean over the batch) + 1e-3 * squared TV + 1e-4 * ||x||^2
///        (both priors summed over the batch); no L1 / isotropic TV, no BN prior, no jitter.
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InversionConfig {
    /// The image optimiser (default Adam).
    pub optimizer: ImageOptimizer,
    /// Learning rate (> 0), default 0.05.
    pub lr: f64,
    /// Number of updates (>= 1), default 1,000.
    pub steps: usize,
    /// Clamp every pixel to `[lo, hi]` after each update (default `Some([0, 1])`).
    pub clamp: Option<[f32; 2]>,
    /// Mean of the Gaussian start, default 0.5 (not clamped).
    pub init_mean: f32,
    /// Standard deviation of the Gaussian start (>= 0), default 0.2.
    pub init_std: f32,
    /// Seed of the Gaussian start, default 0.
    pub seed: u64,
    /// Batch reduction of the class loss built by [`Inverter::invert_classes`], default
    /// `Mean`. The priors are always summed over the batch, so `Sum` weighs the class loss
    /// `b` times more against them (see [`Reduction`]).
    pub reduction: Reduction,
    /// Weight of the squared-difference TV ([`SquaredTv`]), default 1e-3.
    pub tv: f64,
    /// Weight of the anisotropic L1 TV ([`AnisotropicTv`]), default 0.
    pub tv_l1: f64,
    /// Weight of the isotropic TV ([`IsotropicTv`]), default 0.
    pub tv_isotropic: f64,
    /// Smoothing of the isotropic TV (> 0), default 1e-3.
    pub tv_isotropic_eps: f64,
    /// Weight of the squared L2 norm ([`L2Norm`]), default 1e-4.
    pub l2: f64,
    /// Weight of the BatchNorm statistics prior ([`BnStatsPrior`]), default 0 (off).
    pub bn: f64,
    /// Take the BatchNorm statistics per image (over height and width) instead of over
    /// the whole batch, default `false` (DeepInversion's batch statistics). With `true`
    /// each image of a batch is penalised on its own statistics, so a batch inverts as its
    /// images would one at a time.
    pub bn_per_image: bool,
    /// Random jitter between steps, default `None`.
    pub jitter: Option<Jitter>,
    /// Iterations (1-based, <= steps) after which the images are kept as snapshots;
    /// default none.
    pub snapshots: Vec<usize>,
}

impl Default for InversionConfig {
    fn default() -> Self {
        Self {
            optimizer: ImageOptimizer::adam(),
            lr: 0.05,
            steps: 1000,
            clamp: Some([0.0, 1.0]),
            init_mean: 0.5,
            init_std: 0.2,
            seed: 0,
            reduction: Reduction::Mean,
            tv: 1e-3,
            tv_l1: 0.0,
            tv_isotropic: 0.0,
            tv_isotropic_eps: 1e-3,
            l2: 1e-4,
            bn: 0.0,
            bn_per_image: false,
            jitter: None,
            snapshots: Vec::new(),
        }
    }
}

impl InversionConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first invalid field.
    pub fn validate(&self) -> Result<()> {
        match self.optimizer {
            ImageOptimizer::Adam { beta1, beta2, eps } => {
                if !(0.0..1.0).contains(&beta1) {
                    return Err(invalid(
                        "optimizer.beta1",
                        format!("{beta1} is not in [0, 1)"),
                    ));
                }
                if !(0.0..1.0).contains(&beta2) {
                    return Err(invalid(
                        "optimizer.beta2",
                        format!("{beta2} is not in [0, 1)"),
                    ));
                }
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(invalid("optimizer.eps", format!("{eps} is not > 0")));
                }
            }
            ImageOptimizer::Sgd { momentum } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(invalid(
                        "optimizer.momentum",
                        format!("{momentum} is not in [0, 1)"),
                    ));
                }
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid(
                "lr",
                format!("{} is not a finite value > 0", self.lr),
            ));
        }
        if self.steps == 0 {
            return Err(invalid("steps", "must be at least 1"));
        }
        if let Some([lo, hi]) = self.clamp {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(invalid(
                    "clamp",
                    format!("[{lo}, {hi}] is not a finite range with lo < hi"),
                ));
            }
        }
        if !self.init_mean.is_finite() {
            return Err(invalid("init_mean", "must be finite"));
        }
        if !(self.init_std.is_finite() && self.init_std >= 0.0) {
            return Err(invalid(
                "init_std",
                format!("{} is not a finite value >= 0", self.init_std),
            ));
        }
        SquaredTv::new(self.tv).map_err(|_| invalid("tv", "must be a finite weight >= 0"))?;
        AnisotropicTv::new(self.tv_l1)
            .map_err(|_| invalid("tv_l1", "must be a finite weight >= 0"))?;
        IsotropicTv::new(self.tv_isotropic, self.tv_isotropic_eps).map_err(|_| {
            invalid(
                "tv_isotropic",
                "weight must be finite >= 0 and tv_isotropic_eps > 0",
            )
        })?;
        L2Norm::new(self.l2).map_err(|_| invalid("l2", "must be a finite weight >= 0"))?;
        BnStatsPrior::new(self.bn).map_err(|_| invalid("bn", "must be a finite weight >= 0"))?;
        if let Some(j) = &self.jitter {
            j.validate()?;
        }
        if let Some(&bad) = self.snapshots.iter().find(|&&s| s == 0 || s > self.steps) {
            return Err(invalid(
                "snapshots",
                format!("iteration {bad} is not in 1..={}", self.steps),
            ));
        }
        Ok(())
    }
}

/// The images after a chosen iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Completed updates when the snapshot was taken.
    pub iteration: usize,
    /// The images `[b, c, h, w]`.
    pub images: Array4<f32>,
}

/// The loss terms of one step. They are evaluated on the images *before* the update of
/// `iteration` (so the record of iteration 1 belongs to the initial images).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The update this record belongs to (1-based).
    pub iteration: usize,
    /// Objective plus all priors.
    pub total: f64,
    /// The objective alone.
    pub objective: f64,
    /// Each weighted prior term, by name.
    pub priors: Vec<(String, f64)>,
    /// Mean network probability of the targets (NaN when the objective has none).
    pub target_prob_mean: f64,
    /// Smallest network probability of a target (NaN when the objective has none).
    pub target_prob_min: f64,
}

/// The result of an inversion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inversion {
    /// The final images `[b, c, h, w]`.
    pub images: Array4<f32>,
    /// The starting images `[b, c, h, w]`.
    pub initial: Array4<f32>,
    /// The snapshots, in iteration order.
    pub snapshots: Vec<Snapshot>,
    /// One record per update.
    pub history: Vec<StepRecord>,
    /// The network's softmax probabilities `[b][outputs]` for the final images.
    pub probabilities: Vec<Vec<f32>>,
    /// The final iteration state (its `termination` says why the run ended).
    pub state: IterState,
}

impl Inversion {
    /// The network's arg-max class for each final image.
    pub fn predictions(&self) -> Vec<u32> {
        self.probabilities
            .iter()
            .map(|p| argmax(p) as u32)
            .collect()
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// Stops once every image's target probability reaches `threshold` (reads the metric
/// `target_prob_min` that [`Inverter::run`] records when the objective has targets).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetProbability {
    /// Probability in (0, 1] that every image must reach.
    pub threshold: f64,
}

impl StopRule for TargetProbability {
    fn check(&mut self, state: &IterState) -> Option<Termination> {
        let p = *state.metrics.get("target_prob_min")?;
        (p >= self.threshold).then_some(Termination::TargetReached)
    }
}

/// Runs inversions with one [`InversionConfig`] plus any extra priors.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_core::Monitor;
/// use netinv_invert::{InversionConfig, Inverter, InvertibleNet, Result};
///
/// /// A linear "network" on 2x2 images: logits = (s - 2, 2 - s), s = sum of pixels.
/// struct Sum;
/// impl InvertibleNet for Sum {
///     fn input_dims(&self) -> (usize, usize, usize) { (1, 2, 2) }
///     fn outputs(&self) -> usize { 2 }
///     fn forward(&self, x: &Tensor) -> Result<Tensor> {
///         let s = x.flatten_from(1)?.sum_keepdim(1)?.affine(1.0, -2.0)?;
///         Ok(Tensor::cat(&[&s, &s.neg()?], 1)?)
///     }
/// }
/// let inverter = Inverter::new(InversionConfig { steps: 20, ..Default::default() }).unwrap();
/// let out = inverter.invert_classes(&Sum, &[0, 1], None, &Device::Cpu, &mut Monitor::new()).unwrap();
/// // Class 0 wants bright pixels, class 1 dark ones.
/// assert!(out.images.index_axis(ndarray::Axis(0), 0).mean().unwrap() > 0.9);
/// assert!(out.images.index_axis(ndarray::Axis(0), 1).mean().unwrap() < 0.1);
/// assert_eq!(out.predictions(), vec![0, 1]);
/// ```
pub struct Inverter {
    cfg: InversionConfig,
    extra: Vec<Box<dyn Prior + Send + Sync>>,
}

impl std::fmt::Debug for Inverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inverter")
            .field("cfg", &self.cfg)
            .field("extra_priors", &self.extra.len())
            .finish()
    }
}

fn to_array4(x: &Tensor) -> Result<Array4<f32>> {
    let (b, c, h, w) = x.dims4()?;
    let data = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Array4::from_shape_vec((b, c, h, w), data).map_err(|e| Error::Shape {
        expected: format!("[{b}, {c}, {h}, {w}]"),
        got: e.to_string(),
    })
}

impl Inverter {
    /// An inverter with `cfg` (validated).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`InversionConfig::validate`].
    pub fn new(cfg: InversionConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            extra: Vec::new(),
        })
    }

    /// Adds a prior beyond the ones the config switches on. Priors are `Send + Sync` so
    /// that one `Inverter` can serve several threads (for example one image per thread).
    pub fn with_prior(mut self, prior: impl Prior + Send + Sync + 'static) -> Self {
        self.extra.push(Box::new(prior));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &InversionConfig {
        &self.cfg
    }

    /// The seeded Gaussian start `init_mean + init_std * N(0, 1)` of shape `[batch, dims]`,
    /// drawn on the host (candle's CPU RNG cannot be seeded).
    ///
    /// # Errors
    /// A candle error if the tensor cannot be built.
    pub fn gaussian_init(
        &self,
        batch: usize,
        dims: (usize, usize, usize),
        device: &Device,
    ) -> Result<Tensor> {
        let (c, h, w) = dims;
        let mut rng = StdRng::seed_from_u64(self.cfg.seed);
        let normal = Normal::new(0.0f32, 1.0).map_err(|e| invalid("init_std", e.to_string()))?;
        let data: Vec<f32> = (0..batch * c * h * w)
            .map(|_| self.cfg.init_mean + self.cfg.init_std * normal.sample(&mut rng))
            .collect();
        Ok(Tensor::from_vec(data, (batch, c, h, w), device)?)
    }

    fn priors(&self) -> Result<Vec<Box<dyn Prior>>> {
        let c = &self.cfg;
        let mut list: Vec<Box<dyn Prior>> = Vec::new();
        if c.tv > 0.0 {
            list.push(Box::new(SquaredTv::new(c.tv)?));
        }
        if c.tv_l1 > 0.0 {
            list.push(Box::new(AnisotropicTv::new(c.tv_l1)?));
        }
        if c.tv_isotropic > 0.0 {
            list.push(Box::new(IsotropicTv::new(
                c.tv_isotropic,
                c.tv_isotropic_eps,
            )?));
        }
        if c.l2 > 0.0 {
            list.push(Box::new(L2Norm::new(c.l2)?));
        }
        Ok(list)
    }

    /// Inverts `net` towards one class per image with cross-entropy (reduced as
    /// `cfg.reduction`), starting from `init` or, if `None`, from the seeded Gaussian start.
    ///
    /// # Errors
    /// As [`Inverter::run`].
    pub fn invert_classes<N: InvertibleNet + ?Sized>(
        &self,
        net: &N,
        targets: &[u32],
        init: Option<&Tensor>,
        device: &Device,
        monitor: &mut Monitor<'_, Tensor>,
    ) -> Result<Inversion> {
        let objective = CrossEntropy::new(targets.to_vec(), self.cfg.reduction);
        let start = match init {
            Some(x) => x.clone(),
            None => self.gaussian_init(targets.len(), net.input_dims(), device)?,
        };
        self.run(net, &objective, &start, monitor)
    }

    /// Runs the inversion: minimises `objective(net(x)) + priors(x)` over the images `x`,
    /// starting from `init` `[b, c, h, w]` (any float dtype; the run is in f32).
    ///
    /// Each iteration: forward (through the jittered batch if `cfg.jitter` is set), loss,
    /// backward to the images only, one optimiser update, clamp, snapshot, then
    /// `monitor.after_iteration(&state, &x)`. The run ends after `cfg.steps` updates or
    /// when a stop rule of `monitor` fires. The state's `cost` is the total loss of the
    /// images before the update; its metrics hold `objective`, each prior term, and
    /// `target_prob_mean` / `target_prob_min` when the objective has targets.
    ///
    /// # Errors
    /// [`Error::Shape`] when `init` does not match the network input or the objective's
    /// batch, [`Error::TargetOutOfRange`] for a class the network lacks,
    /// [`Error::NoBatchNorm`] when `cfg.bn > 0` for a network without BatchNorm,
    /// [`Error::NonFinite`] for a NaN / infinite start, loss or gradient, errors of the
    /// network and of observers.
    pub fn run<N: InvertibleNet + ?Sized>(
        &self,
        net: &N,
        objective: &dyn Objective,
        init: &Tensor,
        monitor: &mut Monitor<'_, Tensor>,
    ) -> Result<Inversion> {
        let cfg = &self.cfg;
        let (c, h, w) = net.input_dims();
        let dims = init.dims().to_vec();
        if dims.len() != 4 || dims[1..] != [c, h, w] || dims[0] == 0 {
            return Err(Error::Shape {
                expected: format!("[b >= 1, {c}, {h}, {w}]"),
                got: format!("{dims:?}"),
            });
        }
        let batch = dims[0];
        objective.check(batch, net.outputs())?;
        if cfg.bn > 0.0 && !net.has_batch_norm() {
            return Err(Error::NoBatchNorm);
        }
        let device = init.device().clone();
        let mut xs = init.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        if xs.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "initial image",
                iteration: 0,
            });
        }
        let shape = (batch, c, h, w);
        let x = Var::from_tensor(&Tensor::from_vec(xs.clone(), shape, &device)?)?;
        let initial = to_array4(x.as_tensor())?;
        let owned = self.priors()?;
        let priors: Vec<&dyn Prior> = owned
            .iter()
            .map(|p| p.as_ref())
            .chain(self.extra.iter().map(|p| p.as_ref() as &dyn Prior))
            .collect();
        let bn_prior = (cfg.bn > 0.0)
            .then(|| BnStatsPrior::new(cfg.bn))
            .transpose()?;
        let mut jitter = cfg.jitter.map(|j| j.shifts());
        let snapshot_at: BTreeSet<usize> = cfg.snapshots.iter().copied().collect();

        let n = xs.len();
        let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
        let mut state = IterState::new(cfg.steps);
        let mut history = Vec::with_capacity(cfg.steps);
        let mut snapshots = Vec::with_capacity(snapshot_at.len());
        let targets = objective.targets().map(<[u32]>::to_vec);
        let reason = loop {
            let t = state.iteration + 1;
            let current = x.as_tensor();
            let input = match jitter.as_mut().and_then(Iterator::next) {
                Some((dy, dx)) => crate::roll_image(current, dy, dx)?,
                None => current.clone(),
            };
            let (output, stats) = if bn_prior.is_some() {
                if cfg.bn_per_image {
                    net.forward_with_image_bn_stats(&input)?
                } else {
                    net.forward_with_bn_stats(&input)?
                }
            } else {
                (net.forward(&input)?, Vec::new())
            };
            let objective_loss = objective.loss(&output)?;
            let (prior_sum, mut terms) = total_penalty(&priors, current)?;
            let mut total =
                (objective_loss.to_dtype(DType::F32)? + prior_sum.to_dtype(DType::F32)?)?;
            if let Some(bn) = &bn_prior {
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
                None => vec![0f32; n],
            };
            if grad.iter().any(|g| !g.is_finite()) {
                return Err(Error::NonFinite {
                    what: "gradient",
                    iteration: t - 1,
                });
            }
            self.update(&mut xs, &grad, &mut m, &mut v, t);
            x.set(&Tensor::from_vec(xs.clone(), shape, &device)?)?;

            let (p_mean, p_min) = match &targets {
                Some(targets) => {
                    let probs = softmax_rows(&output)?;
                    let p: Vec<f64> = probs
                        .iter()
                        .zip(targets)
                        .map(|(row, &k)| f64::from(row[k as usize]))
                        .collect();
                    let mean = p.iter().sum::<f64>() / p.len() as f64;
                    (mean, p.iter().copied().fold(f64::INFINITY, f64::min))
                }
                None => (f64::NAN, f64::NAN),
            };
            let objective_value =
                f64::from(objective_loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
            state.advance(Some(total_value));
            state.set_metric("objective", objective_value);
            for (name, value) in &terms {
                state.set_metric(name, *value);
            }
            if targets.is_some() {
                state.set_metric("target_prob_mean", p_mean);
                state.set_metric("target_prob_min", p_min);
            }
            history.push(StepRecord {
                iteration: t,
                total: total_value,
                objective: objective_value,
                priors: terms,
                target_prob_mean: p_mean,
                target_prob_min: p_min,
            });
            if snapshot_at.contains(&t) {
                snapshots.push(Snapshot {
                    iteration: t,
                    images: Array4::from_shape_vec(shape, xs.clone()).map_err(|e| {
                        Error::Shape {
                            expected: format!("{shape:?}"),
                            got: e.to_string(),
                        }
                    })?,
                });
            }
            if let Some(reason) = monitor.after_iteration(&state, x.as_tensor())? {
                break reason;
            }
            if t >= cfg.steps {
                break Termination::MaxIterations;
            }
        };
        monitor.finish(&mut state, reason, x.as_tensor())?;
        let final_x = x.as_tensor().detach();
        let probabilities = softmax_rows(&net.forward(&final_x)?)?;
        Ok(Inversion {
            images: to_array4(&final_x)?,
            initial,
            snapshots,
            history,
            probabilities,
            state,
        })
    }

    /// One optimiser update of the host image `xs` with gradient `grad` at step `t`, then
    /// the clamp.
    fn update(&self, xs: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], t: usize) {
        let lr = self.cfg.lr;
        match self.cfg.optimizer {
            ImageOptimizer::Adam { beta1, beta2, eps } => {
                let c1 = 1.0 - beta1.powi(t as i32);
                let c2 = 1.0 - beta2.powi(t as i32);
                for i in 0..xs.len() {
                    let g = f64::from(grad[i]);
                    let mi = beta1 * f64::from(m[i]) + (1.0 - beta1) * g;
                    let vi = beta2 * f64::from(v[i]) + (1.0 - beta2) * g * g;
                    m[i] = mi as f32;
                    v[i] = vi as f32;
                    let step = lr * (mi / c1) / ((vi / c2).sqrt() + eps);
                    xs[i] = (f64::from(xs[i]) - step) as f32;
                }
            }
            ImageOptimizer::Sgd { momentum } => {
                for i in 0..xs.len() {
                    let u = momentum * f64::from(m[i]) + f64::from(grad[i]);
                    m[i] = u as f32;
                    xs[i] = (f64::from(xs[i]) - lr * u) as f32;
                }
            }
        }
        if let Some([lo, hi]) = self.cfg.clamp {
            for value in xs.iter_mut() {
                *value = value.clamp(lo, hi);
            }
        }
    }
}
