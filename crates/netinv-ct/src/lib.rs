//! The CT case study of the thesis (chapter 5): does network inversion help few-angle CT?
//!
//! * [`HybridReconstructor`]: SIRT warm-up, then SIRT alternating with inversion iterations
//!   (a few Adam steps on the image of class loss + TV + L2 + BatchNorm-statistics prior
//!   through a frozen classifier), 50 + 50 iterations at 3:1 by default ([`HybridConfig`]).
//! * [`LabelMode`]: the true class as an oracle, or label-free, the class the network
//!   predicts for the current reconstruction (`Predicted` carries no label, so it cannot
//!   read one).
//! * [`InversionTerms`]: the ablation arms, priors only, class term only, both.
//! * [`ClassPriorSolver`]: the class prior inside a converged solver, projected gradient on
//!   `0.5 ||A x - b||^2` + the network terms, the class gradient through the network.
//! * [`scan_operator`]: the study's ASTRA-convention parallel-beam scan.
//!
//! Conventions: images are f32 `[rows, cols]` with values in [0, 1] and must match the
//! classifier's input (28 x 28 for MNIST nets); sinograms `[angles, detectors]`; sums in f64.
//! Every iteration is reported to a [`netinv_core::Monitor`] and recorded.
//!
//! ```
//! use candle_core::Device;
//! use netinv_core::Monitor;
//! use netinv_ct::{scan_operator, HybridConfig, HybridReconstructor, LabelMode};
//! use netinv_models::{Classifier, ClassifierConfig};
//! use netinv_tomo::LinearOperator;
//!
//! // A tiny untrained BatchNorm classifier (use netinv_models::load_frozen for a real one).
//! let cfg = ClassifierConfig { conv_channels: vec![4, 8], hidden: 16, batch_norm: true,
//!                              ..ClassifierConfig::netinv_small() };
//! let net = Classifier::init(&cfg, &candle_nn::VarMap::new(), 0, &Device::Cpu)?;
//! let truth = ndarray::Array2::from_shape_fn((28, 28), |(r, c)| {
//!     if (8..20).contains(&r) && (12..16).contains(&c) { 1.0f32 } else { 0.0 }
//! });
//! let op = scan_operator(28, 4)?;
//! let sino = op.apply(truth.view());
//! let mut cfg = HybridConfig { warmup_sirt: 5, alternating: 8, ..Default::default() };
//! cfg.inversion.steps = 2; // optimiser steps per inversion iteration
//! let hybrid = HybridReconstructor::new(cfg)?;
//! let rec = hybrid.reconstruct(&net, &op, sino.view(), LabelMode::Predicted,
//!                              Some(truth.view()), &mut Monitor::new())?;
//! assert_eq!(rec.records.len(), 13);
//! assert!(rec.records.iter().all(|r| r.psnr.is_some()));
//! assert!(rec.image.iter().all(|v| (0.0..=1.0).contains(v)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod config;
mod converged;
mod error;
pub mod generative;
mod hybrid;
mod net;
mod scan;
pub mod study;

pub use config::{HybridConfig, InversionTerms, LabelMode, NetTerms};
pub use converged::{ClassPriorConfig, ClassPriorReconstruction, ClassPriorSolver};
pub use error::{Error, Result};
pub use hybrid::{
    half_residual, HybridReconstruction, HybridReconstructor, HybridRun, IterationRecord, StepKind,
};
pub use net::{class_loss, predict_class};
pub use scan::{detector_count, scan_operator};

/// The candle crates of this crate's API (tensors, devices, `VarMap`), re-exported so that
/// downstream code uses the same versions without pinning them by hand.
pub use candle_core;
pub use candle_nn;
/// The ndarray version of this crate's image and batch types.
pub use ndarray;
