//! Models on candle (CPU, f32) and what trains and scores them:
//!
//! * [`classifier`]: the CNN classifiers, the `netinv-small` net and its variants
//!   ([`Classifier`], [`ClassifierConfig`]), seeded PyTorch-style initialisation
//!   ([`init`]), safetensors checkpoints ([`save_checkpoint`], [`load_frozen`],
//!   [`load_into`]) and an in-memory freeze ([`Classifier::freeze`]);
//! * [`vae`]: a small convolutional VAE ([`VaeConfig`] -> [`Vae`], trained by
//!   [`VaeTrainer`]);
//! * [`train`]: training (SGD / Adam, soft labels, FGSM / PGD), evaluation, attacks, and
//!   the optimisers, also on host buffers ([`train::HostAdam`]);
//! * [`judge`]: the robust judge of inverted images ([`Judge`], [`JudgeRecipe`]);
//! * [`ops`]: fast custom convolution, max-pool and upsampling ops with exact gradients;
//! * [`bridge`]: ndarray images <-> candle tensors.
//!
//! Conventions: images are f32 tensors `[batch, channels, height, width]` with values in
//! [0, 1]; a classifier returns logits `[batch, outputs]`. Weights built over a
//! [`candle_nn::VarMap`] are trainable; weights loaded as plain tensors
//! ([`load_frozen`]) are frozen, so a backward pass reaches only the input, which is what
//! network inversion needs. Every random draw comes from a seeded host RNG, so the same
//! seed gives the same weights at any thread count.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use netinv_models::{Classifier, ClassifierConfig};
//!
//! let device = Device::Cpu;
//! let varmap = candle_nn::VarMap::new();
//! let net = Classifier::init(&ClassifierConfig::netinv_small(), &varmap, 42, &device)?;
//! let x = Tensor::zeros((4, 1, 28, 28), DType::F32, &device)?;
//! let logits = net.forward(&x)?;
//! assert_eq!(logits.dims(), &[4, 10]);
//! # Ok::<(), netinv_models::Error>(())
//! ```
#![warn(missing_docs)]

pub mod bridge;
pub mod classifier;
mod error;
pub mod judge;
pub mod ops;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod train;
pub mod vae;

pub use classifier::init;
pub use classifier::{
    load_frozen, load_into, save_checkpoint, BnStats, Classifier, ClassifierConfig, BN_EPS,
    BN_MOMENTUM, CONFIG_FILE, WEIGHTS_FILE,
};
pub use error::{Error, Result};
pub use judge::{Judge, JudgeRecipe, JudgeReport, Verdict, JUDGE_FILE};
pub use vae::{
    standard_normal, DecoderKind, DecoderPass, Vae, VaeConfig, VaeEpoch, VaeLoss, VaeReport,
    VaeTrainConfig, VaeTrainer, VAE_CONFIG_FILE, VAE_WEIGHTS_FILE,
};

/// The candle crates of this crate's API (tensors, devices, `VarMap`), re-exported so that
/// downstream code uses the same versions without pinning them by hand.
pub use candle_core;
pub use candle_nn;
/// The ndarray version of this crate's image and batch types.
pub use ndarray;
