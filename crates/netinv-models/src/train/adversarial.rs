//! Adversarial examples (FGSM, PGD) and accuracy under attack.
//!
//! candle has no `grad(loss, x)`: the input becomes a `Var`, a full backward pass runs
//! (weight gradients included), and the input gradient is read from the `GradStore`.
//! Signs, projections and clamping run on the host, where they are exact and cheap.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::ModuleT;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::loss::{count_correct, loss_for};
use super::source::Targets;
use crate::{Error, Result};

/// An attack used to measure robustness ([`attack_accuracy`]).
///
/// ```text
/// Fgsm: x' = clamp(x + epsilon * sign(grad_x J(x, y)), 0, 1)
/// Pgd:  x_0 = x (+ U(-epsilon, epsilon) if random_start), `steps` times
///       x_{k+1} = clamp(x_k + step_size * sign(grad_x J(x_k, y)), max(0, x - epsilon), min(1, x + epsilon))
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Attack {
    /// Fast gradient sign method (Goodfellow et al., 2015).
    Fgsm {
        /// Perturbation size in [0, 1].
        epsilon: f64,
    },
    /// Projected gradient descent on the L-infinity ball (Madry et al., 2018).
    Pgd {
        /// Radius of the ball in [0, 1].
        epsilon: f64,
        /// Number of steps (> 0).
        steps: usize,
        /// Size of each signed step (> 0).
        step_size: f64,
        /// Start from a uniformly random point of the ball.
        random_start: bool,
        /// Seed of the random start.
        seed: u64,
    },
}

impl Attack {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `epsilon` outside [0, 1], zero `steps`, or a
    /// `step_size` outside (0, 1].
    pub fn validate(&self) -> Result<()> {
        let epsilon = match *self {
            Attack::Fgsm { epsilon } => epsilon,
            Attack::Pgd {
                epsilon,
                steps,
                step_size,
                ..
            } => {
                if steps == 0 {
                    return Err(Error::InvalidConfig {
                        field: "steps",
                        reason: "must be > 0".into(),
                    });
                }
                if !(step_size > 0.0 && step_size <= 1.0) {
                    return Err(Error::InvalidConfig {
                        field: "step_size",
                        reason: format!("must be in (0, 1], got {step_size}"),
                    });
                }
                epsilon
            }
        };
        if !(0.0..=1.0).contains(&epsilon) {
            return Err(Error::InvalidConfig {
                field: "epsilon",
                reason: format!("must be in [0, 1], got {epsilon}"),
            });
        }
        Ok(())
    }
}

/// The loss, the logits and every gradient (weights and input) at input `x`; the input
/// gradient has the shape of `x`.
pub(crate) struct InputGradient {
    pub(crate) loss: Tensor,
    pub(crate) logits: Tensor,
    pub(crate) grads: GradStore,
    pub(crate) input_grad: Tensor,
}

