//! Training and evaluation of classifiers: optimisers (SGD with momentum, Adam; on
//! tensors, and [`HostAdam`] / [`HostSgd`] on host buffers such as an image batch),
//! learning-rate schedules, clean / soft-label / FGSM / PGD training, evaluation
//! (accuracy, confusion matrix, macro precision / recall / F1) and accuracy under attack.
//!
//! [`Trainer`] owns the loop (argmin / burn style): per epoch it draws the batches of a
//! [`BatchSource`] in an order fixed by `(seed, epoch)`, takes one optimiser step per batch,
//! evaluates, writes a checkpoint when asked to, and reports to a
//! [`netinv_core::Monitor`] whose stop rules may end the run early.
//!
//! Shapes: images f32 `[b, 1, 28, 28]` in [0, 1], logits `[b, classes]`, hard labels u32
//! `[b]`, soft labels f32 `[b, classes]` (rows are distributions).
//!
//! Determinism: shuffling and adversarial noise come from seeded host RNGs (candle's CPU
//! RNG cannot be seeded), so the same seed, initial weights and thread count give
//! bit-identical weights.

mod adversarial;
mod config;
mod custom_loss;
mod eval;
mod host_optim;
mod loss;
mod optim;
mod source;
mod trainer;

pub use adversarial::{attack_accuracy, fgsm_example, pgd_example, Attack, EVAL_BATCH};
pub use config::{Adversarial, LrSchedule, OptimizerKind, TrainConfig};
pub use custom_loss::{evaluate_with, TrainLoss};
pub use eval::{evaluate, softmax_rows, Evaluation};
pub use host_optim::{HostAdam, HostSgd};
pub use loss::{cross_entropy, loss_for, soft_cross_entropy};
pub use optim::{Adam, AdamParams, OptimizerState, SgdMomentum, SgdParams};
pub use source::{
    validate_soft_labels, BatchSource, EpochBatches, SoftLabelSet, Targets, TrainBatch,
    SOFT_LABEL_TOLERANCE,
};
pub use trainer::{
    derive_seed, EpochRecord, TrainReport, Trainer, TrainerState, OPTIMIZER_FILE,
    TRAINER_STATE_FILE,
};

#[cfg(test)]
mod tests;
