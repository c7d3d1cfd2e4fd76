//! Training a [`Vae`] with Adam on the negative ELBO.

use std::time::Instant;

use candle_nn::{Optimizer, VarMap};
use netinv_core::{IterState, Monitor, Termination};
use netinv_data::Dataset;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{standard_normal, Vae};
use crate::error::invalid;
use crate::train::{derive_seed, Adam, AdamParams};
use crate::{Error, Result};

/// How a [`Vae`] is trained.
///
/// Defaults: `epochs` 10, `batch_size` 64, `lr` 1e-3 (Adam, betas 0.9 / 0.999, no weight
/// decay), `seed` 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VaeTrainConfig {
    /// Passes over the training set (> 0).
    pub epochs: usize,
    /// Images per Adam step (> 0).
    pub batch_size: usize,
    /// Adam learning rate (finite, > 0).
    pub lr: f64,
    /// Seed of the shuffling and of the reparameterisation noise.
    pub seed: u64,
}

impl Default for VaeTrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            seed: 0,
        }
    }
}

impl VaeTrainConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(invalid("epochs", "must be > 0"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be > 0"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid(
                "lr",
                format!("must be finite and > 0, got {}", self.lr),
            ));
        }
        Ok(())
    }
}

/// What one training epoch achieved (nats per image); `epoch` counts from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeEpoch {
    /// The epoch number, from 1.
    pub epoch: usize,
    /// Mean ELBO over the epoch's training batches (weights changing during the epoch).
    pub train_elbo: f64,
    /// Mean reconstruction term over the epoch.
    pub train_recon: f64,
    /// Mean KL term over the epoch.
    pub train_kl: f64,
    /// ELBO on the evaluation set after the epoch (one seeded sample per image), if one was
    /// given.
    pub test_elbo: Option<f64>,
    /// Wall-clock seconds of the epoch's training steps (evaluation excluded).
    pub seconds: f64,
}

/// The outcome of [`VaeTrainer::fit`].
#[derive(Debug, Clone)]
pub struct VaeReport {
    /// One record per completed epoch.
    pub history: Vec<VaeEpoch>,
    /// The final state: `iteration` = completed epochs, `cost` = last negative train ELBO.
    pub state: IterState,
}

/// Trains a [`Vae`] with Adam on the negative ELBO; one [`Monitor`] iteration per epoch.
#[derive(Debug, Clone)]
pub struct VaeTrainer {
    cfg: VaeTrainConfig,
}

const SHUFFLE_STREAM: u64 = 0;
const NOISE_STREAM: u64 = 1;
const EVAL_STREAM: u64 = 2;

impl VaeTrainer {
    /// A trainer for `cfg` (validated).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid `cfg`.
    pub fn new(cfg: VaeTrainConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg })
    }

    /// The configuration.
    pub fn config(&self) -> &VaeTrainConfig {
        &self.cfg
    }

    /// Trains `vae` (built by [`Vae::init`] over `varmap`) on the images of `train`, in an
    /// order and with noise fixed by `(seed, epoch)`; evaluates the ELBO on `test` after
    /// every epoch if given. A conditional VAE (`n_classes > 0`) is trained on the images
    /// with their labels from `train`. Stop rules of `monitor` may end the run early.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty training set or, for a conditional VAE, a label
    /// `>= n_classes` (in `train` or `test`); [`Error::NonFiniteLoss`] naming
    /// the epoch and step; an observer's error; [`Error::Shape`] for images of the wrong
    /// size; candle's errors.
    pub fn fit(
        &self,
        vae: &Vae,
        varmap: &VarMap,
        train: &Dataset,
        test: Option<&Dataset>,
        monitor: &mut Monitor<'_, VaeEpoch>,
    ) -> Result<VaeReport> {
        let cfg = &self.cfg;
        if train.is_empty() {
            return Err(invalid("train", "the training set is empty"));
        }
        let device = vae.t[0].device().clone();
        let vars = varmap.all_vars();
        let mut opt = Adam::new(
            vars,
            AdamParams {
                lr: cfg.lr,
                ..Default::default()
            },
        )?;
        let mut state = IterState::new(cfg.epochs);
        let mut history = Vec::new();
        let mut reason = Termination::MaxIterations;
        for epoch in 0..cfg.epochs {
            let started = Instant::now();
            let mut noise = StdRng::seed_from_u64(derive_seed(cfg.seed, epoch, NOISE_STREAM));
            let (mut recon_sum, mut kl_sum, mut seen) = (0.0f64, 0.0f64, 0usize);
            let batches = train.batches(
                cfg.batch_size,
                Some(derive_seed(cfg.seed, epoch, SHUFFLE_STREAM)),
            )?;
            for (step, batch) in batches.enumerate() {
                let (x, labels) = batch.to_tensors(&device)?;
                let b = x.dim(0)?;
                let eps = standard_normal(&mut noise, b, vae.cfg.latent_dim, &device)?;
                let l = vae.batch_loss(&x, &labels, &eps)?;
                let total = f64::from(l.total.to_scalar::<f32>()?);
                if !total.is_finite() {
                    return Err(Error::NonFiniteLoss {
                        epoch: epoch + 1,
                        step: step + 1,
                        loss: total,
                    });
                }
                opt.backward_step(&l.total)?;
                recon_sum += f64::from(l.recon.to_scalar::<f32>()?) * b as f64;
                kl_sum += f64::from(l.kl.to_scalar::<f32>()?) * b as f64;
                seen += b;
            }
            let seconds = started.elapsed().as_secs_f64();
            let test_elbo = match test {
                Some(t) => Some(
                    vae.elbo(t, derive_seed(cfg.seed, epoch, EVAL_STREAM), &device)?
                        .0,
                ),
                None => None,
            };
            let n = seen.max(1) as f64;
            let record = VaeEpoch {
                epoch: epoch + 1,
                train_elbo: -(recon_sum + kl_sum) / n,
                train_recon: recon_sum / n,
                train_kl: kl_sum / n,
                test_elbo,
                seconds,
            };
            state.advance(Some(-record.train_elbo));
            if let Some(e) = test_elbo {
                state.set_metric("test_elbo", e);
            }
            history.push(record.clone());
            if let Some(r) = monitor.after_iteration(&state, &record)? {
                reason = r;
                break;
            }
        }
        let last = history.last().cloned();
        if let Some(last) = last {
            monitor.finish(&mut state, reason, &last)?;
        }
        Ok(VaeReport { history, state })
    }
}