/// One forward and backward pass with `x` as a variable.
pub(crate) fn input_gradient<M: ModuleT + ?Sized>(
    model: &M,
    x: &Tensor,
    targets: &Targets,
    train: bool,
) -> Result<InputGradient> {
    let xv = Var::from_tensor(x)?;
    let logits = model.forward_t(xv.as_tensor(), train)?;
    let loss = loss_for(&logits, targets)?;
    let grads = loss.backward()?;
    let input_grad = match grads.get(xv.as_tensor()) {
        Some(g) => g.detach(),
        None => x.zeros_like()?,
    };
    Ok(InputGradient {
        loss,
        logits,
        grads,
        input_grad,
    })
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// `clamp(x + epsilon * sign(g), 0, 1)` for `x`, `g` of the same shape.
pub(crate) fn fgsm_step(x: &Tensor, g: &Tensor, epsilon: f64) -> Result<Tensor> {
    let eps = epsilon as f32;
    let out: Vec<f32> = host(x)?
        .iter()
        .zip(host(g)?)
        .map(|(&x, g)| (x + eps * sign(g)).clamp(0.0, 1.0))
        .collect();
    Ok(Tensor::from_vec(out, x.shape(), x.device())?)
}

/// Fast-gradient-sign adversarial examples of `x` `[b, c, h, w]` in [0, 1] for the model's
/// loss on `targets` (`train` selects the model's training-mode forward pass):
/// `clamp(x + epsilon * sign(grad_x J), 0, 1)`.
///
/// # Errors
/// Candle's errors and those of the loss (mismatched targets).
pub fn fgsm_example<M: ModuleT + ?Sized>(
    model: &M,
    x: &Tensor,
    targets: &Targets,
    epsilon: f64,
    train: bool,
) -> Result<Tensor> {
    let g = input_gradient(model, x, targets, train)?.input_grad;
    fgsm_step(x, &g, epsilon)
}

/// Projected-gradient-descent adversarial examples of `x` `[b, c, h, w]` in [0, 1]
/// ([`Attack::Pgd`]'s formula); `rng` draws the random start when given. Every result
/// satisfies `|x' - x| <= epsilon` and `0 <= x' <= 1` elementwise.
///
/// # Errors
/// Candle's errors and those of the loss.
#[allow(clippy::too_many_arguments)]
pub fn pgd_example<M: ModuleT + ?Sized>(
    model: &M,
    x: &Tensor,
    targets: &Targets,
    epsilon: f64,
    steps: usize,
    step_size: f64,
    rng: Option<&mut StdRng>,
    train: bool,
) -> Result<Tensor> {
    let eps = epsilon as f32;
    let x0 = host(x)?;
    let lower: Vec<f32> = x0.iter().map(|&v| (v - eps).max(0.0)).collect();
    let upper: Vec<f32> = x0.iter().map(|&v| (v + eps).min(1.0)).collect();
    let mut current = x0.clone();
    if let Some(rng) = rng {
        for ((c, lo), hi) in current.iter_mut().zip(&lower).zip(&upper) {
            let noise: f32 = rng.random_range(-eps..=eps);
            *c = (*c + noise).clamp(*lo, *hi);
        }
    }
    let step = step_size as f32;
    for _ in 0..steps {
        let xt = Tensor::from_slice(&current, x.shape(), x.device())?;
        let g = host(&input_gradient(model, &xt, targets, train)?.input_grad)?;
        for (((c, g), lo), hi) in current.iter_mut().zip(g).zip(&lower).zip(&upper) {
            *c = (*c + step * sign(g)).clamp(*lo, *hi);
        }
    }
    Ok(Tensor::from_vec(current, x.shape(), x.device())?)
}

/// Batch size used by [`attack_accuracy`] and [`super::evaluate`].
pub const EVAL_BATCH: usize = 500;

/// Fraction of `data` (in [0, 1]) that the model (eval mode) still classifies correctly
/// after `attack` has perturbed every image against its true label.
///
/// # Errors
/// [`Error::InvalidConfig`] for a bad attack; candle's errors.
///
/// # Examples
/// ```
/// use candle_core::Device;
/// use netinv_models::train::{attack_accuracy, evaluate, Attack};
/// use netinv_models::{Classifier, ClassifierConfig};
///
/// let cfg = ClassifierConfig { conv_channels: vec![4, 8], hidden: 16, ..Default::default() };
/// let model = Classifier::init(&cfg, &candle_nn::VarMap::new(), 3, &Device::Cpu)?;
/// let data = netinv_data::Mnist::embedded()?.test().take(100);
/// let clean = evaluate(&model, &data, &Device::Cpu)?.accuracy;
/// // No perturbation: the clean accuracy; a large one can only hurt on average.
/// let none = attack_accuracy(&model, &data, &Attack::Fgsm { epsilon: 0.0 }, &Device::Cpu)?;
/// assert_eq!(none, clean);
/// let strong = attack_accuracy(&model, &data, &Attack::Fgsm { epsilon: 0.3 }, &Device::Cpu)?;
/// assert!(strong <= clean);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn attack_accuracy<M: ModuleT + ?Sized>(
    model: &M,
    data: &netinv_data::Dataset,
    attack: &Attack,
    device: &Device,
) -> Result<f64> {
    attack.validate()?;
    if data.is_empty() {
        return Ok(0.0);
    }
    let mut rng = match *attack {
        Attack::Pgd {
            random_start: true,
            seed,
            ..
        } => Some(StdRng::seed_from_u64(seed)),
        _ => None,
    };
    let mut correct = 0;
    for batch in data.batches(EVAL_BATCH, None)? {
        let (x, y) = batch.to_tensors(device)?;
        let targets = Targets::Hard(y);
        let adv = match *attack {
            Attack::Fgsm { epsilon } => fgsm_example(model, &x, &targets, epsilon, false)?,
            Attack::Pgd {
                epsilon,
                steps,
                step_size,
                ..
            } => pgd_example(
                model,
                &x,
                &targets,
                epsilon,
                steps,
                step_size,
                rng.as_mut(),
                false,
            )?,
        };
        let logits = model.forward_t(&adv, false)?;
        correct += count_correct(&logits, &targets)?;
    }
    Ok(correct as f64 / data.len() as f64)
}
