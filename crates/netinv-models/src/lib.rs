//! CNN classifiers for MNIST-sized images on candle (CPU, f32): the `netinv-small` net and
//! its variants ([`Classifier`], [`ClassifierConfig`]), fast custom convolution and
//! max-pool ops with exact gradients ([`ops`]), seeded PyTorch-style initialisation
//! ([`init`]) and safetensors checkpoints ([`save_checkpoint`], [`load_frozen`],
//! [`load_into`]).
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

mod checkpoint;
mod error;
pub mod init;
mod net;
pub mod ops;
pub mod train;

pub use checkpoint::{load_frozen, load_into, save_checkpoint, CONFIG_FILE, WEIGHTS_FILE};
pub use error::{Error, Result};
pub use net::{BnStats, Classifier, ClassifierConfig, BN_EPS, BN_MOMENTUM};

/// The candle crates of this crate's API (tensors, devices, `VarMap`), re-exported so that
/// downstream code uses the same versions without pinning them by hand.
pub use candle_core;
pub use candle_nn;
