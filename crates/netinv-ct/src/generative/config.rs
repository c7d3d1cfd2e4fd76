//! The settings of the latent search and of the data-consistency refinement.

use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::Result;

/// Settings of a [`crate::generative::LatentSearch`]: Adam on the latent codes of
/// `min_z ||A D(z, c) - b||^2 + prior_weight ||z||^2`, several starts per class, all
/// chains of all digits as one batch, with successive halving over the classes.
///
/// Defaults: 3 starts, 120 steps, all classes for the first 40 steps then the best 3,
/// prior weight 1, lr 0.2 falling to 0.02 by a cosine, random starts N(0, 1), 512 chains
/// per decoder call, seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatentSearchConfig {
    /// Starts per class (>= 1): start 0 is `z = 0`, the others `N(0, start_scale^2 I)`
    /// draws, the same draws for every digit and class.
    pub starts: usize,
    /// Adam steps of every surviving chain (>= 1).
    pub steps: usize,
    /// Steps on every class before only the best `keep_classes` classes of each digit go
    /// on (label-free search with a conditional decoder; `>= steps`: no pruning).
    pub explore_steps: usize,
    /// Classes per digit kept after `explore_steps` (>= 1).
    pub keep_classes: usize,
    /// Weight `lambda >= 0` of the latent prior term `lambda ||z||^2`.
    pub prior_weight: f32,
    /// Adam learning rate at the first step (finite, > 0).
    pub lr: f64,
    /// Learning rate at the last step (cosine schedule; finite, > 0).
    pub lr_end: f64,
    /// Standard deviation of the random starts (finite, >= 0).
    pub start_scale: f32,
    /// Chains per decoder call (>= 1; memory only, no effect on results).
    pub chunk: usize,
    /// Seed of the random starts.
    pub seed: u64,
}

impl Default for LatentSearchConfig {
    fn default() -> Self {
        Self {
            starts: 3,
            steps: 120,
            explore_steps: 40,
            keep_classes: 3,
            prior_weight: 1.0,
            lr: 0.2,
            lr_end: 0.02,
            start_scale: 1.0,
            chunk: 512,
            seed: 0,
        }
    }
}

impl LatentSearchConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("starts", self.starts),
            ("steps", self.steps),
            ("keep_classes", self.keep_classes),
            ("chunk", self.chunk),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        if !(self.prior_weight.is_finite() && self.prior_weight >= 0.0) {
            return Err(invalid(
                "prior_weight",
                format!("must be finite and >= 0, got {}", self.prior_weight),
            ));
        }
        for (field, v) in [("lr", self.lr), ("lr_end", self.lr_end)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(field, format!("must be finite and > 0, got {v}")));
            }
        }
        if !(self.start_scale.is_finite() && self.start_scale >= 0.0) {
            return Err(invalid(
                "start_scale",
                format!("must be finite and >= 0, got {}", self.start_scale),
            ));
        }
        Ok(())
    }

    /// The learning rate of step `t` (0-based): cosine from `lr` to `lr_end`.
    pub fn lr_at(&self, t: usize) -> f64 {
        let phase = if self.steps > 1 {
            t as f64 / (self.steps - 1) as f64
        } else {
            0.0
        };
        self.lr_end + 0.5 * (self.lr - self.lr_end) * (1.0 + (std::f64::consts::PI * phase).cos())
    }
}

/// Settings of the data-consistency refinement of a decoded image `x0 = D(z*, c*)`:
///
/// ```text
/// minimise  0.5 ||A x - b||^2 + anchor / 2 ||x - x0||^2 + tv_weight TV(x),  x in [0, 1]
/// ```
///
/// by PDHG (`netinv_tomo::TvPdhg::start_batch_anchored`). With `anchor > 0` it starts
/// from `x0` and runs `iterations`; with `anchor = 0` the problem is the TV baseline's,
/// and it runs exactly as the TV arm does (from zero, `tv_iterations`), so with the TV
/// arm's weight it gives the TV arm's image bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RefineConfig {
    /// Weight `mu >= 0` of the anchor term.
    pub anchor: f32,
    /// TV weight `>= 0`.
    pub tv_weight: f32,
    /// PDHG iterations with `anchor > 0` (>= 1).
    pub iterations: usize,
    /// PDHG iterations with `anchor = 0`, those of the TV arm (>= 1).
    pub tv_iterations: usize,
}

impl RefineConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [("anchor", self.anchor), ("tv_weight", self.tv_weight)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(field, format!("must be finite and >= 0, got {v}")));
            }
        }
        if self.iterations == 0 || self.tv_iterations == 0 {
            return Err(invalid("iterations", "must be at least 1"));
        }
        Ok(())
    }
}
