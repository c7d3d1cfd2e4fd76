//! Network inversion on candle: reconstruct the images a frozen classifier takes for a
//! given class, by gradient descent on the images.
//!
//! ```text
//! x* = argmin_x  L(F(x), y) + R(x)        (thesis, Eq. 2.6)
//! ```
//!
//! * [`Prior`]s R(x): squared-difference TV ([`SquaredTv`], the thesis's Eq. 2.5),
//!   anisotropic L1 TV ([`AnisotropicTv`]), isotropic TV ([`IsotropicTv`]), the squared L2
//!   norm ([`L2Norm`]), the BatchNorm statistics prior of DeepInversion ([`BnStatsPrior`])
//!   and random [`Jitter`]. All are summed over the batch.
//! * [`Objective`]s L: [`CrossEntropy`] to target classes (mean over the batch by default,
//!   see [`Reduction`]), [`SoftCrossEntropy`] to target distributions; other crates
//!   implement the trait for their own losses.
//! * [`Inverter`] prepares runs: the image batch is the only variable, the network's
//!   weights are constants ([`InvertibleNet`]), Adam or SGD on the images, clamp, snapshots,
//!   observers and stop rules through [`netinv_core::Monitor`] (e.g. [`TargetProbability`]).
//!   [`Inverter::start`] gives an [`InversionRun`] that advances one update per
//!   [`InversionRun::step`] and exposes its images between steps (for solvers that
//!   alternate with it); [`Inverter::run`] drives one to its end.
//! * [`study`]: the thesis's inversion studies (Task 1, Task 2, the optimiser study) as
//!   lists of independent jobs.
//!
//! With a real classifier (here a tiny untrained one; use `netinv_models::load_frozen` for a
//! trained checkpoint), three inversion steps towards the digits 3 and 7:
//!
//! ```
//! use candle_core::Device;
//! use netinv_core::Monitor;
//! use netinv_invert::{InversionConfig, Inverter};
//! use netinv_models::{Classifier, ClassifierConfig};
//!
//! let cfg = ClassifierConfig { conv_channels: vec![4, 8], hidden: 16, ..Default::default() };
//! let net = Classifier::init(&cfg, &candle_nn::VarMap::new(), 0, &Device::Cpu)?;
//! let inverter = Inverter::new(InversionConfig { steps: 3, snapshots: vec![1], ..Default::default() })?;
//! let out = inverter.invert_classes(&net, &[3, 7], None, &Device::Cpu, &mut Monitor::new())?;
//! assert_eq!(out.images.dim(), (2, 1, 28, 28));
//! assert_eq!(out.history.len(), 3);
//! assert_eq!(out.snapshots[0].iteration, 1);
//! assert!(out.images.iter().all(|v| (0.0..=1.0).contains(v)));
//! # Ok::<(), netinv_invert::Error>(())
//! ```
//!
//! Conventions: images are `[b, c, h, w]` f32 tensors with values in [0, 1] (the default
//! clamp); outputs are `[b, outputs]` logits.
//!
//! # Example
//! ```
//! use candle_core::{Device, Tensor};
//! use netinv_core::Monitor;
//! use netinv_invert::{InversionConfig, Inverter, InvertibleNet, Result, TargetProbability};
//!
//! /// Two "classes" on 4x4 images: bright left half vs bright right half.
//! struct Halves;
//! impl InvertibleNet for Halves {
//!     fn input_dims(&self) -> (usize, usize, usize) { (1, 4, 4) }
//!     fn outputs(&self) -> usize { 2 }
//!     fn forward(&self, x: &Tensor) -> Result<Tensor> {
//!         let left = x.narrow(3, 0, 2)?.flatten_from(1)?.sum_keepdim(1)?;
//!         let right = x.narrow(3, 2, 2)?.flatten_from(1)?.sum_keepdim(1)?;
//!         Ok(Tensor::cat(&[&(&left - &right)?, &(&right - &left)?], 1)?)
//!     }
//! }
//! let inverter = Inverter::new(InversionConfig { steps: 200, ..Default::default() })?;
//! let mut monitor = Monitor::new().with_stop_rule(TargetProbability { threshold: 0.99 });
//! let result = inverter.invert_classes(&Halves, &[0, 1], None, &Device::Cpu, &mut monitor)?;
//! assert_eq!(result.predictions(), vec![0, 1]);
//! assert!(result.state.iteration < 200); // stopped early: both targets above 0.99
//! # Ok::<(), netinv_invert::Error>(())
//! ```
#![warn(missing_docs)]

mod config;
mod engine;
mod error;
mod lbfgs;
mod net;
mod objective;
mod prior;
mod run;
pub mod study;

pub use config::{ImageOptimizer, InversionConfig};
pub use engine::{Inversion, Inverter, Snapshot, StepRecord, TargetProbability};
pub use error::{Error, Result};
pub use net::InvertibleNet;
pub use objective::{CrossEntropy, Objective, Reduction, SoftCrossEntropy};
pub use prior::{
    AnisotropicTv, BnLayerStats, BnStatsPrior, IsotropicTv, Jitter, JitterShifts, L2Norm, Prior,
    SquaredTv,
};
pub use run::InversionRun;

/// The candle crates of this crate's API (tensors, devices, `VarMap`), re-exported so that
/// downstream code uses the same versions without pinning them by hand.
pub use candle_core;
pub use candle_nn;
/// The ndarray version of this crate's image and batch types.
pub use ndarray;
