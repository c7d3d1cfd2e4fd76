//! Training configuration: optimiser, learning-rate schedule, adversarial mode.

use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::Result;

/// Which optimiser updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OptimizerKind {
    /// Stochastic gradient descent with (optionally Nesterov) momentum: [`super::SgdMomentum`].
    Sgd,
    /// Adam (Kingma & Ba, 2015) with coupled L2 weight decay: [`super::Adam`].
    Adam,
}

/// How the learning rate changes over a run.
///
/// `t` is the fraction of the run done before the current step,
/// `t = (epoch + step / steps_per_epoch) / epochs` in [0, 1), with `epoch` counted from 0.
///
/// ```text
/// Constant:                 lr(t) = lr
/// Step { every, gamma }:    lr(t) = lr * gamma^floor(epoch / every)
/// Cosine { min_lr }:        lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LrSchedule {
    /// The base learning rate throughout.
    Constant,
    /// Multiply the learning rate by `gamma` every `every_epochs` epochs.
    Step {
        /// Epochs between two decays (> 0).
        every_epochs: usize,
        /// Decay factor in (0, 1].
        gamma: f64,
    },
    /// Cosine annealing from the base rate to `min_lr`, updated every step.
    Cosine {
        /// The rate reached at the end of the run, in [0, lr].
        min_lr: f64,
    },
}

impl LrSchedule {
    /// The learning rate of step `step` (from 0) of epoch `epoch` (from 0), for a run of
    /// `epochs` epochs of `steps_per_epoch` steps each and base rate `lr` (formulas on
    /// [`LrSchedule`]).
    pub fn lr_at(
        &self,
        lr: f64,
        epoch: usize,
        step: usize,
        steps_per_epoch: usize,
        epochs: usize,
    ) -> f64 {
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Step {
                every_epochs,
                gamma,
            } => lr * gamma.powi((epoch / every_epochs.max(1)) as i32),
            LrSchedule::Cosine { min_lr } => {
                let t = (epoch as f64 + step as f64 / steps_per_epoch.max(1) as f64)
                    / epochs.max(1) as f64;
                min_lr + (lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        }
    }
}

/// Adversarial training mode (Goodfellow et al., 2015; Madry et al., 2018).
///
/// With `J` the cross-entropy and `x'` the adversarial example of `x`, the training loss is
///
/// ```text
/// L = alpha * J(x) + (1 - alpha) * J(x')
/// FGSM: x' = clamp(x + epsilon * sign(grad_x J(x)), 0, 1)
/// PGD:  x_0 = x (+ U(-epsilon, epsilon) noise if random_start), then `steps` times
///       x_{k+1} = clamp(proj_{|. - x|_inf <= epsilon}(x_k + step_size * sign(grad_x J(x_k))), 0, 1)
/// ```
///
/// The gradient with respect to `x` is that of the training-mode loss (batch statistics
/// when the net has BatchNorm, whose running statistics then also see the crafted inputs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Adversarial {
    /// Clean training only.
    None,
    /// Fast gradient sign method.
    Fgsm {
        /// Perturbation size in [0, 1] (pixel range).
        epsilon: f64,
        /// Weight of the clean loss in [0, 1]; 0.5 in Goodfellow et al.
        alpha: f64,
    },
    /// Projected gradient descent (iterated FGSM with projection).
    Pgd {
        /// Radius of the L-infinity ball in [0, 1].
        epsilon: f64,
        /// Weight of the clean loss in [0, 1] (0 = train on adversarial examples only).
        alpha: f64,
        /// Number of gradient steps (> 0).
        steps: usize,
        /// Size of each signed step in (0, 1].
        step_size: f64,
        /// Start from a uniformly random point of the eps-ball (seeded host RNG).
        random_start: bool,
    },
}

impl Adversarial {
    /// FGSM with the given `epsilon` and `alpha = 0.5`.
    pub fn fgsm(epsilon: f64) -> Self {
        Adversarial::Fgsm {
            epsilon,
            alpha: 0.5,
        }
    }

