//! The training loop: [`Trainer`] owns epochs, steps, optimiser, checkpoints and stopping.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::{ModuleT, Optimizer, VarMap};
use netinv_core::{IterState, Monitor, Termination};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::adversarial::{fgsm_step, input_gradient, pgd_example};
use super::config::{Adversarial, OptimizerKind, TrainConfig};
use super::custom_loss::{custom_step_loss, evaluate_with, TrainLoss};
use super::eval::evaluate;
use super::loss::{count_correct, loss_for};
use super::optim::{Adam, AdamParams, AnyOptimizer, SgdMomentum, SgdParams};
use super::source::{validate_soft_labels, BatchSource, Targets, TrainBatch};
use crate::classifier::save_checkpoint;
use crate::classifier::ClassifierConfig;
use crate::{Error, Result};

/// File (in the checkpoint folder) holding the optimiser's buffers.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// File (in the checkpoint folder) holding the trainer's progress ([`TrainerState`]).
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";

/// What one epoch achieved; `epoch` counts from 1. These are the keys of the `epochs`
/// entries of the `train_classifier` example's `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (the adversarial mixture when enabled).
    pub train_loss: f64,
    /// Fraction of training examples whose clean prediction was right during the epoch
    /// (against the arg-max of soft targets).
    pub train_accuracy: f64,
    /// Accuracy on the evaluation set after the epoch, if one was given.
    pub test_accuracy: Option<f64>,
    /// Wall-clock seconds of the epoch's training steps (evaluation excluded).
    pub seconds: f64,
}

/// A run's progress as saved next to a checkpoint, so that [`Trainer::resume`] continues
/// exactly where the run stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Completed epochs.
    pub epochs_done: usize,
    /// Optimiser steps taken (Adam's bias correction needs it).
    pub optimizer_steps: usize,
    /// The trainable variables' names, in the order the optimiser state refers to.
    pub variables: Vec<String>,
    /// The configuration of the run.
    pub config: TrainConfig,
    /// Records of the completed epochs.
    pub history: Vec<EpochRecord>,
}

/// The outcome of [`Trainer::fit`]: per-epoch records and the final iteration state (one
/// iteration per epoch; `state.termination` says why the run ended).
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// One record per completed epoch (including those before a resume).
    pub history: Vec<EpochRecord>,
    /// The final state: `iteration` = completed epochs, `cost` = last train loss.
    pub state: IterState,
}

