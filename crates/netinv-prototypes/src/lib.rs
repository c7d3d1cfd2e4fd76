//! Prototype networks (thesis chapter 4): classifiers whose D outputs are embeddings
//! compared with fixed class prototypes, in two geometries.
//!
//! * Hyperspherical (Mettes et al. 2019): K unit prototypes spread over the sphere by
//!   [`place_prototypes`], the mapping loss `(1 - cos(z, p_y))^2` ([`cosine_loss`]),
//!   prediction by largest cosine.
//! * Poincare ball / Busemann (Ghadimi Atigh et al. 2021): outputs mapped into the ball by
//!   [`to_ball`] (exponential map at 0, norm clipping), ideal prototypes on the boundary
//!   ([`ideal_prototypes`]), the penalised Busemann loss
//!   `log ||p - z||^2 - (1 + phi) log(1 - ||z||^2)` ([`busemann_loss`]), prediction by
//!   smallest Busemann value; also [`poincare_distance`].
//!
//! [`PrototypeHead`] bundles prototypes and loss; it implements
//! `netinv_models::train::TrainLoss`, so `Trainer::with_loss` trains a
//! `netinv_models::Classifier` with `outputs: D` as a prototype network, and
//! [`PrototypeObjective`] implements `netinv_invert::Objective` to invert such a network
//! towards a class prototype.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use netinv_prototypes::{busemann_loss, ideal_prototypes, to_ball, PlacementConfig};
//!
//! let dev = Device::Cpu;
//! let placement = ideal_prototypes(4, 3, &PlacementConfig::default())?;
//! assert!((placement.max_cosine + 1.0 / 3.0).abs() < 1e-3); // the tetrahedron
//! let protos = Tensor::from_vec(placement.to_f32(), (4, 3), &dev)?;
//! let z = to_ball(&Tensor::new(&[[0.5f32, -2.0, 30.0]], &dev)?)?; // strictly inside
//! let j = busemann_loss(&z, &protos, &Tensor::new(&[1u32], &dev)?, 0.75 * 3.0)?;
//! assert!(j.to_scalar::<f32>()?.is_finite());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Conventions: embeddings / network outputs are f32 `[b, D]`, prototypes f32 `[K, D]`
//! with unit rows, labels u32 `[b]` in `0..K`; losses are means over the batch.
#![warn(missing_docs)]

mod checks;
mod error;
mod head;
mod objective;
mod placement;
mod poincare;
mod sphere;
pub mod study;

pub use error::{Error, Result};
pub use head::{PrototypeFile, PrototypeHead, PrototypeKind, PROTOTYPES_FILE};
pub use objective::PrototypeObjective;
pub use placement::{place_prototypes, Placement, PlacementConfig};
pub use poincare::{
    busemann, busemann_loss, busemann_predict, check_in_ball, clip_to_ball, exp_map_zero,
    ideal_prototypes, penalty_weight, poincare_distance, to_ball, BUSEMANN_EPS, MAX_NORM,
};
pub use sphere::{cosine_loss, cosine_predict, cosine_similarities, COSINE_EPS};

/// The candle crates of this crate's API (tensors, devices, `VarMap`), re-exported so that
/// downstream code uses the same versions without pinning them by hand.
pub use candle_core;
pub use candle_nn;