    /// PGD with the given `epsilon`, `alpha = 0.5`, 7 steps of `epsilon / 4`, random start.
    pub fn pgd(epsilon: f64) -> Self {
        Adversarial::Pgd {
            epsilon,
            alpha: 0.5,
            steps: 7,
            step_size: epsilon / 4.0,
            random_start: true,
        }
    }
}

/// Everything that determines a training run of a classifier.
///
/// Defaults (they reach >= 97.5% test accuracy with netinv-small on the embedded
/// 8,000 / 2,000 digits, see docs/history/results-before-2026-12-05.md):
///
/// | field | default |
/// | --- | --- |
/// | `optimizer` | `Sgd` |
/// | `lr` | 0.05 |
/// | `momentum` | 0.9 (SGD only) |
/// | `nesterov` | false (SGD only) |
/// | `weight_decay` | 0 (L2 added to the gradient) |
/// | `beta1`, `beta2`, `adam_eps` | 0.9, 0.999, 1e-8 (Adam only) |
/// | `epochs` | 10 |
/// | `batch_size` | 64 |
/// | `schedule` | `Cosine { min_lr: 0 }` |
/// | `adversarial` | `None` |
/// | `shift` | 2 (random translations of up to 2 pixels) |
/// | `seed` | 0 (shuffling, augmentation, adversarial noise; weights are seeded by the caller) |
///
/// [`TrainConfig::adam`] gives the Adam defaults (lr 2e-3, same schedule and augmentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// Base learning rate (> 0).
    pub lr: f64,
    /// SGD momentum in [0, 1).
    pub momentum: f64,
    /// Nesterov momentum (SGD only; needs `momentum > 0`).
    pub nesterov: bool,
    /// L2 weight decay >= 0, added to the gradient as `weight_decay * theta`.
    pub weight_decay: f64,
    /// Adam's first-moment decay in [0, 1).
    pub beta1: f64,
    /// Adam's second-moment decay in [0, 1).
    pub beta2: f64,
    /// Adam's denominator constant (> 0).
    pub adam_eps: f64,
    /// Number of passes over the training data (> 0).
    pub epochs: usize,
    /// Examples per step (> 0).
    pub batch_size: usize,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Adversarial training mode.
    pub adversarial: Adversarial,
    /// Data augmentation: every training image is translated by a random `(dy, dx)` in
    /// `[-shift, shift]^2` pixels (zero fill) each time it is drawn; 0 disables it (<= 8).
    pub shift: usize,
    /// Seed of the shuffling, the augmentation and the adversarial random starts.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            adam_eps: 1e-8,
            epochs: 10,
            batch_size: 64,
            schedule: LrSchedule::Cosine { min_lr: 0.0 },
            adversarial: Adversarial::None,
            shift: 2,
            seed: 0,
        }
    }
}

fn check_unit(field: &'static str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(field, format!("must be in [0, 1], got {value}")))
    }
}

impl TrainConfig {
    /// The SGD defaults (same as `Default`).
    pub fn sgd() -> Self {
        Self::default()
    }