/// Mixes a 64-bit seed with an epoch number and a stream id (SplitMix64 finaliser), so
/// every epoch's shuffling and noise depend only on `(seed, epoch, stream)`.
pub fn derive_seed(seed: u64, epoch: usize, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add((epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const SHUFFLE_STREAM: u64 = 1;
const NOISE_STREAM: u64 = 2;
const AUGMENT_STREAM: u64 = 3;

/// Translates every image of `x` `[b, c, h, w]` by its own random `(dy, dx)` in
/// `[-shift, shift]^2` (zero fill): `out[.., i, j] = x[.., i - dy, j - dx]`.
pub(crate) fn random_shift(x: &Tensor, shift: usize, rng: &mut StdRng) -> Result<Tensor> {
    use rand::Rng;
    let (b, c, h, w) = x.dims4()?;
    let src = x.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0f32; src.len()];
    let s = shift as i64;
    for n in 0..b {
        let dy: i64 = rng.random_range(-s..=s);
        let dx: i64 = rng.random_range(-s..=s);
        for ch in 0..c {
            let base = (n * c + ch) * h * w;
            for i in 0..h as i64 {
                let si = i - dy;
                if si < 0 || si >= h as i64 {
                    continue;
                }
                for j in 0..w as i64 {
                    let sj = j - dx;
                    if sj < 0 || sj >= w as i64 {
                        continue;
                    }
                    out[base + (i as usize) * w + j as usize] =
                        src[base + (si as usize) * w + sj as usize];
                }
            }
        }
    }
    Ok(Tensor::from_vec(out, (b, c, h, w), x.device())?)
}

/// Trains a classifier: per epoch, seeded shuffling of a [`BatchSource`], one optimiser step
/// per batch (clean, FGSM or PGD loss on hard or soft targets), evaluation, an optional
/// checkpoint, then the [`Monitor`] (observers and stop rules, one iteration per epoch).
///
/// ```text
/// for epoch in 0..epochs:
///     for (step, (x, t)) in source.epoch(batch_size, derive_seed(seed, epoch, 1)):
///         lr = schedule.lr_at(lr0, epoch, step, steps_per_epoch, epochs)
///         L  = J(x, t)                                   (clean)
///            | alpha J(x, t) + (1 - alpha) J(x', t)      (FGSM / PGD, x' adversarial)
///         theta <- optimiser(theta, grad_theta L, lr)
///     evaluate, checkpoint, monitor
/// ```
///
/// A NaN or infinite loss stops the run with [`Error::NonFiniteLoss`] before the weights
/// are touched; the checkpoint of the last completed epoch stays on disk. The same seed,
/// initial weights and thread count give bit-identical weights.
///
/// # Examples
/// ```
/// use candle_core::{DType, Device};
/// use candle_nn::{VarBuilder, VarMap};
/// use netinv_core::Monitor;
/// use netinv_models::train::{TrainConfig, Trainer};
/// use netinv_models::{Classifier, ClassifierConfig};
///
/// let mnist = netinv_data::Mnist::embedded()?;
/// let (train, test) = (mnist.train().take(256), mnist.test().take(100));
/// let net = ClassifierConfig { conv_channels: vec![4, 8], hidden: 16, ..Default::default() };
/// let varmap = VarMap::new();
/// let model = Classifier::init(&net, &varmap, 1, &Device::Cpu)?;
/// let trainer = Trainer::new(TrainConfig { epochs: 1, ..Default::default() })?;
/// let report = trainer.fit(&model, &varmap, &train, Some(&test), &mut Monitor::new())?;
/// assert_eq!(report.history.len(), 1);
/// assert!(report.history[0].train_loss.is_finite());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Trainer {
    cfg: TrainConfig,
    device: Device,
    checkpoint: Option<(PathBuf, ClassifierConfig)>,
    loss: Option<std::sync::Arc<dyn TrainLoss>>,
}

impl Trainer {
    /// A trainer for `cfg` on the CPU.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`TrainConfig::validate`].
    pub fn new(cfg: TrainConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            device: Device::Cpu,
            checkpoint: None,
            loss: None,
        })
    }

    /// Runs on `device` instead of the CPU.
    pub fn on_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Writes a checkpoint to `dir` after every epoch: the weights and `model`'s config
    /// (`model.safetensors`, `config.json`, via [`save_checkpoint`]), the optimiser's
    /// buffers ([`OPTIMIZER_FILE`]) and the run's progress ([`TRAINER_STATE_FILE`]), each
    /// atomically.
    pub fn with_checkpoints(mut self, dir: impl Into<PathBuf>, model: ClassifierConfig) -> Self {
        self.checkpoint = Some((dir.into(), model));
        self
    }

    /// Trains with `loss` (and evaluates with its prediction rule, [`evaluate_with`])
    /// instead of the cross-entropy on logits. Needs hard labels and clean training
    /// (`adversarial: None`); [`Trainer::fit`] reports an error otherwise.
    pub fn with_loss(mut self, loss: std::sync::Arc<dyn TrainLoss>) -> Self {
        self.loss = Some(loss);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Trains `model`, whose trainable weights are the floating-point variables of
    /// `varmap`, for `epochs` epochs on `train`, evaluating on `test` after every epoch.
    ///
    /// # Errors
    /// [`Error::NonFiniteLoss`] naming the epoch and step; [`Error::SoftLabels`] for soft
    /// targets that are negative or do not sum to 1; [`Error::Shape`] for targets that do
    /// not match the logits; an observer's error; checkpoint write errors; candle's errors.
    pub fn fit<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        varmap: &VarMap,
        train: &dyn BatchSource,
        test: Option<&netinv_data::Dataset>,
        monitor: &mut Monitor<'_, EpochRecord>,
    ) -> Result<TrainReport> {
        let (names, vars) = trainable(varmap);
        let optimizer = self.optimizer(vars.clone())?;
        self.run(
            model,
            varmap,
            &names,
            &vars,
            optimizer,
            0,
            Vec::new(),
            train,
            test,
            monitor,
        )
    }

    /// Continues a run from the checkpoint folder configured with
    /// [`Trainer::with_checkpoints`]: loads the weights into `varmap` (built by the same
    /// net as before), the optimiser state and the progress, then trains the remaining
    /// epochs. With the same configuration, data and thread count the result is
    /// bit-identical to an uninterrupted run.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] without a checkpoint folder or when the saved configuration
    /// differs from this trainer's (other than `epochs`); [`Error::Checkpoint`] for
    /// missing or mismatched files; as [`Trainer::fit`] otherwise.
    pub fn resume<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        varmap: &VarMap,
        train: &dyn BatchSource,
        test: Option<&netinv_data::Dataset>,
        monitor: &mut Monitor<'_, EpochRecord>,
    ) -> Result<TrainReport> {
        let Some((dir, _)) = &self.checkpoint else {
            return Err(Error::InvalidConfig {
                field: "checkpoint",
                reason: "resume needs a checkpoint folder (Trainer::with_checkpoints)".into(),
            });
        };
        let state_path = dir.join(TRAINER_STATE_FILE);
        let text = std::fs::read_to_string(&state_path).map_err(|source| Error::Io {
            path: state_path.clone(),
            source,
        })?;
        let state: TrainerState = serde_json::from_str(&text)?;
        let saved = TrainConfig {
            epochs: self.cfg.epochs,
            ..state.config.clone()
        };
        if saved != self.cfg {
            return Err(Error::InvalidConfig {
                field: "config",
                reason: format!(
                    "the checkpoint in {} was trained with a different configuration",
                    dir.display()
                ),
            });
        }
        let mut vm = varmap.clone();
        crate::classifier::load_into(dir, &mut vm)?;
        let (names, vars) = trainable(varmap);
        if names != state.variables {
            return Err(Error::Checkpoint {
                path: state_path,
                reason: format!(
                    "variables {:?} differ from the model's {:?}",
                    state.variables, names
                ),
            });
        }
        let mut optimizer = self.optimizer(vars.clone())?;
        let opt_path = dir.join(OPTIMIZER_FILE);
        let tensors = candle_core::safetensors::load(&opt_path, &self.device).map_err(|e| {
            Error::Checkpoint {
                path: opt_path.clone(),
                reason: e.to_string(),
            }
        })?;
        let mut tensors: Vec<(String, Tensor)> = tensors.into_iter().collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        optimizer
            .state_mut()
            .load_state(&tensors, state.optimizer_steps)
            .map_err(|e| Error::Checkpoint {
                path: opt_path,
                reason: e.to_string(),
            })?;
        self.run(
            model,
            varmap,
            &names,
            &vars,
            optimizer,
            state.epochs_done,
            state.history,
            train,
            test,
            monitor,
        )
    }

    fn optimizer(&self, vars: Vec<Var>) -> Result<AnyOptimizer> {
        let c = &self.cfg;
        Ok(match c.optimizer {
            OptimizerKind::Sgd => AnyOptimizer::Sgd(SgdMomentum::new(
                vars,
                SgdParams {
                    lr: c.lr,
                    momentum: c.momentum,
                    nesterov: c.nesterov,
                    weight_decay: c.weight_decay,
                },
            )?),
            OptimizerKind::Adam => AnyOptimizer::Adam(Adam::new(
                vars,
                AdamParams {
                    lr: c.lr,
                    beta1: c.beta1,
                    beta2: c.beta2,
                    eps: c.adam_eps,
                    weight_decay: c.weight_decay,
                },
            )?),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        varmap: &VarMap,
        names: &[String],
        vars: &[Var],
        mut optimizer: AnyOptimizer,
        start_epoch: usize,
        mut history: Vec<EpochRecord>,
        train: &dyn BatchSource,
        test: Option<&netinv_data::Dataset>,
        monitor: &mut Monitor<'_, EpochRecord>,
    ) -> Result<TrainReport> {
        let cfg = &self.cfg;
        if self.loss.is_some() && cfg.adversarial != Adversarial::None {
            return Err(Error::InvalidConfig {
                field: "adversarial",
                reason: "a custom training loss supports clean training only".into(),
            });
        }
        let steps_per_epoch = train.len().div_ceil(cfg.batch_size);
        let mut state = IterState::new(cfg.epochs);
        state.iteration = start_epoch;
        let mut reason = Termination::MaxIterations;
        for epoch in start_epoch..cfg.epochs {
            let started = Instant::now();
            let mut noise = StdRng::seed_from_u64(derive_seed(cfg.seed, epoch, NOISE_STREAM));
            let mut augment = StdRng::seed_from_u64(derive_seed(cfg.seed, epoch, AUGMENT_STREAM));
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
            let batches = train.epoch(
                cfg.batch_size,
                derive_seed(cfg.seed, epoch, SHUFFLE_STREAM),
                &self.device,
            )?;
            for (step, batch) in batches.enumerate() {
                let mut batch = batch?;
                if cfg.shift > 0 {
                    batch.images = random_shift(&batch.images, cfg.shift, &mut augment)?;
                }
                let lr = cfg
                    .schedule
                    .lr_at(cfg.lr, epoch, step, steps_per_epoch, cfg.epochs);
                optimizer.set_learning_rate(lr);
                let b = batch.images.dim(0)?;
                let (loss, ok) =
                    self.step(model, vars, &mut optimizer, &batch, &mut noise, epoch, step)?;
                loss_sum += loss * b as f64;
                correct += ok;
                seen += b;
            }
            let seconds = started.elapsed().as_secs_f64();
            let test_accuracy = match test {
                Some(t) => Some(match &self.loss {
                    Some(l) => evaluate_with(model, t, &self.device, l.as_ref())?.accuracy,
                    None => evaluate(model, t, &self.device)?.accuracy,
                }),
                None => None,
            };
            let denom = seen.max(1) as f64;
            let record = EpochRecord {
                epoch: epoch + 1,
                train_loss: loss_sum / denom,
                train_accuracy: correct as f64 / denom,
                test_accuracy,
                seconds,
            };
            history.push(record.clone());
            if let Some((dir, model_cfg)) = &self.checkpoint {
                self.write_checkpoint(dir, model_cfg, varmap, names, &optimizer, &history)?;
            }
            state.advance(Some(record.train_loss));
            state.set_metric("train_accuracy", record.train_accuracy);
            if let Some(a) = record.test_accuracy {
                state.set_metric("test_accuracy", a);
            }
            if let Some(r) = monitor.after_iteration(&state, &record)? {
                reason = r;
                break;
            }
        }
        let last = history.last().cloned();
        if let Some(last) = &last {
            monitor.finish(&mut state, reason, last)?;
        } else {
            state.termination = Some(reason);
        }
        Ok(TrainReport { history, state })
    }

    /// One optimiser step; returns the batch's mean loss and its number of correct clean
    /// predictions.
    #[allow(clippy::too_many_arguments)]
    fn step<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        vars: &[Var],
        optimizer: &mut AnyOptimizer,
        batch: &TrainBatch,
        noise: &mut StdRng,
        epoch: usize,
        step: usize,
    ) -> Result<(f64, usize)> {
        let x = &batch.images;
        let targets = &batch.targets;
        if let Targets::Soft(t) = targets {
            validate_soft_labels(t)?;
        }
        let finite = |loss: &Tensor| -> Result<f64> {
            let value = f64::from(loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?);
            if value.is_finite() {
                Ok(value)
            } else {
                Err(Error::NonFiniteLoss {
                    epoch: epoch + 1,
                    step: step + 1,
                    loss: value,
                })
            }
        };
        match self.cfg.adversarial {
            Adversarial::None if self.loss.is_some() => {
                let outputs = model.forward_t(x, true)?;
                let custom = self.loss.as_deref().ok_or(Error::InvalidConfig {
                    field: "loss",
                    reason: "missing".into(),
                })?;
                let (loss, ok) = custom_step_loss(custom, &outputs, targets)?;
                let value = finite(&loss)?;
                optimizer.step(&loss.backward()?)?;
                Ok((value, ok))
            }
            Adversarial::None => {
                let logits = model.forward_t(x, true)?;
                let loss = loss_for(&logits, targets)?;
                let value = finite(&loss)?;
                let grads = loss.backward()?;
                optimizer.step(&grads)?;
                Ok((value, count_correct(&logits, targets)?))
            }
            Adversarial::Fgsm { epsilon, alpha } => {
                let clean = input_gradient(model, x, targets, true)?;
                let lc = finite(&clean.loss)?;
                let ok = count_correct(&clean.logits, targets)?;
                let x_adv = fgsm_step(x, &clean.input_grad, epsilon)?;
                let la = self.mixed_step(
                    model,
                    vars,
                    optimizer,
                    clean.grads,
                    &x_adv,
                    targets,
                    alpha,
                    &finite,
                )?;
                Ok((alpha * lc + (1.0 - alpha) * la, ok))
            }
            Adversarial::Pgd {
                epsilon,
                alpha,
                steps,
                step_size,
                random_start,
            } => {
                let logits = model.forward_t(x, true)?;
                let clean_loss = loss_for(&logits, targets)?;
                let lc = finite(&clean_loss)?;
                let ok = count_correct(&logits, targets)?;
                let clean_grads = if alpha > 0.0 {
                    clean_loss.backward()?
                } else {
                    GradStore::default()
                };
                let x_adv = pgd_example(
                    model,
                    x,
                    targets,
                    epsilon,
                    steps,
                    step_size,
                    random_start.then_some(noise),
                    true,
                )?;
                let la = self.mixed_step(
                    model,
                    vars,
                    optimizer,
                    clean_grads,
                    &x_adv,
                    targets,
                    alpha,
                    &finite,
                )?;
                Ok((alpha * lc + (1.0 - alpha) * la, ok))
            }
        }
    }

    /// Backward pass on the adversarial batch, then one step on
    /// `alpha * clean_grads + (1 - alpha) * adversarial_grads`; returns the adversarial loss.
    #[allow(clippy::too_many_arguments)]
    fn mixed_step<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        vars: &[Var],
        optimizer: &mut AnyOptimizer,
        clean_grads: GradStore,
        x_adv: &Tensor,
        targets: &Targets,
        alpha: f64,
        finite: &dyn Fn(&Tensor) -> Result<f64>,
    ) -> Result<f64> {
        let logits = model.forward_t(x_adv, true)?;
        let loss = loss_for(&logits, targets)?;
        let value = finite(&loss)?;
        let mut grads = loss.backward()?;
        for var in vars {
            let c = clean_grads.get(var);
            let a = grads.remove(var);
            let mixed = match (c, a) {
                (Some(c), Some(a)) => (c.affine(alpha, 0.0)? + a.affine(1.0 - alpha, 0.0)?)?,
                (Some(c), None) => c.affine(alpha, 0.0)?,
                (None, Some(a)) => a.affine(1.0 - alpha, 0.0)?,
                (None, None) => continue,
            };
            grads.insert(var, mixed);
        }
        optimizer.step(&grads)?;
        Ok(value)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_checkpoint(
        &self,
        dir: &Path,
        model_cfg: &ClassifierConfig,
        varmap: &VarMap,
        names: &[String],
        optimizer: &AnyOptimizer,
        history: &[EpochRecord],
    ) -> Result<()> {
        save_checkpoint(dir, varmap, model_cfg)?;
        let opt = optimizer.state();
        let bytes =
            safetensors::serialize(opt.state_tensors(), None).map_err(|e| Error::Checkpoint {
                path: dir.join(OPTIMIZER_FILE),
                reason: e.to_string(),
            })?;
        netinv_core::atomic_write_bytes(dir.join(OPTIMIZER_FILE), &bytes)?;
        let state = TrainerState {
            epochs_done: history.len(),
            optimizer_steps: opt.steps(),
            variables: names.to_vec(),
            config: self.cfg.clone(),
            history: history.to_vec(),
        };
        netinv_core::write_json(dir.join(TRAINER_STATE_FILE), &state)?;
        Ok(())
    }
}

/// The floating-point variables of `varmap`, sorted by name (a fixed order for the
/// optimiser state).
fn trainable(varmap: &VarMap) -> (Vec<String>, Vec<Var>) {
    let data = match varmap.data().lock() {
        Ok(d) => d,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut named: Vec<(String, Var)> = data
        .iter()
        .filter(|(_, v)| v.dtype().is_float())
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.into_iter().unzip()
}
