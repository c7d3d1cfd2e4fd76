//! netinv: class-specific image reconstruction through network inversion.
//!
//! This umbrella crate only re-exports the netinv libraries, so one dependency brings them
//! all; each is usable on its own as well. See the README for the crate map.
//!
//! The whole pipeline in miniature: train a classifier on embedded digits, freeze it,
//! invert it towards one class, and reconstruct a digit from 4 CT projections. The candle
//! and ndarray versions come re-exported (`netinv::models::candle_core`, `netinv::tomo::ndarray`),
//! so a downstream crate needs no dependency of its own on them.
//!
//! ```
//! use netinv::core::Monitor;
//! use netinv::data::Mnist;
//! use netinv::invert::{InversionConfig, Inverter};
//! use netinv::metrics::psnr;
//! use netinv::models::candle_core::Device;
//! use netinv::models::candle_nn::VarMap;
//! use netinv::models::train::{TrainConfig, Trainer};
//! use netinv::models::{Classifier, ClassifierConfig};
//! use netinv::tomo::{LinearOperator, Sirt, SirtConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::Cpu;
//! // 1. Train netinv-small for one epoch (4 SGD steps) on 200 embedded training digits.
//! let mnist = Mnist::embedded()?;
//! let digits = mnist.train().take(200);
//! let varmap = VarMap::new();
//! let net = Classifier::init(&ClassifierConfig::netinv_small(), &varmap, 0, &device)?;
//! let recipe = TrainConfig { epochs: 1, batch_size: 50, ..TrainConfig::sgd() };
//! Trainer::new(recipe)?.fit(&net, &varmap, &digits, None, &mut Monitor::new())?;
//!
//! // 2. Freeze it in memory and invert it: 30 Adam steps turn noise into a "3" for the net.
//! let frozen = net.freeze(&varmap)?;
//! let inverter = Inverter::new(InversionConfig { steps: 30, ..Default::default() })?;
//! let inversion = inverter.invert_classes(&frozen, &[3], None, &device, &mut Monitor::new())?;
//! assert_eq!(inversion.images.dim(), (1, 1, 28, 28));
//! assert_eq!(inversion.predictions(), vec![3]);
//!
//! // 3. Reconstruct a test digit from 4 parallel-beam projections by SIRT; score by PSNR.
//! let truth = mnist.test().image(0).to_owned();
//! let scanner = netinv::ct::scan_operator(28, 4)?;
//! let sinogram = scanner.apply(truth.view());
//! let sirt = Sirt::new(SirtConfig {
//!     iterations: 50,
//!     min: Some(0.0),
//!     max: Some(1.0),
//!     ..Default::default()
//! })?;
//! let reconstruction = sirt.reconstruct(&scanner, sinogram.view())?.image;
//! let db = psnr(truth.view(), reconstruction.view(), 1.0)?;
//! assert!(db > 10.0, "SIRT from 4 angles: {db:.2} dB");
//! # Ok(())
//! # }
//! ```

pub use netinv_core as core;
pub use netinv_ct as ct;
pub use netinv_data as data;
pub use netinv_interp as interp;
pub use netinv_invert as invert;
pub use netinv_metrics as metrics;
pub use netinv_models as models;
pub use netinv_onnx as onnx;
pub use netinv_prototypes as prototypes;
pub use netinv_tomo as tomo;