    /// The Adam defaults: lr 2e-3 (with the cosine schedule; 1e-3 reached 96.8% in the
    /// PyTorch reference, 2e-3 reaches >= 97.5%), betas (0.9, 0.999), eps 1e-8, no weight
    /// decay; other fields as in `Default`.
    pub fn adam() -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            lr: 2e-3,
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first offending field: zero `batch_size` or
    /// `epochs`, non-positive or non-finite `lr`, `momentum`/`beta1`/`beta2` outside [0, 1),
    /// Nesterov without momentum, negative `weight_decay`, non-positive `adam_eps`, a step
    /// schedule with zero `every_epochs` or `gamma` outside (0, 1], a cosine `min_lr`
    /// outside [0, lr], an adversarial `epsilon` or `alpha` outside [0, 1], zero PGD `steps`
    /// or a PGD `step_size` outside (0, 1].
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be > 0"));
        }
        if self.epochs == 0 {
            return Err(invalid("epochs", "must be > 0"));
        }
        if self.shift > 8 {
            return Err(invalid(
                "shift",
                format!("must be <= 8 pixels, got {}", self.shift),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid(
                "lr",
                format!("must be finite and > 0, got {}", self.lr),
            ));
        }
        for (field, value) in [
            ("momentum", self.momentum),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(invalid(field, format!("must be in [0, 1), got {value}")));
            }
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(invalid("nesterov", "Nesterov momentum needs momentum > 0"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(invalid(
                "weight_decay",
                format!("must be finite and >= 0, got {}", self.weight_decay),
            ));
        }
        if !(self.adam_eps.is_finite() && self.adam_eps > 0.0) {
            return Err(invalid(
                "adam_eps",
                format!("must be finite and > 0, got {}", self.adam_eps),
            ));
        }
        match self.schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step {
                every_epochs,
                gamma,
            } => {
                if every_epochs == 0 {
                    return Err(invalid("schedule.every_epochs", "must be > 0"));
                }
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(invalid(
                        "schedule.gamma",
                        format!("must be in (0, 1], got {gamma}"),
                    ));
                }
            }
            LrSchedule::Cosine { min_lr } => {
                if !(min_lr >= 0.0 && min_lr <= self.lr) {
                    return Err(invalid(
                        "schedule.min_lr",
                        format!("must be in [0, lr = {}], got {min_lr}", self.lr),
                    ));
                }
            }
        }
        match self.adversarial {
            Adversarial::None => {}
            Adversarial::Fgsm { epsilon, alpha } => {
                check_unit("adversarial.epsilon", epsilon)?;
                check_unit("adversarial.alpha", alpha)?;
            }
            Adversarial::Pgd {
                epsilon,
                alpha,
                steps,
                step_size,
                ..
            } => {
                check_unit("adversarial.epsilon", epsilon)?;
                check_unit("adversarial.alpha", alpha)?;
                if steps == 0 {
                    return Err(invalid("adversarial.steps", "must be > 0"));
                }
                if !(step_size > 0.0 && step_size <= 1.0) {
                    return Err(invalid(
                        "adversarial.step_size",
                        format!("must be in (0, 1], got {step_size}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn field_of(cfg: TrainConfig) -> &'static str {
        match cfg.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        TrainConfig::default().validate().unwrap();
        TrainConfig::adam().validate().unwrap();
        TrainConfig {
            adversarial: Adversarial::pgd(0.1),
            ..TrainConfig::adam()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn zero_batch_rejected() {
        let cfg = TrainConfig {
            batch_size: 0,
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "batch_size");
    }

    #[test]
    fn large_shift_rejected() {
        let cfg = TrainConfig {
            shift: 9,
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "shift");
    }

    #[test]
    fn zero_epochs_rejected() {
        let cfg = TrainConfig {
            epochs: 0,
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "epochs");
    }

    #[test]
    fn non_positive_lr_rejected() {
        for lr in [0.0, -0.1, f64::NAN, f64::INFINITY] {
            let cfg = TrainConfig {
                lr,
                ..Default::default()
            };
            assert_eq!(field_of(cfg), "lr");
        }
    }

    #[test]
    fn momentum_and_betas_outside_unit_interval_rejected() {
        let cfg = TrainConfig {
            momentum: 1.0,
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "momentum");
        let cfg = TrainConfig {
            beta1: -0.1,
            ..TrainConfig::adam()
        };
        assert_eq!(field_of(cfg), "beta1");
        let cfg = TrainConfig {
            beta2: 1.5,
            ..TrainConfig::adam()
        };
        assert_eq!(field_of(cfg), "beta2");
    }

    #[test]
    fn nesterov_without_momentum_rejected() {
        let cfg = TrainConfig {
            nesterov: true,
            momentum: 0.0,
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "nesterov");
    }

    #[test]
    fn negative_weight_decay_rejected() {
        let cfg = TrainConfig {
            weight_decay: -1e-4,
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "weight_decay");
    }

    #[test]
    fn non_positive_adam_eps_rejected() {
        let cfg = TrainConfig {
            adam_eps: 0.0,
            ..TrainConfig::adam()
        };
        assert_eq!(field_of(cfg), "adam_eps");
    }

    #[test]
    fn bad_schedules_rejected() {
        let cfg = TrainConfig {
            schedule: LrSchedule::Step {
                every_epochs: 0,
                gamma: 0.5,
            },
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "schedule.every_epochs");
        let cfg = TrainConfig {
            schedule: LrSchedule::Step {
                every_epochs: 2,
                gamma: 1.5,
            },
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "schedule.gamma");
        let cfg = TrainConfig {
            schedule: LrSchedule::Cosine { min_lr: 1.0 },
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "schedule.min_lr");
    }

    #[test]
    fn epsilon_outside_unit_interval_rejected() {
        for epsilon in [-0.1, 1.5, f64::NAN] {
            let cfg = TrainConfig {
                adversarial: Adversarial::fgsm(epsilon),
                ..Default::default()
            };
            assert_eq!(field_of(cfg), "adversarial.epsilon");
        }
    }

    #[test]
    fn alpha_outside_unit_interval_rejected() {
        let cfg = TrainConfig {
            adversarial: Adversarial::Fgsm {
                epsilon: 0.1,
                alpha: 1.2,
            },
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "adversarial.alpha");
    }

    #[test]
    fn bad_pgd_steps_rejected() {
        let cfg = TrainConfig {
            adversarial: Adversarial::Pgd {
                epsilon: 0.1,
                alpha: 0.5,
                steps: 0,
                step_size: 0.01,
                random_start: false,
            },
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "adversarial.steps");
        let cfg = TrainConfig {
            adversarial: Adversarial::Pgd {
                epsilon: 0.1,
                alpha: 0.5,
                steps: 3,
                step_size: 0.0,
                random_start: false,
            },
            ..Default::default()
        };
        assert_eq!(field_of(cfg), "adversarial.step_size");
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let lr = 0.1;
        assert_eq!(LrSchedule::Constant.lr_at(lr, 3, 5, 10, 10), lr);
        let step = LrSchedule::Step {
            every_epochs: 2,
            gamma: 0.5,
        };
        assert_eq!(step.lr_at(lr, 1, 9, 10, 10), lr);
        assert_eq!(step.lr_at(lr, 2, 0, 10, 10), lr * 0.5);
        assert_eq!(step.lr_at(lr, 5, 0, 10, 10), lr * 0.25);
        let cosine = LrSchedule::Cosine { min_lr: 0.01 };
        assert!((cosine.lr_at(lr, 0, 0, 10, 4) - lr).abs() < 1e-12);
        // Half way: the mean of lr and min_lr.
        assert!((cosine.lr_at(lr, 2, 0, 10, 4) - 0.055).abs() < 1e-12);
        // A quarter of the way: min + (lr - min) * (1 + cos(pi / 4)) / 2.
        let expected = 0.01 + 0.09 * 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
        assert!((cosine.lr_at(lr, 0, 5, 5, 4) - expected).abs() < 1e-12);
    }

    #[test]
    fn serde_round_trip() {
        let cfg = TrainConfig {
            adversarial: Adversarial::pgd(0.2),
            schedule: LrSchedule::Step {
                every_epochs: 3,
                gamma: 0.1,
            },
            ..TrainConfig::adam()
        };
        let text = serde_json::to_string(&cfg).unwrap();
        let back: TrainConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, cfg);
        // Missing fields take their defaults.
        let partial: TrainConfig = serde_json::from_str(r#"{"epochs": 3}"#).unwrap();
        assert_eq!(partial.epochs, 3);
        assert_eq!(partial.lr, 0.05);
    }
}
