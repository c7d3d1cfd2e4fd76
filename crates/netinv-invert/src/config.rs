//! The settings of an inversion: the image optimiser and [`InversionConfig`].

use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{
    AnisotropicTv, BnStatsPrior, IsotropicTv, Jitter, L2Norm, Reduction, Result, SquaredTv,
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
    /// L-BFGS with a fixed step `lr` and no line search, one gradient per update (PyTorch's
    /// `LBFGS` with `line_search_fn=None`; the first step is scaled by `min(1, 1 / |g|_1)`):
    /// ```text
    /// x = x - lr * H g,  H from the newest `history` pairs (s, y) with y . s > 1e-10
    /// ```
    Lbfgs {
        /// Curvature pairs kept (>= 1), PyTorch's default 100; 10 is common.
        history: usize,
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
    /// Batch reduction of the class loss built by [`crate::Inverter::invert_classes`], default
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
    /// [`crate::Error::InvalidConfig`] naming the first invalid field.
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
            ImageOptimizer::Lbfgs { history } => {
                if history == 0 {
                    return Err(invalid("optimizer.history", "must be at least 1"));
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
        let weight = |field: &'static str, value: f64| {
            invalid(field, format!("{value} is not a finite weight >= 0"))
        };
        SquaredTv::new(self.tv).map_err(|_| weight("tv", self.tv))?;
        AnisotropicTv::new(self.tv_l1).map_err(|_| weight("tv_l1", self.tv_l1))?;
        IsotropicTv::new(self.tv_isotropic, self.tv_isotropic_eps).map_err(|_| {
            invalid(
                "tv_isotropic",
                format!(
                    "weight {} must be finite >= 0 and tv_isotropic_eps {} > 0",
                    self.tv_isotropic, self.tv_isotropic_eps
                ),
            )
        })?;
        L2Norm::new(self.l2).map_err(|_| weight("l2", self.l2))?;
        BnStatsPrior::new(self.bn).map_err(|_| weight("bn", self.bn))?;
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
