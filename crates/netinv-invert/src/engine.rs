//! The inversion optimiser: the image batch is the only variable.

use candle_core::{Device, Tensor};
use ndarray::Array4;
use netinv_core::{IterState, Monitor, StopRule, Termination};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{
    AnisotropicTv, CrossEntropy, InversionConfig, InversionRun, InvertibleNet, IsotropicTv, L2Norm,
    Objective, Prior, Result, SquaredTv,
};

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
pub(crate) fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// Stops once every image's target probability reaches `threshold` (reads the metric
/// `target_prob_min` that [`InversionRun::step`] records when the objective has targets).
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

    /// The priors the config switches on, in a fixed order (squared TV, L1 TV, isotropic
    /// TV, L2).
    pub(crate) fn config_priors(&self) -> Result<Vec<Box<dyn Prior>>> {
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

    /// The priors added with [`Inverter::with_prior`].
    pub(crate) fn extra_priors(&self) -> impl Iterator<Item = &dyn Prior> {
        self.extra.iter().map(|p| p.as_ref() as &dyn Prior)
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

    /// Prepares an inversion of `net` that minimises `objective(net(x)) + priors(x)` over
    /// the images `x`, starting from `init` `[b, c, h, w]` (any float dtype; the run is in
    /// f32). Advance it with [`InversionRun::step`], end it with [`InversionRun::finish`].
    ///
    /// # Errors
    /// [`Error::Shape`] when `init` does not match the network input or the objective's
    /// batch, [`Error::TargetOutOfRange`] for a class the network lacks,
    /// [`Error::NoBatchNorm`] when `cfg.bn > 0` for a network without BatchNorm,
    /// [`Error::NonFinite`] for a NaN / infinite start.
    pub fn start<'a, N: InvertibleNet + ?Sized>(
        &'a self,
        net: &'a N,
        objective: impl Objective + 'a,
        init: &Tensor,
    ) -> Result<InversionRun<'a, N>> {
        InversionRun::new(self, net, Box::new(objective), init)
    }

    /// Runs the inversion: [`Inverter::start`], then [`InversionRun::step`] until a stop
    /// rule of `monitor` fires or `cfg.steps` updates are done, then
    /// [`InversionRun::finish`].
    ///
    /// # Errors
    /// As [`Inverter::start`] and [`InversionRun::step`]: [`Error::NonFinite`] for a NaN /
    /// infinite loss or gradient, errors of the network and of observers.
    pub fn run<N: InvertibleNet + ?Sized>(
        &self,
        net: &N,
        objective: &dyn Objective,
        init: &Tensor,
        monitor: &mut Monitor<'_, Tensor>,
    ) -> Result<Inversion> {
        let mut run = self.start(net, objective, init)?;
        while run.step(monitor)?.is_none() {}
        run.finish(monitor)
    }
}
