//! Intermediate-class digits for classifier training (thesis section 3): soft-labelled
//! latent interpolations of a VAE (netinv-models' [`netinv_models::Vae`]) generated on the
//! fly as a training source
//! ([`InterpolationSource`], a netinv-models `BatchSource`), the thesis's figure of
//! interpolations per class pair ([`PairGrid`]), and t-SNE of the latent space with the
//! k-NN preservation score ([`tsne_2d`], [`knn_preservation`]).
//!
//! Conventions: images are f32 `[b, 1, s, s]` in [0, 1] (s = 28 for MNIST), latent codes
//! f32 `[b, k]`, soft labels f32 `[b, 10]` rows summing to 1; every random step (weight
//! init, reparameterisation noise, pairs, weights, t-SNE start) comes from a seeded host
//! RNG, so runs repeat.
//!
//! ```
//! use candle_core::Device;
//! use candle_nn::VarMap;
//! use netinv_core::Monitor;
//! use netinv_interp::{InterpConfig, InterpolationSource};
//! use netinv_models::{Vae, VaeConfig, VaeTrainConfig, VaeTrainer};
//! use netinv_models::train::{BatchSource, Targets};
//!
//! let device = Device::Cpu;
//! let digits = netinv_data::Mnist::embedded()?.train().take(64);
//! // Train a small VAE for one epoch.
//! let varmap = VarMap::new();
//! let vae = Vae::init(&VaeConfig { latent_dim: 8, ..Default::default() }, &varmap, 0, &device)?;
//! let trainer = VaeTrainer::new(VaeTrainConfig { epochs: 1, batch_size: 32, ..Default::default() })?;
//! let report = trainer.fit(&vae, &varmap, &digits, None, &mut Monitor::new())?;
//! assert!(report.history[0].train_elbo < 0.0); // nats per image
//!
//! // Real digits plus 32 interpolations per epoch, soft-labelled.
//! let cfg = InterpConfig { generated_per_real: 0.5, ..Default::default() };
//! let source = InterpolationSource::new(&vae, &digits, cfg, &device)?;
//! assert_eq!(source.len(), 96);
//! let batch = source.epoch(32, 7, &device)?.next().unwrap()?;
//! let Targets::Soft(t) = batch.targets else { unreachable!() };
//! assert_eq!(t.dims(), &[32, 10]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod error;
mod interp;
pub mod study;
mod tsne;

pub use error::{Error, Result};
pub use interp::{
    decode_interpolations, interpolate, soft_label, AlphaDist, InterpConfig, InterpolationSource,
    Item, Pair, PairGrid,
};
pub use tsne::{knn_preservation, tsne_2d, TsneConfig};

/// The candle crates of this crate's API (tensors, devices, `VarMap`), re-exported so that
/// downstream code uses the same versions without pinning them by hand.
pub use candle_core;
pub use candle_nn;
